"""Server-rendered pages for people: sign-in, alerts, cases, referrals, forms, submissions,
indicators and administration."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("web", __name__)

# routes register on import, so these come after bp exists
from clms.web import (  # noqa: E402,F401
    alerts_views,
    audit_views,
    cases_views,
    catalogue_views,
    dataprotection_views,
    duplicates_views,
    forms_views,
    hotspots_views,
    kpis_views,
    maps_views,
    places_views,
    profiles_views,
    referrals_views,
    sources_views,
    submissions_views,
    supply_views,
    views,
)
