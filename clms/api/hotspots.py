"""``GET /api/v1/hotspots``: the hotspot figures of :mod:`geo.hotspots` (brands: their own supply
chain, through the privacy gate of :mod:`geo.privacy`; officers and supervisors: their areas).

Query parameters: ``level`` (village, area, supplier, tier; required), ``end`` (YYYY-MM-DD,
default today), ``months`` (default 12), ``area_level`` (e.g. department), ``tier``,
``supplier`` (a supplier's code: that supplier's sub-chain) and ``format`` (json, csv, geojson).
A parameter that cannot be read answers 400 ``request.invalid_parameter`` naming it; a supplier
the caller may not see answers 404, whether it exists or not.

Answer (json)::

    {"level": "village", "period": {"start", "end", "months", "previous_start", "previous_end"},
     "thresholds": {"min_children": 10, "min_households": 5},
     "total": {figures}, "rows": [{"level", "code", "name", "area_code", figures}, ...]}

A brand's suppressed cell is ``{"level", "code", "name", ..., "suppressed": true, "reason"}``.
"""

from __future__ import annotations

from flask import Response, current_app, g, jsonify, request

from clms.api import bp
from clms.auth import allow
from clms.db import read_session
from clms.models import utcnow
from geo.hotspots.request import parse_request, table_csv, table_geojson, table_json
from geo.hotspots.settings import HotspotSettings

HOTSPOT_ROLES = ("brand", "officer", "supervisor")


@bp.route("/hotspots")
@allow(*HOTSPOT_ROLES)
def hotspots_get():
    """The hotspot figures the caller may see (see the module documentation)."""
    session = read_session()  # the replica, if fit; the token was read on the primary
    settings = HotspotSettings.from_config(current_app.config)
    asked = parse_request(session, g.user, request.args, utcnow().date(), settings=settings)
    table = asked.table(session, g.user, settings=settings)
    if asked.format == "csv":
        response = Response(table_csv(table), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="{asked.filename}.csv"'
        return response
    if asked.format == "geojson":
        response = jsonify(table_geojson(session, table))
        response.mimetype = "application/geo+json"
        return response
    return jsonify(table_json(table))
