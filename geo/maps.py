"""The maps: the officer's map of households and open alerts, and the brand's hotspot choropleth.

Two kinds of function, kept apart (house style, principle 1):

- *gathering* reads the database for one person: :func:`officer_map_data` (households and open
  alerts of the officer's areas, as plain rows) and :func:`brand_map_data` (the published hotspot
  figures from :func:`geo.hotspots.hotspot_table`, which for a brand has already been through the
  privacy gate, and the geometries of the villages and areas they name);
- *building* turns those plain data into a :class:`folium.Map` without touching the database:
  :func:`build_officer_map` and :func:`build_brand_map`. :func:`officer_map`, :func:`brand_map`
  and :func:`brand_map_html` do both.

No CDN: the maps load Leaflet (and Leaflet.markercluster for the officer map) either from the
application's own static files (``assets="/static/vendor/node_modules"``, what the pages use) or
inlined into the page (``assets="inline"``, the standalone export, which then works offline).
``./dev`` installs them with npm from ``clms/static/vendor/package-lock.json``. Folium's other
defaults (jQuery, Bootstrap, Font Awesome, awesome-markers) are not loaded: nothing here uses them.

What a brand's map holds: village cells and area polygons with their names and published figures,
nothing else; no point, no marker, no household, no child. The builder copies only the figure keys
of :data:`TOOLTIP_FIGURES` from the rows it is given, so even a row carrying more would not leak.

Size: each village geometry is written once (simplified, coordinates on a 1e-4 degree grid,
about 11 m, delta-encoded as integers), whatever the number of layers; each tier or supplier layer
adds only a table of figures keyed by the cell's index (about 50 bytes a cell it covers), and the
browser restyles the same polygons when another layer is chosen. So the page grows as
``villages x (vertices per cell) + (cells covered by all layers) x 50 bytes`` plus Leaflet itself
(150 kB when inlined): 2.2 MB and 0.5 s to build for 10,000 Voronoi cells with 14 layers (the
synthetic check of the test module). Time: all the figures of a map come from one hotspot
aggregation (:func:`geo.hotspots.hotspot_tables`), whose cost grows with the layers it slices;
the page therefore builds with ``lazy=True`` (the tables of :data:`PAGE_LEVELS`, which the page's
own table reads too) and fetches a tier's or a supplier's figures when they are chosen; the
standalone export reads them all.

Scripts and styles the map documents load: Leaflet 1.9.4 (BSD-2-Clause) and, on the officer map,
Leaflet.markercluster 1.5.3 (MIT), plus folium's inline scripts and styles; no other origin unless
a basemap URL is configured.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import folium
import numpy as np
import shapely
from branca.element import Element, MacroElement
from folium.map import Layer
from jinja2 import Template
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from clms.errors import Problem, problem
from clms.i18n import N_, Msg
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    SEVERITIES,
    Alert,
    Area,
    Household,
    Supplier,
    SupplierVillage,
    User,
    Village,
    Visit,
)
from clms.scope import descendant_area_ids, village_scope_condition
from clms.supply import brand_supplier_ids_query

#: where ``./dev`` installs Leaflet and its plugin (npm), inside the static folder
VENDOR = Path(__file__).resolve().parents[1] / "clms" / "static" / "vendor" / "node_modules"
LEAFLET_JS = "leaflet/dist/leaflet.js"
LEAFLET_CSS = "leaflet/dist/leaflet.css"
CLUSTER_JS = "leaflet.markercluster/dist/leaflet.markercluster.js"
CLUSTER_CSS = (
    "leaflet.markercluster/dist/MarkerCluster.css",
    "leaflet.markercluster/dist/MarkerCluster.Default.css",
)
#: the public data the places come from (shown in the map's attribution)
DATA_CREDIT = (
    "Boundaries: geoBoundaries (CC BY 4.0) · Places: Who's On First (CC BY), GeoNames (CC BY 4.0)"
)

#: the colour of an open alert by severity
SEVERITY_COLOURS = {"critical": "#67000d", "high": "#d7301f", "medium": "#fc8d59", "low": "#fdcc8a"}
#: the prevalence classes of the choropleth (share of children in child labour, lower bounds)
#: and their colours (a sequential yellow-orange-red scale, ColorBrewer YlOrRd 7)
PREVALENCE_BINS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30, 0.40)
PREVALENCE_COLOURS = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")
#: the figures a brand map shows in a tooltip, in the order of the layer tables
TOOLTIP_FIGURES = (
    "households",
    "children",
    "child_labour",
    "hazardous",
    "worst_forms",
    "prevalence",
    "prevalence_low",
    "prevalence_high",
    "change",
    "remediation_coverage",
)
#: the tables a brand's hotspot page (its table) and map (villages, areas) read, from ONE
#: aggregation and one privacy gate (geo.hotspots.hotspot_tables): the page and its map's frame
#: ask for the same, so both publish the very same cells
PAGE_LEVELS = ("village", "area", "tier", "supplier")
#: the coordinate grid of the brand map (1e-4 degree, about 11 m) and the simplification
GRID = 1e4
SIMPLIFY_DEGREES = 2e-4

#: the map's own words, translated with the reader's ``translate``
WORDS = {
    "legend": N_("Children in child labour"),
    "suppressed": N_("Not enough data"),
    "absent": N_("No households in this layer"),
    "loading": N_("Loading…"),
    "households": N_("Households"),
    "children": N_("Children monitored"),
    "child_labour": N_("In child labour"),
    "hazardous": N_("Hazardous work"),
    "worst_forms": N_("Worst forms"),
    "prevalence": N_("Prevalence"),
    "interval": N_("95% interval"),
    "change": N_("Change since the previous period"),
    "points": N_("points"),
    "coverage": N_("Remediation coverage"),
    "household": N_("Household"),
    "village": N_("Village"),
    "last_visit": N_("Last visit"),
    "open_alerts": N_("Open alerts"),
    "alert": N_("Alert"),
    "severity": N_("Severity"),
    "open_alert_page": N_("Open the alert"),
}
SEVERITY_WORDS = {
    "critical": N_("critical"),
    "high": N_("high"),
    "medium": N_("medium"),
    "low": N_("low"),
}
MAP_TITLE = N_("Hotspot map")
LAYER_ALL = N_("Villages: all suppliers")
LAYER_TIER = N_("Villages: tier {tier} suppliers")
LAYER_SUPPLIER = N_("Villages: {supplier}")
LAYER_AREAS = N_("Areas")
LAYER_HOUSEHOLDS = N_("Households")
LAYER_ALERTS = N_("Open alerts")


# --- the officer's map ---------------------------------------------------------------------------


@dataclass
class OfficerFilters:
    """The officer map's filters (the page's query string): codes, a severity and a period.

    >>> f = OfficerFilters.parse({"severity": "high", "from": "2026-01-01"}, dt.date(2026, 6, 1))
    >>> f.severity, f.date_from.isoformat(), f.date_to.isoformat()
    ('high', '2026-01-01', '2026-06-01')
    """

    date_from: dt.date
    date_to: dt.date
    area: str | None = None
    village: str | None = None
    supplier: str | None = None
    severity: str | None = None

    @classmethod
    def default(cls, today: dt.date) -> OfficerFilters:
        """The last twelve months, nothing else."""
        return cls(date_from=today - dt.timedelta(days=365), date_to=today)

    @classmethod
    def parse(cls, args, today: dt.date) -> OfficerFilters:
        """The filters from ``args`` (a mapping of text); raises ``request.invalid_parameter``
        naming the parameter for a date that is not one or a severity that does not exist."""
        default = cls.default(today)
        found = {}
        for name, fallback in (("from", default.date_from), ("to", default.date_to)):
            text = (args.get(name) or "").strip()
            try:
                found[name] = dt.date.fromisoformat(text) if text else fallback
            except ValueError:
                detail = Msg("is not a date (YYYY-MM-DD): {value}", value=text)
                raise _invalid(name, detail) from None
        if found["from"] > found["to"]:
            raise _invalid("from", Msg("is after the end of the period"))
        severity = args.get("severity") or None
        if severity is not None and severity not in SEVERITIES:
            raise _invalid(
                "severity", Msg("must be one of {choices}", choices=", ".join(SEVERITIES))
            )
        return cls(
            date_from=found["from"],
            date_to=found["to"],
            area=(args.get("area") or "").strip() or None,
            village=(args.get("village") or "").strip() or None,
            supplier=(args.get("supplier") or "").strip() or None,
            severity=severity,
        )

    def query(self) -> dict[str, str]:
        """The filters as a query string's parameters (the empty ones left out)."""
        out = {"from": self.date_from.isoformat(), "to": self.date_to.isoformat()}
        for name in ("area", "village", "supplier", "severity"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out


@dataclass
class OfficerMapData:
    """What the officer map shows, as plain rows.

    ``households``: ``[lat, lon, code, village name, last visit (ISO date or None), open alerts]``
    (the point is the latest GPS of a current visit, else the village's point; households with
    neither are left out and counted in ``without_point``). ``alerts``: ``[lat, lon, id,
    severity, category, household code or None, village name]``.
    """

    households: list[list] = field(default_factory=list)
    alerts: list[list] = field(default_factory=list)
    without_point: int = 0
    in_scope: bool = True


def officer_map_data(session: Session, user: User, filters: OfficerFilters) -> OfficerMapData:
    """The households and open alerts of ``user``'s areas that the filters keep.

    Households: those of the villages in scope (and of the area, village and supplier filtered)
    with a current visit in the period. Alerts: open (new or acknowledged) ones in scope, seen in
    the period, of the severity filtered. A handful of set-based queries whatever the size.
    Raises ``request.invalid_parameter`` for a code that names nothing.
    """
    scope = village_scope_condition(session, user, Village.id)
    if scope is None:
        return OfficerMapData(in_scope=False)
    start = dt.datetime.combine(filters.date_from, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    where = [scope]
    if filters.area:
        area_id = session.scalar(select(Area.id).where(Area.code == filters.area))
        if area_id is None:
            raise _invalid("area", Msg("names no known area ({code})", code=filters.area))
        where.append(Village.area_id.in_(sorted(descendant_area_ids(session, {area_id}))))
    if filters.village:
        where.append(Village.code == filters.village)
        if session.scalar(select(Village.id).where(Village.code == filters.village)) is None:
            raise _invalid("village", Msg("names no known village ({code})", code=filters.village))
    supplier_id = None
    if filters.supplier:
        supplier_id = session.scalar(select(Supplier.id).where(Supplier.code == filters.supplier))
        if supplier_id is None:
            raise _invalid(
                "supplier", Msg("names no known supplier ({code})", code=filters.supplier)
            )

    open_alerts = (
        select(Alert.household_id, func.count().label("n"))
        .where(Alert.status.in_(ACTIVE_ALERT_STATUSES), Alert.household_id.is_not(None))
        .group_by(Alert.household_id)
        .subquery()
    )
    # the latest current visit with a GPS point, per household (a window, not a query per row)
    gps = (
        select(
            Visit.household_id,
            Visit.lat,
            Visit.lon,
            func.row_number()
            .over(
                partition_by=Visit.household_id,
                order_by=(Visit.visited_at.desc(), Visit.id.desc()),
            )
            .label("rank"),
        )
        .where(
            Visit.current,
            # only the households of the villages in scope and filtered: the window ranks their
            # visits, not every visit of the country
            Visit.household_id.in_(
                select(Household.id).join(Village, Village.id == Household.village_id).where(*where)
            ),
            Visit.lat.is_not(None),
            Visit.lon.is_not(None),
        )
        .subquery()
    )
    visited = exists(
        select(Visit.id).where(
            Visit.household_id == Household.id,
            Visit.current,
            Visit.visited_at >= start,
            Visit.visited_at < end,
        )
    )
    household_where = [*where, visited]
    if supplier_id is not None:
        household_where.append(Household.supplier_id == supplier_id)
    rows = session.execute(
        select(
            Household.code,
            Village.name,
            Household.last_visit_at,
            func.coalesce(open_alerts.c.n, 0),
            gps.c.lat,
            gps.c.lon,
            Village.lat,
            Village.lon,
            Household.id,
        )
        .join(Village, Village.id == Household.village_id)
        .outerjoin(gps, and_(gps.c.household_id == Household.id, gps.c.rank == 1))
        .outerjoin(open_alerts, open_alerts.c.household_id == Household.id)
        .where(*household_where)
        .order_by(Household.code)
    ).all()
    if rows:  # households at their GPS points: a read of child-level data
        from clms.audit import record_read

        record_read(session, user, "map.households", "map", households=len(rows))
    data = OfficerMapData()
    points: dict[int, tuple[float, float]] = {}
    for code, village, last, n_alerts, glat, glon, vlat, vlon, hid in rows:
        lat, lon = (glat, glon) if glat is not None else (vlat, vlon)
        if lat is None or lon is None:
            data.without_point += 1
            continue
        points[hid] = (lat, lon)
        when = last.date().isoformat() if last is not None else None
        data.households.append([round(lat, 6), round(lon, 6), code, village, when, n_alerts])

    alert_where = [
        *where,
        Alert.status.in_(ACTIVE_ALERT_STATUSES),
        Alert.last_seen_at >= start,
        Alert.last_seen_at < end,
    ]
    if supplier_id is not None:
        alert_where.append(Alert.supplier_id == supplier_id)
    if filters.severity:
        alert_where.append(Alert.severity == filters.severity)
    alert_rows = session.execute(
        select(
            Alert.id,
            Alert.severity,
            Alert.category,
            Alert.household_id,
            Household.code,
            Village.name,
            Village.lat,
            Village.lon,
            gps.c.lat,
            gps.c.lon,
        )
        .join(Village, Village.id == Alert.village_id)
        .outerjoin(Household, Household.id == Alert.household_id)
        .outerjoin(gps, and_(gps.c.household_id == Alert.household_id, gps.c.rank == 1))
        .where(*alert_where)
        .order_by(Alert.severity_rank, Alert.id)
    ).all()
    for aid, severity, category, hid, hcode, village, vlat, vlon, glat, glon in alert_rows:
        lat, lon = points.get(hid) or ((glat, glon) if glat is not None else (vlat, vlon))
        if lat is None or lon is None:
            continue
        data.alerts.append([round(lat, 6), round(lon, 6), aid, severity, category, hcode, village])
    return data


def build_officer_map(
    data: OfficerMapData,
    *,
    alert_url: str = "/alerts/{id}",
    assets: str = "inline",
    tiles: str = "",
    tiles_attribution: str = "",
    translate=None,
) -> folium.Map:
    """The officer map of ``data``: households clustered, open alerts coloured by severity.

    ``alert_url``: the link of an alert (``{id}`` replaced); ``assets``: where Leaflet comes
    from (see the module documentation); ``tiles``: a basemap URL template, empty for none.
    Popups show the household code, village, last visit date and open alerts; never a child.
    """
    fmap = _new_map(assets, tiles, tiles_attribution, cluster=True)
    translate = translate or _english
    words = {key: translate(text) for key, text in WORDS.items()}
    words.update({f"severity_{k}": translate(v) for k, v in SEVERITY_WORDS.items()})
    _HouseholdLayer(data.households, words, translate(LAYER_HOUSEHOLDS)).add_to(fmap)
    _AlertLayer(data.alerts, words, translate(LAYER_ALERTS), alert_url).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    points = [row[:2] for row in data.households] + [row[:2] for row in data.alerts]
    if points:
        lats = [p[0] for p in points]
        lons = [p[1] for p in points]
        fmap.fit_bounds(
            [[min(lats), min(lons)], [max(lats), max(lons)]], max_zoom=15, padding=(30, 30)
        )
    return fmap


def officer_map(session: Session, user: User, filters: OfficerFilters, **options) -> folium.Map:
    """:func:`officer_map_data` then :func:`build_officer_map` (``options`` go to the latter)."""
    return build_officer_map(officer_map_data(session, user, filters), **options)


# --- the brand's map -----------------------------------------------------------------------------


@dataclass
class BrandLayer:
    """One choice of the brand map: the published rows of one hotspot table, by cell code; or,
    for a layer the page fetches when chosen, no rows and the ``query`` of its figures."""

    label: str | Msg  # translated by the builder
    kind: str  # "village" or "area"
    rows: dict[str, dict] | None
    query: dict | None = None


@dataclass
class BrandMapData:
    """What the brand map shows: cells and areas (code, name, WKB) and the layers' figures."""

    cells: list[tuple[str, str, bytes]] = field(default_factory=list)
    areas: list[tuple[str, str, bytes]] = field(default_factory=list)
    layers: list[BrandLayer] = field(default_factory=list)
    period: object = None


def brand_map_data(
    session: Session,
    user: User,
    *,
    end: dt.date | None = None,
    months: int | None = None,
    lazy: bool = False,
    max_supplier_layers: int = 60,
    progress=None,
) -> BrandMapData:
    """The published figures for ``user`` (a brand, or an officer for the brand-style view of
    their areas) and the geometries of the cells and areas they name.

    Layers: every village (all suppliers), each tier, each supplier (the first
    ``max_supplier_layers`` by code, see :func:`map_suppliers`), and the areas of the level most
    of the villages sit in. All figures come from ONE aggregation,
    :func:`geo.hotspots.hotspot_tables` (the tables of :data:`PAGE_LEVELS` through one privacy
    gate for a brand, each layer through a gate with the unfiltered cells it is part of).
    ``lazy``: only the tables of :data:`PAGE_LEVELS` (what the page beside the map shows too);
    the other layers carry the ``query`` the page fetches them with when chosen
    (``/map/layer.json``). ``progress(step, steps)``, if given, is called after each table (the
    command line's progress bar).
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


def build_brand_map(
    data: BrandMapData,
    *,
    assets: str = "inline",
    tiles: str = "",
    tiles_attribution: str = "",
    translate=None,
    locale: str = "en",
    layer_url: str | None = None,
) -> folium.Map:
    """The choropleth of ``data``: one set of cell polygons, restyled by the chosen layer.

    Each layer of ``data.layers`` is a choice in the layer control (only one shows at a time);
    tooltips give the published figures, a suppressed cell is hatched grey and says "Not enough
    data", a cell the layer does not cover is left pale. A layer without rows (``lazy``) is
    fetched from ``layer_url`` plus its query when first chosen (:func:`layer_figures` is the
    answer). Vectorised: geometries are decoded, simplified and encoded with shapely over arrays
    (see the module documentation for the size).
    """
    fmap = _new_map(assets, tiles, tiles_attribution, cluster=False)
    cell_index = {code: i for i, (code, _name, _geom) in enumerate(data.cells)}
    area_index = {code: i for i, (code, _name, _geom) in enumerate(data.areas)}
    translate = translate or _english
    words = {key: translate(text) for key, text in WORDS.items()}
    payload = {
        "cells": {
            "names": [name for _code, name, _geom in data.cells],
            "geoms": encode_geometries([geom for _c, _n, geom in data.cells]),
        },
        "areas": {
            "names": [name for _code, name, _geom in data.areas],
            "geoms": encode_geometries([geom for _c, _n, geom in data.areas]),
        },
        "grid": GRID,
        "bins": PREVALENCE_BINS,
        "colours": PREVALENCE_COLOURS,
        "words": words,
        "locale": locale,
    }
    if any(layer.rows is None for layer in data.layers):
        # the fetched layers name their cells by code
        payload["cells"]["codes"] = [code for code, _name, _geom in data.cells]
        payload["areas"]["codes"] = [code for code, _name, _geom in data.areas]
    cells = _BrandCells(payload).add_to(fmap)
    period = ""
    if data.period is not None:
        period = f"{data.period.start.isoformat()} – {data.period.end.isoformat()}"
    fmap.get_root().title = f"{translate(MAP_TITLE)} · {period}" if period else translate(MAP_TITLE)
    first = True
    for layer in data.layers:
        index = cell_index if layer.kind == "village" else area_index
        label = layer.label.render(translate) if isinstance(layer.label, Msg) else layer.label
        if layer.rows is None:
            if layer_url is None:
                raise ValueError("a layer to fetch needs layer_url")
            query = urlencode({"kind": layer.kind, **layer.query})
            url = layer_url + ("&" if "?" in layer_url else "?") + query
            rows = None
        else:
            rows = [_layer_row(index[c], row) for c, row in layer.rows.items() if c in index]
            url = None
        _BrandChoice(cells, label, layer.kind, rows, url, show=first).add_to(fmap)
        first = False
    # open while the list is short; a long list of suppliers opens on hover
    folium.LayerControl(collapsed=len(data.layers) > 10).add_to(fmap)
    _Legend(words, period).add_to(fmap)
    bounds = _bounds([g for *_x, g in data.cells] or [g for *_x, g in data.areas])
    if bounds is not None:
        # room on the right for the layer list and the legend
        fmap.fit_bounds(bounds, padding_top_left=(30, 30), padding_bottom_right=(260, 30))
    return fmap


def brand_map(
    session: Session, user: User, *, end=None, months=None, lazy=False, **options
) -> folium.Map:
    """:func:`brand_map_data` then :func:`build_brand_map` (``options`` go to the latter; a
    ``lazy`` map needs their ``layer_url``)."""
    data = brand_map_data(session, user, end=end, months=months, lazy=lazy)
    return build_brand_map(data, **options)


def brand_map_html(session: Session, user: User, **options) -> str:
    """The brand map as one HTML page (Leaflet inlined unless ``assets`` says otherwise)."""
    return brand_map(session, user, **options).get_root().render()


def encode_geometries(wkbs: list[bytes | None]) -> list[list[list[list[int]]]]:
    """Polygons (WKB, EPSG:4326) as compact integer rings for the page's script.

    Each geometry becomes a list of polygons, each a list of rings, each a flat list
    ``[x0, y0, dx1, dy1, ...]`` of longitudes and latitudes times :data:`GRID`, the first vertex
    absolute and the others as differences from the one before; the closing vertex is left out
    (Leaflet closes rings). Geometries are simplified by :data:`SIMPLIFY_DEGREES` first.

    >>> from shapely import box, to_wkb
    >>> encode_geometries([to_wkb(box(0, 0, 0.01, 0.02))])
    [[[[100, 0, 0, 200, -100, 0, 0, -200]]]]
    """
    if not wkbs:
        return []
    geoms = shapely.from_wkb(np.array(wkbs, dtype=object))
    geoms = shapely.simplify(geoms, SIMPLIFY_DEGREES, preserve_topology=True)
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_owner = shapely.get_rings(parts, return_index=True)
    coords, coord_owner = shapely.get_coordinates(rings, return_index=True)
    ints = np.rint(coords * GRID).astype(np.int64)
    # the closing vertex of each ring repeats its first: drop it
    last = np.r_[np.flatnonzero(np.diff(coord_owner)), len(coord_owner) - 1]
    keep = np.ones(len(ints), dtype=bool)
    keep[last] = False
    ints, coord_owner = ints[keep], coord_owner[keep]
    deltas = np.diff(ints, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    starts = np.r_[0, np.flatnonzero(np.diff(coord_owner)) + 1]
    deltas[starts] = ints[starts]
    flat = deltas.ravel().tolist()
    # slice the flat list ring by ring, ring into polygon, polygon into geometry
    bounds = np.r_[starts, len(coord_owner)] * 2
    ring_coords = {
        int(coord_owner[s]): flat[bounds[i] : bounds[i + 1]] for i, s in enumerate(starts)
    }
    polygons: list[list] = [[] for _ in range(len(parts))]
    for ring_no, owner in enumerate(ring_owner.tolist()):
        ring = ring_coords.get(ring_no)
        if ring and len(ring) >= 6:
            polygons[owner].append(ring)
    out: list[list] = [[] for _ in range(len(geoms))]
    for part_no, owner in enumerate(part_owner.tolist()):
        if polygons[part_no]:
            out[owner].append(polygons[part_no])
    return out


# --- helpers -------------------------------------------------------------------------------------


def _hotspot_tables(session, user, levels, **options):
    """geo.hotspots.tables.hotspot_tables (a brand's: from its release, geo.hotspots.releases)."""
    from geo.hotspots.tables import hotspot_tables

    return hotspot_tables(session, user, levels, **options)


def _invalid(parameter: str, detail) -> Problem:
    return problem("request.invalid_parameter", parameter=parameter, detail=detail)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _by_code(rows: list[dict]) -> dict[str, dict]:
    return {row["code"]: row for row in rows}


def _figure(row: dict, key: str):
    # the interval's bounds are prevalence_low/_high in geo.hotspots (ci_low/ci_high accepted)
    value = row.get(key)
    if value is None and key in ("prevalence_low", "prevalence_high"):
        value = row.get({"prevalence_low": "ci_low", "prevalence_high": "ci_high"}[key])
    if isinstance(value, float):
        return round(value, 4)
    return value if isinstance(value, int) else None


def _layer_row(index: int, row: dict) -> list:
    """``[cell index, *TOOLTIP_FIGURES]``, or ``[cell index]`` for a suppressed cell."""
    if row.get("suppressed"):
        return [index]
    return [index, *(_figure(row, key) for key in TOOLTIP_FIGURES)]


def _bounds(wkbs: list[bytes]):
    if not wkbs:
        return None
    xmin, ymin, xmax, ymax = shapely.total_bounds(shapely.from_wkb(np.array(wkbs, dtype=object)))
    if not np.isfinite([xmin, ymin, xmax, ymax]).all():
        return None
    return [[float(ymin), float(xmin)], [float(ymax), float(xmax)]]


def _js(value) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no HTML comment)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset_text(name: str) -> str:
    path = VENDOR / name
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: install the map libraries with "
            "`npm ci --prefix clms/static/vendor` (./dev does it)"
        )
    text = path.read_text("utf-8").replace("</script", "<\\/script")
    if name.endswith(".css"):
        # inlined, the stylesheet's images (the layer list's icon) must travel with it
        def data_url(match: re.Match) -> str:
            image = path.parent / match.group(1)
            if not image.is_file():
                return match.group(0)
            return f"url(data:image/png;base64,{base64.b64encode(image.read_bytes()).decode()})"

        text = re.sub(r"url\((images/[\w.-]+\.png)\)", data_url, text)
    return text


def _new_map(assets: str, tiles: str, tiles_attribution: str, *, cluster: bool) -> folium.Map:
    """A map with no CDN: Leaflet (and the cluster plugin) from ``assets`` and an optional
    basemap; the data sources credited."""
    # maxZoom: without a tile layer Leaflet has none, and the cluster plugin needs one
    fmap = folium.Map(
        location=[7.5, -5.5], zoom_start=7, tiles=None, control_scale=True, maxZoom=18
    )
    # folium's defaults come from CDNs and include libraries the maps do not use
    fmap.default_js = []
    fmap.default_css = []
    js = [LEAFLET_JS] + ([CLUSTER_JS] if cluster else [])
    css = [LEAFLET_CSS] + (list(CLUSTER_CSS) if cluster else [])
    if assets == "inline":
        head = "".join(f"<style>{_asset_text(name)}</style>" for name in css)
        head += "".join(f"<script>{_asset_text(name)}</script>" for name in js)
    else:
        base = assets.rstrip("/")
        head = "".join(f'<link rel="stylesheet" href="{base}/{name}">' for name in css)
        head += "".join(f'<script src="{base}/{name}"></script>' for name in js)
    head += "<style>.leaflet-container{background:#eef1f4}" + _CSS + "</style>"
    fmap.get_root().header.add_child(Element(head), name="clms_assets")
    if tiles:
        folium.TileLayer(tiles=tiles, attr=tiles_attribution or tiles, control=False).add_to(fmap)
    _Credit(DATA_CREDIT).add_to(fmap)
    return fmap


_CSS = (
    ".clms-legend{background:#fff;padding:6px 8px;border-radius:4px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.3);font:12px/1.4 sans-serif;max-width:16em}"
    ".clms-legend i{display:inline-block;width:14px;height:12px;margin-right:6px;"
    "vertical-align:middle;border:1px solid #999}"
    ".clms-legend .hatch{background:repeating-linear-gradient(45deg,#bbb 0 2px,#eee 2px 5px)}"
    ".clms-tip dt{font-weight:600}.clms-tip dl{margin:0;display:grid;"
    "grid-template-columns:auto auto;column-gap:8px}.clms-tip dd{margin:0;text-align:right}"
)


class _Credit(MacroElement):
    """The data sources, in the map's attribution line."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text }});
        {% endmacro %}"""
    )

    def __init__(self, text: str):
        super().__init__()
        self._name = "Credit"
        self.text = _js(text)


