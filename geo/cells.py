"""Village cells: the land nearer each village than any other, for choropleth maps.

Where villages are points, a village's cell is its Voronoi polygon, clipped to its administrative
area's boundary: the nearest area above the village (its own first) that has an imported polygon.
All the villages that clip to the same polygon are cut together, so their cells cover that polygon
without overlapping. A village with an imported polygon (``cell_kind = 'polygon'``) keeps it, and
its land is taken out of its neighbours' cells.

Choices, and why:

* Cells are drawn in longitude/latitude degrees. Between the equator and 15 degrees north a degree
  of longitude is 97-100% of a degree of latitude, so the cells differ from those of an equal-area
  projection by a few percent of their width at most, well under the precision of village points.
* Villages whose area has no polygon anywhere above are clipped to the convex hull of their points
  buffered by :data:`HULL_BUFFER_DEGREES` (about 5.5 km, a walk from the outermost villages): large
  enough that edge villages get land of their own, small enough not to claim a neighbouring area.
* Villages at the same point: the first (by id) gets the cell, the others none (reported).
* A village outside its area's polygon (points and boundaries of different sources) keeps the part
  of the polygon nearest to it, which may be nothing (reported).
* Villages attached directly to an area that also has sub-areas with polygons (e.g. a town given a
  region but no department) share that area's polygon with the sub-areas' cells: their cells may
  overlap those of the sub-areas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from clms.models import Area, Village
from clms.scope import descendant_area_ids
from geo.boundaries import load_area_geometries

HULL_BUFFER_DEGREES = 0.05

Progress = Callable[[int, int], None]


@dataclass
class Cells:
    """The cells of some points, in the points' order (``None`` where a point gets no cell), and
    the positions of the points outside the clip polygon and of repeated points."""

    cells: np.ndarray
    outside: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)


def voronoi_cells(points, clip) -> Cells:
    """Voronoi cells of ``points`` clipped to the polygon ``clip``: cover it without overlaps.

    Parameters
    ----------
    points:
        A GeoSeries or array of shapely Points (same CRS as ``clip``).
    clip:
        A Polygon or MultiPolygon.

    Vectorised: one GEOS Voronoi diagram for all the points, and one intersection per cell that
    crosses the clip polygon's boundary (cells inside it are kept as they are). 10,000 points take
    well under a second.

    Examples
    --------
    >>> from shapely import Point, box
    >>> found = voronoi_cells([Point(0, 0), Point(2, 0)], box(-1, -1, 3, 1))
    >>> [round(c.area, 3) for c in found.cells]
    [4.0, 4.0]
    """
    geoms = np.asarray(points.values if isinstance(points, gpd.GeoSeries) else points, dtype=object)
    n = len(geoms)
    cells = np.full(n, None, dtype=object)
    if n == 0 or clip is None or clip.is_empty:
        return Cells(cells)
    xy = shapely.get_coordinates(geoms)
    # repeated points: the first keeps the point, the others get no cell
    _, first = np.unique(xy, axis=0, return_index=True)
    duplicates = sorted(set(range(n)) - set(first.tolist()))
    shapely.prepare(clip)
    outside = np.flatnonzero(~shapely.covers(clip, geoms)).tolist()
    unique_xy = xy[first]
    if len(first) == 1:
        unique_cells = np.array([clip], dtype=object)
    else:
        # the diagram must reach past both the clip polygon and every point
        minx, miny, maxx, maxy = shapely.bounds(clip)
        minx, miny = min(minx, unique_xy[:, 0].min()), min(miny, unique_xy[:, 1].min())
        maxx, maxy = max(maxx, unique_xy[:, 0].max()), max(maxy, unique_xy[:, 1].max())
        frame = shapely.box(minx, miny, maxx, maxy).buffer(max(maxx - minx, maxy - miny))
        diagram = shapely.voronoi_polygons(
            shapely.multipoints(unique_xy), extend_to=frame, ordered=True
        )
        raw = shapely.get_parts(diagram)
        if len(raw) != len(first):  # not expected from GEOS; fail loudly rather than misassign
            raise RuntimeError(f"Voronoi gave {len(raw)} cells for {len(first)} points")
        unique_cells = raw.copy()
        inside = shapely.contains_properly(clip, raw)
        crossing = np.flatnonzero(~inside)
        if len(crossing):
            unique_cells[crossing] = shapely.intersection(raw[crossing], clip)
        unique_cells = np.array(
            [c if not shapely.is_empty(c) else None for c in unique_cells], dtype=object
        )
        # intersection can leave slivers of lines or points on the boundary: keep the polygons
        mixed = np.flatnonzero(
            [c is not None and c.geom_type == "GeometryCollection" for c in unique_cells]
        )
        for i in mixed:  # rare: only cells whose edge runs along the clip boundary
            parts = [p for p in shapely.get_parts(unique_cells[i]) if p.geom_type == "Polygon"]
            unique_cells[i] = shapely.union_all(parts) if parts else None
    # a repeated point's cell goes to its first village; the others keep None
    cells[first] = unique_cells
    return Cells(cells, outside, duplicates)


@dataclass
class CellResult:
    """What :func:`derive_cells` did."""

    groups: int = 0
    cells: int = 0
    polygons_kept: int = 0
    hull_groups: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.cells} village cells derived in {self.groups} area(s); "
            f"{self.polygons_kept} imported village polygons kept"
        )
        if self.hull_groups:
            text += f"; {len(self.hull_groups)} area(s) without a boundary cut to their villages"
        if self.outside:
            text += f"; {len(self.outside)} village(s) outside their area's boundary"
        if self.duplicates:
            text += f"; {len(self.duplicates)} village(s) at the point of another"
        return text


def derive_cells(
    session: Session, area_code: str | None = None, progress: Progress | None = None
) -> CellResult:
    """Derive the Voronoi cells of the point villages (all, or those in ``area_code`` and below)
    and store them (``cell_kind = 'voronoi'``); the caller commits.

    Raises ``LookupError`` for an unknown area code.
    """
    result = CellResult()
    parents = dict(session.execute(select(Area.id, Area.parent_id)).all())
    codes = dict(session.execute(select(Area.id, Area.code)).all())
    selected: set[int] | None = None
    if area_code is not None:
        area_id = session.scalar(select(Area.id).where(Area.code == area_code))
        if area_id is None:
            raise LookupError(f"No area {area_code!r}; `clms areas` lists them.")
        selected = descendant_area_ids(session, {area_id})
    with_geom = set(session.scalars(select(Area.id).where(Area.geom.is_not(None))))

    def clip_owner(area_id: int) -> int | None:
        current: int | None = area_id
        while current is not None:
            if current in with_geom:
                return current
            current = parents.get(current)
        return None

    rows = session.execute(
        select(
            Village.id, Village.code, Village.area_id, Village.lon, Village.lat, Village.cell_kind
        ).order_by(Village.id)  # fmt: skip
    ).all()
    # a group: the villages cut together (same clip polygon, or same area when none)
    groups: dict[tuple[str, int], list] = {}
    for row in rows:
        owner = clip_owner(row.area_id)
        key = ("polygon", owner) if owner is not None else ("hull", row.area_id)
        groups.setdefault(key, []).append(row)
    if selected is not None:
        groups = {k: v for k, v in groups.items() if any(r.area_id in selected for r in v)}
    polygons = load_area_geometries(session, {k[1] for k in groups if k[0] == "polygon"})
    village_polygon_ids = [r.id for v in groups.values() for r in v if r.cell_kind == "polygon"]
    village_polygons = _village_polygons(session, village_polygon_ids)

    updates: list[dict] = []
    total, done = len(groups), 0
    for (kind, key_id), members in sorted(groups.items(), key=lambda kv: codes[kv[0][1]]):
        done += 1
        own = [r for r in members if r.cell_kind == "polygon"]
        result.polygons_kept += len(own)
        points = [r for r in members if r.cell_kind != "polygon" and r.lon is not None]
        if not points:
            continue
        geoms = shapely.points([r.lon for r in points], [r.lat for r in points])
        if kind == "polygon":
            clip = polygons[key_id]
        else:
            clip = shapely.buffer(shapely.convex_hull(shapely.multipoints(geoms)),
                                  HULL_BUFFER_DEGREES)  # fmt: skip
            result.hull_groups.append(codes[key_id])
        taken = [village_polygons[r.id] for r in own if r.id in village_polygons]
        if taken:
            clip = shapely.difference(clip, shapely.union_all(taken))
        found = voronoi_cells(geoms, clip)
        result.groups += 1
        result.outside += [f"{points[i].code} ({codes[points[i].area_id]})" for i in found.outside]
        result.duplicates += [points[i].code for i in found.duplicates]
        for row, cell in zip(points, found.cells, strict=True):
            if cell is None and row.code not in result.duplicates:
                result.empty.append(row.code)
            updates.append(
                {
                    "vid": row.id,
                    "cell": shapely.to_wkb(cell) if cell is not None else None,
                    "cell_kind": "voronoi" if cell is not None else None,
                }
            )
            result.cells += cell is not None
        if progress is not None:
            progress(done, total)
    statement = (
        update(Village.__table__)
        .where(Village.__table__.c.id == bindparam("vid"))
        .values(cell=bindparam("cell"), cell_kind=bindparam("cell_kind"))
    )
    for start in range(0, len(updates), 1000):
        session.execute(statement, updates[start : start + 1000])
    session.flush()
    return result


def _village_polygons(session: Session, ids: list[int]) -> dict[int, shapely.Geometry]:
    found: dict[int, shapely.Geometry] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for vid, wkb in session.execute(
            select(Village.id, Village.cell).where(Village.id.in_(chunk))
        ):
            if wkb:
                found[vid] = shapely.from_wkb(wkb)
    return found
