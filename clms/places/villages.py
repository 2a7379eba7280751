"""Villages from any file: points (CSV lat/lon) or polygons (CSV WKT, GeoJSON, GeoPackage),
each given its area by the code a row names or by where its point is (:func:`import_villages`).
:mod:`geo.boundaries` reads and checks the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.facts import refresh_villages
from clms.models import Area, Village
from geo.countries import Country, PlaceError

if TYPE_CHECKING:
    from geo.boundaries import Place

Progress = Callable[[int, int], None]

#: how far (km) a village point may lie outside every imported area and still be given the
#: nearest one: coastlines and borders of different sources differ by a few km (Ghana's WOF
#: localities and geoBoundaries' districts: 94 of 10,032 points outside, the farthest 9 km)
SNAP_KM = 15.0
KM_PER_DEGREE = 111.32


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
        :func:`geo.countries.village_code`); anything else is the code as written.
    area_column:
        A column holding each village's area code (or a WOF id of an imported WOF area). Rows
        with it empty, and every row when it is not given, get the deepest imported area whose
        polygon holds the point (a polygon's representative point); a point outside every area
        but within ``snap_km`` of one gets the nearest (listed in the result's ``snapped``).

    The steps: the file read and checked (:func:`geo.boundaries.read_places`), its country
    (:func:`_villages_country`), ids and points (:func:`_check_villages`), each village's area
    (:func:`_villages_areas`), then one write (:func:`_write_villages`).

    Examples
    --------
    >>> import_villages(session, "wof_gh_localities.csv")  # doctest: +SKIP
    """
    from geo.boundaries import read_places

    source = Path(str(path).removeprefix("zip://")).name
    places, countries = read_places(path, source, id_column, name_column, lat_column,
                                    lon_column, area_column, wkt_column, layer)  # fmt: skip
    if not places:
        raise PlaceError(f"{source}: no villages in the file.")
    the_country = _villages_country(source, country_code, countries)
    _check_villages(source, places, the_country)
    area_of, snapped = _villages_areas(session, source, places, the_country, snap_km)
    return _write_villages(session, places, area_of, snapped, progress)


def _villages_country(source: str, country_code: str | None, countries: set[str]) -> Country:
    """The country the villages are in: ``country_code``, else the one the file names."""
    from geo.countries import country as find_country

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
    return the_country


def _check_villages(source: str, places: list[Place], the_country: Country) -> None:
    """Each id once, each point inside the country; else one :class:`PlaceError` listing every
    row in trouble."""
    from geo.boundaries import raise_rows

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
    raise_rows(source, bad)


def _villages_areas(
    session: Session, source: str, places: list[Place], the_country: Country, snap_km: float
) -> tuple[dict[str, int], list[str]]:
    """Each village's area id, by its code: by code where the row gives one, else by where the
    point is (:func:`_locate_villages`); and the villages given the nearest area."""
    from geo.boundaries import area_code, raise_rows

    # areas: by code where the row gives one, else by where the point is
    areas = session.execute(
        select(Area.id, Area.code, Area.level).where(Area.country_code == the_country.iso3)
    ).all()
    code_to_id = {a.code: a.id for a in areas}
    area_of: dict[str, int] = {}
    to_locate: list[Place] = []
    bad: list[str] = []
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
    raise_rows(source, bad)
    snapped: list[str] = []
    if to_locate:
        snapped = _locate_villages(session, source, to_locate, areas, the_country, snap_km,
                                   area_of)  # fmt: skip
    return area_of, snapped


def _locate_villages(session, source, to_locate, areas, the_country, snap_km, area_of) -> list:
    """Give each village of ``to_locate`` (in ``area_of``) the deepest imported area whose
    polygon holds its point, else the nearest of the deepest level within ``snap_km``; returns
    the villages given the nearest."""
    import shapely

    from geo.boundaries import LEVEL_RANK, load_area_geometries, raise_rows

    bad: list[str] = []
    snapped: list[str] = []
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
    raise_rows(source, bad)
    for pi, p in enumerate(to_locate):
        area_of[p.code] = best[pi]
    return snapped


def _write_villages(
    session: Session, places: list[Place], area_of: dict, snapped: list[str], progress
) -> VillageResult:
    """One insert for the new villages, one update per village that exists; flushed."""
    import shapely
    from sqlalchemy import insert, update

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
    refresh_villages(session, [row["id"] for row in changed])  # a village moved to another area
    polygons_count = sum(1 for p in places if p.polygon is not None)
    return VillageResult(len(new_rows), len(changed), polygons_count, snapped)


def _chunks(rows: list, size: int):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
