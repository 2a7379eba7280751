"""Hotspots: child-labour figures per village, administrative area, supplier and tier.

:func:`hotspot_tables` computes every table a page or a map needs from ONE aggregation (one
ranking of the children, one SQL statement) and, for a brand, protects them in one pass;
:func:`hotspot_table` (one table of it) is what an API answer or an export calls.
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
    A brand's layers pass the same gate as every unfiltered table (:func:`_protect_brand`), so
    that no layer of a map can be subtracted from the others or from the whole.

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
rows never reach Python. Cost at 1,000,000 children (2 cores): the ranking of the children's
latest visits dominates (about 2 s on either database; SQLite ranks with ``GROUP BY``, PostgreSQL
with window functions), each grouping adds a fraction of a second; a page asks for one
aggregation, the standalone map with every layer for one as well.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from alerts.kpis import CHILD_LABOUR, current_classifications_in_windows, first_remediation
from clms.errors import problem
from clms.exports import csv_chunks
from clms.i18n import N_, Msg
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
from clms.supply.operations import brand_supplier_ids, brand_supplier_ids_query, subchain_ids
from geo.periods import MAX_MONTHS, Period, PeriodNotOffered, ReportingGrid

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
#: z for a two-sided 95% interval
Z95 = 1.959963984540054


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
    months: int | None = None,
    area_level: str | None = None,
    tier: int | None = None,
    supplier_id: int | None = None,
    min_children: int | None = None,
    min_households: int | None = None,
    today: dt.date | None = None,
) -> HotspotTable:
    """The hotspot figures of ``level`` (one of :data:`LEVELS`) that ``user`` may see.

    ``end`` (default today, UTC) and ``months`` (default 12) set the period (a brand's: one of
    the reporting grid's, :func:`brand_period`); ``area_level`` keeps only the
    areas of that level (``level="area"``); ``tier`` and ``supplier_id`` keep the children whose
    latest visit is of that tier's suppliers or in that supplier's sub-chain (a map's layer).
    ``min_children``/``min_households`` (brands only) default to the application's
    ``PRIVACY_MIN_CHILDREN``/``_HOUSEHOLDS`` and can only be raised.

    One table of :func:`hotspot_tables` (which computes several from one aggregation): a
    filtered table is protected with the unfiltered one (and, for a tier, every tier's).

    >>> table = hotspot_table(session, brand_user, "village")  # doctest: +SKIP
    >>> table.rows[0]  # doctest: +SKIP
    {'level': 'village', 'code': 'V1', 'name': 'Gnamagui', 'area_code': 'CI-D1',
     'suppressed': True, 'reason': 'fewer than 10 children monitored'}
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    options = {"end": end, "months": months, "today": today}
    options.update(min_children=min_children, min_households=min_households)
    if tier is not None and supplier_id is not None:
        # both filters: one filtered part ("@x"), the supplier's sub-chain within the tier
        kept = sorted(subchain_ids(session, [supplier_id]))
        kept = select(Supplier.id).where(Supplier.tier == tier, Supplier.id.in_(kept))
        tables = hotspot_tables(
            session, user, (), layer_levels=(level,), _filtered=kept.correlate(None), **options
        )
        return tables.table(level, area_level=area_level, _suffix="@x")
    tables = hotspot_tables(
        session,
        user,
        () if (tier is not None or supplier_id is not None) else (level,),
        layer_levels=(level,),
        tiers=tier is not None,
        supplier_ids=() if supplier_id is None else (supplier_id,),
        **options,
    )
    return tables.table(level, area_level=area_level, tier=tier, supplier_id=supplier_id)


@dataclass
class HotspotTables:
    """The tables of one aggregation (:func:`hotspot_tables`): ``cells`` ``{(kind, id): row}``,
    already protected for a brand (one privacy gate over all of them); :meth:`table` picks one."""

    period: Period
    brand: bool
    min_children: int
    min_households: int
    cells: dict
    levels: tuple
    layer_levels: tuple
    tiers: bool
    supplier_ids: tuple
    #: for a brand, when the figures were released (geo.hotspot_releases); None: just now
    computed_at: dt.datetime | None = None

    def table(
        self,
        level: str,
        *,
        area_level: str | None = None,
        tier: int | None = None,
        supplier_id: int | None = None,
        _suffix: str | None = None,
    ) -> HotspotTable:
        """The table of ``level`` (for a tier's or a supplier's layer: ``tier`` or
        ``supplier_id``, among those the aggregation was asked for), the areas only of
        ``area_level`` if given."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        if tier is not None and supplier_id is not None:
            raise ValueError("a table of one tier or of one supplier, not both")
        wanted = "" if _suffix is None else _suffix
        if tier is not None:
            if not self.tiers or level not in self.layer_levels:
                raise ValueError(f"no tier layers of {level!r} in this aggregation")
            wanted = f"@{tier}"
        elif supplier_id is not None:
            if supplier_id not in self.supplier_ids or level not in self.layer_levels:
                raise ValueError(f"no layer of supplier {supplier_id} in this aggregation")
            wanted = f"@s{supplier_id}"
        elif _suffix is None and level not in self.levels:
            raise ValueError(f"no {level!r} table in this aggregation")
        from geo import privacy

        table = HotspotTable(
            level,
            self.period,
            brand=self.brand,
            min_children=self.min_children,
            min_households=self.min_households,
        )
        total = self.cells.get(("total" + wanted, None))
        if total is None:
            # nobody in this layer: an empty total, suppressed for a brand
            empty = {**_identity("total", None), **_empty_figures()}
            total = (
                privacy.publish(empty, _reason_empty(self.min_children), 0, 0)
                if self.brand
                else empty
            )
        table.total = _public(total)
        rows = [
            _public(cell)
            for (kind, _id), cell in self.cells.items()
            if kind == level + wanted
            and not cell.get("_hide")
            and (level != "area" or area_level is None or cell.get("_area_level") == area_level)
        ]
        table.rows = sorted(rows, key=_sort_key)
        return table


def hotspot_tables(
    session: Session,
    user: User,
    levels=LEVELS,
    *,
    end: dt.date | None = None,
    months: int | None = None,
    layer_levels=("village",),
    tiers: bool = False,
    supplier_ids=(),
    min_children: int | None = None,
    min_households: int | None = None,
    today: dt.date | None = None,
    _filtered=None,
) -> HotspotTables:
    """Several hotspot tables from ONE aggregation (one ranking of the children, one SQL
    statement): the tables of ``levels`` and the layers of ``layer_levels``: with ``tiers`` each
    tier's (the children whose latest visit is of that tier), and each of ``supplier_ids`` (the
    children whose latest visit is in that supplier's sub-chain). What a page or a map needs, at
    about the cost of one table.

    For a brand the unfiltered cells of every level are always computed, with each village's part
    of each supplier, and everything passes ONE privacy gate (:func:`_protect_brand`): a cell is
    suppressed alike in every table and every request, and no layer can be subtracted from the
    others or the whole. :meth:`HotspotTables.table` returns one table; :func:`hotspot_table` is
    one table of this.

    The period: for a brand, one of the reporting grid's published periods
    (:func:`brand_period`; the latest by default, anything else refused), whose previous
    figures are those the brand sees for the previous period of the grid; for anyone else the
    ``months`` (default 12) months ending on ``end`` (default ``today``, UTC).
    """
    levels = tuple(levels)
    layer_levels = tuple(layer_levels)
    supplier_ids = tuple(sorted(set(supplier_ids)))
    for level in (*levels, *layer_levels):
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    today = today or dt.datetime.now(dt.UTC).date()
    if user.role == "brand":
        if _filtered is not None:
            raise _invalid("supplier", Msg(BRAND_ONE_FILTER))
        period = brand_period(end, months, today)
        return released_tables(session, user.brand_id, period, min_children, min_households)
    months = 12 if months is None else months
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be 1 to {MAX_MONTHS}, not {months!r}")
    period = Period.ending(end or today, months)
    scope = village_scope_condition(session, user, Visit.village_id)
    layered = tiers or supplier_ids or _filtered is not None
    result = HotspotTables(
        period, False, 0, 0, {}, levels, layer_levels if layered else (), tiers, supplier_ids
    )
    if scope is None:
        cells = {("total", None): {**_identity("total", None), **_empty_counts()}}
    else:
        base, sliced = levels, layer_levels if layered else ()
        modes = [("", None, None, base)] if base or not layered else []
        if tiers:
            modes.append(("@", "tier", None, sliced))
        if supplier_ids:
            modes.append(("@s", "supplier", list(supplier_ids), sliced))
        if _filtered is not None:
            modes.append(("@x", None, _filtered, sliced))
        cells = _cells(session, _aggregate(session, period, scope, None, modes))
    for cell in cells.values():
        _finish(cell)
    # the areas outside a staff member's own areas are read (they hold the villages) but not shown
    if "area" in (*levels, *layer_levels):
        own_areas = area_ids_in_scope(session, user)
        for key in [k for k in cells if _base(k[0]) == "area"]:
            if key[1] not in own_areas:
                cells[key]["_hide"] = True
    area_levels = {key: cell.get("area_level") for key, cell in cells.items()}
    for key, cell in cells.items():
        cell["_area_level"] = area_levels.get(key, area_levels.get((_base(key[0]), key[1])))
    result.cells = cells
    return result


#: why a brand may not filter by a tier and a supplier at once
BRAND_ONE_FILTER = N_(
    "cannot be combined with tier for a brand: ask for the supplier's layer, or the tier's"
)


@dataclass
class Chain:
    """What a brand's privacy gate needs besides the figures, as they were when the figures were
    released: the brand's suppliers, the tier of each, who buys from whom among them, and the
    area each village lies in."""

    brand_ids: list[int] = field(default_factory=list)
    tiers: dict[int, int] = field(default_factory=dict)
    sellers: dict[int, list[int]] = field(default_factory=dict)
    village_area: dict[int, int] = field(default_factory=dict)


def release_inputs(session: Session, brand_id: int, period: Period) -> tuple[Chain, dict, dict]:
    """What a brand's period is made of, before the privacy gate: ``(chain, cells, parts)`` -
    the cells of every level and every layer (each tier's, each supplier's sub-chain, at every
    level) and each village's part of each supplier, aggregated now over the brand's chain as it
    is now (:mod:`geo.hotspot_releases` keeps them, once)."""
    brand_ids = sorted(brand_supplier_ids(session, brand_id))
    chain = Chain(brand_ids=brand_ids)
    if not brand_ids:
        return chain, {("total", None): {**_identity("total", None), **_empty_counts()}}, {}
    for supplier_id, tier in session.execute(
        select(Supplier.id, Supplier.tier).where(Supplier.id.in_(brand_ids))
    ):
        chain.tiers[supplier_id] = tier
    for buyer, seller in session.execute(
        select(SupplierLink.buyer_id, SupplierLink.seller_id).where(
            SupplierLink.buyer_id.in_(brand_ids), SupplierLink.seller_id.in_(brand_ids)
        )
    ):
        chain.sellers.setdefault(buyer, []).append(seller)
    modes = [
        ("", None, None, LEVELS),
        ("@", "tier", None, LEVELS),
        ("@s", "supplier", brand_ids, LEVELS),
        ("part", None, None, ()),
    ]
    raw = _aggregate(session, period, Visit.supplier_id.in_(brand_ids), brand_ids, modes)
    parts = {
        cell_id: tuple(int(v or 0) for v in values)  # PostgreSQL's sums come as Decimal
        for kind, cell_id, window, *values in raw
        if kind == "part" and window == "cur"
    }
    cells = _cells(session, [row for row in raw if row[0] != "part"])
    for cell in cells.values():
        _finish(cell)
    villages = sorted({i for (kind, i) in cells if kind == "village"} | {v for v, _s in parts})
    for chunk in range(0, len(villages), 5000):
        chain.village_area.update(
            session.execute(
                select(Village.id, Village.area_id).where(
                    Village.id.in_([v for v in villages[chunk : chunk + 5000] if v is not None])
                )
            ).all()
        )
    return chain, cells, parts


def released_tables(
    session: Session,
    brand_id: int | None,
    period: Period,
    min_children: int | None = None,
    min_households: int | None = None,
) -> HotspotTables:
    """A brand's tables of ``period``, from its release (:mod:`geo.hotspot_releases`: made the
    first time the period is asked for, never changed after) and the release of the period
    before (for the previous figures), through the privacy gate with the thresholds in force."""
    from geo import privacy
    from geo.hotspot_releases import gated, release

    thresholds = privacy.thresholds(*_configured_thresholds(), min_children, min_households)
    if brand_id is None:  # a brand user without a brand: nothing at all
        tables = gate_release(Chain(), {("total", None): {**_identity("total", None),
                              **_empty_counts()}}, {}, None, period, thresholds)  # fmt: skip
        return tables
    previous = Period.ending(period.previous_end, period.months)
    now = release(session, brand_id, period)
    before = release(session, brand_id, previous)
    return gated(now, before, thresholds)


def gate_release(
    chain: Chain, cells: dict, parts: dict, previous, period: Period, thresholds
) -> HotspotTables:
    """The tables a brand sees of ``period``: its released ``cells`` and ``parts`` through the
    privacy gate (:func:`_protect_brand`, every level and every layer at once), with the previous
    figures of ``previous`` (the release of the period before, ``(chain, cells, parts)``, gated
    the same way) where that period shows the cell. Pure: plain data in and out."""
    import copy

    brand_ids = tuple(chain.brand_ids)
    result = HotspotTables(period, True, *thresholds, {}, LEVELS, LEVELS, True, brand_ids)
    tiers = sorted(set(chain.tiers.values()))
    layers = [f"@s{i}" for i in brand_ids] + [f"@{t}" for t in tiers]
    scoped = bool(brand_ids)
    cells = copy.deepcopy(cells)
    area_levels = {key: cell.get("area_level") for key, cell in cells.items()}
    before = {}
    if scoped and previous is not None:
        p_chain, p_cells, p_parts = previous
        before = _protect_brand(
            p_chain, copy.deepcopy(p_cells), p_parts, result, bool(p_chain.brand_ids), layers
        )
    _carry_previous(cells, before)
    out = _protect_brand(chain, cells, parts, result, scoped, layers)
    for key, cell in out.items():
        cell["_area_level"] = area_levels.get(key, area_levels.get((_base(key[0]), key[1])))
    result.cells = out
    return result


def _protect_brand(
    chain: Chain,
    cells: dict,
    parts: dict,
    result: HotspotTables,
    scoped: bool,
    layers=(),
) -> dict:
    """A brand's cells through the privacy gate, ALL of them in one pass (the unfiltered cells
    of every level are always computed for a brand, so the outcome is the same whatever a
    request asks for):

    * villages, areas and the total: :func:`geo.privacy.protect` over the areas' hierarchy;
    * suppliers and tiers, each a sum of the suppliers' parts of the whole scope:
      :func:`geo.privacy.suppress_exact` (linear algebra over the brand's suppliers, with the
      total known), so that no supplier's own farmers and no tier can be worked out;
    * every layer (``village@2``, ``area@s12``, ``total@x``, ``supplier@2``...):
      :func:`geo.privacy.layer_places` over each village's part of each supplier (``parts``),
      all of a place's layers shown or none; a place hiding them is listed as hidden in every
      layer asked for (``layers``: their suffixes, ``@2``, ``@s12``, ``@x``), so that nobody
      learns which of its parts are empty.

    ``chain``: the brand's suppliers, their tiers and links, and the villages' areas, as the
    figures were released (a function of plain data: no database).
    """
    from geo import privacy as gate

    options = {"min_children": result.min_children, "min_households": result.min_households}
    if not scoped:
        return gate.protect(cells, [], **options)
    unfiltered = {k: c for k, c in cells.items() if k[0] in (*LEVELS, "total")}
    geo_cells = {k: c for k, c in unfiltered.items() if k[0] in ("village", "area", "total")}
    out = gate.protect(geo_cells, _groups(geo_cells, chain.village_area), **options)
    hidden_places = {k for k, row in out.items() if row.get("suppressed")}
    # suppliers and tiers
    tiers = dict(chain.tiers)
    chains = {s: _reach(s, chain.sellers) for s in tiers}
    root_parts: dict = {}
    place_parts: dict = {}
    root = ("total", None)
    for (village_id, supplier_id), values in parts.items():
        children, households = int(values[0] or 0), int(values[1] or 0)
        c, h = root_parts.get(supplier_id, (0, 0))
        root_parts[supplier_id] = (c + children, h + households)
        place = root if village_id is None else ("village", village_id)
        place_parts[(place, supplier_id)] = (children, households)
    sums = {("supplier", s): chains[s] for s in tiers}
    for s, t in tiers.items():
        sums.setdefault(("tier", t), set()).add(s)
    total_known = root in out and not out[root].get("suppressed")
    hidden_sums = gate.suppress_exact(
        sums, root_parts, [], known=[set(tiers)] if total_known else [], **options
    )
    primary = gate.primary_reasons(unfiltered, result.min_children, result.min_households)
    for key in sums:
        if key in unfiltered:
            reason = (primary.get(key) or gate.REASON_SECONDARY) if key in hidden_sums else None
            out[key] = gate.publish(unfiltered[key], reason, **options)
    # the layers
    village_area = chain.village_area
    parents = {root: None}
    for kind, cell_id in geo_cells:
        if kind == "village":
            area = village_area.get(cell_id)
            parents[(kind, cell_id)] = ("area", area) if ("area", area) in geo_cells else root
        elif kind == "area":
            parent = geo_cells[(kind, cell_id)].get("_parent_id")
            parents[(kind, cell_id)] = ("area", parent) if ("area", parent) in geo_cells else root
    shown_sums = {k for k in sums if k not in hidden_sums}
    pieces = {
        s: tuple(sorted((str(k[0]), k[1]) for k in shown_sums if s in sums[k])) for s in tiers
    }
    places, whole = gate.layer_places(
        parents, place_parts, hidden_places, root_pieces=pieces, **options
    )
    suffixes = sorted(({k[0][len(_base(k[0])) :] for k in cells} | set(layers)) - {""})
    layer_kinds = {k for level in result.layer_levels for k in _kinds(level, True)}
    for key, cell in cells.items():
        kind = key[0]
        suffix = kind[len(_base(kind)) :]
        if not suffix:
            continue
        base = (_base(kind), key[1])
        if base[0] == "total":
            if suffix[1:].isdigit():
                shown = ("tier", int(suffix[1:])) in shown_sums
            elif suffix.startswith("@s"):
                shown = ("supplier", int(suffix[2:])) in shown_sums
            else:
                shown = whole
        elif base[0] in ("village", "area"):
            shown = base in places
        else:
            shown = whole
        reason = None if shown else gate.REASON_LAYER
        small = gate.primary_reasons({key: cell}, result.min_children, result.min_households)
        out[key] = gate.publish(cell, small.get(key) or reason, **options)
    # a place hiding its layers: hidden in every layer, even one it has no child in
    for suffix in suffixes:
        for base, cell in unfiltered.items():
            key = (base[0] + suffix, base[1])
            if base[0] not in layer_kinds or key in out:
                continue
            if base in places or (base[0] in ("supplier", "tier") and whole):
                continue  # shown: no row is a true 0
            out[key] = gate.publish(cell, gate.REASON_LAYER, **options)
    for key in cells.keys() - out.keys():  # never published: a cell outside every gate
        out[key] = gate.publish(cells[key], _reason_empty(result.min_children), 0, 0)
    return out


def brand_period(end: dt.date | None, months: int | None, today: dt.date) -> Period:
    """The period a brand asked for, one of the reporting grid's published periods
    (:class:`geo.periods.ReportingGrid`, from the application's ``BRAND_PERIOD_*`` settings):
    the latest by default. Any other period is refused (400 ``hotspots.period_not_offered``,
    saying which periods are offered), never replaced by another: the figures of periods that
    overlap could be subtracted from each other."""
    grid = _configured_grid()
    try:
        return grid.resolve(end, months, today)
    except PeriodNotOffered as e:
        raise problem(
            "hotspots.period_not_offered",
            parameter="months" if months not in (None, grid.months) else "end",
            months=grid.months,
            grace=grid.grace_days,
            ends=", ".join(p.end.isoformat() for p in e.offered[:8])
            + (f", ... {e.offered[-1].end.isoformat()}" if len(e.offered) > 8 else ""),
            offered=[p.as_dict() for p in e.offered],
        ) from None


def offered_periods(today: dt.date) -> list[Period]:
    """The periods a brand may ask for on ``today``, latest first (:func:`brand_period`)."""
    return _configured_grid().offered(today)


def _carry_previous(cells: dict, before: dict) -> None:
    """Give a brand's cells the previous figures the brand sees: the prevalence of the same
    cell in the previous period as published there (``before``, through the gate), or nothing
    where that period hides it, in place."""
    for key, cell in cells.items():
        shown = before.get(key)
        if shown is None or shown.get("suppressed") or shown.get("prevalence") is None:
            cell["previous_prevalence"] = cell["change"] = None
            cell["_previous_hidden"] = True
            continue
        cell["previous_prevalence"] = shown["prevalence"]
        cell["change"] = (
            None
            if cell["prevalence"] is None
            else round(100 * (cell["prevalence"] - shown["prevalence"]), 1)
        )
        cell["_previous_hidden"] = False


def _reach(supplier, sellers: dict) -> set:
    """``supplier`` and every supplier it buys from, however far down (``sellers``: buyer to
    the suppliers it buys from)."""
    seen, stack = {supplier}, [supplier]
    while stack:
        for seller in sellers.get(stack.pop(), ()):
            if seller not in seen:
                seen.add(seller)
                stack.append(seller)
    return seen


def _kinds(level: str, brand: bool) -> tuple:
    """The kinds of cells a table of ``level`` is computed (and for a brand protected) with."""
    return HIERARCHIES[level] if brand else (level,)


def _public(cell: dict) -> dict:
    """A copy of a cell without its private keys (``_...``)."""
    return {k: v for k, v in cell.items() if not k.startswith("_")}


def _reason_empty(min_children: int) -> str:
    from geo import privacy

    return privacy.REASON_CHILDREN.format(n=min_children)


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
    geojson; geojson for villages and areas only). For a brand, ``end`` and ``months`` must name
    one of the reporting grid's published periods (default: the latest), see
    :func:`brand_period`.

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
        period = brand_period(end, months, today)  # one of the grid's periods, or a 400
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


def _aggregate(session, period: Period, scope, brand_ids, modes) -> list:
    """Rows ``(kind, cell_id, window, counts...)`` for the cells asked for and the totals, in
    one query: the latest classification of each child in each window is ranked once, summed
    per household and place (a common table expression the databases materialise, about a
    quarter of the children's rows) and grouped several ways.

    ``scope``: the visits that may count. ``modes``: ``[(suffix, slice_by, kept, kinds)]``, one
    set of cells for each, of the ``kinds`` (village, area, tier, supplier) and the total, whose
    kinds get ``suffix``: with ``slice_by`` None, ``kept`` (None, or the supplier ids, a list
    or a select) keeps the children whose latest visit is of those suppliers; with "tier" each
    cell is split by the tier of the latest visit's supplier (``village@2``); with "supplier"
    by each supplier of ``kept`` (a list of ids) whose sub-chain holds the latest visit's
    supplier (``village@s12``).
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
    dialect = session.get_bind().dialect.name
    in_labour = case((Classification.category.in_(CHILD_LABOUR), 1), else_=0)
    columns = [
        windows.c.k.label("k"),
        windows.c.e.label("e"),
        ChildVisit.child_id.label("child_id"),
        Visit.household_id.label("household_id"),
        Visit.village_id.label("village_id"),
        Visit.supplier_id.label("supplier_id"),
        Classification.category.label("category"),
    ]
    if dialect == "sqlite":
        # one row per child and window, GROUP BY instead of window functions (twice as fast in
        # SQLite): with exactly one max() aggregate, SQLite takes the other (bare) columns from
        # the row holding the maximum (https://sqlite.org/lang_select.html#bare_columns); the
        # key orders as (visited_at, visit id, child visit id) do (SQLite stores datetimes as
        # fixed-width text), so that row is the latest visit
        latest_key = Visit.visited_at.op("||", return_type=String)(
            func.printf("%020d%020d", Visit.id, ChildVisit.id)
        )
        ranked = (
            current_classifications_in_windows(
                select(
                    *columns,
                    case((func.sum(in_labour) > 0, 1), else_=0).label("identified"),
                    func.max(latest_key).label("latest_key"),
                    literal(1).label("rn"),
                ),
                windows,
            )
            .where(scope)
            .group_by(windows.c.k, ChildVisit.child_id)
            .subquery("hotspot_ranked")
        )
    else:
        partition = [windows.c.k, ChildVisit.child_id]
        order = (Visit.visited_at.desc(), Visit.id.desc(), ChildVisit.id.desc())
        ranked = (
            current_classifications_in_windows(
                select(
                    *columns,
                    # the same partition and order for both (the whole partition as the frame
                    # of the first): the databases sort the rows once, not twice
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
    first = first_remediation(dialect)
    # the first remediation only matters for the children identified in child labour
    latest = (
        select(
            ranked.c.k,
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
        .outerjoin(first, and_(ranked.c.identified == 1, first.c.child_id == ranked.c.child_id))
        .where(ranked.c.rn == 1)
        .subquery("hotspot_latest")
    )
    # one row per window, household and place (village, supplier): every grouping adds these up,
    # counting the distinct households, so the many groupings read a quarter of the rows
    where = (latest.c.k, latest.c.household_id, latest.c.village_id, latest.c.supplier_id)
    fine = (
        select(
            *where,
            func.count().label("children"),
            func.sum(case((latest.c.category.in_(CHILD_LABOUR), 1), else_=0)).label("child_labour"),
            func.sum(case((latest.c.category == "hazardous", 1), else_=0)).label("hazardous"),
            func.sum(case((latest.c.category == "worst_form", 1), else_=0)).label("worst_forms"),
            func.sum(latest.c.identified).label("identified"),
            func.sum(latest.c.remediated).label("remediated"),
        )
        .group_by(*where)
        .cte("hotspot_fine")
    )

    def figures(source):
        c = source.c
        return [
            func.sum(c.children).label("children"),
            func.count(distinct(c.household_id)).label("households"),
            func.sum(c.child_labour).label("child_labour"),
            func.sum(c.hazardous).label("hazardous"),
            func.sum(c.worst_forms).label("worst_forms"),
            func.sum(c.identified).label("identified"),
            func.sum(c.remediated).label("remediated"),
        ]

    slicer = aliased(Supplier, name="slice_supplier")
    parts = []
    ctes: dict = {}

    def chain_of(name: str, roots):
        """(root, member) pairs: every supplier whose sub-chain holds ``member`` (UNION, so
        that a supplier reached by two paths counts once)."""
        if name not in ctes:
            start = select(Supplier.id.label("root"), Supplier.id.label("member"))
            if roots is not None:
                start = start.where(Supplier.id.in_(roots))
            chain = start.cte(name, recursive=True)
            ctes[name] = chain.union(
                select(chain.c.root, SupplierLink.seller_id).join(
                    SupplierLink, SupplierLink.buyer_id == chain.c.member
                )
            )
        return ctes[name]

    def part(kind: str, cell_id, stmt, suffix, slice_by, kept) -> None:
        """One grouping: ``stmt`` selects from ``fine`` (and what it joins); ``cell_id`` None
        for the total."""
        slice_col = cast(null(), Integer)
        if slice_by == "tier":
            stmt = stmt.join(slicer, slicer.id == fine.c.supplier_id)
            slice_col = slicer.tier
        elif slice_by == "supplier":
            sliced = chain_of("slice_chain", kept)
            stmt = stmt.join(sliced, sliced.c.member == fine.c.supplier_id)
            slice_col = sliced.c.root
        elif kept is not None:
            stmt = stmt.where(fine.c.supplier_id.in_(kept))
        stmt = stmt.add_columns(
            literal(kind + suffix).label("kind"),
            # typed NULLs: PostgreSQL settles a UNION's column types part by part
            (cast(null(), Integer) if cell_id is None else cell_id).label("cell_id"),
            slice_col.label("slice"),
            fine.c.k,
            *figures(fine),
        ).group_by(fine.c.k)
        if slice_by is not None:
            stmt = stmt.group_by(slice_col)
        if cell_id is not None:
            stmt = stmt.group_by(cell_id)
        parts.append(stmt)

    closure = None
    for suffix, slice_by, kept, kinds in modes:
        if suffix == "part":
            # each village's (and no village's) children per supplier, in both windows: what
            # the layers of a brand's map add up (geo.privacy.layer_places)
            parts.append(
                select(
                    literal("part").label("kind"),
                    fine.c.village_id.label("cell_id"),
                    fine.c.supplier_id.label("slice"),
                    fine.c.k,
                    *figures(fine),
                ).group_by(fine.c.k, fine.c.village_id, fine.c.supplier_id)
            )
            continue
        args = (suffix, slice_by, kept)
        part("total", None, select().select_from(fine), *args)
        if "village" in kinds:
            part(
                "village",
                fine.c.village_id,
                select().select_from(fine).where(fine.c.village_id.is_not(None)),
                *args,
            )
        if "tier" in kinds:
            part(
                "tier",
                Supplier.tier,
                select().select_from(fine).join(Supplier, Supplier.id == fine.c.supplier_id),
                *args,
            )
        if "area" in kinds:
            # every area above a village: a closure (area, ancestor) built by a recursive CTE
            if closure is None:
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
                .select_from(fine)
                .join(Village, Village.id == fine.c.village_id)
                .join(closure, closure.c.area_id == Village.area_id),
                *args,
            )
        if "supplier" in kinds:
            # every supplier whose sub-chain holds the visit's supplier
            chain = chain_of("supplier_chain", brand_ids)
            part(
                "supplier",
                chain.c.root,
                select().select_from(fine).join(chain, chain.c.member == fine.c.supplier_id),
                *args,
            )
    out = []
    for kind, cell_id, slice_, *rest in session.execute(union_all(*parts)):
        if kind == "part":
            out.append((kind, (cell_id, slice_), *rest))
            continue
        if _base(kind) == "total":
            cell_id = None
        out.append((kind if slice_ is None else f"{kind}{slice_}", cell_id, *rest))
    return out


def _cells(session, raw, window: str = "cur") -> dict:
    """``{(kind, id): row}`` of ``window`` (``cur``, the period; ``prev``, the previous one):
    identity (codes, names) and the counts; for the period, the previous period's counts too."""
    counts: dict = {}
    for kind, cell_id, row_window, *values in raw:
        if _base(kind) != "total" and cell_id is None:
            continue
        cell = counts.setdefault((kind, cell_id), {})
        cell[row_window] = dict(
            zip(
                ("children", "households", "child_labour", "hazardous", "worst_forms"),
                (int(v or 0) for v in values[:5]),
                strict=True,
            )
        )
        cell[row_window]["identified"] = int(values[5] or 0)
        cell[row_window]["remediated"] = int(values[6] or 0)
    names = _names(session, counts)
    cells = {}
    for (kind, cell_id), windows in counts.items():
        if window not in windows:
            continue  # nobody this period: no row (the previous figures alone say nothing)
        row = dict(names.get((_base(kind), cell_id)) or _identity(_base(kind), cell_id))
        row.update(windows[window])
        previous = windows.get("prev") if window == "cur" else None
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


def _groups(cells: dict, village_area: dict) -> list[tuple]:
    """The published totals of a brand's places and the cells that add up to each:
    ``[(total key, [member keys]), ...]``: an area over its villages and the areas directly
    below it, the scope total over the top areas (the children no village holds are its
    residual). Suppliers and tiers are protected apart (:func:`_protect_brand`)."""
    groups: dict = {}
    for (kind, cell_id), row in cells.items():
        if kind == "village":
            parent = ("area", village_area.get(cell_id))
            groups.setdefault(parent, []).append((kind, cell_id))
        elif kind == "area":
            parent_id = row.get("_parent_id")
            parent = ("area", parent_id) if parent_id is not None else ("total", None)
            groups.setdefault(parent, []).append((kind, cell_id))
    return [(parent, members) for parent, members in groups.items() if parent in cells]


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


def _configured_grid() -> ReportingGrid:
    """The reporting grid of the application's ``BRAND_PERIOD_*`` settings (the defaults of
    :class:`geo.periods.ReportingGrid` outside an application)."""
    from flask import current_app, has_app_context

    return ReportingGrid.from_config(current_app.config if has_app_context() else {})


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
