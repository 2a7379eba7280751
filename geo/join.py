"""Which village a GPS point falls in: a spatial join of many points against the village cells.

A village's cell (``Village.cell``, WKB in EPSG:4326) is its land: an imported polygon, or the
Voronoi cell of its point clipped to its area. :class:`VillageIndex` holds every cell in memory
behind a shapely ``STRtree`` and answers for a whole array of points at once
(:meth:`VillageIndex.locate`): 250,000 points against 10,000 cells take well under a second.

:func:`village_index` keeps one index per database engine, per process, and rebuilds it when
the cells change. Whether they changed is asked of the database on every call with one cheap
aggregate over the villages that have a cell (:data:`_FINGERPRINT`: how many, the largest and
the sum of their ids, the sum of the cells' byte lengths and of their areas' ids and points).
Adding, removing or re-deriving cells changes it (a Voronoi cell is re-derived because points
moved or villages came and went); a polygon replaced by another of exactly the same byte length
on the same villages would not, so an index is also rebuilt when older than :data:`MAX_AGE_S`.
A checksum of the cells' bytes would catch that too, but costs a read of every cell on every
batch of submissions, and SQLite has no hash function to do it in the database.

Points are longitude, latitude (x, y) like the WKB; the planar tests in degrees are exact for
"inside", and the distances to a cell (:func:`distances_km`) take the nearest point in degrees
then a great-circle distance: at the latitudes of cocoa countries the error is under 2 %.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from clms.models import Household, User, Village, Visit
from clms.scope import village_ids_in_scope
from geo.countries import haversine_km

#: an index older than this is rebuilt even when the fingerprint did not change (seconds)
MAX_AGE_S = 600.0
#: a GPS accuracy (metres, as ODK reports it) above this says the point is not worth using
MAX_ACCURACY_M = 10_000.0

_FINGERPRINT = select(
    func.count(Village.id),
    func.max(Village.id),
    func.sum(Village.id),
    func.sum(func.length(Village.cell)),
    func.sum(Village.area_id),
    func.sum(func.coalesce(Village.lat, 0.0)),
    func.sum(func.coalesce(Village.lon, 0.0)),
).where(Village.cell.is_not(None))
_CELLS = (
    select(Village.id, Village.code, Village.area_id, Village.cell)
    .where(Village.cell.is_not(None))
    .order_by(Village.id)
)


@dataclass(frozen=True)
class VillageIndex:
    """The village cells of a database, ready for point queries.

    ``ids``, ``codes``, ``area_ids`` and ``cells`` are aligned, ordered by village id. Build it
    with :meth:`from_rows` (pure) or :func:`village_index` (cached, from the database).

    Examples
    --------
    >>> import shapely
    >>> index = VillageIndex.from_rows([
    ...     (1, "V1", 10, shapely.to_wkb(shapely.box(0, 0, 1, 1))),
    ...     (2, "V2", 10, shapely.to_wkb(shapely.box(1, 0, 2, 1))),
    ... ])
    >>> index.locate([0.5, 1.0, 1.5, 5.0], [0.5, 0.5, 0.5, 5.0])
    [1, 1, 2, None]
    """

    ids: np.ndarray
    codes: tuple[str, ...]
    area_ids: np.ndarray
    cells: np.ndarray  # shapely polygons
    tree: shapely.STRtree
    fingerprint: tuple = ()
    built_at: float = 0.0

    @classmethod
    def from_rows(cls, rows, fingerprint: tuple = ()) -> VillageIndex:
        """An index of ``(village id, code, area id, cell WKB)`` rows; rows whose WKB cannot be
        read, or is empty, are left out (the village then has no cell)."""
        rows = sorted(rows, key=lambda r: r[0])
        cells = shapely.from_wkb([r[3] for r in rows], on_invalid="ignore")
        cells = np.asarray(cells, dtype=object) if rows else np.empty(0, dtype=object)
        keep = np.array(
            [c is not None and not shapely.is_empty(c) for c in cells], dtype=bool
        ).reshape(-1)
        kept = [r for r, k in zip(rows, keep, strict=True) if k]
        cells = cells[keep]
        shapely.prepare(cells)
        return cls(
            ids=np.array([r[0] for r in kept], dtype=np.int64),
            codes=tuple(r[1] for r in kept),
            area_ids=np.array([r[2] for r in kept], dtype=np.int64),
            cells=cells,
            tree=shapely.STRtree(cells),
            fingerprint=fingerprint,
            built_at=time.monotonic(),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def locate_array(self, lons, lats) -> np.ndarray:
        """The position in ``ids`` of the cell holding each point, -1 where none does.

        A point on the edge shared by two cells (or in an overlap of two imported polygons)
        goes to the village with the smaller id, so the answer never depends on the order of
        the tree. Points with a NaN coordinate are in no cell.
        """
        lons = np.asarray(lons, dtype=float).reshape(-1)
        lats = np.asarray(lats, dtype=float).reshape(-1)
        found = np.full(len(lons), -1, dtype=np.int64)
        if not len(lons) or not len(self.ids):
            return found
        points = shapely.points(lons, lats)
        # "intersects", not "within": a point exactly on an edge belongs to a cell
        point_i, cell_i = self.tree.query(points, predicate="intersects")
        if len(point_i):
            # cells are in id order: sorting the pairs by point then cell makes the first pair of
            # each point the smallest village id
            order = np.lexsort((cell_i, point_i))
            point_i, cell_i = point_i[order], cell_i[order]
            first = np.ones(len(point_i), dtype=bool)
            first[1:] = point_i[1:] != point_i[:-1]
            found[point_i[first]] = cell_i[first]
        return found

    def locate(self, lons, lats) -> list[int | None]:
        """The id of the village whose cell holds each point (longitude, latitude), or None."""
        found = self.locate_array(lons, lats)
        return [int(self.ids[i]) if i >= 0 else None for i in found]

    def position(self, village_id: int) -> int:
        """The position of ``village_id`` in ``ids``, -1 when the village has no cell here."""
        i = int(np.searchsorted(self.ids, village_id))
        return i if i < len(self.ids) and self.ids[i] == village_id else -1

    def cells_of(self, village_ids) -> np.ndarray:
        """The cells of ``village_ids`` (None for an id without a cell here, or None), as an
        object array: one vectorised lookup for a whole batch."""
        wanted = np.array([-1 if v is None else v for v in village_ids], dtype=np.int64)
        out = np.full(len(wanted), None, dtype=object)
        if not len(self.ids) or not len(wanted):
            return out
        pos = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        hit = self.ids[pos] == wanted
        out[hit] = self.cells[pos[hit]]
        return out

    def cell(self, village_id: int | None):
        """The cell of ``village_id`` (a shapely polygon), or None."""
        if village_id is None:
            return None
        i = self.position(village_id)
        return self.cells[i] if i >= 0 else None


def distances_km(lons, lats, cells, centre_lats, centre_lons) -> list[float | None]:
    """How far each point is from its village: 0 inside (or on the edge of) the village's cell,
    else the great-circle distance to the nearest point of the cell; without a cell, to the
    village's point (``centre_lats``, ``centre_lons``); None when the village has neither.

    All arguments are sequences of the same length (one village per point; ``cells`` holds
    shapely polygons or None).

    >>> import shapely
    >>> [round(d, 1) for d in distances_km(
    ...     [0.5, 1.5, 0.0], [0.5, 0.5, 0.0], [shapely.box(0, 0, 1, 1)] * 2 + [None],
    ...     [None, None, 0.09], [None, None, 0.0])]
    [0.0, 55.6, 10.0]
    """
    lons = np.asarray(lons, dtype=float).reshape(-1)
    lats = np.asarray(lats, dtype=float).reshape(-1)
    cells = np.asarray(list(cells) + [None], dtype=object)[:-1]  # never an array of coordinates
    out: list[float | None] = [None] * len(lons)
    with_cell = np.flatnonzero([c is not None for c in cells])
    if len(with_cell):
        # vectorised: most points are inside their village's cell, only the others are measured
        points = shapely.points(lons[with_cell], lats[with_cell])
        inside = shapely.intersects(cells[with_cell], points)
        for i in with_cell[inside]:
            out[i] = 0.0
        outside = ~inside
        if outside.any():
            lines = shapely.shortest_line(points[outside], cells[with_cell][outside])
            nearest = shapely.get_coordinates(lines).reshape(-1, 2, 2)[:, 1]
            for i, (nlon, nlat) in zip(with_cell[outside], nearest, strict=True):
                out[i] = haversine_km(lats[i], lons[i], nlat, nlon)
    for i, (cell, clat, clon) in enumerate(zip(cells, centre_lats, centre_lons, strict=True)):
        if cell is None and clat is not None and clon is not None:
            out[i] = haversine_km(lats[i], lons[i], clat, clon)
    return out


def gps_problem(lat, lon, accuracy) -> str | None:
    """Why a GPS point cannot place a visit, or None when it can.

    >>> gps_problem(0, 0, 5)
    'latitude 0 and longitude 0 ("null island"): the phone had no position'
    >>> gps_problem(5.78, -6.59, None) is None
    True
    """
    if lat is None or lon is None:
        return "no latitude or longitude"
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return "latitude or longitude is not a number"
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return "latitude outside -90..90 or longitude outside -180..180"
    if lat == 0 and lon == 0:
        return 'latitude 0 and longitude 0 ("null island"): the phone had no position'
    if accuracy is not None and (
        not math.isfinite(accuracy) or accuracy < 0 or accuracy > MAX_ACCURACY_M
    ):
        return f"accuracy {accuracy:g} m is not a usable position (at most {MAX_ACCURACY_M:g} m)"
    return None


# --- placing the points of a batch ---------------------------------------------------------------

_CHOSEN = select(Village.code, Village.id, Village.lat, Village.lon).where(
    Village.code.in_(bindparam("codes", expanding=True))
)


@dataclass(frozen=True)
class GpsPoint:
    """A point to place: ``key`` names it for the caller (the intake pipeline: a submission id),
    ``village_code`` is the village chosen for it by a person (in the form), if any."""

    key: int
    lat: float | None
    lon: float | None
    accuracy: float | None
    village_code: str | None


@dataclass(frozen=True)
class Placement:
    """Where a GPS point is: why it cannot be used (``problem``), or the village whose cell holds
    it (``village_id`` and its ``area_id``; None when no cell does) and its distance in km to the
    chosen village (0 inside that village's cell; to its point when it has no cell; None when it
    has neither, or none was chosen)."""

    problem: str | None = None
    village_id: int | None = None
    area_id: int | None = None
    distance_km: float | None = None


def place_points(session: Session, points: list[GpsPoint]) -> dict[int, Placement]:
    """Place a batch of points with one spatial join; returns each point's placement by key.

    Reads the chosen villages (one query) and the village index (:func:`village_index`) only when
    some point is usable. Writes nothing.
    """
    placed: dict[int, Placement] = {}
    usable = []
    for point in points:
        problem = gps_problem(point.lat, point.lon, point.accuracy)
        if problem is not None:
            placed[point.key] = Placement(problem)
        else:
            usable.append(point)
    if not usable:
        return placed
    codes = sorted({p.village_code for p in usable if p.village_code is not None})
    chosen = {}
    if codes:
        for code, vid, lat, lon in session.execute(_CHOSEN, {"codes": codes}):
            chosen[code] = (vid, lat, lon)
    index = village_index(session)
    lons = [p.lon for p in usable]
    lats = [p.lat for p in usable]
    found = index.locate_array(lons, lats) if index is not None else [-1] * len(usable)
    villages = [chosen.get(p.village_code, (None, None, None)) for p in usable]
    distances = distances_km(
        lons,
        lats,
        index.cells_of([v[0] for v in villages]) if index is not None else [None] * len(usable),
        [v[1] for v in villages],
        [v[2] for v in villages],
    )
    for point, i, distance in zip(usable, found, distances, strict=True):
        if i >= 0:
            placed[point.key] = Placement(None, int(index.ids[i]), int(index.area_ids[i]), distance)
        else:
            placed[point.key] = Placement(distance_km=distance)
    return placed


# --- the cache, per engine and process -------------------------------------------------------

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def village_index(session: Session) -> VillageIndex | None:
    """The index of the village cells of ``session``'s database; None when no village has one.

    Cached per engine: one fingerprint query per call, and the cells are read again only when
    the fingerprint changed or the index is older than :data:`MAX_AGE_S` (module documentation).
    The fingerprint is read in ``session``'s transaction, so cells written earlier in the same
    transaction are seen.
    """
    engine = session.get_bind()
    engine = getattr(engine, "engine", engine)  # a Connection: its Engine
    fingerprint = tuple(session.execute(_FINGERPRINT).one())
    if not fingerprint[0]:
        return None
    with _lock:
        cached = _cache.get(engine)
    if (
        cached is not None
        and cached.fingerprint == fingerprint
        and time.monotonic() - cached.built_at < MAX_AGE_S
    ):
        return cached
    index = VillageIndex.from_rows(session.execute(_CELLS).all(), fingerprint)
    with _lock:
        _cache[engine] = index
    return index


def forget(session_or_engine=None) -> None:
    """Drop the cached index of one engine (or of all): the next call reads the cells again.

    The fingerprint already notices new cells; importers call this so that a change it cannot
    see (a cell replaced by one of the same byte length) is used at once in this process.
    """
    with _lock:
        if session_or_engine is None:
            _cache.clear()
            return
        bind = session_or_engine
        if isinstance(bind, Session):
            bind = bind.get_bind()
        _cache.pop(getattr(bind, "engine", bind), None)


# --- locating stored visits again --------------------------------------------------------------


@dataclass
class LocateResult:
    """What :func:`locate_visits` did: visits read, changed, moved to the village of their GPS
    point, kept in the chosen village because the point's village is outside the monitor's
    scope, with an unusable point, and further than ``far_km`` from the chosen village."""

    checked: int = 0
    changed: int = 0
    by_gps: int = 0
    out_of_scope: int = 0
    unusable: int = 0
    far: int = 0
    households: int = 0


def locate_visits(
    session: Session,
    *,
    only_missing: bool = True,
    batch: int = 5000,
    far_km: float = 5.0,
    progress=None,
) -> LocateResult:
    """Find the village of stored household visits again from their GPS points, with the same
    rules as ingestion (:mod:`forms.store`), after new village cells were imported.

    ``only_missing``: only the visits whose village did not come from their GPS point
    (``village_source`` empty or "form"); else every visit with a point. Visits are read
    ``batch`` at a time in id order; each batch is one spatial join and one executemany UPDATE of
    the rows that change, so a second run changes nothing. A household whose visits moved takes
    the village of its latest current household visit. Does not commit; ``progress(n)`` is called
    with the number of visits read after each batch. Submission statuses are left as they are:
    a far point found now is counted in the result, not sent back to review.

    The statements are built once (:func:`_locate_statements`); each batch's villages are decided
    by :func:`_locate_batch`.
    """
    page, write, move_households = _locate_statements(only_missing)
    index = village_index(session)
    centres = {
        vid: (lat, lon)
        for vid, lat, lon in session.execute(select(Village.id, Village.lat, Village.lon))
    }
    scopes = _Scopes(session)
    result, after = LocateResult(), 0
    while True:
        rows = session.execute(page, {"after": after, "size": batch}).all()
        if not rows:
            break
        after = rows[-1].id
        changes, moved_households = _locate_page(rows, index, centres, scopes, far_km, result)
        if changes:
            session.execute(write, changes)
            result.changed += len(changes)
        if moved_households:
            session.execute(move_households, {"ids": sorted(moved_households)})
            result.households += len(moved_households)
        if progress is not None:
            progress(len(rows))
    return result


def _locate_statements(only_missing: bool) -> tuple:
    """The statements of :func:`locate_visits`: a page of visits to locate, the update of a
    visit's village, and the move of households to the village of their latest visit."""
    visits, households = Visit.__table__, Household.__table__
    conditions = [
        visits.c.kind == "household",
        visits.c.lat.is_not(None),
        visits.c.lon.is_not(None),
    ]
    if only_missing:
        conditions.append((visits.c.village_source.is_(None)) | (visits.c.village_source != "gps"))
    page = (
        select(
            visits.c.id, visits.c.lat, visits.c.lon, visits.c.accuracy, visits.c.village_id,
            visits.c.form_village_id, visits.c.village_source, visits.c.gps_distance_km,
            visits.c.monitor_id, visits.c.household_id,
        )
        .where(*conditions, visits.c.id > bindparam("after"))
        .order_by(visits.c.id)
        .limit(bindparam("size"))
    )  # fmt: skip
    write = (
        update(visits)
        .where(visits.c.id == bindparam("row_id"))
        .values(
            village_id=bindparam("new_village_id"),
            form_village_id=bindparam("new_form_village_id"),
            village_source=bindparam("new_source"),
            gps_distance_km=bindparam("new_distance"),
        )
    )
    latest = (
        select(visits.c.village_id)
        .where(
            visits.c.household_id == households.c.id,
            visits.c.kind == "household",
            visits.c.current,
            visits.c.village_id.is_not(None),
        )
        .order_by(visits.c.visited_at.desc(), visits.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    move_households = (
        update(households)
        .where(households.c.id.in_(bindparam("ids", expanding=True)))
        .values(village_id=func.coalesce(latest, households.c.village_id))
    )
    return page, write, move_households


class _Scopes:
    """The villages each monitor works in (None: not scoped), read once per monitor."""

    def __init__(self, session: Session):
        self.session = session
        self._scopes: dict[int, set[int] | None] = {}

    def of(self, monitor_id: int | None) -> set[int] | None:
        if monitor_id is None:
            return None
        if monitor_id not in self._scopes:
            user = self.session.get(User, monitor_id)
            scoped = user is not None and user.role in ("monitor", "officer", "supervisor")
            self._scopes[monitor_id] = village_ids_in_scope(self.session, user) if scoped else None
        return self._scopes[monitor_id]


def _locate_page(rows, index, centres, scopes: _Scopes, far_km: float, result: LocateResult):
    """Locate a page of visits with one spatial join; returns the changed rows (for the update)
    and the households whose visits moved, and counts in ``result``."""
    result.checked += len(rows)
    usable = [r for r in rows if gps_problem(r.lat, r.lon, r.accuracy) is None]
    result.unusable += len(rows) - len(usable)
    # a visit stored before form_village_id existed: its village was the form's choice
    chosen = [r.form_village_id or r.village_id for r in usable]
    lons, lats = [r.lon for r in usable], [r.lat for r in usable]
    found = index.locate_array(lons, lats) if index is not None else [-1] * len(usable)
    distances = distances_km(
        lons,
        lats,
        index.cells_of(chosen) if index is not None else [None] * len(usable),
        [centres.get(c, (None, None))[0] for c in chosen],
        [centres.get(c, (None, None))[1] for c in chosen],
    )
    changes, moved_households = [], set()
    for r, form_id, i, distance in zip(usable, chosen, found, distances, strict=True):
        village_id, source = form_id, "form" if form_id is not None else None
        if i >= 0:
            located = int(index.ids[i])
            scope = scopes.of(r.monitor_id)
            if located == form_id or scope is None or located in scope:
                village_id, source = located, "gps"
                result.by_gps += 1
            else:
                result.out_of_scope += 1
        if distance is not None and distance > far_km:
            result.far += 1
        new = (village_id, form_id, source, distance)
        if new != (r.village_id, r.form_village_id, r.village_source, r.gps_distance_km):
            changes.append({"row_id": r.id, "new_village_id": village_id,
                            "new_form_village_id": form_id, "new_source": source,
                            "new_distance": distance})  # fmt: skip
            if village_id != r.village_id and r.household_id is not None:
                moved_households.add(r.household_id)
    return changes, moved_households
