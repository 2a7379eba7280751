"""What a request for hotspot figures asks for (:func:`parse_request`, a
:class:`HotspotRequest`) and the answers: JSON (:func:`table_json`), CSV (:func:`table_csv`),
XLSX (:func:`table_xlsx`) and GeoJSON (:func:`table_geojson`); a brand's pass the privacy check
before they leave.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.errors import problem
from clms.exports import csv_chunks, xlsx_chunks
from clms.i18n import Msg
from clms.models import Area, Supplier, User, Village
from clms.supply.operations import brand_supplier_ids_query
from geo.hotspots.figures import FIGURES, LEVELS, HotspotTable
from geo.hotspots.settings import HotspotSettings
from geo.hotspots.tables import _invalid, brand_period, hotspot_table
from geo.periods import MAX_MONTHS

#: answer formats
FORMATS = ("json", "csv", "geojson")
#: the levels whose cells have a geometry (village cells, area boundaries)
GEO_LEVELS = ("village", "area")
#: the columns of the CSV export
CSV_COLUMNS = (
    "level",
    "code",
    "name",
    "area_code",
    "area_level",
    "tier",
    "suppressed",
    "reason",
    *FIGURES,
    "previous_suppressed",
)


@dataclass(frozen=True)
class HotspotRequest:
    """What a request asks for (:func:`parse_request`); :meth:`table` answers it."""

    level: str
    end: dt.date
    months: int = 12
    area_level: str | None = None
    tier: int | None = None
    supplier_id: int | None = None
    format: str = "json"

    def table(self, session: Session, user: User, *, settings: HotspotSettings) -> HotspotTable:
        """The hotspot table this request asks ``user`` for (``settings``: the application's, see
        :func:`geo.hotspots.tables.hotspot_table`)."""
        return hotspot_table(
            session,
            user,
            self.level,
            end=self.end,
            months=self.months,
            area_level=self.area_level,
            tier=self.tier,
            supplier_id=self.supplier_id,
            settings=settings,
        )

    @property
    def filename(self) -> str:
        """A file name (without extension) saying what the export holds."""
        return f"clms-hotspots-{self.level}-{self.end.isoformat()}-{self.months}m"


def parse_request(
    session: Session,
    user: User,
    args,
    today: dt.date,
    *,
    settings: HotspotSettings,
) -> HotspotRequest:
    """The request of query parameters ``level`` (required: village, area, supplier, tier),
    ``end`` (YYYY-MM-DD, default today), ``months`` (1-120, default 12), ``area_level`` (a level
    of the stored areas), ``tier`` (1, 2, ...), ``supplier`` (a code) and ``format`` (json, csv,
    geojson; geojson for villages and areas only). For a brand, ``end`` and ``months`` must name
    one of the reporting grid's published periods (default: the latest; the grid of
    ``settings``, the application's), see :func:`brand_period`.

    A parameter that cannot be read raises ``request.invalid_parameter`` naming it; a supplier
    code that names no supplier the caller may see raises ``not_found``, the same answer whether
    it exists or not (a brand learns nothing of other brands' chains).
    """

    def text(name: str) -> str | None:
        value = (args.get(name) or "").strip()
        return value or None

    level = text("level")
    if level not in LEVELS:
        raise _invalid("level", Msg("must be one of {choices}", choices=", ".join(LEVELS)))
    fmt = text("format") or "json"
    if fmt not in FORMATS:
        raise _invalid("format", Msg("must be one of {choices}", choices=", ".join(FORMATS)))
    if fmt == "geojson" and level not in GEO_LEVELS:
        raise _invalid(
            "format", Msg("geojson is only for the village and area levels, not {value!r}",
                          value=level)
        )  # fmt: skip
    end = None
    if text("end") is not None:
        try:
            end = dt.date.fromisoformat(text("end"))
        except ValueError:
            raise _invalid(
                "end", Msg("must be a date like 2025-01-31, not {value!r}", value=text("end"))
            ) from None
    months = None
    if text("months") is not None:
        raw = text("months")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_MONTHS:
            raise _invalid(
                "months",
                Msg("must be a whole number from 1 to {most}, not {value!r}", most=MAX_MONTHS,
                    value=raw),
            )  # fmt: skip
        months = int(raw)
    tier = text("tier")
    if tier is not None:
        if not tier.isdigit() or int(tier) < 1:
            raise _invalid(
                "tier", Msg("must be a whole number, 1 or more, not {value!r}", value=tier)
            )
        tier = int(tier)
    area_level = text("area_level")
    if area_level is not None:
        known = sorted(set(session.scalars(select(Area.level).distinct())))
        if area_level not in known:
            raise _invalid("area_level", Msg("must be one of {choices}", choices=", ".join(known)))
    supplier_id = None
    if text("supplier") is not None:
        supplier_id = session.scalar(select(Supplier.id).where(Supplier.code == text("supplier")))
        if supplier_id is not None and user.role == "brand":
            reachable = select(Supplier.id).where(
                Supplier.id == supplier_id,
                Supplier.id.in_(brand_supplier_ids_query(user.brand_id or -1)),
            )
            supplier_id = session.scalar(reachable)
        if supplier_id is None:
            raise problem("not_found")
    if user.role == "brand":
        # one of the grid's periods, or a 400
        period = brand_period(end, months, today, settings=settings)
        end, months = period.end, period.months
    return HotspotRequest(level, end or today, months or 12, area_level, tier, supplier_id, fmt)


def table_records(table: HotspotTable) -> list[list]:
    """The rows of the CSV export (:data:`CSV_COLUMNS`): the cells, then the scope total."""
    return [[row.get(c) for c in CSV_COLUMNS] for row in [*table.rows, table.total]]


def table_csv(table: HotspotTable) -> bytes:
    """The table as CSV (UTF-8 with a byte-order mark); a brand's passes the privacy check."""
    records = [dict(zip(CSV_COLUMNS, r, strict=True)) for r in table_records(table)]
    _check(table, [{k: v for k, v in r.items() if v is not None} for r in records])
    return b"".join(csv_chunks(CSV_COLUMNS, table_records(table)))


def table_xlsx(table: HotspotTable, sheet: str) -> Iterator[bytes]:
    """The table as an XLSX workbook of one ``sheet``, the cells of :func:`table_csv`; a
    brand's passes the privacy check first, before a byte is written."""
    records = [dict(zip(CSV_COLUMNS, r, strict=True)) for r in table_records(table)]
    _check(table, [{k: v for k, v in r.items() if v is not None} for r in records])
    return xlsx_chunks([(sheet, CSV_COLUMNS, table_records(table))])


def table_geojson(session: Session, table: HotspotTable) -> dict:
    """The table as a GeoJSON FeatureCollection: each village's cell or area's boundary as the
    geometry (None when none is stored; never a point) and the published figures as properties.
    A brand's passes the privacy check."""
    from shapely import from_wkb
    from shapely.geometry import mapping

    if table.level not in GEO_LEVELS:
        raise ValueError(f"no geometry for the {table.level} level")
    model, column = (Village, Village.cell) if table.level == "village" else (Area, Area.geom)
    codes = [row["code"] for row in table.rows]
    shapes = dict(session.execute(select(model.code, column).where(model.code.in_(codes))).all())
    features = []
    for row in table.rows:
        geometry = None
        wkb = shapes.get(row["code"])
        if wkb:
            shape = from_wkb(wkb)
            if shape.geom_type in ("Polygon", "MultiPolygon"):
                geometry = mapping(shape)
        features.append({"type": "Feature", "geometry": geometry, "properties": dict(row)})
    collection = {"type": "FeatureCollection", "features": features}
    _check(table, collection)
    return json.loads(json.dumps(collection))  # tuples of coordinates as lists


def table_json(table: HotspotTable) -> dict:
    """The table as the API answers it; a brand's passes the privacy check."""
    payload = table.as_dict()
    _check(table, payload)
    return payload


def _check(table: HotspotTable, payload) -> None:
    if table.brand:
        from geo.privacy import assert_brand_safe

        assert_brand_safe(
            payload, min_children=table.min_children, min_households=table.min_households
        )