class _HouseholdLayer(Layer):
    """The households as clustered circle markers; popups built from escaped text."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function(){
          var rows = {{ this.rows }}, W = {{ this.words }};
          function esc(s){ return String(s == null ? '' : s).replace(/[&<>"']/g,
            function(c){ return '&#' + c.charCodeAt(0) + ';'; }); }
          var group = L.markerClusterGroup({showCoverageOnHover: false, chunkedLoading: true,
                                            maxClusterRadius: 50});
          var markers = rows.map(function(r){
            var m = L.circleMarker([r[0], r[1]], {radius: 6, weight: 1, color: '#08306b',
              fillColor: r[5] > 0 ? '#d7301f' : '#4292c6', fillOpacity: 0.9});
            m.bindPopup(function(){
              return '<div class="clms-tip"><dl><dt>' + esc(W.household) + '</dt><dd>' +
                esc(r[2]) + '</dd><dt>' + esc(W.village) + '</dt><dd>' + esc(r[3]) +
                '</dd><dt>' + esc(W.last_visit) + '</dt><dd>' + esc(r[4] || '—') +
                '</dd><dt>' + esc(W.open_alerts) + '</dt><dd>' + esc(r[5]) + '</dd></dl></div>';
            });
            return m;
          });
          group.addLayers(markers);
          {% if this.show %}group.addTo({{ this._parent.get_name() }});{% endif %}
          return group;
        })();
        {% endmacro %}"""
    )

    def __init__(self, rows, words, name):
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "Households"
        self.rows = _js(rows)
        self.words = _js(words)


