"""Administrative boundaries from GeoJSON, zipped shapefiles and GeoPackages.

Reading is kept apart from writing: :func:`read_boundaries` opens a file and checks every feature
(CRS, geometry, extent, fields) without touching the database, and raises one
:class:`BoundaryError` that lists every feature in trouble; :func:`import_boundaries` then creates
or updates the areas in the caller's transaction, so a bad file writes nothing.

Codes. An area's code comes from a code field (default ``shapeID`` for geoBoundaries, ``wof_id``
for Who's On First), made unique across countries and stable across imports:
``CIV-ADM2-2_0_0-B1`` becomes ``CIV-ADM2-2-0-0-B1`` (it already names its country), a WOF id
``1108784981`` becomes ``CI-WOF-1108784981``, anything else ``<ISO2>-<slug>``.

Matching. A feature whose code exists updates that area's boundary. Otherwise an area of the same
country and level with the same name (accents, case and words such as "District Autonome de"
ignored; a name the source cut short, such as WOF's ``Haut-Sassa``, matches the full one) gets the
boundary instead of a duplicate being created: so geoBoundaries' CIV-ADM2 attaches polygons to the
departments that :func:`clms.places.load_localities` made from the WOF localities. A name that
would match two areas, or two features, is not matched (the feature becomes a new area, and the
result says so).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
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
from clms.places import PlaceError, slug
from clms.safety import UnsafeFile, check_zip
from geo.countries import Country, country

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

Progress = Callable[[int, int], None]


class BoundaryError(PlaceError):
    """A boundary file cannot be imported; the message names the file and each feature."""


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


@dataclass
class BoundaryResult:
    """What an import did: areas created, areas whose boundary was set or replaced, and notes."""

    created: int = 0
    updated: int = 0
    matched_by_name: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people, e.g. ``33 areas: 0 created, 33 updated (33 matched by name)``."""
        total = self.created + self.updated
        text = f"{total} areas: {self.created} created, {self.updated} updated"
        if self.matched_by_name:
            text += f" ({self.matched_by_name} matched by name)"
        return text


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
    return BoundarySet(source, the_country, features, reprojected_from, repaired)


