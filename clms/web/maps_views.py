"""maps_views"""

from __future__ import annotations

from clms.web import bp  # noqa: F401
