"""Downloads of the hotspot figures for the signed-in brand or officer: ``/hotspots/export.csv``
and ``/hotspots/export.geojson``, with the query parameters of ``GET /api/v1/hotspots``
(:func:`geo.hotspots.request.parse_request`). The same table and the same privacy gate as the
API and the maps; every download is written to the audit log (domain.md section 8).
"""

from __future__ import annotations

import json

from flask import Response, current_app, g, request

from clms.audit import record_read
from clms.auth import allow
from clms.db import db, read_session
from clms.models import utcnow
from clms.web import bp
from geo.hotspots.request import parse_request, table_csv, table_geojson
from geo.hotspots.settings import HotspotSettings

HOTSPOT_ROLES = ("brand", "officer", "supervisor")
MIMETYPES = {"csv": "text/csv", "geojson": "application/geo+json"}


@bp.route("/hotspots/export.<any(csv, geojson):fmt>")
@allow(*HOTSPOT_ROLES)
def hotspots_export(fmt: str):
    """The hotspot table of the query parameters as a CSV or GeoJSON file."""
    session = read_session()  # the replica, if fit; the person was read on the primary
    args = request.args.to_dict()
    args["format"] = fmt
    settings = HotspotSettings.from_config(current_app.config)
    asked = parse_request(session, g.user, args, utcnow().date(), settings=settings)
    table = asked.table(session, g.user, settings=settings)
    if fmt == "csv":
        body = table_csv(table)
    else:
        body = json.dumps(table_geojson(session, table), ensure_ascii=False).encode()
    record_read(db(), g.user, "hotspots.export", f"hotspots:{asked.level}", format=fmt, query=args)
    response = Response(body, mimetype=MIMETYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{asked.filename}.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response