class _AlertLayer(Layer):
    """Open alerts as circles coloured by severity, each with a link to its page."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function(){
          var rows = {{ this.rows }}, W = {{ this.words }}, C = {{ this.colours }};
          var url = {{ this.url }};
          function esc(s){ return String(s == null ? '' : s).replace(/[&<>"']/g,
            function(c){ return '&#' + c.charCodeAt(0) + ';'; }); }
          var group = L.featureGroup();
          rows.forEach(function(r){
            var m = L.circleMarker([r[0], r[1]], {radius: 9, weight: 2, color: '#222',
              fillColor: C[r[3]] || '#888', fillOpacity: 0.95, className: 'clms-alert'});
            m.bindPopup(function(){
              return '<div class="clms-tip"><dl><dt>' + esc(W.alert) + '</dt><dd>#' +
                esc(r[2]) + '</dd><dt>' + esc(W.severity) + '</dt><dd>' +
                esc(W['severity_' + r[3]] || r[3]) + '</dd><dt>' + esc(W.household) +
                '</dt><dd>' + esc(r[5] || '—') + '</dd><dt>' + esc(W.village) + '</dt><dd>' +
                esc(r[6]) + '</dd></dl><p><a target="_top" href="' +
                esc(url.replace('{id}', r[2])) + '">' + esc(W.open_alert_page) + '</a></p></div>';
            });
            m.addTo(group);
          });
          {% if this.show %}group.addTo({{ this._parent.get_name() }});{% endif %}
          return group;
        })();
        {% endmacro %}"""
    )

    def __init__(self, rows, words, name, url):
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "Alerts"
        self.rows = _js(rows)
        self.words = _js(words)
        self.colours = _js(SEVERITY_COLOURS)
        self.url = _js(url)


