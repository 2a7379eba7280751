"""Downloads of the hotspot figures for the signed-in brand or officer: ``/hotspots/export.csv``,
``.xlsx`` and ``.geojson``, with the query parameters of ``GET /api/v1/hotspots``
(:func:`geo.hotspots.request.parse_request`). The same table and the same privacy gate as the
API and the maps; every download is written to the audit log (domain.md section 8), and
streamed as every export is (:mod:`clms.web.downloads`).
"""

from __future__ import annotations

import dataclasses
import json

from flask import current_app, g, request

from clms.audit import record_read
from clms.auth import allow
from clms.db import read_session
from clms.locale import gettext
from clms.models import utcnow
from clms.web import bp
from clms.web.downloads import download
from geo.hotspots.figures import HotspotTable
from geo.hotspots.request import parse_request, table_csv, table_geojson, table_xlsx
from geo.hotspots.settings import HotspotSettings
from geo.privacy import reason_in

HOTSPOT_ROLES = ("brand", "officer", "supervisor")


@bp.route("/hotspots/export.<any(csv, xlsx, geojson):fmt>")
@allow(*HOTSPOT_ROLES)
def hotspots_export(fmt: str):
    """The hotspot table of the query parameters as a CSV, XLSX or GeoJSON file."""
    session = read_session()  # the replica, if fit; the person was read on the primary
    args = request.args.to_dict()
    args["format"] = "csv" if fmt == "xlsx" else fmt  # the XLSX holds the CSV's cells
    settings = HotspotSettings.from_config(current_app.config)
    asked = parse_request(session, g.user, args, utcnow().date(), settings=settings)
    table = in_words_of_the_reader(asked.table(session, g.user, settings=settings))
    # each passes the brand's privacy check before a byte is handed on
    if fmt == "csv":
        chunks = [table_csv(table)]
    elif fmt == "xlsx":
        chunks = table_xlsx(table, gettext("Hotspots"))
    else:
        chunks = [json.dumps(table_geojson(session, table), ensure_ascii=False).encode()]
    args["format"] = fmt
    record_read(
        session, g.user, "hotspots.export", f"hotspots:{asked.level}", format=fmt, query=args
    )
    return download(chunks, fmt, asked.filename)


def in_words_of_the_reader(table: HotspotTable) -> HotspotTable:
    """The table with its suppression reasons in the reader's language: a file is for a person
    (the API's answers keep the gate's English words, as its other codes)."""

    def row(cell: dict) -> dict:
        if not cell.get("reason"):
            return cell
        return {**cell, "reason": reason_in(cell["reason"], gettext)}

    return dataclasses.replace(table, rows=[row(r) for r in table.rows], total=row(table.total))
