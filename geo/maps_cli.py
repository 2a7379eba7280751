"""``clms hotspots map``: the brand map as one standalone HTML file."""

from __future__ import annotations

from geo.hotspots_cli import hotspots_group  # noqa: F401