def import_boundaries(
    session: Session,
    boundaries: BoundarySet,
    progress: Progress | None = None,
    *,
    update_only: bool = False,
) -> BoundaryResult:
    """Create or update the areas of a checked :class:`BoundarySet` in ``session`` (flushed, not
    committed: the caller commits once, or rolls back for a dry run).

    ``update_only``: only attach boundaries to areas that exist (by code or name); features that
    match none are left out and counted in ``skipped`` (the demo loads a few regions' areas and
    gives them their polygons from a file of the whole country).

    Each feature's parent: the feature its parent field names, else an existing area with that
    code, else the deepest area of a higher level (already imported, or in the same file) whose
    polygon holds the feature's representative point, else the country area (created if
    missing). An area that exists keeps its parent.
    """
    the_country = boundaries.country
    result = BoundaryResult()
    areas = session.scalars(select(Area).where(Area.country_code == the_country.iso3)).all()
    by_code = {a.code: a for a in session.scalars(select(Area))}
    country_area = next((a for a in areas if a.level == "country"), None)
    if country_area is None:
        country_area = Area(
            code=_free_code(the_country.iso2, by_code),
            name=the_country.name,
            level="country",
            country_code=the_country.iso3,
        )
        session.add(country_area)
        session.flush()
        by_code[country_area.code] = country_area
        result.created += 1

    # name matches decided for the whole file first: a name matched twice is no match
    by_level_key: dict[tuple[str, str], list[Area]] = {}
    for a in areas:
        by_level_key.setdefault((a.level, name_key(a.name)), []).append(a)
    wanted: dict[int, list[BoundaryFeature]] = {}
    matches: dict[str, Area] = {}
    for f in boundaries.features:
        if f.code in by_code:
            continue
        candidates = _name_candidates(by_level_key, f.level, name_key(f.name))
        if len(candidates) == 1:
            wanted.setdefault(candidates[0].id, []).append(f)
        elif len(candidates) > 1:
            names = ", ".join(f"{a.code}" for a in candidates)
            result.notes.append(
                f"feature {f.position} ({f.name!r}) matches several areas by name ({names}); "
                f"created as {f.code}"
            )
    for area_id, feats in wanted.items():
        area = next(a for a in areas if a.id == area_id)
        if len(feats) == 1:
            matches[feats[0].code] = area
        else:
            listed = ", ".join(f"feature {f.position} ({f.name!r})" for f in feats)
            result.notes.append(f"{listed} all match area {area.code} by name; created as new")

    # containment candidates: imported polygons of this country, and this file's, by rank
    polygons: list[tuple[int, shapely.Geometry, str]] = []
    geoms = dict(
        session.execute(
            select(Area.id, Area.geom).where(
                Area.country_code == the_country.iso3, Area.geom.is_not(None)
            )
        ).all()
    )
    id_to_area = {a.id: a for a in areas}
    for area_id, wkb in geoms.items():
        a = id_to_area[area_id]
        polygons.append((_rank(a.level), shapely.from_wkb(wkb), a.code))
    for f in boundaries.features:
        code = matches[f.code].code if f.code in matches else f.code
        polygons.append((_rank(f.level), f.geometry, code))
    shapely.prepare([g for _, g, _ in polygons])

    file_codes = {f.code for f in boundaries.features}
    ordered = sorted(boundaries.features, key=lambda f: (_rank(f.level), f.position))
    total = len(ordered)
    for done, f in enumerate(ordered, start=1):
        area = by_code.get(f.code) or matches.get(f.code)
        wkb = shapely.to_wkb(f.geometry)
        if area is not None:
            if area.country_code != the_country.iso3 or area.level != f.level:
                raise BoundaryError(
                    f"{boundaries.source}: feature {f.position} ({f.name!r}): code {area.code} "
                    f"exists as a {area.level} of {area.country_code}, not a {f.level} of "
                    f"{the_country.iso3}."
                )
            area.geom = wkb
            if f.code in matches:
                result.matched_by_name += 1
                if _cut_short(area.name, f.name):
                    area.name = f.name
            result.updated += 1
        elif update_only:
            result.skipped += 1
        else:
            parent = None
            if f.parent_code is not None and f.parent_code in file_codes | set(by_code):
                parent = by_code.get(f.parent_code) or matches.get(f.parent_code)
            if parent is None:
                parent = _container(f, polygons, by_code) or country_area
            area = Area(
                code=f.code,
                name=f.name,
                level=f.level,
                country_code=the_country.iso3,
                parent_id=parent.id,
                geom=wkb,
            )
            session.add(area)
            session.flush()
            by_code[f.code] = area
            result.created += 1
        if progress is not None and (done % 25 == 0 or done == total):
            progress(done, total)
    if result.skipped:
        result.notes.append(f"{result.skipped} feature(s) match no existing area: left out")
    if boundaries.repaired:
        result.notes.append(f"{boundaries.repaired} invalid polygon(s) repaired (make_valid)")
    if boundaries.reprojected_from:
        result.notes.append(f"reprojected from {boundaries.reprojected_from} to EPSG:4326")
    session.flush()
    return result


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


def _name_candidates(by_level_key, level: str, key: str) -> list:
    exact = by_level_key.get((level, key), [])
    if exact:
        return exact
    # a name cut short by a shapefile (ten characters) or by the source ("Yamousso*")
    found = []
    for (lvl, other), areas in by_level_key.items():
        if lvl != level or min(len(other), len(key)) < 7:
            continue
        if other.startswith(key) or key.startswith(other):
            found.extend(areas)
    return found


def _cut_short(old: str, new: str) -> bool:
    old_key, new_key = name_key(old), name_key(new)
    return len(old_key) < len(new_key) and new_key.startswith(old_key)


def _container(f: BoundaryFeature, polygons, by_code) -> Area | None:
    """The deepest area of a higher level whose polygon holds the feature's inner point."""
    point = f.geometry.representative_point()
    best = None
    for rank, geom, code in polygons:
        if rank >= _rank(f.level) or code == f.code or code not in by_code:
            continue
        if shapely.contains(geom, point) and (best is None or rank > best[0]):
            best = (rank, code)
    return by_code[best[1]] if best else None


def _rank(level: str) -> int:
    return LEVEL_RANK.get(level, 3)


def _free_code(code: str, by_code: dict) -> str:
    if code not in by_code:
        return code
    n = 2
    while f"{code}-{n}" in by_code:
        n += 1
    return f"{code}-{n}"


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
