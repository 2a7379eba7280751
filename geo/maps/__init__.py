"""The maps: the officer's map of households and open alerts, and the brand's hotspot choropleth.

Two kinds of function, kept apart (house style, principle 1):

- *gathering* reads the database for one person: :func:`geo.maps.officer.officer_map_data`
  (households and open alerts of the officer's areas, as plain rows) and
  :func:`geo.maps.brand.brand_map_data` (the published hotspot figures from
  :func:`geo.hotspots.tables.hotspot_tables`, which for a brand have already been through the
  privacy gate, and the geometries of the villages and areas they name);
- *building* turns those plain data into a :class:`folium.Map` without touching the database:
  :func:`geo.maps.build.build_officer_map` and :func:`geo.maps.build.build_brand_map` (pure core:
  no database, no request). :func:`geo.maps.officer.officer_map`, :func:`geo.maps.brand.brand_map`
  and :func:`geo.maps.brand.brand_map_html` do both.

No CDN: the maps load Leaflet (and Leaflet.markercluster for the officer map) either from the
application's own static files (``assets="/static/vendor/node_modules"``, what the pages use) or
inlined into the page (``assets="inline"``, the standalone export, which then works offline).
``./dev`` installs them with npm from ``clms/static/vendor/package-lock.json``. Folium's other
defaults (jQuery, Bootstrap, Font Awesome, awesome-markers) are not loaded: nothing here uses them.

What a brand's map holds: village cells and area polygons with their names and published figures,
nothing else; no point, no marker, no household, no child. The builder copies only the figure keys
of :data:`geo.maps.build.TOOLTIP_FIGURES` from the rows it is given, so even a row carrying more
would not leak.

Size: each village geometry is written once (simplified, coordinates on a 1e-4 degree grid,
about 11 m, delta-encoded as integers), whatever the number of layers; each tier or supplier layer
adds only a table of figures keyed by the cell's index (about 50 bytes a cell it covers), and the
browser restyles the same polygons when another layer is chosen. So the page grows as
``villages x (vertices per cell) + (cells covered by all layers) x 50 bytes`` plus Leaflet itself
(150 kB when inlined): 2.2 MB and 0.5 s to build for 10,000 Voronoi cells with 14 layers (the
synthetic check of the test module). Time: all the figures of a map come from one hotspot
aggregation (:func:`geo.hotspots.tables.hotspot_tables`), whose cost grows with the layers it
slices; the page therefore builds with ``lazy=True`` (the tables of
:data:`geo.maps.brand.PAGE_LEVELS`, which the page's own table reads too) and fetches a tier's
or a supplier's figures when they are chosen; the standalone export reads them all.

Scripts and styles the map documents load: Leaflet 1.9.4 (BSD-2-Clause) and, on the officer map,
Leaflet.markercluster 1.5.3 (MIT), plus folium's inline scripts and styles; no other origin unless
a basemap URL is configured.
"""