class _BrandCells(MacroElement):
    """The brand map's shared polygons (cells and areas), built once, and the functions the
    layer choices call to restyle them."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function(map){
          var D = {{ this.payload }}, W = D.words, S = D.grid;
          var F = {households: 1, children: 2, child_labour: 3, hazardous: 4, worst_forms: 5,
                   prevalence: 6, low: 7, high: 8, change: 9, coverage: 10};
          function esc(s){ return String(s == null ? '' : s).replace(/[&<>"']/g,
            function(c){ return '&#' + c.charCodeAt(0) + ';'; }); }
          function decode(g){
            return g.map(function(poly){ return poly.map(function(ring){
              var out = [], x = 0, y = 0;
              for (var i = 0; i < ring.length; i += 2) {
                x += ring[i]; y += ring[i + 1]; out.push([y / S, x / S]);
              }
              return out; }); });
          }
          function pct(v){ return v == null ? '—' : (100 * v).toLocaleString(D.locale,
            {maximumFractionDigits: 1}) + ' %'; }
          function num(v){ return v == null ? '—' : v.toLocaleString(D.locale); }
          function colour(p){
            for (var i = D.bins.length - 1; i >= 0; i--) {
              if (p >= D.bins[i]) return D.colours[i];
            }
            return D.colours[0];
          }
          var state = {choice: null};
          function tip(kind, i){
            var names = kind === 'area' ? D.areas.names : D.cells.names;
            var c = state.choice, r = c && c.lookup[i];
            var head = '<div class="clms-tip"><strong>' + esc(names[i]) + '</strong><br><em>' +
              esc(c ? c.label : '') + '</em>';
            if (c && !c.loaded) return head + '<p>' + esc(W.loading) + '</p></div>';
            if (!r) return head + '<p>' + esc(W.absent) + '</p></div>';
            if (r.length === 1) return head + '<p class="clms-suppressed">' + esc(W.suppressed) +
              '</p></div>';
            var change = r[F.change] == null ? '—' : (r[F.change] > 0 ? '+' : '') +
              r[F.change].toLocaleString(D.locale) + ' ' + W.points;
            var lines = [[W.households, num(r[F.households])], [W.children, num(r[F.children])],
              [W.child_labour, num(r[F.child_labour])], [W.hazardous, num(r[F.hazardous])],
              [W.worst_forms, num(r[F.worst_forms])], [W.prevalence, pct(r[F.prevalence])],
              [W.interval, pct(r[F.low]) + ' – ' + pct(r[F.high])], [W.change, change],
              [W.coverage, pct(r[F.coverage])]];
            return head + '<dl>' + lines.map(function(l){
              return '<dt>' + esc(l[0]) + '</dt><dd>' + esc(l[1]) + '</dd>'; }).join('') +
              '</dl></div>';
          }
          function build(kind, geoms){
            var group = L.featureGroup();
            var polys = geoms.map(function(g, i){
              var p = L.polygon(decode(g), {weight: kind === 'area' ? 1.5 : 0.5,
                color: kind === 'area' ? '#333' : '#666', fillOpacity: 0.8,
                className: 'clms-' + kind});
              p.bindTooltip(function(){ return tip(kind, i); }, {sticky: true});
              p.addTo(group);
              return p;
            });
            return {group: group, polys: polys};
          }
          var groups = {village: build('village', D.cells.geoms),
                        area: build('area', D.areas.geoms)};
          function hatch(){
            // a hatched fill for the suppressed cells: an SVG pattern in the renderer's <svg>
            var svg = map.getPanes().overlayPane.querySelector('svg');
            if (!svg || svg.querySelector('#clms-hatch')) return;
            var ns = 'http://www.w3.org/2000/svg';
            var defs = document.createElementNS(ns, 'defs');
            var pat = document.createElementNS(ns, 'pattern');
            pat.setAttribute('id', 'clms-hatch'); pat.setAttribute('width', '6');
            pat.setAttribute('height', '6'); pat.setAttribute('patternUnits', 'userSpaceOnUse');
            pat.setAttribute('patternTransform', 'rotate(45)');
            var bg = document.createElementNS(ns, 'rect');
            bg.setAttribute('width', '6'); bg.setAttribute('height', '6');
            bg.setAttribute('fill', '#e6e6e6');
            var line = document.createElementNS(ns, 'rect');
            line.setAttribute('width', '2'); line.setAttribute('height', '6');
            line.setAttribute('fill', '#a0a0a0');
            pat.appendChild(bg); pat.appendChild(line); defs.appendChild(pat);
            svg.insertBefore(defs, svg.firstChild);
          }
          function show(choice){
            state.choice = choice;
            var g = groups[choice.kind];
            var other = groups[choice.kind === 'area' ? 'village' : 'area'];
            if (map.hasLayer(other.group)) map.removeLayer(other.group);
            if (!map.hasLayer(g.group)) g.group.addTo(map);
            hatch();
            g.polys.forEach(function(p, i){
              var r = choice.lookup[i], el;
              if (!choice.loaded) p.setStyle({fillColor: '#cccccc', fillOpacity: 0.3});
              else if (!r) p.setStyle({fillColor: '#ffffff', fillOpacity: 0.15});
              else if (r.length === 1) p.setStyle({fillColor: 'url(#clms-hatch)', fillOpacity: 1});
              else p.setStyle({fillColor: colour(r[F.prevalence] || 0), fillOpacity: 0.8});
              el = p.getElement();
              if (el) el.setAttribute('data-state', !choice.loaded ? 'loading' : (!r ? 'absent'
                : (r.length === 1 ? 'suppressed' : 'figures')));
            });
            if (legendTitle) legendTitle.textContent = choice.label;
          }
          var legendTitle = null;
          var Choice = L.Layer.extend({
            initialize: function(label, kind, rows, url){
              this.label = label; this.kind = kind; this.lookup = {};
              this.url = url; this.loaded = !url; this.loading = false;
              for (var i = 0; rows && i < rows.length; i++) this.lookup[rows[i][0]] = rows[i];
            },
            onAdd: function(){
              show(this);
              if (!this.loaded && !this.loading) this.fetch();
            },
            onRemove: function(){},
            fetch: function(){
              // a layer's figures, asked for when it is first chosen: {code: [figures]}
              var self = this, codes = (self.kind === 'area' ? D.areas : D.cells).codes;
              self.loading = true;
              fetch(self.url, {credentials: 'same-origin'}).then(function(r){
                if (!r.ok) throw new Error(r.status);
                return r.json();
              }).then(function(d){
                var at = {};
                codes.forEach(function(c, i){ at[c] = i; });
                Object.keys(d.rows).forEach(function(c){
                  if (c in at) self.lookup[at[c]] = [at[c]].concat(d.rows[c]);
                });
                self.loaded = true;
              }).catch(function(){ self.loading = false; }).then(function(){
                if (state.choice === self) show(self);
              });
            }
          });
          return {
            choice: function(label, kind, rows, url){
              return new Choice(label, kind, rows, url); },
            setLegendTitle: function(el){ legendTitle = el;
              if (state.choice) el.textContent = state.choice.label; }
          };
        })({{ this._parent.get_name() }});
        {% endmacro %}"""
    )

    def __init__(self, payload: dict):
        super().__init__()
        self._name = "BrandCells"
        self.payload = _js(payload)


