"""The brand's hotspot map: the published figures of every layer and the geometries of the cells
and areas they name (:func:`brand_map_data`, drawn by :func:`geo.maps.build.build_brand_map`),
the suppliers a map offers a layer for (:func:`map_suppliers`), a fetched layer's figures
(:func:`layer_figures`) and the map as a standalone page (:func:`brand_map_html`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import folium
from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.i18n import Msg
from clms.models import Area, Supplier, SupplierVillage, User, Village
from clms.scope import village_scope_condition
from clms.supply.operations import brand_supplier_ids_query
from geo.hotspots.settings import HotspotSettings
from geo.maps.build import (
    LAYER_ALL,
    LAYER_AREAS,
    LAYER_SUPPLIER,
    LAYER_TIER,
    BrandLayer,
    BrandMapData,
    _layer_row,
    build_brand_map,
)

#: the tables a brand's hotspot page (its table) and map (villages, areas) read, from ONE
#: aggregation and one privacy gate (geo.hotspots.tables.hotspot_tables): the page and its map's
#: frame ask for the same, so both publish the very same cells
PAGE_LEVELS = ("village", "area", "tier", "supplier")


def brand_map_data(
    session: Session,
    user: User,
    *,
    end: dt.date | None = None,
    months: int | None = None,
    lazy: bool = False,
    max_supplier_layers: int = 60,
    progress=None,
    settings: HotspotSettings,
) -> BrandMapData:
    """The published figures for ``user`` (a brand, or an officer for the brand-style view of
    their areas) and the geometries of the cells and areas they name.

    Layers: every village (all suppliers), each tier, each supplier (the first
    ``max_supplier_layers`` by code, see :func:`map_suppliers`), and the areas of the level most
    of the villages sit in. All figures come from ONE aggregation,
    :func:`geo.hotspots.tables.hotspot_tables` (the tables of :data:`PAGE_LEVELS` through one
    privacy gate for a brand, each layer through a gate with the unfiltered cells it is part of).
    ``lazy``: only the tables of :data:`PAGE_LEVELS` (what the page beside the map shows too);
    the other layers carry the ``query`` the page fetches them with when chosen
    (``/map/layer.json``). ``progress(step, steps)``, if given, is called after each table (the
    command line's progress bar). ``settings``: the application's reporting grid and privacy
    thresholds (:class:`geo.hotspots.settings.HotspotSettings`; the defaults when not given).
    """
    suppliers = map_suppliers(session, user)[:max_supplier_layers]
    tiers = sorted({s.tier for s in suppliers})
    # ONE aggregation for every table of the map; for a brand the tables of the page beside it
    # (PAGE_LEVELS) pass one privacy gate, the same as the page's, so both suppress alike
    tables = _hotspot_tables(
        session,
        user,
        PAGE_LEVELS,
        end=end,
        months=months,
        tiers=bool(tiers) and not lazy,
        supplier_ids=() if lazy else [s.id for s in suppliers],
        settings=settings,
    )
    villages = tables.table("village")
    steps = 1 if lazy else 2 + len(tiers) + len(suppliers)
    done = 1
    if progress:
        progress(done, steps)

    def layer(label, kind, query) -> BrandLayer:
        nonlocal done
        if lazy:
            return BrandLayer(label, kind, None, query)
        table = tables.table(kind, **query)
        done += 1
        if progress:
            progress(done, steps)
        rows = table.rows
        if kind == "village" and user.role == "brand":
            rows = carry_suppression(rows, villages.rows)
        return BrandLayer(label, kind, _by_code(rows))

    codes = [r["code"] for r in villages.rows]
    cells: dict[str, tuple[str, str, bytes]] = {}
    area_ids = Counter()
    for chunk in _chunks(codes, 5000):
        for code, name, cell, area_id in session.execute(
            select(Village.code, Village.name, Village.cell, Village.area_id).where(
                Village.code.in_(chunk)
            )
        ):
            area_ids[area_id] += 1
            if cell is not None:
                cells[code] = (code, name, cell)
    data = BrandMapData(cells=[cells[c] for c in codes if c in cells], period=villages.period)
    data.layers.append(BrandLayer(Msg(LAYER_ALL), "village", _by_code(villages.rows)))
    for tier in tiers:
        data.layers.append(layer(Msg(LAYER_TIER, tier=tier), "village", {"tier": tier}))
    for supplier in suppliers:
        label = Msg(LAYER_SUPPLIER, supplier=supplier.name)
        data.layers.append(layer(label, "village", {"supplier_id": supplier.id}))

    # the areas: the level of most of the villages' own areas (a department, usually)
    if area_ids:
        levels = Counter()
        for aid, level in session.execute(
            select(Area.id, Area.level).where(Area.id.in_(list(area_ids)))
        ):
            levels[level] += area_ids[aid]
        level = levels.most_common(1)[0][0]
        data.areas = [
            (code, name, geom)
            for code, name, geom in session.execute(
                select(Area.code, Area.name, Area.geom)
                .where(Area.id.in_(list(area_ids)), Area.level == level, Area.geom.is_not(None))
                .order_by(Area.code)
            )
        ]
        if data.areas:
            data.layers.append(layer(Msg(LAYER_AREAS), "area", {"area_level": level}))
    if progress:
        progress(steps, steps)
    return data


def map_suppliers(session: Session, user: User) -> list[Supplier]:
    """The suppliers the map offers a layer for, by code: a brand's whole chain; for staff, the
    suppliers buying in the villages of their areas. No aggregation: a supplier without figures
    in the period still gets its (empty) layer."""
    if user.role == "brand":
        if user.brand_id is None:
            return []
        wanted = Supplier.id.in_(brand_supplier_ids_query(user.brand_id))
    else:
        scope = village_scope_condition(session, user, SupplierVillage.village_id)
        if scope is None:
            return []
        wanted = Supplier.id.in_(select(SupplierVillage.supplier_id).where(scope))
    return list(session.scalars(select(Supplier).where(wanted).order_by(Supplier.code)))


def carry_suppression(rows: list[dict], unfiltered: list[dict]) -> list[dict]:
    """``rows`` (a tier's or a supplier's villages) with every village suppressed in the
    ``unfiltered`` table (all suppliers) suppressed too.

    Each table passes the privacy gate on its own, so a village hidden among all suppliers (by
    secondary suppression, say) could show in a tier's table with the very same children; on one
    map, side by side, that would undo the suppression.
    """
    hidden = {row["code"] for row in unfiltered if row.get("suppressed")}
    return [
        {**_identity_of(row), "suppressed": True} if row["code"] in hidden else row for row in rows
    ]


def _identity_of(row: dict) -> dict:
    return {k: row[k] for k in ("level", "code", "name", "area_code") if k in row}


def layer_figures(rows: list[dict]) -> dict[str, list]:
    """A fetched layer's figures: ``{code: [*TOOLTIP_FIGURES]}``, ``[]`` for a suppressed cell
    (what ``/map/layer.json`` answers; only the figure keys of the rows are copied)."""
    return {row["code"]: _layer_row(0, row)[1:] for row in rows}


def brand_map(
    session: Session,
    user: User,
    *,
    end=None,
    months=None,
    lazy=False,
    settings: HotspotSettings,
    **options,
) -> folium.Map:
    """:func:`brand_map_data` then :func:`build_brand_map` (``options`` go to the latter; a
    ``lazy`` map needs their ``layer_url``)."""
    data = brand_map_data(session, user, end=end, months=months, lazy=lazy, settings=settings)
    return build_brand_map(data, **options)


def brand_map_html(session: Session, user: User, **options) -> str:
    """The brand map as one HTML page (Leaflet inlined unless ``assets`` says otherwise)."""
    return brand_map(session, user, **options).get_root().render()


def _hotspot_tables(session, user, levels, **options):
    """geo.hotspots.tables.hotspot_tables (a brand's: from its release, geo.hotspots.releases)."""
    from geo.hotspots.tables import hotspot_tables

    return hotspot_tables(session, user, levels, **options)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _by_code(rows: list[dict]) -> dict[str, dict]:
    return {row["code"]: row for row in rows}
