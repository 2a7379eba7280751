"""Hotspots: child-labour figures per village, administrative area, supplier and tier.

:func:`hotspot_table` is the one function every hotspot page, map, API answer and export calls.
For a brand it always passes through :func:`geo.privacy.protect` (thresholds, secondary
suppression, an allow-list of keys); for an officer or a supervisor the figures are exact but only
over the villages of their areas (:func:`clms.scope.village_scope_condition`). Anyone else (an
administrator without a scope, a monitor, a provider) gets an empty table, as for the KPIs.

Definitions
-----------
Period
    Whole days in UTC: by default the ``months`` (12) months ending today, i.e. the half-open
    interval ``[end + 1 day - months, end + 1 day)``; ``end`` (a date, inclusive) and ``months``
    may be given. The previous period has the same length and ends where the period starts.
Which visit places a child
    A child counts in a cell when their *latest* current classified child visit of the period
    (latest ``visited_at``, then highest visit id; current visits and current classifications only,
    as :func:`alerts.kpis.classified_in_windows` defines them) lies in it, among the visits the
    caller may see and the filters keep. Village: the visit's village. Area: the village's area and
    every area above it (one row per area, or only the areas of ``area_level``). Supplier: the
    visit's ``supplier_id`` (ingestion fills it from the household when the form names none) and
    every supplier whose sub-chain contains it, so that a tier-1 supplier's figures cover its
    whole chain. Tier: the tier of the visit's own supplier. So each child counts once in a
    village, a tier and the total, and in every area and supplier above.
Scope
    Brand: the visits whose ``supplier_id`` is reachable from the brand
    (:func:`clms.supply.brand_supplier_ids_query`). Officer, supervisor (and an administrator with
    a scope): the visits in the villages of their areas. The latest visit is chosen among these.
Filters
    ``tier`` keeps the children whose latest visit's supplier is of that tier, ``supplier_id``
    those whose latest visit's supplier is in that supplier's sub-chain: a filter picks cells'
    children, it does not choose another visit, so the tiers' tables add up to the whole.
    A brand's filtered table is protected together with the unfiltered one (and, for a tier,
    every other tier's), so that no layer of a map can be subtracted from the others.

Figures of a cell (``FIGURES``)
    ``households`` (distinct households of the children counted), ``children``,
    ``child_labour`` (latest category worst form, hazardous or other child labour),
    ``hazardous`` (latest category hazardous work), ``worst_forms`` (latest category worst forms
    other than hazardous work), ``prevalence`` = child_labour / children (a share, 0-1, four
    decimals) with ``prevalence_low``/``prevalence_high``, its 95% Wilson score interval;
    ``previous_prevalence`` (the same over the previous period, for the children whose latest
    visit of *that* period is in the cell) and ``change`` = prevalence - previous_prevalence in
    percentage points (one decimal); ``identified`` (children with any visit of the period
    classified as child labour) and ``remediation_coverage`` = the share of them who received at
    least one remediation service before the period's end (:func:`alerts.kpis.first_remediation`).

Everything is aggregated in SQL (``GROUP BY`` over one ranked common table expression): child
rows never reach Python.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
from dataclasses import dataclass, field

from sqlalchemy import Integer, and_, case, cast, distinct, func, literal, null, select, union_all
from sqlalchemy.orm import Session, aliased

from alerts.kpis import CHILD_LABOUR, current_classifications_in_windows, first_remediation
from clms.errors import problem
from clms.exports import csv_chunks
from clms.i18n import Msg
from clms.models import (
    Area,
    ChildVisit,
    Classification,
    Supplier,
    SupplierLink,
    User,
    UTCDateTime,
    Village,
    Visit,
)
from clms.scope import area_ids_in_scope, village_scope_condition
from clms.supply import brand_supplier_ids_query, subchain_ids

#: the ``level`` values
LEVELS = ("village", "area", "supplier", "tier")
#: the figures of a cell, in the order tables and exports show them
FIGURES = (
    "households",
    "children",
    "child_labour",
    "hazardous",
    "worst_forms",
    "prevalence",
    "prevalence_low",
    "prevalence_high",
    "previous_prevalence",
    "change",
    "identified",
    "remediation_coverage",
)
#: the counts that add up over the cells of a group (what secondary suppression protects)
COUNTS = ("households", "children", "child_labour", "hazardous", "worst_forms", "identified")
#: the levels protected together for a brand (a total of one is the sum of cells of the other)
HIERARCHIES = {
    "village": ("village", "area"),
    "area": ("village", "area"),
    "supplier": ("supplier",),
    "tier": ("tier",),
}
#: the longest period a request may ask for
MAX_MONTHS = 120
#: z for a two-sided 95% interval
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Period:
    """Whole UTC days ``[start, end]`` (inclusive) and the previous period of the same length.

    >>> p = Period.ending(dt.date(2025, 3, 31), 3)
    >>> p.start.isoformat(), p.end.isoformat(), p.previous_start.isoformat()
    ('2025-01-01', '2025-03-31', '2024-10-01')
    """

    start: dt.date
    end: dt.date
    months: int
    previous_start: dt.date

    @classmethod
    def ending(cls, end: dt.date, months: int = 12) -> Period:
        """The ``months`` months ending on ``end`` (inclusive)."""
        after = end + dt.timedelta(days=1)
        start = _months_before(after, months)
        return cls(start, end, months, _months_before(start, months))

    @property
    def previous_end(self) -> dt.date:
        """The last day of the previous period."""
        return self.start - dt.timedelta(days=1)

    def as_dict(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "months": self.months,
            "previous_start": self.previous_start.isoformat(),
            "previous_end": self.previous_end.isoformat(),
        }


@dataclass
class HotspotTable:
    """The cells of one level for one caller.

    ``rows``: one dict per cell with ``level``, ``code``, ``name`` (for a village also
    ``area_code``, for a supplier also ``tier``; for a tier, ``code`` and ``name`` are the tier
    number as text) and either the :data:`FIGURES` or, for a brand's suppressed cell,
    ``{"suppressed": True, "reason": "..."}`` and no figure at all. ``total``: the same for the
    whole scope (``level`` "total"). ``brand``: the figures passed the privacy gate.
    """

    level: str
    period: Period
    rows: list[dict] = field(default_factory=list)
    total: dict = field(default_factory=dict)
    brand: bool = False
    min_children: int = 0
    min_households: int = 0

    def as_dict(self) -> dict:
        """The table as plain JSON-ready data (the API's answer)."""
        return {
            "level": self.level,
            "period": self.period.as_dict(),
            "thresholds": {
                "min_children": self.min_children,
                "min_households": self.min_households,
            },
            "total": self.total,
            "rows": self.rows,
        }


def hotspot_table(
    session: Session,
    user: User,
    level: str,
    *,
    end: dt.date | None = None,
    months: int = 12,
    area_level: str | None = None,
    tier: int | None = None,
    supplier_id: int | None = None,
    min_children: int | None = None,
    min_households: int | None = None,
) -> HotspotTable:
    """The hotspot figures of ``level`` (one of :data:`LEVELS`) that ``user`` may see.

    ``end`` (default today, UTC) and ``months`` set the period; ``area_level`` keeps only the
    areas of that level (``level="area"``); ``tier`` and ``supplier_id`` keep the children whose
    latest visit is of that tier's suppliers or in that supplier's sub-chain (a map's layer).
    ``min_children``/``min_households`` (brands only) default to the application's
    ``PRIVACY_MIN_CHILDREN``/``_HOUSEHOLDS`` and can only be raised.

    >>> table = hotspot_table(session, brand_user, "village")  # doctest: +SKIP
    >>> table.rows[0]  # doctest: +SKIP
    {'level': 'village', 'code': 'V1', 'name': 'Gnamagui', 'area_code': 'CI-D1',
     'suppressed': True, 'reason': 'fewer than 10 children monitored'}
    """
    from geo import privacy

    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be 1 to {MAX_MONTHS}, not {months!r}")
    period = Period.ending(end or dt.datetime.now(dt.UTC).date(), months)
    brand = user.role == "brand"
    # one statement object for the brand's suppliers, used twice in the query (one CTE)
    brand_ids = brand_supplier_ids_query(user.brand_id) if brand and user.brand_id else None
    if brand:
        scope = None if brand_ids is None else Visit.supplier_id.in_(brand_ids)
    else:
        scope = village_scope_condition(session, user, Visit.village_id)
    table = HotspotTable(level, period, brand=brand)
    if brand:
        table.min_children, table.min_households = privacy.thresholds(
            *_configured_thresholds(), min_children, min_households
        )
    wanted = ""  # the suffix of the cells asked for, when a brand's table is sliced
    if scope is None:
        cells = {("total", None): {**_identity("total", None), **_empty_counts()}}
        groups = []
    else:
        # the filters pick among the children's latest visits (a tier's layer holds the children
        # whose latest visit is of that tier), so the layers of one table add up to it
        kept = None
        if tier is not None:
            kept = select(Supplier.id).where(Supplier.tier == tier).correlate(None)
        if supplier_id is not None:
            chain = sorted(subchain_ids(session, [supplier_id]))
            kept = chain if kept is None else kept.where(Supplier.id.in_(chain))
        # a brand's table is protected over the whole hierarchy of the level at once (villages
        # and areas together), so that a cell is suppressed whichever of them is asked for and
        # one level's totals cannot undo the other's suppression; suppliers and tiers only share
        # the scope total with it, which is suppressed alike in every hierarchy
        kinds = HIERARCHIES[level] if brand else (level,)
        if not brand:
            raw = _aggregate(session, period, scope, kinds, brand_ids, [("", False, kept)])
            cells, groups = _cells(session, raw), []
        elif kept is None:
            raw = _aggregate(session, period, scope, kinds, brand_ids, [("", False, None)])
            cells = _cells(session, raw)
            groups = _groups(session, cells, user.brand_id)
        else:
            # a filtered table (a map layer) is protected together with the unfiltered one and,
            # for a tier, with every other tier's: otherwise a village's published figures minus
            # one layer's would give away the rest (see _sliced_groups)
            by_tier = supplier_id is None
            modes = [("", False, None), ("", True, None) if by_tier else ("@x", False, kept)]
            cells = _cells(session, _aggregate(session, period, scope, kinds, brand_ids, modes))
            groups = _sliced_groups(session, cells, user.brand_id)
            wanted = f"@{tier}" if by_tier else "@x"
    for cell in cells.values():
        _finish(cell)
    if level == "area":
        own_areas = None if brand else area_ids_in_scope(session, user)
        for key in [k for k in cells if _base(k[0]) == "area"]:
            cell = cells[key]
            if (own_areas is not None and key[1] not in own_areas) or (
                area_level is not None and cell.get("area_level") != area_level
            ):
                cell["_hide"] = True
    if brand:
        hide = {key for key, cell in cells.items() if cell.get("_hide")}
        cells = privacy.protect(
            cells, groups, min_children=table.min_children, min_households=table.min_households
        )
        for key in hide:
            cells[key]["_hide"] = True
    if wanted:
        table.total = cells.get(("total" + wanted, None)) or privacy.publish(
            _identity("total", None), privacy.REASON_CHILDREN.format(n=table.min_children), 0, 0
        )
    else:
        table.total = cells.pop(("total", None))
    rows = [c for (kind, _id), c in cells.items() if kind == level + wanted and not c.get("_hide")]
    for row in rows + [table.total]:
        for key in [k for k in row if k.startswith("_")]:
            del row[key]
    table.rows = sorted(rows, key=_sort_key)
    return table


# --- requests and answers -----------------------------------------------------------------------


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

    def table(self, session: Session, user: User) -> HotspotTable:
        """The hotspot table this request asks ``user`` for."""
        return hotspot_table(
            session,
            user,
            self.level,
            end=self.end,
            months=self.months,
            area_level=self.area_level,
            tier=self.tier,
            supplier_id=self.supplier_id,
        )

    @property
    def filename(self) -> str:
        """A file name (without extension) saying what the export holds."""
        return f"clms-hotspots-{self.level}-{self.end.isoformat()}-{self.months}m"


def parse_request(session: Session, user: User, args, today: dt.date) -> HotspotRequest:
    """The request of query parameters ``level`` (required: village, area, supplier, tier),
    ``end`` (YYYY-MM-DD, default today), ``months`` (1-120, default 12), ``area_level`` (a level
    of the stored areas), ``tier`` (1, 2, ...), ``supplier`` (a code) and ``format`` (json, csv,
    geojson; geojson for villages and areas only).

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
    end = today
    if text("end") is not None:
        try:
            end = dt.date.fromisoformat(text("end"))
        except ValueError:
            raise _invalid(
                "end", Msg("must be a date like 2025-01-31, not {value!r}", value=text("end"))
            ) from None
    months = 12
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
    return HotspotRequest(level, end, months, area_level, tier, supplier_id, fmt)


def table_records(table: HotspotTable) -> list[list]:
    """The rows of the CSV export (:data:`CSV_COLUMNS`): the cells, then the scope total."""
    return [[row.get(c) for c in CSV_COLUMNS] for row in [*table.rows, table.total]]


def table_csv(table: HotspotTable) -> bytes:
    """The table as CSV (UTF-8 with a byte-order mark); a brand's passes the privacy check."""
    records = [dict(zip(CSV_COLUMNS, r, strict=True)) for r in table_records(table)]
    _check(table, [{k: v for k, v in r.items() if v is not None} for r in records])
    return b"".join(csv_chunks(CSV_COLUMNS, table_records(table)))


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


def _invalid(parameter: str, detail: Msg):
    return problem("request.invalid_parameter", parameter=parameter, detail=detail)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` out of ``n`` (None when ``n`` is 0).

    >>> [round(v, 4) for v in wilson_interval(3, 10)]
    [0.1078, 0.6032]
    """
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


# --- SQL ---------------------------------------------------------------------------------------


def _aggregate(session, period: Period, scope, kinds, brand_ids, modes) -> list:
    """Rows ``(kind, cell_id, window, counts...)`` for the cells of ``kinds`` and the total, in
    one query: the latest classification of each child in each window is ranked once (a common
    table expression the databases materialise) and grouped several ways.

    ``scope``: the visits that may count. ``modes``: ``[(suffix, by_tier, kept)]``, one set of
    cells for each: ``kept`` (None, or the supplier ids, a list or a select) keeps the children
    whose latest visit is of those suppliers; the kinds of the cells get ``suffix``, and with
    ``by_tier`` each cell is split by the tier of the latest visit's supplier (``village@2``).
    """
    windows = union_all(
        *(
            select(
                literal(key).label("k"),
                literal(_midnight(start), UTCDateTime()).label("s"),
                literal(_midnight(stop), UTCDateTime()).label("e"),
            )
            for key, start, stop in (
                ("cur", period.start, period.end + dt.timedelta(days=1)),
                ("prev", period.previous_start, period.start),
            )
        )
    ).cte("hotspot_windows")
    partition = [windows.c.k, ChildVisit.child_id]
    order = (Visit.visited_at.desc(), Visit.id.desc(), ChildVisit.id.desc())
    in_labour = case((Classification.category.in_(CHILD_LABOUR), 1), else_=0)
    ranked = (
        current_classifications_in_windows(
            select(
                windows.c.k.label("k"),
                windows.c.e.label("e"),
                ChildVisit.child_id.label("child_id"),
                Visit.household_id.label("household_id"),
                Visit.village_id.label("village_id"),
                Visit.supplier_id.label("supplier_id"),
                Classification.category.label("category"),
                # the same partition and order for both (the whole partition as the frame of
                # the first): the databases sort the rows once, not twice
                func.max(in_labour)
                .over(partition_by=partition, order_by=order, rows=(None, None))
                .label("identified"),
                func.row_number().over(partition_by=partition, order_by=order).label("rn"),
            ),
            windows,
        )
        .where(scope)
        .subquery("hotspot_ranked")
    )
    first = first_remediation(session.get_bind().dialect.name)
    latest = (
        select(
            ranked.c.k,
            ranked.c.child_id,
            ranked.c.household_id,
            ranked.c.village_id,
            ranked.c.supplier_id,
            ranked.c.category,
            ranked.c.identified,
            case((and_(ranked.c.identified == 1, first.c.first_at < ranked.c.e), 1), else_=0).label(
                "remediated"
            ),
        )
        .select_from(ranked)
        .outerjoin(first, first.c.child_id == ranked.c.child_id)
        .where(ranked.c.rn == 1)
        .cte("hotspot_latest")
    )

    def figures(source):
        c = source.c
        return [
            func.count().label("children"),
            func.count(distinct(c.household_id)).label("households"),
            func.sum(case((c.category.in_(CHILD_LABOUR), 1), else_=0)).label("child_labour"),
            func.sum(case((c.category == "hazardous", 1), else_=0)).label("hazardous"),
            func.sum(case((c.category == "worst_form", 1), else_=0)).label("worst_forms"),
            func.sum(c.identified).label("identified"),
            func.sum(c.remediated).label("remediated"),
        ]

    slicer = aliased(Supplier, name="slice_supplier")
    parts = []

    def part(kind: str, cell_id, stmt) -> None:
        """One grouping in every mode: ``stmt`` selects from ``latest`` (and what it joins);
        ``cell_id`` None for the total."""
        for suffix, by_tier, kept in modes:
            mode = stmt
            if kept is not None:
                mode = mode.where(latest.c.supplier_id.in_(kept))
            if by_tier:
                mode = mode.join(slicer, slicer.id == latest.c.supplier_id).group_by(slicer.tier)
            mode = mode.add_columns(
                literal(kind + suffix).label("kind"),
                # typed NULLs: PostgreSQL settles a UNION's column types part by part
                (cast(null(), Integer) if cell_id is None else cell_id).label("cell_id"),
                (slicer.tier if by_tier else cast(null(), Integer)).label("slice"),
                latest.c.k,
                *figures(latest),
            ).group_by(latest.c.k)
            if cell_id is not None:
                mode = mode.group_by(cell_id)
            parts.append(mode)

    part("total", None, select().select_from(latest))
    if "village" in kinds:
        part(
            "village",
            latest.c.village_id,
            select().select_from(latest).where(latest.c.village_id.is_not(None)),
        )
    if "tier" in kinds:
        part(
            "tier",
            Supplier.tier,
            select().select_from(latest).join(Supplier, Supplier.id == latest.c.supplier_id),
        )
    if "area" in kinds:
        # every area above a village: a closure (area, ancestor) built by a recursive CTE
        closure = select(Area.id.label("area_id"), Area.id.label("ancestor_id")).cte(
            "area_closure", recursive=True
        )
        closure = closure.union_all(
            select(closure.c.area_id, Area.parent_id)
            .join(Area, Area.id == closure.c.ancestor_id)
            .where(Area.parent_id.is_not(None))
        )
        part(
            "area",
            closure.c.ancestor_id,
            select()
            .select_from(latest)
            .join(Village, Village.id == latest.c.village_id)
            .join(closure, closure.c.area_id == Village.area_id),
        )
    if "supplier" in kinds:
        # every supplier whose sub-chain holds the visit's supplier: (root, member) pairs, UNION
        # so that a supplier reached by two paths counts once
        roots = select(Supplier.id.label("root"), Supplier.id.label("member"))
        if brand_ids is not None:
            roots = roots.where(Supplier.id.in_(brand_ids))
        chain = roots.cte("supplier_chain", recursive=True)
        chain = chain.union(
            select(chain.c.root, SupplierLink.seller_id).join(
                SupplierLink, SupplierLink.buyer_id == chain.c.member
            )
        )
        part(
            "supplier",
            chain.c.root,
            select().select_from(latest).join(chain, chain.c.member == latest.c.supplier_id),
        )
    out = []
    for kind, cell_id, slice_, *rest in session.execute(union_all(*parts)):
        if _base(kind) == "total":
            cell_id = None
        out.append((kind if slice_ is None else f"{kind}@{slice_}", cell_id, *rest))
    return out


def _cells(session, raw) -> dict:
    """``{(kind, id): row}``: identity (codes, names) and the current and previous counts."""
    counts: dict = {}
    for kind, cell_id, window, *values in raw:
        if _base(kind) != "total" and cell_id is None:
            continue
        cell = counts.setdefault((kind, cell_id), {})
        cell[window] = dict(
            zip(
                ("children", "households", "child_labour", "hazardous", "worst_forms"),
                (int(v or 0) for v in values[:5]),
                strict=True,
            )
        )
        cell[window]["identified"] = int(values[5] or 0)
        cell[window]["remediated"] = int(values[6] or 0)
    names = _names(session, counts)
    cells = {}
    for (kind, cell_id), windows in counts.items():
        if "cur" not in windows:
            continue  # nobody this period: no row (the previous figures alone say nothing)
        row = dict(names.get((_base(kind), cell_id)) or _identity(_base(kind), cell_id))
        row.update(windows["cur"])
        previous = windows.get("prev")
        row["_previous_children"] = previous["children"] if previous else 0
        row["_previous_households"] = previous["households"] if previous else 0
        row["_previous_child_labour"] = previous["child_labour"] if previous else 0
        cells[(kind, cell_id)] = row
    cells.setdefault(("total", None), {**_identity("total", None), **_empty_counts()})
    return cells


def _names(session, counts) -> dict:
    """Identity rows of the cells named in ``counts``, read in one query per kind."""
    out = {}
    ids = {kind: sorted({i for k, i in counts if _base(k) == kind}) for kind in LEVELS}
    if ids["village"]:
        for vid, code, name, area_code in session.execute(
            select(Village.id, Village.code, Village.name, Area.code)
            .join(Area, Area.id == Village.area_id)
            .where(Village.id.in_(ids["village"]))
        ):
            out[("village", vid)] = {
                "level": "village",
                "code": code,
                "name": name,
                "area_code": area_code,
            }
    if ids["area"]:
        for aid, code, name, area_level, parent_id in session.execute(
            select(Area.id, Area.code, Area.name, Area.level, Area.parent_id).where(
                Area.id.in_(ids["area"])
            )
        ):
            out[("area", aid)] = {
                "level": "area",
                "code": code,
                "name": name,
                "area_level": area_level,
                "_parent_id": parent_id,
            }
    if ids["supplier"]:
        for sid, code, name, supplier_tier in session.execute(
            select(Supplier.id, Supplier.code, Supplier.name, Supplier.tier).where(
                Supplier.id.in_(ids["supplier"])
            )
        ):
            out[("supplier", sid)] = {
                "level": "supplier",
                "code": code,
                "name": name,
                "tier": supplier_tier,
            }
    for t in ids["tier"]:
        out[("tier", t)] = {"level": "tier", "code": str(t), "name": str(t), "tier": t}
    return out


def _groups(session, cells: dict, brand_id: int) -> list[tuple]:
    """The published totals of a brand's table and the cells that add up to each:
    ``[(total key, [member keys]), ...]``: an area over its villages and the areas directly
    below it, the scope total over the top areas, over the tiers and over the brand's direct
    suppliers, a supplier over the suppliers it buys from."""
    from clms.models import BrandSupplier

    groups: dict = {}
    village_area = dict(
        session.execute(
            select(Village.id, Village.area_id).where(
                Village.id.in_(sorted(i for k, i in cells if k == "village"))
            )
        ).all()
    )
    for (kind, cell_id), row in cells.items():
        if kind == "village":
            parent = ("area", village_area.get(cell_id))
            groups.setdefault(parent, []).append((kind, cell_id))
        elif kind == "area":
            parent_id = row.get("_parent_id")
            parent = ("area", parent_id) if parent_id is not None else ("total", None)
            groups.setdefault(parent, []).append((kind, cell_id))
    out = [(parent, members) for parent, members in groups.items() if parent in cells]
    tiers = [key for key in cells if key[0] == "tier"]
    if tiers:
        out.append((("total", None), tiers))
    supplier_ids = sorted(i for k, i in cells if k == "supplier")
    if supplier_ids:
        sellers: dict = {}
        for buyer, seller in session.execute(
            select(SupplierLink.buyer_id, SupplierLink.seller_id).where(
                SupplierLink.buyer_id.in_(supplier_ids)
            )
        ):
            if ("supplier", seller) in cells:
                sellers.setdefault(("supplier", buyer), []).append(("supplier", seller))
        out.extend(sellers.items())
        direct = session.scalars(
            select(BrandSupplier.supplier_id).where(BrandSupplier.brand_id == brand_id)
        )
        members = [("supplier", i) for i in direct if ("supplier", i) in cells]
        if members:
            out.append((("total", None), members))
    return out


def _sliced_groups(session, cells: dict, brand_id: int) -> list[tuple]:
    """The groups of a brand's filtered table: the unfiltered cells (kind ``village``) and the
    filtered ones (``village@2`` for tier 2, ``village@x`` for a supplier's sub-chain) each with
    their own hierarchy (:func:`_groups`), plus one group per unfiltered cell over its filtered
    parts. For a tier, every tier's part: they add up to the cell, so no layer can be subtracted
    from the others and the whole; for a supplier, its part alone, the rest being an unpublished
    residual (protected when small)."""
    suffixes = sorted({k[len(_base(k)) :] for k, _i in cells})
    groups = []
    for suffix in suffixes:
        part = {(_base(k), i): c for (k, i), c in cells.items() if k[len(_base(k)) :] == suffix}
        for total, members in _groups(session, part, brand_id):
            groups.append(((total[0] + suffix, total[1]), [(m[0] + suffix, m[1]) for m in members]))
    for kind, cell_id in [k for k in cells if "@" not in k[0]]:
        members = [(kind + x, cell_id) for x in suffixes if x and (kind + x, cell_id) in cells]
        if members:
            groups.append(((kind, cell_id), members))
    return groups


def _base(kind: str) -> str:
    """The kind of a cell without its slice (``village@2`` -> ``village``)."""
    return kind.split("@", 1)[0]


def _finish(cell: dict) -> dict:
    """Add the ratios to a cell's counts, in place (previous figures only when the previous
    period had children)."""
    children = cell["children"]
    cell["prevalence"] = _share(cell["child_labour"], children)
    interval = wilson_interval(cell["child_labour"], children)
    cell["prevalence_low"] = round(interval[0], 4) if interval else None
    cell["prevalence_high"] = round(interval[1], 4) if interval else None
    previous = _share(cell.get("_previous_child_labour", 0), cell.get("_previous_children", 0))
    cell["previous_prevalence"] = previous
    cell["change"] = (
        None
        if previous is None or cell["prevalence"] is None
        else round(100 * (cell["prevalence"] - previous), 1)
    )
    cell["remediation_coverage"] = _share(cell.get("remediated", 0), cell["identified"])
    cell.pop("remediated", None)
    return cell


def _configured_thresholds() -> tuple[int | None, int | None]:
    """The application's ``PRIVACY_MIN_CHILDREN`` and ``PRIVACY_MIN_HOUSEHOLDS`` (None outside
    an application, where the defaults of :mod:`geo.privacy` hold)."""
    from flask import current_app, has_app_context

    if not has_app_context():
        return None, None
    config = current_app.config
    return config.get("PRIVACY_MIN_CHILDREN"), config.get("PRIVACY_MIN_HOUSEHOLDS")


def _identity(kind: str, cell_id) -> dict:
    return {"level": kind, "code": None if cell_id is None else str(cell_id), "name": None}


def _empty_counts() -> dict:
    return {name: 0 for name in COUNTS} | {"remediated": 0}


def _empty_figures() -> dict:
    return _finish(_empty_counts())


def _share(numerator, denominator) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _sort_key(row: dict):
    return (str(row.get("area_code") or ""), str(row.get("code") or ""))


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` months earlier (the month's last day when it has fewer days)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


__all__ = [
    "CSV_COLUMNS",
    "FIGURES",
    "FORMATS",
    "LEVELS",
    "HotspotRequest",
    "HotspotTable",
    "Period",
    "hotspot_table",
    "parse_request",
    "table_csv",
    "table_geojson",
    "table_json",
    "table_records",
    "wilson_interval",
]