class _BrandChoice(Layer):
    """One layer of the brand map (a base layer: one shows at a time) restyling the cells."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        var {{ this.get_name() }} = {{ this.cells.get_name() }}.choice(
          {{ this.label }}, {{ this.kind }}, {{ this.rows }}, {{ this.url }});
        {% if this.show %}{{ this.get_name() }}.addTo({{ this._parent.get_name() }});{% endif %}
        {% endmacro %}"""
    )

    def __init__(self, cells, label: str, kind: str, rows: list | None, url: str | None, show):
        # Leaflet's layer list writes a layer's name as HTML (innerHTML), and a label holds a
        # supplier's name as it was imported: escaped here, it shows as the text it is
        super().__init__(name=html.escape(label), overlay=False, control=True, show=show)
        self._name = "BrandChoice"
        self.cells = cells
        self.label = _js(label)
        self.kind = _js(kind)
        self.rows = _js(rows)
        self.url = _js(url)


class _Legend(MacroElement):
    """The prevalence classes, the hatch of "Not enough data" and the pale "no households"."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        (function(map){
          var W = {{ this.words }}, bins = {{ this.bins }}, colours = {{ this.colours }};
          var legend = L.control({position: 'bottomright'});
          legend.onAdd = function(){
            var div = L.DomUtil.create('div', 'clms-legend');
            var title = L.DomUtil.create('div', 'clms-legend-layer', div);
            var h = L.DomUtil.create('strong', '', div);
            h.textContent = W.legend;
            if ({{ this.period }}) {
              L.DomUtil.create('div', '', div).textContent = {{ this.period }};
            }
            bins.forEach(function(b, i){
              var row = L.DomUtil.create('div', '', div);
              var sw = L.DomUtil.create('i', '', row);
              sw.style.background = colours[i];
              var hi = i + 1 < bins.length ? bins[i + 1] : null;
              row.appendChild(document.createTextNode(Math.round(100 * b) + (hi == null ?
                ' % +' : '–' + Math.round(100 * hi) + ' %')));
            });
            var s = L.DomUtil.create('div', '', div);
            L.DomUtil.create('i', 'hatch', s);
            s.appendChild(document.createTextNode(W.suppressed));
            var a = L.DomUtil.create('div', '', div);
            var sw = L.DomUtil.create('i', '', a);
            sw.style.background = '#fff';
            a.appendChild(document.createTextNode(W.absent));
            {{ this.cells }}.setLegendTitle(title);
            return div;
          };
          legend.addTo(map);
        })({{ this._parent.get_name() }});
        {% endmacro %}"""
    )

    def __init__(self, words: dict, period: str = ""):
        super().__init__()
        self._name = "Legend"
        self.words = _js(words)
        self.period = _js(period)
        self.bins = _js(PREVALENCE_BINS)
        self.colours = _js(PREVALENCE_COLOURS)
        self.cells = None

    def render(self, **kwargs):
        # the cells element of the same map (added before the legend)
        for child in self._parent._children.values():
            if isinstance(child, _BrandCells):
                self.cells = child.get_name()
        super().render(**kwargs)


def _english(text: str) -> str:
    """The translation into English: the text itself (a map built outside a request)."""
    return text
