"""Administrative areas and villages from public locality lists (Who's On First, shared/data).

The Côte d'Ivoire file (``shared/data/localities/wof_ci_localities.csv``) gives every locality a
``region_name`` and a ``county_name``. They become areas ``country > region > department``:

* ``CI``                     the country
* ``CI-<REGION>``            from ``region_name``, e.g. ``CI-BAS-SASSANDRA``
* ``CI-<REGION>-<COUNTY>``   from ``county_name``, e.g. ``CI-BAS-SASSANDRA-NAWA``

Codes are upper-case ASCII slugs of the names exactly as the file spells them, so they are stable
whatever display names are used. (In WOF's file, ``region`` is the former region, now mostly a
district, and ``county`` the present-day région; the file's county names are cut at ten characters
by the shapefile they come from, e.g. ``Haut-Sassa``; :func:`county_names_from_geoboundaries`
recovers the full names for display from the geoBoundaries ADM2 file.)

A village's code is ``V`` + its WOF id written in base 36 (``V1209251639`` would be ten digits;
``VJZYGJB`` is seven characters, and ``int(code[1:], 36)`` gives the WOF id back). WOF ids are
unique worldwide, so codes from different countries' files never collide.

:func:`load_localities` is idempotent: an area or village whose code exists is left as it is.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.models import Area, Village
from clms.safety import UnsafeFile, check_zip, decode_text

COUNTRY_CODE = "CI"
COUNTRY_ISO3 = "CIV"
COUNTRY_NAME = "Côte d'Ivoire"

# Côte d'Ivoire's extent (about 4.36-10.74 N, 8.60-2.49 W) with a small margin for points on the
# border or the coast: (west, south, east, north) in degrees.
CI_BBOX = (-8.65, 4.30, -2.45, 10.78)

# The cocoa belt of the south-west and centre-west, as the WOF file names its regions
# (Bas-Sassandra holds the present-day régions Nawa, San-Pédro and Gbôklé; Fromager is Gôh;
# Sud-Bandama is Lôh-Djiboua; Moyen-Comoe is Indénié-Djuablin).
COCOA_BELT_REGIONS = ["Bas-Sassandra", "Haut-Sassandra", "Fromager", "Sud-Bandama", "Moyen-Comoe"]

Progress = Callable[[int, int], None]


class PlaceError(ValueError):
    """Places cannot be loaded as asked; the message says which rows or names and why."""


@dataclass(frozen=True)
class BadRow:
    """A CSV row that was not loaded: its line number in the file, id, name and the reason."""

    line: int
    wof_id: str
    name: str
    reason: str

    def __str__(self) -> str:
        where = f"wof_id {self.wof_id or '?'}, {self.name or 'no name'!r}"
        return f"line {self.line} ({where}): {self.reason}"


class LoadResult(tuple):
    """``(n_areas, n_villages)`` created, with ``.skipped``: the :class:`BadRow` list left out."""

    skipped: list[BadRow]

    def __new__(cls, n_areas: int, n_villages: int, skipped: list[BadRow]):
        obj = super().__new__(cls, (n_areas, n_villages))
        obj.skipped = skipped
        return obj

    @property
    def areas(self) -> int:
        return self[0]

    @property
    def villages(self) -> int:
        return self[1]


def slug(name: str) -> str:
    """Upper-case ASCII code part of a name: accents dropped, anything else becomes ``-``.

    >>> slug("N'zi-Comoé"), slug("San Pedro"), slug("  Gôh ")
    ('N-ZI-COMOE', 'SAN-PEDRO', 'GOH')
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.encode("ascii", "ignore").decode("ascii").upper()
    return re.sub(r"[^A-Z0-9]+", "-", text).strip("-")


