"""Villages and administrative areas: the operations that store them.

:mod:`clms.places.localities`
    Areas and villages from Who's On First's localities (``load_localities``, what the demo
    loads), the codes they are given.
:mod:`clms.places.villages`
    Villages from any file of points or polygons (``import_villages``).
:mod:`clms.places.areas`
    Areas and their boundaries from a boundary file (``import_boundaries``), and the areas as
    the places page lists them (``area_rows``).

The files are read and checked by :mod:`geo.boundaries` (nothing is written until every row or
feature passed); the codes, :class:`geo.countries.PlaceError` and the countries are in
:mod:`geo.countries`; the villages' cells are derived by :mod:`geo.cells`.
"""
