"""``clms places locate``: find the village of every visit again from its GPS point."""

from __future__ import annotations

from geo.cli import places_group  # noqa: F401
