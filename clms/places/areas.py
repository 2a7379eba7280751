"""Areas and their boundaries from a boundary file that :func:`geo.boundaries.read_boundaries`
read and checked (:func:`import_boundaries`); the areas as the places page lists them
(:func:`area_rows`).

Matching. A feature whose code exists updates that area's boundary. Otherwise an area of the same
country and level with the same name (accents, case and words such as "District Autonome de"
ignored; a name the source cut short, such as WOF's ``Haut-Sassa``, matches the full one) gets the
boundary instead of a duplicate being created: so geoBoundaries' CIV-ADM2 attaches polygons to the
departments that :func:`clms.places.localities.load_localities` made from the WOF localities. A
name that would match two areas, or two features, is not matched (the feature becomes a new area,
and the result says so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.models import Area, Village
from geo.countries import Country

if TYPE_CHECKING:
    from geo.boundaries import BoundaryFeature, BoundarySet

Progress = Callable[[int, int], None]


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


def import_boundaries(
    session: Session,
    boundaries: BoundarySet,
    progress: Progress | None = None,
    *,
    update_only: bool = False,
) -> BoundaryResult:
    """Create or update the areas of a checked :class:`geo.boundaries.BoundarySet` in
    ``session`` (flushed, not committed: the caller commits once, or rolls back for a dry run).

    ``update_only``: only attach boundaries to areas that exist (by code or name); features that
    match none are left out and counted in ``skipped`` (the demo loads a few regions' areas and
    gives them their polygons from a file of the whole country).

    Each feature's parent: the feature its parent field names, else an existing area with that
    code, else the deepest area of a higher level (already imported, or in the same file) whose
    polygon holds the feature's representative point, else the country area (created if
    missing). An area that exists keeps its parent.

    The steps: the country's area (:func:`_country_area`), the name matches
    (:func:`_name_matches`), the polygons a parent is looked for in (:func:`_containers`), then
    each feature written, higher levels first.
    """
    import shapely

    from geo.boundaries import BoundaryError

    the_country = boundaries.country
    result = BoundaryResult()
    areas = session.scalars(select(Area).where(Area.country_code == the_country.iso3)).all()
    by_code = {a.code: a for a in session.scalars(select(Area))}
    country_area = _country_area(session, the_country, areas, by_code, result)
    matches = _name_matches(boundaries, areas, by_code, result)
    polygons = _containers(session, boundaries, areas, matches)

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


def _country_area(session: Session, the_country: Country, areas, by_code: dict, result) -> Area:
    """The country's own area, created (and counted in ``result``) if missing."""
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
    return country_area


def _name_matches(boundaries: BoundarySet, areas, by_code: dict, result) -> dict[str, Area]:
    """``{feature code: area}``: the features whose code is new that match exactly one area of
    their level by name, and that no other feature matches (notes in ``result`` say why the
    others do not)."""
    from geo.boundaries import name_key

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
    return matches


def _containers(session: Session, boundaries: BoundarySet, areas, matches: dict) -> list[tuple]:
    """``[(rank, polygon, code)]``: where a new area's parent is looked for (prepared)."""
    import shapely

    the_country = boundaries.country
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
    return polygons


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
    from geo.boundaries import name_key

    old_key, new_key = name_key(old), name_key(new)
    return len(old_key) < len(new_key) and new_key.startswith(old_key)


def _container(f: BoundaryFeature, polygons, by_code) -> Area | None:
    """The deepest area of a higher level whose polygon holds the feature's inner point."""
    import shapely

    point = f.geometry.representative_point()
    best = None
    for rank, geom, code in polygons:
        if rank >= _rank(f.level) or code == f.code or code not in by_code:
            continue
        if shapely.contains(geom, point) and (best is None or rank > best[0]):
            best = (rank, code)
    return by_code[best[1]] if best else None


def _rank(level: str) -> int:
    from geo.boundaries import LEVEL_RANK

    return LEVEL_RANK.get(level, 3)


def _free_code(code: str, by_code: dict) -> str:
    if code not in by_code:
        return code
    n = 2
    while f"{code}-{n}" in by_code:
        n += 1
    return f"{code}-{n}"


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