def village_code(wof_id: str | int) -> str:
    """The village code for a WOF id: ``V`` + the id in base 36.

    >>> village_code(1209251639), int(village_code(1209251639)[1:], 36)
    ('VJZYGJB', 1209251639)
    """
    number = int(wof_id)
    if number <= 0:
        raise ValueError(f"WOF id must be a positive integer, got {wof_id!r}")
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return "V" + out


def county_names_from_geoboundaries(
    geojson_path: str | Path, names: Iterable[str]
) -> dict[str, str]:
    """Full names for county names the WOF file cut at ten characters (``Haut-Sassa``).

    ``geojson_path`` is geoBoundaries' CIV-ADM2 file (present-day régions, ``shapeName``). A name
    is completed only when exactly one shapeName starts with it; others are left out.
    """
    with open(geojson_path, encoding="utf-8") as fh:
        shape_names = [f["properties"]["shapeName"] for f in json.load(fh)["features"]]
    full: dict[str, str] = {}
    for name in names:
        if len(name) != 10:  # DBF cuts at exactly ten characters
            continue
        matches = [s for s in shape_names if slug(s).startswith(slug(name)) and s != name]
        if len(matches) == 1:
            full[name] = matches[0]
    return full


@dataclass
class _Row:
    line: int
    wof_id: str
    name: str
    lat: float
    lon: float
    region: str
    county: str


def _read_rows(csv_path: str | Path) -> tuple[list[dict], list[int]]:
    with open(csv_path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"wof_id", "name", "lat", "lon", "region_name", "county_name"} - set(
            reader.fieldnames or []
        )
        if missing:
            raise PlaceError(f"{csv_path}: missing column(s) {', '.join(sorted(missing))}.")
        rows, lines = [], []
        for row in reader:
            rows.append(row)
            lines.append(reader.line_num)
    return rows, lines


def _check_row(raw: dict, line: int) -> _Row | BadRow:
    wof_id = (raw.get("wof_id") or "").strip()
    name = (raw.get("name") or "").strip()

    def bad(reason: str) -> BadRow:
        return BadRow(line, wof_id, name, reason)

    if not wof_id.isdigit() or int(wof_id) <= 0:
        return bad(f"wof_id {wof_id!r} is not a positive whole number")
    if not name:
        return bad("no name")
    lat_text, lon_text = (raw.get("lat") or "").strip(), (raw.get("lon") or "").strip()
    if not lat_text or not lon_text:
        return bad("coordinates missing")
    try:
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        return bad(f"coordinates {lat_text!r}, {lon_text!r} are not numbers")
    west, south, east, north = CI_BBOX
    if not (south <= lat <= north and west <= lon <= east):
        return bad(
            f"coordinates lat {lat}, lon {lon} are outside Côte d'Ivoire "
            f"(lat {south} to {north}, lon {west} to {east})"
        )
    return _Row(
        line,
        wof_id,
        name,
        lat,
        lon,
        (raw.get("region_name") or "").strip(),
        (raw.get("county_name") or "").strip(),
    )


def _select_regions(raws: list[dict], regions: list[str] | None) -> set[str] | None:
    """The slugs asked for, after checking each names a region or department in the file."""
    if regions is None:
        return None
    region_names = sorted({(r.get("region_name") or "").strip() for r in raws} - {""})
    county_names = sorted({(r.get("county_name") or "").strip() for r in raws} - {""})
    known = {slug(n) for n in region_names} | {slug(n) for n in county_names}
    wanted = {slug(n) for n in regions}
    unknown = [n for n in regions if slug(n) not in known or not slug(n)]
    if unknown:
        raise PlaceError(
            f"Unknown region name(s): {', '.join(repr(n) for n in unknown)}. "
            f"Regions in the file: {', '.join(region_names)}. "
            f"Departments (also accepted): {', '.join(county_names)}."
        )
    return wanted


