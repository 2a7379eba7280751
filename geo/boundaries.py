"""Reading and checking the files of places: administrative boundaries from GeoJSON, zipped
shapefiles and GeoPackages, and villages from CSV (points or WKT polygons) or vector files.

Reading is kept apart from writing: :func:`read_boundaries` opens a file and checks every feature
(CRS, geometry, extent, fields) without touching the database, and raises one
:class:`BoundaryError` that lists every feature in trouble;
:func:`clms.places.areas.import_boundaries` then creates or updates the areas in the caller's
transaction, so a bad file writes nothing (and matches features to areas by name). Villages
alike: :func:`read_places` reads and checks every row or feature, raising one
:class:`geo.countries.PlaceError` listing the bad ones, for
:func:`clms.places.villages.import_villages`.

Codes. An area's code comes from a code field (default ``shapeID`` for geoBoundaries, ``wof_id``
for Who's On First), made unique across countries and stable across imports:
``CIV-ADM2-2_0_0-B1`` becomes ``CIV-ADM2-2-0-0-B1`` (it already names its country), a WOF id
``1108784981`` becomes ``CI-WOF-1108784981``, anything else ``<ISO2>-<slug>``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from pyproj import CRS
from shapely.validation import explain_validity
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from clms.models import Area
from clms.safety import UnsafeFile, check_zip, decode_text
from geo.countries import Country, PlaceError, country, slug, village_code

#: the order of levels, for finding a parent by containment (a parent is of a lower rank)
LEVEL_RANK = {
    "country": 0,
    "region": 1,
    "province": 1,
    "department": 2,
    "district": 2,
    "subdistrict": 3,
    "commune": 3,
}
#: level words of other sources stored as ours (WOF's ``county`` is a department or district)
LEVEL_ALIASES = {"county": "department", "adm0": "country", "adm1": "region", "adm2": "department"}
CODE_FIELDS = ("shapeID", "wof_id", "code", "id")
NAME_FIELDS = ("shapeName", "wof_name", "name", "NAME")
COUNTRY_FIELDS = ("shapeGroup", "iso_country", "country")
# a WKT/WKB limit: many thousand features are fine, but one list of errors is cut at this length
SHOWN_ERRORS = 20
SHOWN_ROWS = 20


class BoundaryError(PlaceError):
    """A boundary file cannot be imported; the message names the file and each feature
    (``places.boundaries_refused``)."""

    KEY = "places.boundaries_refused"


@dataclass
class BoundaryFeature:
    """One checked feature: position in the file (from 1), our code, name, level, parent
    reference (our code, or None) and geometry in EPSG:4326."""

    position: int
    code: str
    name: str
    level: str
    parent_code: str | None
    geometry: shapely.Geometry
    repaired: bool = False


@dataclass
class BoundarySet:
    """A checked boundary file, ready to import."""

    source: str
    country: Country
    features: list[BoundaryFeature]
    reprojected_from: str | None = None
    repaired: int = 0


def read_boundaries(
    path: str | Path,
    *,
    level: str | None = None,
    country_code: str | None = None,
    code_field: str | None = None,
    name_field: str | None = None,
    parent_field: str | None = None,
    level_field: str | None = None,
    layer: str | None = None,
    crs: str | None = None,
    repair: bool = False,
    known_country_geom: Callable[[Country], shapely.Geometry | None] | None = None,
) -> BoundarySet:
    """Open a boundary file and check every feature; raise :class:`BoundaryError` listing all the
    features in trouble.

    Parameters
    ----------
    path:
        A ``.geojson``/``.json``, a zipped shapefile (``.zip``, read as ``zip://``), a ``.shp`` or
        a ``.gpkg`` (``layer`` names the layer when it holds several).
    level:
        The level of every feature (``region``, ``department``, ``district``...); or
        ``level_field`` names a field holding it (default ``wof_placetype`` when present).
    country_code:
        ISO alpha-3 or alpha-2; default from ``shapeGroup``/``iso_country`` when the file has it.
    crs:
        The CRS of coordinates when the file declares none (or declares a wrong one), e.g.
        ``EPSG:32630``. A projected CRS is reprojected to EPSG:4326.
    repair:
        Repair invalid polygons with ``shapely.make_valid`` (never done without being asked).
    known_country_geom:
        Returns the country's imported boundary, if any: features must then lie inside it too.

    The checks, each of every feature before the next (:func:`_checked_geometry`,
    :func:`_in_degrees`, :func:`_check_extent`, :func:`_features`): 1. geometry, 2. coordinates,
    3. extent, 4. fields.

    Examples
    --------
    >>> found = read_boundaries("shared/data/boundaries/CIV-ADM2.geojson", level="department")
    ... # doctest: +SKIP
    >>> len(found.features), found.features[0].code  # doctest: +SKIP
    (33, 'CIV-ADM2-2-0-0-B1')
    """
    source = Path(str(path).removeprefix("zip://")).name
    gdf = _open(path, layer, source)
    if len(gdf) == 0:
        raise BoundaryError(f"{source}: the file holds no features.")
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    code_field = _field(code_field, CODE_FIELDS, columns, source, "code", "--code-field")
    name_field = _field(name_field, NAME_FIELDS, columns, source, "name", "--name-field")
    if parent_field is None and "wof_parent_id" in columns:
        parent_field = "wof_parent_id"
    elif parent_field is not None and parent_field not in columns:
        raise BoundaryError(f"{source}: no field {parent_field!r}; fields: {', '.join(columns)}.")
    if level is None:
        if level_field is None and "wof_placetype" in columns:
            level_field = "wof_placetype"
        if level_field is None:
            raise BoundaryError(
                f"{source}: say which level the areas are (--level region/department/district), "
                "or name the field that holds it (--level-field)."
            )
        if level_field not in columns:
            raise BoundaryError(
                f"{source}: no field {level_field!r}; fields: {', '.join(columns)}."
            )
    the_country = _country(gdf, columns, country_code, source)
    label = _labeller(gdf, code_field, name_field)

    declared = _declare_crs(gdf, crs, source)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    repaired = _checked_geometry(geoms, label, repair, source)
    geoms, reprojected_from = _in_degrees(geoms, declared, label, source)
    _check_extent(geoms, the_country, known_country_geom, label, source)
    fields = (code_field, name_field, level, level_field, parent_field)
    features = _features(gdf, geoms, the_country, fields, label, source)
    return BoundarySet(source, the_country, features, reprojected_from, repaired)


def _checked_geometry(geoms: np.ndarray, label, repair: bool, source: str) -> int:
    """1. Every geometry present, polygonal and valid, or repaired when asked (in place);
    returns how many were repaired."""
    problems: list[str] = []
    repaired = 0
    # 1. geometry: present, polygonal, valid (or repaired when asked)
    for i, geom in enumerate(geoms):
        if geom is None or shapely.is_empty(geom):
            problems.append(f"{label(i)}: no geometry")
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(f"{label(i)}: a {geom.geom_type}, not a polygon")
            continue
        if not shapely.is_valid(geom):
            why = explain_validity(geom)
            if not repair:
                problems.append(f"{label(i)}: invalid polygon ({why}); repair it with --repair")
                continue
            fixed = _polygonal(shapely.make_valid(geom))
            if fixed is None:
                problems.append(f"{label(i)}: invalid polygon ({why}) and nothing is left repaired")
                continue
            geoms[i] = fixed
            repaired += 1
    if problems:
        raise _error(source, "bad geometry", problems)
    return repaired


def _in_degrees(geoms: np.ndarray, declared: CRS, label, source: str) -> tuple:
    """2. Coordinates in degrees where the CRS says degrees, then into EPSG:4326: ``(geometries,
    the CRS they were reprojected from or None)``."""
    problems: list[str] = []
    # 2. coordinates: degrees where the CRS says degrees, then into EPSG:4326
    reprojected_from = None
    if declared.is_geographic:
        for i, geom in enumerate(geoms):
            minx, miny, maxx, maxy = shapely.bounds(geom)
            if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
                problems.append(
                    f"{label(i)}: coordinates up to ({maxx:.0f}, {maxy:.0f}) are not degrees, "
                    f"though the file's CRS ({declared.to_string()}) is in degrees: projected "
                    "metres? Declare the real CRS with --crs"
                )
        if problems:
            raise _error(source, "coordinates do not match the CRS", problems)
        if not declared.equals(CRS.from_epsg(4326)):
            geoms = _reproject(geoms, declared)
            reprojected_from = declared.to_string()
    else:
        geoms = _reproject(geoms, declared)
        reprojected_from = declared.to_string()
        for i, geom in enumerate(geoms):
            if not np.isfinite(shapely.bounds(geom)).all():
                problems.append(f"{label(i)}: cannot be reprojected from {reprojected_from}")
        if problems:
            raise _error(source, "coordinates do not match the CRS", problems)
    return geoms, reprojected_from


def _check_extent(geoms: np.ndarray, the_country: Country, known_country_geom, label, source):
    """3. Every feature inside the country (and inside its imported boundary, if any)."""
    problems: list[str] = []
    # 3. extent: inside the country (and inside its imported boundary, when there is one)
    outline = known_country_geom(the_country) if known_country_geom else None
    if outline is not None:
        outline = shapely.buffer(outline, 0.05)  # borders drawn by different sources differ
        shapely.prepare(outline)
    for i, geom in enumerate(geoms):
        bounds = tuple(shapely.bounds(geom))
        if the_country.contains_bounds(bounds):
            if outline is not None and not shapely.within(geom.representative_point(), outline):
                problems.append(f"{label(i)}: outside the imported boundary of {the_country.name}")
            continue
        minx, miny, maxx, maxy = bounds
        if the_country.contains_bounds((miny, minx, maxy, maxx)):
            problems.append(
                f"{label(i)}: longitude and latitude look swapped (x {minx:.2f} to {maxx:.2f}, "
                f"y {miny:.2f} to {maxy:.2f})"
            )
        else:
            w, s, e, n = the_country.extent
            problems.append(
                f"{label(i)}: outside {the_country.name} (x {minx:.2f} to {maxx:.2f}, "
                f"y {miny:.2f} to {maxy:.2f}; the country is x {w} to {e}, y {s} to {n})"
            )
    if problems:
        raise _error(source, "features outside the country", problems)


def _features(gdf, geoms, the_country: Country, fields: tuple, label, source: str) -> list:
    """4. The features: a code and a name for each, codes unique, a known level. ``fields``:
    ``(code_field, name_field, level, level_field, parent_field)``."""
    code_field, name_field, level, level_field, parent_field = fields
    problems: list[str] = []
    # 4. fields: a code and a name for each, codes unique, a known level
    features: list[BoundaryFeature] = []
    seen: dict[str, int] = {}
    raw_codes = [_text(v) for v in gdf[code_field]]
    for i, geom in enumerate(geoms):
        raw, name = raw_codes[i], _text(gdf[name_field].iloc[i])
        if not raw:
            problems.append(f"{label(i)}: no code in field {code_field!r}")
            continue
        if not name:
            problems.append(f"{label(i)}: no name in field {name_field!r}")
            continue
        code = area_code(the_country, code_field, raw)
        if code in seen:
            problems.append(f"{label(i)}: code {raw!r} again (first at feature {seen[code]})")
            continue
        if len(code) > 64:
            problems.append(f"{label(i)}: code {code!r} is longer than 64 characters")
            continue
        seen[code] = i + 1
        feature_level = level or _text(gdf[level_field].iloc[i]).lower()
        feature_level = LEVEL_ALIASES.get(feature_level, feature_level)
        if not feature_level:
            problems.append(f"{label(i)}: no level in field {level_field!r}")
            continue
        if feature_level == "country":
            problems.append(f"{label(i)}: country boundaries are not areas to import here")
            continue
        parent = None
        if parent_field is not None:
            parent_raw = _text(gdf[parent_field].iloc[i])
            if parent_raw and parent_raw not in ("-1", "0"):
                parent = area_code(the_country, code_field, parent_raw)
        features.append(BoundaryFeature(i + 1, code, name, feature_level, parent, geom))
    if problems:
        raise _error(source, "bad fields", problems)
    return features


def country_outline(session: Session) -> Callable[[Country], shapely.Geometry | None]:
    """For :func:`read_boundaries`: the imported boundary of a country's area, if any."""

    def outline(the_country: Country) -> shapely.Geometry | None:
        wkb = session.scalar(
            select(Area.geom).where(Area.country_code == the_country.iso3, Area.level == "country")
        )
        return shapely.from_wkb(wkb) if wkb else None

    return outline


def area_code(the_country: Country, code_field: str, raw: str) -> str:
    """Our code for a feature's code: unique across countries and sources, stable across imports.

    >>> from geo.countries import country
    >>> area_code(country("CIV"), "shapeID", "CIV-ADM2-2_0_0-B1")
    'CIV-ADM2-2-0-0-B1'
    >>> area_code(country("CIV"), "wof_id", "1108784981")
    'CI-WOF-1108784981'
    >>> area_code(country("GHA"), "pcode", "GH0101")
    'GH-GH0101'
    """
    if code_field == "wof_id":
        return f"{the_country.iso2}-WOF-{raw.removesuffix('.0')}"
    code = slug(raw)
    if code.startswith(the_country.iso3 + "-"):
        return code
    if code.startswith(the_country.iso2):
        return code if code.startswith(the_country.iso2 + "-") else f"{the_country.iso2}-{code}"
    return f"{the_country.iso2}-{code}"


# words that names of areas carry or drop depending on the source
_FILLER = {"DISTRICT", "AUTONOME", "DE", "D", "DU", "DES", "LA", "LE", "REGION", "MUNICIPAL"}


def name_key(name: str) -> str:
    """A name for matching: slug without filler words (the '*' some sources use when they cut a
    name ends it).

    >>> name_key("District Autonome D'Abidjan"), name_key("Haut-Sassa")
    ('ABIDJAN', 'HAUT-SASSA')
    """
    words = [w for w in slug(name.replace("*", " ")).split("-") if w and w not in _FILLER]
    return "-".join(words) or slug(name)


def _open(path: str | Path, layer: str | None, source: str) -> gpd.GeoDataFrame:
    text = str(path)
    if text.lower().endswith(".zip") and not text.startswith("zip://"):
        text = "zip://" + text
    if not os.path.exists(text.removeprefix("zip://")):
        raise BoundaryError(f"{source}: no such file.")
    if text.startswith("zip://"):
        # GDAL inflates what it is given: a zip bomb or a path out of the archive stops here
        try:
            check_zip(text.removeprefix("zip://"), source, refuse_nested=True)
        except UnsafeFile as e:
            raise BoundaryError(str(e)) from None
    try:
        layers = pyogrio.list_layers(text)
    except Exception as e:  # pyogrio raises its own DataSourceError and others
        raise BoundaryError(f"{source}: cannot be read as a boundary file ({e}).") from None
    names = [str(n) for n in layers[:, 0]]
    if layer is None and len(names) > 1:
        raise BoundaryError(f"{source}: holds {len(names)} layers; choose one with --layer: "
                            f"{', '.join(names)}.")  # fmt: skip
    if layer is not None and layer not in names:
        raise BoundaryError(f"{source}: no layer {layer!r}; layers: {', '.join(names)}.")
    try:
        return gpd.read_file(text, layer=layer, engine="pyogrio")
    except Exception as e:
        raise BoundaryError(f"{source}: cannot be read as a boundary file ({e}).") from None


def _field(given, defaults, columns, source, what, option) -> str:
    if given is not None:
        if given not in columns:
            raise BoundaryError(f"{source}: no field {given!r}; fields: {', '.join(columns)}.")
        return given
    for name in defaults:
        if name in columns:
            return name
    raise BoundaryError(
        f"{source}: which field holds each area's {what}? Name it with {option} "
        f"(fields: {', '.join(columns)})."
    )


def _country(gdf, columns, country_code, source) -> Country:
    try:
        if country_code:
            return country(country_code)
        for name in COUNTRY_FIELDS:
            if name in columns:
                values = sorted({_text(v) for v in gdf[name]} - {""})
                if len(values) == 1:
                    return country(values[0])
                if len(values) > 1:
                    raise BoundaryError(
                        f"{source}: field {name!r} names several countries ({', '.join(values)}); "
                        "import one country at a time (--country)."
                    )
    except LookupError as e:
        raise BoundaryError(f"{source}: {e}") from None
    raise BoundaryError(f"{source}: which country is this? Say it with --country (e.g. CIV).")


def _declare_crs(gdf, crs: str | None, source: str) -> CRS:
    if crs:
        try:
            declared = CRS.from_user_input(crs)
        except Exception as e:
            raise BoundaryError(f"{source}: {crs!r} is not a CRS ({e}).") from None
        gdf.set_crs(declared, allow_override=True, inplace=True)
        return declared
    if gdf.crs is None:
        raise BoundaryError(
            f"{source}: the file declares no coordinate reference system (CRS). If its "
            "coordinates are longitude/latitude degrees, say --crs EPSG:4326; otherwise give "
            "their CRS, e.g. --crs EPSG:32630."
        )
    return CRS.from_user_input(gdf.crs)


def _reproject(geoms: np.ndarray, source_crs: CRS) -> np.ndarray:
    series = gpd.GeoSeries(geoms, crs=source_crs).to_crs(4326)
    return np.asarray(series.values, dtype=object)


def _polygonal(geom) -> shapely.Geometry | None:
    """The polygons of a repaired geometry (make_valid may return lines or points as well)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [
        p
        for p in shapely.get_parts(geom)
        if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty
    ]
    if not parts:
        return None
    return shapely.union_all(parts)


def _labeller(gdf, code_field, name_field) -> Callable[[int], str]:
    codes, names = list(gdf[code_field]), list(gdf[name_field])

    def label(i: int) -> str:
        return f"feature {i + 1} ({_text(names[i]) or 'no name'!r}, {_text(codes[i]) or 'no code'})"

    return label


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if np.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    # a NUL (padding some writers leave in DBF fields, or a hostile name) no text column can hold
    return str(value).replace("\x00", "").strip()


def _error(source: str, what: str, problems: list[str]) -> BoundaryError:
    shown = "; ".join(problems[:SHOWN_ERRORS])
    more = f"; and {len(problems) - SHOWN_ERRORS} more" if len(problems) > SHOWN_ERRORS else ""
    return BoundaryError(
        f"{source}: {len(problems)} feature(s) cannot be imported ({what}), nothing was "
        f"imported: {shown}{more}."
    )


def load_area_geometries(session: Session, area_ids=None) -> dict[int, shapely.Geometry]:
    """``{area id: polygon}`` of the areas with an imported boundary (all, or ``area_ids``)."""
    query = select(Area).options(undefer(Area.geom)).where(Area.geom.is_not(None))
    if area_ids is not None:
        query = query.where(Area.id.in_(list(area_ids)))
    return {a.id: shapely.from_wkb(a.geom) for a in session.scalars(query)}


# --- villages: points (CSV lat/lon) or polygons (CSV WKT, GeoJSON, GeoPackage) -----------


@dataclass
class Place:
    """A village as read from a file: where it is in the file, code, name, point, own polygon
    and area reference (empty for none)."""

    where: str  # "line 12" or "feature 3"
    code: str
    name: str
    lon: float
    lat: float
    polygon: object | None  # shapely polygon in EPSG:4326, or None
    area_ref: str


def read_places(path, source, id_column, name_column, lat_column, lon_column, area_column,
                 wkt_column, layer) -> tuple[list[Place], set[str]]:  # fmt: skip
    """Rows of a CSV or features of a vector file as places, every one checked; raises one
    :class:`PlaceError` listing the bad ones."""
    if str(path).lower().endswith(".csv"):
        return _read_csv_places(path, source, id_column, name_column, lat_column, lon_column,
                                area_column, wkt_column)  # fmt: skip
    return _read_vector_places(path, source, id_column, name_column, area_column, layer)


def _read_csv_places(path, source, id_column, name_column, lat_column, lon_column, area_column,
                     wkt_column) -> tuple[list[Place], set[str]]:  # fmt: skip
    try:
        # UTF-8 (or UTF-16 with a byte-order mark); else the line and column of the first bad byte
        text = decode_text(Path(path).read_bytes(), source)
    except UnsafeFile as e:
        raise PlaceError(str(e)) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    needed = [id_column, name_column, area_column] + (
        [wkt_column] if wkt_column else [lat_column, lon_column]
    )
    missing = [c for c in needed if c and c not in (reader.fieldnames or [])]
    if missing:
        raise PlaceError(
            f"{source}: missing column(s) {', '.join(missing)} "
            f"(columns: {', '.join(reader.fieldnames or [])})."
        )
    raws = [(reader.line_num, row) for row in reader]
    places, bad, countries = [], [], set()
    for line, raw in raws:
        ident = (raw.get(id_column) or "").strip()
        name = (raw.get(name_column) or "").strip()
        where = f"line {line}"
        label = f"{where} ({ident or 'no id'}, {name!r})"
        if raw.get("country"):
            countries.add(raw["country"].strip())
        try:
            code = _village_code(id_column, ident)
        except ValueError:
            bad.append(f"{label}: id {ident!r} is not a positive whole number")
            continue
        if not code or len(code) > 64:
            bad.append(f"{label}: no id" if not code else f"{label}: id longer than 64 characters")
            continue
        if not name:
            bad.append(f"{label}: no name")
            continue
        polygon = None
        if wkt_column:
            text = (raw.get(wkt_column) or "").strip()
            try:
                polygon = shapely.from_wkt(text) if text else None
            except shapely.errors.GEOSException as e:
                bad.append(f"{label}: {wkt_column} is not WKT ({e})")
                continue
            problem = _polygon_problem(polygon, explain_validity)
            if problem:
                bad.append(f"{label}: {problem}")
                continue
            point = polygon.representative_point()
            lon, lat = point.x, point.y
        else:
            lat_text = (raw.get(lat_column) or "").strip()
            lon_text = (raw.get(lon_column) or "").strip()
            if not lat_text or not lon_text:
                bad.append(f"{label}: coordinates missing")
                continue
            try:
                lat, lon = float(lat_text), float(lon_text)
            except ValueError:
                bad.append(f"{label}: coordinates {lat_text!r}, {lon_text!r} are not numbers")
                continue
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                bad.append(f"{label}: lat {lat}, lon {lon} are not degrees")
                continue
        area_ref = (raw.get(area_column) or "").strip() if area_column else ""
        places.append(Place(where, code, name, lon, lat, polygon, area_ref))
    if bad:
        raise_rows(source, bad)
    return places, countries


def _polygon_problem(geom, explain) -> str | None:
    if geom is None or geom.is_empty:
        return "no geometry"
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        return f"a {geom.geom_type}, not a polygon"
    if not geom.is_valid:
        return f"invalid polygon ({explain(geom)})"
    return None


def _read_vector_places(path, source, id_column, name_column, area_column, layer):
    text = str(path)
    if text.lower().endswith(".zip") and not text.startswith("zip://"):
        text = "zip://" + text
    if text.startswith("zip://"):
        # GDAL inflates what it is given: a zip bomb or a path out of the archive stops here
        try:
            check_zip(text.removeprefix("zip://"), source, refuse_nested=True)
        except UnsafeFile as e:
            raise PlaceError(str(e)) from None
    try:
        names = [str(n) for n in pyogrio.list_layers(text)[:, 0]]
        if layer is None and len(names) > 1:
            raise PlaceError(f"{source}: holds layers {', '.join(names)}; choose one (--layer).")
        gdf = gpd.read_file(text, layer=layer, engine="pyogrio")
    except PlaceError:
        raise
    except Exception as e:
        raise PlaceError(f"{source}: cannot be read ({e}).") from None
    if gdf.crs is None:
        raise PlaceError(f"{source}: the file declares no coordinate reference system (CRS).")
    if not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs(4326)
    for column in (id_column, name_column, area_column):
        if column and column not in gdf.columns:
            raise PlaceError(
                f"{source}: missing field {column} (fields: {', '.join(gdf.columns)})."
            )
    places, bad, countries = [], [], set()
    if "country" in gdf.columns:
        countries = {str(v).strip() for v in gdf["country"].dropna()} - {""}
    for i, (ident, name, geom) in enumerate(
        zip(gdf[id_column], gdf[name_column], gdf.geometry, strict=True)
    ):
        # a NUL (DBF padding, or a hostile name) no text column can hold: dropped
        ident = "" if ident is None else str(ident).replace("\x00", "").strip().removesuffix(".0")
        name = "" if name is None else str(name).replace("\x00", "").strip()
        label = f"feature {i + 1} ({ident or 'no id'}, {name!r})"
        try:
            code = _village_code(id_column, ident)
        except ValueError:
            bad.append(f"{label}: id {ident!r} is not a positive whole number")
            continue
        if not code or not name:
            bad.append(f"{label}: no id" if not code else f"{label}: no name")
            continue
        if geom is not None and geom.geom_type == "Point":
            polygon, point = None, geom
        else:
            problem = _polygon_problem(geom, explain_validity)
            if problem:
                bad.append(f"{label}: {problem}")
                continue
            polygon, point = geom, geom.representative_point()
        area_ref = ""
        if area_column and gdf[area_column].iloc[i] is not None:
            area_ref = str(gdf[area_column].iloc[i]).strip()
        places.append(Place(f"feature {i + 1}", code, name, point.x, point.y, polygon, area_ref))
    if bad:
        raise_rows(source, bad)
    return places, countries


def raise_rows(source: str, bad: list[str]) -> None:
    """Raise one :class:`geo.countries.PlaceError` listing the villages in ``bad`` (the first
    :data:`SHOWN_ROWS` of them), if any."""
    if bad:
        shown = "; ".join(bad[:SHOWN_ROWS])
        more = f"; and {len(bad) - SHOWN_ROWS} more" if len(bad) > SHOWN_ROWS else ""
        raise PlaceError(
            f"{source}: {len(bad)} village(s) cannot be imported, nothing was imported: "
            f"{shown}{more}."
        )


def _village_code(id_column: str, raw: str) -> str:
    if id_column == "wof_id":
        return village_code(raw)
    return raw
