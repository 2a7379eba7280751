"""The maps built from given figures and geometries: :func:`build_officer_map` and
:func:`build_brand_map` turn plain data (:class:`OfficerMapData`, :class:`BrandMapData`) into a
:class:`folium.Map`, with the layers, legend and scripts they need. Pure: no database, no request
(see :mod:`geo.maps` for what the maps hold, their assets and their size).
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import folium
import numpy as np
import shapely
from branca.element import Element, MacroElement, Template
from folium.map import Layer
from folium.utilities import JsCode

from clms.i18n import N_, Msg
from geo.maps.places import Places as _Places
from geo.maps.places import js as _js
from geo.maps.places import label_points as _label_points

#: where ``./dev`` installs Leaflet and its plugin (npm), inside the static folder
VENDOR = Path(__file__).resolve().parents[2] / "clms" / "static" / "vendor" / "node_modules"
LEAFLET_JS = "leaflet/dist/leaflet.js"
LEAFLET_CSS = "leaflet/dist/leaflet.css"
CLUSTER_JS = "leaflet.markercluster/dist/leaflet.markercluster.js"
CLUSTER_CSS = (
    "leaflet.markercluster/dist/MarkerCluster.css",
    "leaflet.markercluster/dist/MarkerCluster.Default.css",
)
#: the public data the places come from (shown in the map's attribution)
DATA_CREDIT = N_(
    "Boundaries: geoBoundaries v2.0.1 (Runfola et al. 2020) · Places: Who's On First (CC0), "
    "GeoNames (CC BY 4.0)"
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
#: the coordinate grid of the brand map (1e-4 degree, about 11 m) and the simplification
GRID = 1e4
SIMPLIFY_DEGREES = 2e-4

#: the map's own words, translated with the reader's ``translate``
WORDS = {
    "legend": N_("Children in child labour"),
    "suppressed": N_("Not enough data"),
    "absent": N_("No households in this layer"),
    "loading": N_("Loading…"),
    "households": N_("Households of children monitored"),
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
LAYER_PLACES = N_("Boundaries and village names")
LAYER_HOUSEHOLDS = N_("Households")
LAYER_ALERTS = N_("Open alerts")


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
    #: where the reader is, with no basemap: ``[lat, lon, name]`` of the villages in scope and
    #: ``(name, WKB)`` of the boundaries of the areas in scope
    villages: list[list] = field(default_factory=list)
    areas: list[tuple[str, bytes]] = field(default_factory=list)


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
    translate = translate or _english
    fmap = _new_map(assets, tiles, tiles_attribution, translate(DATA_CREDIT), cluster=True)
    words = {key: translate(text) for key, text in WORDS.items()}
    words.update({f"severity_{k}": translate(v) for k, v in SEVERITY_WORDS.items()})
    # the view first, then the layers: the markers are clustered once, at the zoom they are
    # shown at (not drawn at the default view and clustered again when the map moves)
    points = [row[:2] for row in data.households] + [row[:2] for row in data.alerts]
    points = points or [row[:2] for row in data.villages]
    if points:
        lats = [p[0] for p in points]
        lons = [p[1] for p in points]
        fmap.fit_bounds(
            [[min(lats), min(lons)], [max(lats), max(lons)]], max_zoom=15, padding=(30, 30)
        )
    if data.villages or data.areas:
        places = {
            "areas": encode_geometries([geom for _name, geom in data.areas]),
            "villages": data.villages,
        }
        _Places(places, translate(LAYER_PLACES), grid=GRID).add_to(fmap)
    _HouseholdLayer(data.households, words, translate(LAYER_HOUSEHOLDS)).add_to(fmap)
    _AlertLayer(data.alerts, words, translate(LAYER_ALERTS), alert_url).add_to(fmap)
    _layer_list(fmap, open_on_room=True)
    return fmap


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
    fetched from ``layer_url`` plus its query when first chosen
    (:func:`geo.maps.brand.layer_figures` is the answer). Vectorised: geometries are decoded,
    simplified and encoded with shapely over arrays (see the module documentation for the size).
    """
    translate = translate or _english
    fmap = _new_map(assets, tiles, tiles_attribution, translate(DATA_CREDIT), cluster=False)
    cell_index = {code: i for i, (code, _name, _geom) in enumerate(data.cells)}
    area_index = {code: i for i, (code, _name, _geom) in enumerate(data.areas)}
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
    # where the reader is: the boundaries of the areas and the names of the map's own villages
    # (those of its published figures, nothing more), under the figures
    labels = _label_points([geom for _c, _n, geom in data.cells])
    places = {
        "areas": payload["areas"]["geoms"],
        "villages": [
            [*point, name]
            for point, (_c, name, _g) in zip(labels, data.cells, strict=True)
            if point is not None
        ],
    }
    _Places(places, translate(LAYER_PLACES), grid=GRID).add_to(fmap)
    cells = _BrandCells(payload).add_to(fmap)
    period = ""
    if data.period is not None:
        period = f"{data.period.start.isoformat()} – {data.period.end.isoformat()}"
    fmap.get_root().title = f"{translate(MAP_TITLE)} · {period}" if period else translate(MAP_TITLE)
    bounds = _bounds([g for *_x, g in data.cells] or [g for *_x, g in data.areas])
    if bounds is not None:
        # the view before the layers; room at the bottom left for the legend
        fmap.fit_bounds(bounds, padding_top_left=(30, 30), padding_bottom_right=(30, 30))
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
    # open while the list is short and the map roomy; a long list of suppliers opens on hover
    _layer_list(fmap, open_on_room=len(data.layers) <= 10)
    _Legend(words, period).add_to(fmap)
    return fmap


