"""GET /api/v1/hotspots."""

from __future__ import annotations

from clms.api import bp  # noqa: F401
