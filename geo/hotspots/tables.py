"""The hotspot tables a caller may see: :func:`hotspot_tables` (several tables from one
aggregation), :func:`hotspot_table` (one of them); a brand's come from the release of its period
(:func:`released_tables`), one of the periods it may ask for (:func:`brand_period`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.errors import problem
from clms.i18n import N_, Msg
from clms.models import Supplier, User, Visit
from clms.scope import area_ids_in_scope, village_scope_condition
from clms.supply.operations import subchain_ids
from geo.hotspots.aggregate import _aggregate, _cells
from geo.hotspots.figures import (
    LEVELS,
    HotspotTable,
    HotspotTables,
    _base,
    _empty_counts,
    _finish,
    _identity,
)
from geo.hotspots.gate import Chain, gate_release
from geo.hotspots.releases import gated, release
from geo.hotspots.settings import HotspotSettings
from geo.periods import MAX_MONTHS, Period


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
    settings: HotspotSettings,
) -> HotspotTable:
    """The hotspot figures of ``level`` (one of :data:`LEVELS`) that ``user`` may see.

    ``end`` (default today, UTC) and ``months`` (default 12) set the period (a brand's: one of
    the reporting grid's, :func:`brand_period`); ``area_level`` keeps only the
    areas of that level (``level="area"``); ``tier`` and ``supplier_id`` keep the children whose
    latest visit is of that tier's suppliers or in that supplier's sub-chain (a map's layer).
    ``min_children``/``min_households`` (brands only) default to the thresholds of ``settings``
    (the application's ``PRIVACY_MIN_CHILDREN``/``_HOUSEHOLDS`` and ``BRAND_PERIOD_*``, read by
    the caller: :meth:`HotspotSettings.from_config`; the defaults when not given) and can only be
    raised.

    One table of :func:`hotspot_tables` (which computes several from one aggregation): a
    filtered table is protected with the unfiltered one (and, for a tier, every tier's).

    >>> table = hotspot_table(session, brand_user, "village")  # doctest: +SKIP
    >>> table.rows[0]  # doctest: +SKIP
    {'level': 'village', 'code': 'V1', 'name': 'Gnamagui', 'area_code': 'CI-D1',
     'suppressed': True, 'reason': 'fewer than 10 children monitored'}
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    options = {"end": end, "months": months, "today": today, "settings": settings}
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
    settings: HotspotSettings,
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
    ``months`` (default 12) months ending on ``end`` (default ``today``, UTC). ``settings``: the
    grid and the thresholds (:class:`HotspotSettings`, the defaults when not given).
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
        period = brand_period(end, months, today, settings=settings)
        return released_tables(
            session, user.brand_id, period, min_children, min_households, settings=settings
        )
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


def released_tables(
    session: Session,
    brand_id: int | None,
    period: Period,
    min_children: int | None = None,
    min_households: int | None = None,
    *,
    settings: HotspotSettings,
) -> HotspotTables:
    """A brand's tables of ``period``, from its release (:mod:`geo.hotspots.releases`: made the
    first time the period is asked for, never changed after) and the release of the period
    before (for the previous figures), through the privacy gate with the thresholds in force
    (those of ``settings``, raised by ``min_children``/``min_households``)."""
    thresholds = settings.thresholds(min_children, min_households)
    if brand_id is None:  # a brand user without a brand: nothing at all
        tables = gate_release(Chain(), {("total", None): {**_identity("total", None),
                              **_empty_counts()}}, {}, None, period, thresholds)  # fmt: skip
        return tables
    previous = Period.ending(period.previous_end, period.months)
    now = release(session, brand_id, period)
    before = release(session, brand_id, previous)
    return gated(now, before, thresholds)


def brand_period(
    end: dt.date | None,
    months: int | None,
    today: dt.date,
    *,
    settings: HotspotSettings,
) -> Period:
    """The period a brand asked for, one of the reporting grid's published periods
    (:class:`geo.periods.ReportingGrid`, the grid of ``settings``: the application's
    ``BRAND_PERIOD_*`` settings, the defaults when not given): the latest by default. Any other
    period is refused (400 ``hotspots.period_not_offered``, saying which periods are offered),
    never replaced by another: the figures of periods that overlap could be subtracted from each
    other."""
    return settings.grid.resolve(end, months, today)


def offered_periods(today: dt.date, *, settings: HotspotSettings) -> list[Period]:
    """The periods a brand may ask for on ``today``, latest first (:func:`brand_period`)."""
    return settings.grid.offered(today)


def _invalid(parameter: str, detail: Msg):
    return problem("request.invalid_parameter", parameter=parameter, detail=detail)
