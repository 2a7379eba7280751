"""The KPIs in the JSON API (officers, supervisors, administrators).

``GET /api/v1/kpis`` answers the figures the page ``/kpis`` shows, for the same query parameters:
``from`` and ``to`` (dates, YYYY-MM-DD; default the 12 months up to today), ``area``,
``village``, ``supplier`` (codes), ``tier`` (1, 2, ...), ``monitor`` (a username) and ``group``
(none, village, area, supplier, tier, monitor, month, quarter). A parameter that cannot be read,
or a code that names nothing, answers 400 ``request.invalid_parameter`` naming the parameter.

Answer::

    {"as_of": "...", "filters": {...}, "overall": {figures},
     "groups": [{"key": "V1", "label": "Gnamagui", figures}, ...],
     "monitors": [{"key": "awa", "label": "awa", quality figures}, ...]}

Every figure is defined once, in :mod:`alerts.kpis`. Only the caller's villages count; an
administrator with no scope gets the whole country's figures, anyone else with none gets zeros.
"""

from __future__ import annotations

from flask import current_app, g, jsonify, request

from alerts.kpis import kpi_report, parse_filters
from clms.api import bp
from clms.auth import allow
from clms.config import gps_far_km
from clms.db import read_session
from clms.models import utcnow

KPI_ROLES = ("officer", "supervisor", "admin")


@bp.route("/kpis")
@allow(*KPI_ROLES)
def kpis_get():
    """The KPIs of the caller's areas for the query parameters (see the module documentation)."""
    session = read_session()  # the replica, if fit; the token was read on the primary
    filters = parse_filters(request.args, utcnow().date())
    far_km = gps_far_km(current_app.config)  # GPS_FAR_METRES
    return jsonify(kpi_report(session, g.user, filters, far_km=far_km).as_dict())