def _pick(rows: list[_Row], max_villages: int | None) -> list[_Row]:
    """At most ``max_villages`` rows, spread evenly over departments (round robin, by WOF id)."""
    if max_villages is None or len(rows) <= max_villages:
        return rows
    groups: dict[tuple[str, str], list[_Row]] = {}
    for row in sorted(rows, key=lambda r: int(r.wof_id)):
        groups.setdefault((slug(row.region), slug(row.county)), []).append(row)
    queues = [groups[k] for k in sorted(groups)]
    picked: list[_Row] = []
    index = 0
    while len(picked) < max_villages:
        for queue in queues:
            if index < len(queue) and len(picked) < max_villages:
                picked.append(queue[index])
        index += 1
    return picked


def load_localities(
    session: Session,
    csv_path: str | Path,
    regions: list[str] | None = None,
    max_villages: int | None = None,
    progress: Progress | None = None,
    *,
    on_error: str = "raise",
    county_names: dict[str, str] | None = None,
) -> LoadResult:
    """Create the areas and villages of ``regions`` from a WOF localities CSV.

    Parameters
    ----------
    regions:
        Region names as the file spells them (``region_name``; accents and case ignored); a
        department name (``county_name``) is accepted too and loads that department only.
        ``None`` loads the whole file (rows without a region go straight under the country).
    max_villages:
        Load at most this many villages, spread evenly over the departments; the choice is stable.
    progress:
        Called as ``progress(done, total)`` while villages are added.
    on_error:
        ``"raise"`` (default): a row with missing or out-of-country coordinates (or no id/name)
        raises :class:`PlaceError` naming every such row, before anything is added.
        ``"skip"``: such rows are left out and listed in the result's ``.skipped``.
    county_names:
        Display names for county names (see :func:`county_names_from_geoboundaries`).

    Returns ``(n_areas, n_villages)`` newly created (a :class:`LoadResult`). Running it again adds
    nothing. Unknown region names raise :class:`PlaceError` listing the names the file has.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if max_villages is not None and max_villages < 0:
        raise ValueError("max_villages must not be negative")
    county_names = county_names or {}
    raws, lines = _read_rows(csv_path)
    wanted = _select_regions(raws, regions)

    good: list[_Row] = []
    bad: list[BadRow] = []
    for raw, line in zip(raws, lines, strict=True):
        if wanted is not None:
            region = slug((raw.get("region_name") or "").strip())
            county = slug((raw.get("county_name") or "").strip())
            if region not in wanted and county not in wanted:
                continue
        checked = _check_row(raw, line)
        (bad if isinstance(checked, BadRow) else good).append(checked)
    if bad and on_error == "raise":
        shown = "; ".join(str(b) for b in bad[:10])
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        raise PlaceError(
            f"{csv_path}: {len(bad)} row(s) cannot be loaded: {shown}{more}. "
            "Fix them, or skip them (on_error='skip')."
        )
    chosen = _pick(good, max_villages)

    existing_areas = {a.code: a for a in session.scalars(select(Area))}
    existing_villages = set(session.scalars(select(Village.code)))
    new_areas = 0

    def area(code: str, name: str, level: str, parent: Area | None) -> Area:
        nonlocal new_areas
        found = existing_areas.get(code)
        if found is not None:
            if found.level != level or (parent is not None and found.parent_id != parent.id):
                raise PlaceError(
                    f"Area code {code} already exists as a {found.level} elsewhere in the "
                    f"hierarchy; it cannot also be the {level} {name!r}."
                )
            return found
        created = Area(code=code, name=name, level=level, country_code=COUNTRY_ISO3, parent=parent)
        session.add(created)
        session.flush()
        existing_areas[code] = created
        new_areas += 1
        return created

    country = area(COUNTRY_CODE, COUNTRY_NAME, "country", None)
    new_villages = 0
    total = len(chosen)
    for done, row in enumerate(chosen, start=1):
        parent = country
        if row.region:
            region_code = f"{COUNTRY_CODE}-{slug(row.region)}"
            parent = area(region_code, row.region, "region", country)
            if row.county:
                name = county_names.get(row.county, row.county)
                parent = area(f"{region_code}-{slug(row.county)}", name, "department", parent)
        code = village_code(row.wof_id)
        if code not in existing_villages:
            session.add(
                Village(code=code, name=row.name, area_id=parent.id, lat=row.lat, lon=row.lon)
            )
            existing_villages.add(code)
            new_villages += 1
        if progress is not None and (done % 50 == 0 or done == total):
            progress(done, total)
    session.flush()
    return LoadResult(new_areas, new_villages, bad)


# --- villages from any file: points (CSV lat/lon) or polygons (CSV WKT, GeoJSON, GeoPackage) ---

#: how far (km) a village point may lie outside every imported area and still be given the
#: nearest one: coastlines and borders of different sources differ by a few km (Ghana's WOF
#: localities and geoBoundaries' districts: 94 of 10,032 points outside, the farthest 9 km)
SNAP_KM = 15.0
KM_PER_DEGREE = 111.32
SHOWN_ROWS = 20


@dataclass
class VillageResult:
    """What a village import did."""

    created: int = 0
    updated: int = 0
    polygons: int = 0
    snapped: list[str] | None = None

    def summary(self) -> str:
        text = f"{self.created + self.updated} villages: {self.created} created, "
        text += f"{self.updated} updated"
        if self.polygons:
            text += f", {self.polygons} with their own polygon"
        if self.snapped:
            text += f"; {len(self.snapped)} outside every area given the nearest one"
        return text


@dataclass
class _Place:
    where: str  # "line 12" or "feature 3"
    code: str
    name: str
    lon: float
    lat: float
    polygon: object | None  # shapely polygon in EPSG:4326, or None
    area_ref: str


def import_villages(
    session: Session,
    path: str | Path,
    *,
    country_code: str | None = None,
    id_column: str = "wof_id",
    name_column: str = "name",
    lat_column: str = "lat",
    lon_column: str = "lon",
    area_column: str | None = None,
    wkt_column: str | None = None,
    layer: str | None = None,
    snap_km: float = SNAP_KM,
    progress: Progress | None = None,
) -> VillageResult:
    """Create or update villages from a CSV of points or polygons, or a GeoJSON/GeoPackage.

    Every row is checked before anything is written; one :class:`PlaceError` lists the rows in
    trouble (line or feature, id, name, reason). The caller commits.

    Parameters
    ----------
    path:
        A ``.csv`` (points from ``lat_column``/``lon_column``, or polygons as WKT in
        ``wkt_column``), or a ``.geojson``/``.json``/``.gpkg``/zipped shapefile of points or
        polygons (in EPSG:4326 or a CRS that is reprojected).
    country_code:
        ISO alpha-3 or alpha-2; default from a ``country`` column holding one value.
    id_column:
        The village's id: a WOF id (column ``wof_id``) becomes ``V`` + base 36 (see
        :func:`village_code`); anything else is the code as written.
    area_column:
        A column holding each village's area code (or a WOF id of an imported WOF area). Rows
        with it empty, and every row when it is not given, get the deepest imported area whose
        polygon holds the point (a polygon's representative point); a point outside every area
        but within ``snap_km`` of one gets the nearest (listed in the result's ``snapped``).

    Examples
    --------
    >>> import_villages(session, "wof_gh_localities.csv")  # doctest: +SKIP
    """
    import shapely
    from sqlalchemy import insert, update

    from geo.boundaries import LEVEL_RANK, area_code, load_area_geometries
    from geo.countries import country as find_country

    source = Path(str(path).removeprefix("zip://")).name
    places, countries = _read_places(path, source, id_column, name_column, lat_column,
                                     lon_column, area_column, wkt_column, layer)  # fmt: skip
    if not places:
        raise PlaceError(f"{source}: no villages in the file.")
    try:
        if country_code:
            the_country = find_country(country_code)
        elif len(countries) == 1:
            the_country = find_country(next(iter(countries)))
        else:
            raise PlaceError(
                f"{source}: which country are these villages in? Say it with --country "
                f"(the file names {', '.join(sorted(countries)) or 'none'})."
            )
    except LookupError as e:
        raise PlaceError(f"{source}: {e}") from None

    bad: list[str] = []
    seen: dict[str, str] = {}
    w, s, e, n = the_country.extent
    for p in places:
        if p.code in seen:
            bad.append(f"{p.where} ({p.code}, {p.name!r}): the same id as {seen[p.code]}")
            continue
        seen[p.code] = p.where
        if not the_country.contains_bounds((p.lon, p.lat, p.lon, p.lat)):
            if the_country.contains_bounds((p.lat, p.lon, p.lat, p.lon)):
                reason = "latitude and longitude look swapped"
            else:
                reason = f"outside {the_country.name} (lat {s} to {n}, lon {w} to {e})"
            bad.append(f"{p.where} ({p.code}, {p.name!r}): lat {p.lat}, lon {p.lon}: {reason}")
    _raise_rows(source, bad)

    # areas: by code where the row gives one, else by where the point is
    areas = session.execute(
        select(Area.id, Area.code, Area.level).where(Area.country_code == the_country.iso3)
    ).all()
    code_to_id = {a.code: a.id for a in areas}
    area_of: dict[str, int] = {}
    to_locate: list[_Place] = []
    for p in places:
        if p.area_ref:
            found = code_to_id.get(p.area_ref)
            if found is None and p.area_ref.removesuffix(".0").isdigit():
                found = code_to_id.get(area_code(the_country, "wof_id", p.area_ref))
            if found is None:
                bad.append(f"{p.where} ({p.code}, {p.name!r}): unknown area code {p.area_ref!r}")
            else:
                area_of[p.code] = found
        else:
            to_locate.append(p)
    _raise_rows(source, bad)
    snapped: list[str] = []
    if to_locate:
        polygons = load_area_geometries(session, [a.id for a in areas])
        if not polygons:
            raise PlaceError(
                f"{source}: {len(to_locate)} village(s) have no area code, and no boundaries of "
                f"{the_country.name} are imported to find their area from their point. Import "
                "boundaries first (clms places boundaries), or give an area column."
            )
        rank = {a.id: LEVEL_RANK.get(a.level, 3) for a in areas}
        ids = np.array(list(polygons))
        geoms = np.array([polygons[i] for i in ids], dtype=object)
        points = shapely.points([p.lon for p in to_locate], [p.lat for p in to_locate])
        tree = shapely.STRtree(geoms)
        hit_point, hit_area = tree.query(points, predicate="within")
        best: dict[int, int] = {}
        for pi, ai in zip(hit_point.tolist(), hit_area.tolist(), strict=True):
            area_id = int(ids[ai])
            if pi not in best or rank[area_id] > rank[best[pi]]:
                best[pi] = area_id
        outside = [i for i in range(len(to_locate)) if i not in best]
        if outside:
            # only the deepest level is a fair "nearest": a point near a region's edge is
            # also near one of its departments
            deepest = max(rank[int(i)] for i in ids)
            level_ids = np.array([i for i in ids if rank[int(i)] == deepest])
            level_tree = shapely.STRtree(np.array([polygons[i] for i in level_ids], dtype=object))
            near_point, near_area = level_tree.query_nearest(
                points[outside], max_distance=snap_km / KM_PER_DEGREE, all_matches=False
            )
            near = dict(zip(near_point.tolist(), near_area.tolist(), strict=True))
            for k, pi in enumerate(outside):
                p = to_locate[pi]
                if k in near:
                    best[pi] = int(level_ids[near[k]])
                    snapped.append(f"{p.where} ({p.code}, {p.name!r})")
                else:
                    bad.append(
                        f"{p.where} ({p.code}, {p.name!r}): lat {p.lat}, lon {p.lon} is in no "
                        f"imported area of {the_country.name} (nor within {snap_km:g} km of one)"
                    )
        _raise_rows(source, bad)
        for pi, p in enumerate(to_locate):
            area_of[p.code] = best[pi]

    # write: one insert for the new villages, one update per village that exists
    existing = dict(session.execute(select(Village.code, Village.id)).all())
    new_rows, changed = [], []
    for p in places:
        row = {"code": p.code, "name": p.name, "area_id": area_of[p.code], "lat": p.lat,
               "lon": p.lon}  # fmt: skip
        if p.polygon is not None:
            row["cell"] = shapely.to_wkb(p.polygon)
            row["cell_kind"] = "polygon"
        if p.code in existing:
            row["id"] = existing[p.code]
            changed.append(row)
        else:
            new_rows.append(row)
    total, done = len(places), 0
    for chunk in _chunks(new_rows, 1000):
        session.execute(insert(Village), chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    for chunk in _chunks(changed, 1000):
        session.execute(update(Village), chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    session.flush()
    polygons_count = sum(1 for p in places if p.polygon is not None)
    return VillageResult(len(new_rows), len(changed), polygons_count, snapped)


def _chunks(rows: list, size: int):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _raise_rows(source: str, bad: list[str]) -> None:
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


def _read_places(path, source, id_column, name_column, lat_column, lon_column, area_column,
                 wkt_column, layer) -> tuple[list[_Place], set[str]]:  # fmt: skip
    """Rows of a CSV or features of a vector file as places, every one checked; raises one
    :class:`PlaceError` listing the bad ones."""
    if str(path).lower().endswith(".csv"):
        return _read_csv_places(path, source, id_column, name_column, lat_column, lon_column,
                                area_column, wkt_column)  # fmt: skip
    return _read_vector_places(path, source, id_column, name_column, area_column, layer)


def _read_csv_places(path, source, id_column, name_column, lat_column, lon_column, area_column,
                     wkt_column) -> tuple[list[_Place], set[str]]:  # fmt: skip
    import shapely
    from shapely.validation import explain_validity

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
        places.append(_Place(where, code, name, lon, lat, polygon, area_ref))
    if bad:
        _raise_rows(source, bad)
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
    import geopandas as gpd
    import pyogrio
    from shapely.validation import explain_validity

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
        places.append(_Place(f"feature {i + 1}", code, name, point.x, point.y, polygon, area_ref))
    if bad:
        _raise_rows(source, bad)
    return places, countries


@dataclass(frozen=True)
class AreaRow:
    """An area as the places page lists it."""

    code: str
    name: str
    level: str
    country_code: str
    parent_code: str | None
    has_boundary: bool
    villages: int
    villages_with_cells: int


def area_rows(session: Session) -> list[AreaRow]:
    """Every area with its parent, whether it has a boundary, its villages and how many of them
    have a cell: three grouped queries whatever the number of areas."""
    from sqlalchemy import func
    from sqlalchemy.orm import aliased

    parent = aliased(Area)
    counts = dict(
        (area_id, (n, with_cell))
        for area_id, n, with_cell in session.execute(
            select(
                Village.area_id,
                func.count(Village.id),
                func.count(Village.cell_kind),  # counts the villages whose cell is set
            ).group_by(Village.area_id)
        )
    )
    rows = session.execute(
        select(
            Area.id, Area.code, Area.name, Area.level, Area.country_code, parent.code,
            Area.geom.is_not(None),
        )
        .outerjoin(parent, parent.id == Area.parent_id)
        .order_by(Area.country_code, Area.code)
    ).all()  # fmt: skip
    return [
        AreaRow(code, name, level, country, parent_code, bool(has_geom), *counts.get(aid, (0, 0)))
        for aid, code, name, level, country, parent_code, has_geom in rows
    ]
