"""Where a map's reader is when there is no basemap (no tile server is configured, the default):
the boundaries of the areas and the names of the villages the map may show (:class:`Places`),
written where each village's cell is (:func:`label_points`). Pure: plain data in, a folium layer
out.
"""

from __future__ import annotations

import html
import json

import numpy as np
import shapely
from branca.element import Template
from folium.map import Layer

#: the zoom from which the village names show (below it they would cover one another)
LABEL_MIN_ZOOM = 11


def js(value) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no HTML comment)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def label_points(wkbs: list[bytes]) -> list[list[float] | None]:
    """``[lat, lon]`` inside each geometry (where its name is written), None for an empty one."""
    if not wkbs:
        return []
    points = shapely.point_on_surface(shapely.from_wkb(np.array(wkbs, dtype=object)))
    coords = shapely.get_coordinates(points, include_z=False)
    empty = shapely.is_empty(points)
    out: list[list[float] | None] = []
    at = 0
    for is_empty in empty.tolist():
        if is_empty:
            out.append(None)
            continue
        lon, lat = coords[at]
        at += 1
        out.append([round(float(lat), 5), round(float(lon), 5)])
    return out


class Places(Layer):
    """Where the reader is, with no basemap: the areas' boundaries (lines) and the villages'
    names (shown from :data:`LABEL_MIN_ZOOM`, where they no longer cover one another). Drawn
    under everything else and never interactive."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function(map){
          var D = {{ this.places }}, S = {{ this.grid }}, min = {{ this.min_zoom }};
          map.createPane('clmsPlaces');
          map.getPane('clmsPlaces').style.zIndex = 350;
          map.getPane('clmsPlaces').style.pointerEvents = 'none';
          map.createPane('clmsLabels');
          map.getPane('clmsLabels').style.zIndex = 450;
          map.getPane('clmsLabels').style.pointerEvents = 'none';
          // a name written on the map: text at a point, nothing to click
          var Label = L.Layer.extend({
            initialize: function(at, text){ this._at = L.latLng(at); this._text = text; },
            onAdd: function(m){
              this._el = L.DomUtil.create('div', 'clms-label leaflet-zoom-hide',
                                          m.getPane('clmsLabels'));
              L.DomUtil.create('span', '', this._el).textContent = this._text;
              this._move();
              m.on('zoomend viewreset', this._move, this);
            },
            onRemove: function(m){
              L.DomUtil.remove(this._el);
              m.off('zoomend viewreset', this._move, this);
            },
            _move: function(){
              L.DomUtil.setPosition(this._el, this._map.latLngToLayerPoint(this._at));
            }
          });
          var group = L.layerGroup();
          D.areas.forEach(function(g){
            var latlngs = g.map(function(poly){ return poly.map(function(ring){
              var out = [], x = 0, y = 0;
              for (var i = 0; i < ring.length; i += 2) {
                x += ring[i]; y += ring[i + 1]; out.push([y / S, x / S]);
              }
              return out; }); });
            L.polygon(latlngs, {pane: 'clmsPlaces', fill: false, color: '#4b5563', weight: 1.5,
              dashArray: '5 4', interactive: false, className: 'clms-boundary'}).addTo(group);
          });
          var names = L.layerGroup();
          D.villages.forEach(function(v){ new Label([v[0], v[1]], String(v[2])).addTo(names); });
          function labels(){
            if (!map.hasLayer(group)) return;
            if (map.getZoom() >= min) { if (!group.hasLayer(names)) group.addLayer(names); }
            else if (group.hasLayer(names)) group.removeLayer(names);
          }
          map.on('zoomend', labels);
          group.on('add', labels);
          {% if this.show %}group.addTo(map);{% endif %}
          return group;
        })({{ this._parent.get_name() }});
        {% endmacro %}"""
    )

    def __init__(self, places: dict, name: str, *, grid: float):
        # the layer list writes a layer's name as HTML
        super().__init__(name=html.escape(name), overlay=True, control=True, show=True)
        self._name = "Places"
        self.places = js(places)
        self.grid = js(grid)
        self.min_zoom = js(LABEL_MIN_ZOOM)