def _layer_list(fmap: folium.Map, *, open_on_room: bool) -> None:
    """The layer list, top right: open from the start only on a map with room for it beside the
    legend (at least 600 x 420 px); elsewhere (a phone) a button that opens it."""
    collapsed = True
    if open_on_room:
        size = f"{fmap.get_name()}.getSize()"
        collapsed = JsCode(f"!({size}.x >= 600 && {size}.y >= 420)")
    folium.LayerControl(collapsed=collapsed).add_to(fmap)


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


def _new_map(
    assets: str, tiles: str, tiles_attribution: str, credit: str, *, cluster: bool
) -> folium.Map:
    """A map with no CDN: Leaflet (and the cluster plugin) from ``assets`` and an optional
    basemap; the data sources credited (``credit``, in the reader's language)."""
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
    _Credit(credit).add_to(fmap)
    return fmap


_CSS = (
    ".clms-legend{background:#fff;padding:6px 8px;border-radius:4px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.3);font:12px/1.4 sans-serif;max-width:16em;"
    "max-height:calc(100vh - 140px);overflow:auto}"
    ".clms-legend summary{cursor:pointer;font-weight:600}"
    # a small map (a phone): the credits in small type, no scale under the legend
    "@media (max-width:600px){.leaflet-control-attribution{font-size:9px;line-height:1.2}"
    ".leaflet-control-scale{display:none}}"
    ".leaflet-control-layers-expanded{max-width:calc(100vw - 70px);overflow:auto}"
    ".leaflet-control-layers-expanded .leaflet-control-layers-list{max-height:calc(100vh - 80px)}"
    ".clms-label{position:absolute;width:0;height:0}"
    ".clms-label span{position:absolute;transform:translate(-50%,-50%);white-space:nowrap;"
    "color:#1d2733;font:600 11px/1.2 sans-serif;"
    "text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 3px #fff}"
    ".clms-alert-cluster div{color:#fff;font-weight:700}"
    ".clms-sev-critical,.clms-sev-critical div{background-color:rgba(103,0,13,.85)}"
    ".clms-sev-high,.clms-sev-high div{background-color:rgba(215,48,31,.85)}"
    ".clms-sev-medium,.clms-sev-medium div{background-color:rgba(252,141,89,.9)}"
    ".clms-sev-low,.clms-sev-low div{background-color:rgba(253,204,138,.9)}"
    ".clms-sev-medium div,.clms-sev-low div{color:#1d2733}"
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
          // not chunked: every marker is clustered before the map is first drawn
          var group = L.markerClusterGroup({showCoverageOnHover: false, maxClusterRadius: 50});
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
          var rank = {critical: 4, high: 3, medium: 2, low: 1};
          // clustered as the households are, each cluster the colour of its gravest alert
          var group = L.markerClusterGroup({showCoverageOnHover: false, maxClusterRadius: 40,
            iconCreateFunction: function(cluster){
              var worst = 'low';
              cluster.getAllChildMarkers().forEach(function(m){
                if ((rank[m.options.severity] || 0) > rank[worst]) worst = m.options.severity;
              });
              return L.divIcon({html: '<div><span>' + cluster.getChildCount() + '</span></div>',
                className: 'marker-cluster clms-alert-cluster clms-sev-' + worst,
                iconSize: L.point(40, 40)});
            }});
          rows.forEach(function(r){
            var m = L.circleMarker([r[0], r[1]], {radius: 9, weight: 2, color: '#222',
              fillColor: C[r[3]] || '#888', fillOpacity: 0.95, className: 'clms-alert',
              severity: r[3]});
            m.bindPopup(function(){
              return '<div class="clms-tip"><dl><dt>' + esc(W.alert) + '</dt><dd>#' +
                esc(r[2]) + '</dd><dt>' + esc(W.severity) + '</dt><dd>' +
                esc(W['severity_' + r[3]] || r[3]) + '</dd><dt>' + esc(W.household) +
                '</dt><dd>' + esc(r[5] || '—') + '</dd><dt>' + esc(W.village) + '</dt><dd>' +
                esc(r[6]) + '</dd></dl><p><a target="_top" href="' +
                esc(url.replace('{id}', r[2])) + '">' + esc(W.open_alert_page) + '</a></p></div>';
            });
            group.addLayer(m);
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
          // bottom left, away from the layer list (top right); a <details>, folded on a small map
          var legend = L.control({position: 'bottomleft'});
          legend.onAdd = function(){
            var box = L.DomUtil.create('details', 'clms-legend');
            box.open = map.getSize().x >= 600 && map.getSize().y >= 420;
            L.DomEvent.disableClickPropagation(box);
            L.DomEvent.disableScrollPropagation(box);
            var h = L.DomUtil.create('summary', '', box);
            h.textContent = W.legend;
            var div = L.DomUtil.create('div', 'clms-legend-body', box);
            var title = L.DomUtil.create('div', 'clms-legend-layer', div);
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
            return box;
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
