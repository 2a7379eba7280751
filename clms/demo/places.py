"""Step c of ``clms demo``: places from the shared Who's On First localities, four regions of
the cocoa belt of Côte d'Ivoire, about 240 villages spread over their departments
(:mod:`clms.places`), with the departments' boundaries and the villages' cells when the shared
boundary file is there.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.demo.progress import ProgressLine, say
from clms.models import Area, Village

# The regions as the WOF file names them (Bas-Sassandra: Nawa, San-Pédro, Gbôklé; Fromager: Gôh;
# Sud-Bandama: Lôh-Djiboua).
DEMO_REGIONS = ["Bas-Sassandra", "Haut-Sassandra", "Fromager", "Sud-Bandama"]
DEMO_VILLAGES = 240


class DemoPlaces(NamedTuple):
    """The places the demo visits: every area by id, the departments (area ids, by code), the
    villages of each department (north to south), and those villages department by department."""

    areas: dict[int, Area]
    departments: list[int]
    by_department: dict[int, list[Village]]
    villages: list[Village]


def load_places(session: Session, shared_data: Path) -> DemoPlaces:
    """Step c: the localities of the demo's regions, then the departments' boundaries and the
    villages' cells when the boundary file is there; returns the places to visit."""
    from clms.places.localities import county_names_from_geoboundaries, load_localities

    csv_path = shared_data / "localities" / "wof_ci_localities.csv"
    adm2 = shared_data / "boundaries" / "CIV-ADM2.geojson"
    if not csv_path.exists():
        raise click.ClickException(
            f"The localities file {csv_path} is missing; set CLMS_SHARED_DATA to the folder that "
            "holds localities/wof_ci_localities.csv."
        )
    full_names = {}
    if adm2.exists():
        full_names = county_names_from_geoboundaries(adm2, ["Haut-Sassa", "Loh-Djibou"])
    progress = ProgressLine("Villages", DEMO_VILLAGES)
    result = load_localities(
        session,
        csv_path,
        DEMO_REGIONS,
        DEMO_VILLAGES,
        progress,
        on_error="skip",
        county_names=full_names,
    )
    progress.finish()
    n_areas, n_villages = result
    for bad in result.skipped:
        say(f"  skipped {bad}")
    say(f"Places: {n_areas} areas, {n_villages} villages ({', '.join(DEMO_REGIONS)}).")
    if adm2.exists():
        from clms.places.areas import import_boundaries
        from geo.boundaries import read_boundaries
        from geo.cells import derive_cells

        # the present-day régions of geoBoundaries are the WOF file's counties (our departments)
        found = read_boundaries(adm2, level="department", country_code="CIV")
        progress = ProgressLine("Boundaries", len(found.features))
        attached = import_boundaries(session, found, progress, update_only=True)
        progress.finish()
        progress = ProgressLine("Village cells", 1)
        cells = derive_cells(session, progress=progress)
        progress.finish()
        say(f"Boundaries: {attached.updated} departments from {adm2.name}; {cells.summary()}.")
    return _visited_places(session)


def _visited_places(session: Session) -> DemoPlaces:
    """The villages to visit, department by department."""
    areas = {a.id: a for a in session.scalars(select(Area))}
    villages = session.scalars(select(Village).order_by(Village.code)).all()
    by_department: dict[int, list[Village]] = {}
    for v in villages:
        # the few towns the file gives a region but no department are loaded, not visited
        if areas[v.area_id].level == "department":
            by_department.setdefault(v.area_id, []).append(v)
    departments = sorted(by_department, key=lambda a: areas[a].code)
    for members in by_department.values():
        # north to south, so that a monitor's or a farmer group's villages are neighbours
        members.sort(key=lambda v: (-v.lat, v.lon))
    villages = [v for a in departments for v in by_department[a]]
    return DemoPlaces(areas, departments, by_department, villages)


def user_part(area: Area) -> str:
    """The last part of an area code, lower case: ``CI-BAS-SASSANDRA-NAWA`` -> ``nawa``."""
    parent_code = area.parent.code if area.parent is not None else ""
    rest = area.code.removeprefix(parent_code).strip("-") or area.code
    return rest.lower()


def village_spreads(villages: list[Village]) -> dict[int, float]:
    """Per village id: 1 km, or 40% of the distance to the nearest other village when closer, so
    that the households drawn around a village stay in its cell (half-way to the neighbour)."""
    import numpy as np

    lat = np.radians([v.lat for v in villages])
    lon = np.radians([v.lon for v in villages])
    out: dict[int, float] = {}
    for i, v in enumerate(villages):
        # equirectangular distances: exact enough at a few km
        dx = (lon - lon[i]) * np.cos(lat[i])
        dy = lat - lat[i]
        d = np.sqrt(dx * dx + dy * dy) * 6_371_000
        d[i] = np.inf
        out[v.id] = float(min(1000.0, 0.4 * d.min())) if len(villages) > 1 else 1000.0
    return out
