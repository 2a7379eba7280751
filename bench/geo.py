"""Benchmark: the spatial join of household GPS points to village cells, the hotspot aggregation
and the brand map, with 1,000,000 children in 250,000 households over 10,000 villages; each
compared in the same run with a naive way of doing it.

Usage (from the repository root, in the virtualenv)::

    python -m bench.geo                      # full size on SQLite (a few minutes)
    python -m bench.geo --scale 0.01         # 100 villages, 2,500 households: seconds
    python -m bench.geo --db postgresql      # a throwaway PostgreSQL cluster (tests/pgserver.py)

The bench makes a fresh database, runs the migrations and adds with the ORM one country (a rough
outline of Côte d'Ivoire), 4 regions and 20 departments (a grid over it, clipped to the outline),
``10,000 x scale`` villages at random points inside the outline with their Voronoi cells
(:func:`geo.cells.voronoi_cells`, clipped to the outline), 30 suppliers in three tiers (one brand
reaching a third of them), a monitor per department, a brand user and a country supervisor. It
then generates ``250,000 x scale`` households in villages weighted log-normally (hotspots), each
with a GPS point near its village (3 % several km away), and bulk-loads with Core ``INSERT`` the
households, ``1,000,000 x scale`` children (1 to 7 a household), one submission and one visit per
household, one child visit per child and its current classification (a quarter of the children
work).

Measured, each with a baseline in the same run:

1. spatial join: :meth:`geo.join.VillageIndex.locate` of every household's point (the index
   built from the cells read from the database, timed apart), then the distances to the chosen
   villages (:func:`geo.join.distances_km`); against a naive loop that tests every cell for each
   point (``shapely.contains`` over the cell array, no index) on ``--naive-points`` points,
   extrapolated to all, and against ``geopandas.sjoin`` (which also uses an STRtree). The visits
   are stored with the village found by the join, as ingestion would.
2. hotspot aggregation: :func:`geo.hotspots.tables.hotspot_table` for the brand user, by village
   and by supplier (one query each over every classification of the 12 months).
3. brand map: the page view as the web pages do it (two requests: the page's table of every
   level, :func:`geo.hotspots.tables.hotspot_tables`, and the map in its frame, ``lazy``: one
   aggregation each), and what :func:`geo.maps.brand.brand_map_html` does (the standalone map
   with every layer, one aggregation) timed in its two steps: the figures of every layer
   (:func:`geo.maps.brand.brand_map_data`) and the HTML (:func:`geo.maps.build.build_brand_map`,
   rendered); the size of the HTML; against the naive map a first attempt would make: one folium
   marker per household (a popup with its figures). Folium needs 1-2 ms a marker, so the naive map
   is built for ``--naive-markers`` households (default 25,000) and its time and size are
   extrapolated linearly to all of them (both grow linearly with the markers); the table says so.
4. peak memory: the RSS of this process, sampled every 50 ms (/proc/self/statm) during each
   phase: the peak, and how much each phase added to what the process already held.

``--keep`` leaves the database (and a PostgreSQL server running) for timing single calls on it.

Targets (the issue): brand map under 3 s and 5 MB, spatial join of 250,000 points under 5 s. The
table is printed as Markdown; figures go to ``bench/results/geo-<db>.json`` and the charts to
``bench/results/geo-<db>-*.svg`` (``--out`` for another folder). Timings are of a shared 2-core
machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import create_engine, insert, select, text

from bench.common import (
    ROOT,
    Database,
    bar_chart_svg,
    bench_form_and_profile,
    rss_kib,
    save_results,
)

RESULTS = ROOT / "bench" / "results"
SECRET_KEY = "bench-secret-key-not-for-production"
FULL_VILLAGES, FULL_HOUSEHOLDS, FULL_CHILDREN = 10_000, 250_000, 1_000_000
TARGET_MAP_S, TARGET_MAP_MB, TARGET_JOIN_S = 3.0, 5.0, 5.0
#: a rough outline of Côte d'Ivoire (longitude, latitude), enough to spread villages as they are
CIV_OUTLINE = [
    (-7.53, 4.36),
    (-6.20, 4.65),
    (-4.80, 5.15),
    (-3.40, 5.10),
    (-2.75, 5.10),
    (-3.05, 5.90),
    (-2.95, 7.10),
    (-2.55, 8.10),
    (-2.70, 9.40),
    (-3.20, 9.90),
    (-4.30, 9.60),
    (-4.80, 9.90),
    (-5.50, 10.40),
    (-6.20, 10.30),
    (-6.95, 10.20),
    (-7.60, 10.45),
    (-8.20, 10.10),
    (-8.05, 9.40),
    (-8.50, 8.60),
    (-8.20, 7.60),
    (-8.45, 7.50),
    (-7.90, 6.50),
    (-7.55, 5.80),
]
REGIONS, DEPT_COLUMNS, DEPT_ROWS = 4, 5, 4
WORKING_SHARE = 0.25
WORKING_MIX = (
    ("none", 0.20),
    ("at_risk", 0.10),
    ("child_labour", 0.35),
    ("hazardous", 0.31),
    ("worst_form", 0.04),
)
CLEAR_MIX = (("none", 0.82), ("at_risk", 0.16), ("child_labour", 0.02))
LABOUR = ("child_labour", "hazardous", "worst_form")
BATCH = 20_000


class SelfRss:
    """The peak RSS of this process, sampled every ``interval`` s from /proc/self/statm.

    Lighter than :class:`bench.common.RssSampler`, which walks every process of the machine at
    each sample: measured here, that slowed the timed code down several times.
    """

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_kib = self.start_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="self-rss")

    def __enter__(self) -> SelfRss:
        self.peak_kib = self.start_kib = rss_kib(os.getpid())
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, rss_kib(os.getpid()))

    def _run(self) -> None:
        pid = os.getpid()
        while not self._stop.wait(self.interval):
            self.peak_kib = max(self.peak_kib, rss_kib(pid))


class Timer:
    """Phases timed, each with the peak RSS of this process during it."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.peak_mib: dict[str, float] = {}
        self.growth_mib: dict[str, float] = {}  # peak minus the RSS at the start of the phase

    @contextmanager
    def phase(self, name: str):
        gc.collect()
        with SelfRss() as rss:
            t0 = time.perf_counter()
            yield
            self.seconds[name] = time.perf_counter() - t0
        self.peak_mib[name] = rss.peak_kib / 1024
        self.growth_mib[name] = (rss.peak_kib - rss.start_kib) / 1024


# --- the world -----------------------------------------------------------------------------------


def village_points(rng: np.random.Generator, n: int, outline) -> np.ndarray:
    """``n`` distinct random points (lon, lat) inside ``outline``."""
    minx, miny, maxx, maxy = outline.bounds
    shapely.prepare(outline)
    found = np.empty((0, 2))
    while len(found) < n:
        xy = np.column_stack([rng.uniform(minx, maxx, 2 * n), rng.uniform(miny, maxy, 2 * n)])
        xy = np.round(xy, 5)
        xy = xy[shapely.contains_xy(outline, xy[:, 0], xy[:, 1])]
        found = np.unique(np.vstack([found, xy]), axis=0)
    return found[rng.permutation(len(found))[:n]]


def make_world(app, rng: np.random.Generator, n_villages: int) -> dict:
    """Places, cells, suppliers, users, a form and a profile (ORM); what the bulk load needs."""
    from clms.auth.users import add_user
    from clms.db import session_scope
    from clms.models import (
        Area,
        Brand,
        BrandSupplier,
        Supplier,
        SupplierLink,
        SupplierVillage,
        Village,
    )
    from geo.cells import voronoi_cells

    outline = shapely.Polygon(CIV_OUTLINE)
    minx, miny, maxx, maxy = outline.bounds
    xy = village_points(rng, n_villages, outline)
    t0 = time.perf_counter()
    cells = voronoi_cells(shapely.points(xy), outline).cells
    cells_s = time.perf_counter() - t0
    col = np.minimum((xy[:, 0] - minx) / (maxx - minx) * DEPT_COLUMNS, DEPT_COLUMNS - 1)
    row = np.minimum((xy[:, 1] - miny) / (maxy - miny) * DEPT_ROWS, DEPT_ROWS - 1)
    dept_of = (row.astype(int) * DEPT_COLUMNS + col.astype(int)).tolist()
    realm = app.config["DIGEST_REALM"]
    with session_scope(app) as s:
        country = Area(
            code="CI",
            name="Côte d'Ivoire",
            level="country",
            country_code="CIV",
            geom=shapely.to_wkb(outline),
        )
        s.add(country)
        s.flush()
        regions = [
            Area(
                code=f"CI-R{r + 1}",
                name=f"Region {r + 1}",
                level="region",
                country_code="CIV",
                parent_id=country.id,
            )
            for r in range(REGIONS)
        ]
        s.add_all(regions)
        s.flush()
        depts = []
        w, h = (maxx - minx) / DEPT_COLUMNS, (maxy - miny) / DEPT_ROWS
        for d in range(DEPT_COLUMNS * DEPT_ROWS):
            r, c = divmod(d, DEPT_COLUMNS)
            box = shapely.box(minx + c * w, miny + r * h, minx + (c + 1) * w, miny + (r + 1) * h)
            geom = box.intersection(outline)
            depts.append(
                Area(
                    code=f"CI-D{d + 1:02d}",
                    name=f"Department {d + 1}",
                    level="department",
                    country_code="CIV",
                    parent_id=regions[d * REGIONS // (DEPT_COLUMNS * DEPT_ROWS)].id,
                    geom=None if geom.is_empty else shapely.to_wkb(geom),
                )
            )
        s.add_all(depts)
        s.flush()
        village_rows = [
            {
                "code": f"CV{i + 1:05d}",
                "name": f"Village {i + 1}",
                "area_id": depts[dept_of[i]].id,
                "lat": float(xy[i, 1]),
                "lon": float(xy[i, 0]),
                "cell": shapely.to_wkb(cells[i]) if cells[i] is not None else None,
                "cell_kind": "voronoi" if cells[i] is not None else None,
            }
            for i in range(len(xy))
        ]
        s.execute(insert(Village.__table__), village_rows)
        village_ids = dict(s.execute(select(Village.code, Village.id)).all())
        ids = np.array([village_ids[r["code"]] for r in village_rows], dtype=np.int64)
        suppliers = [
            Supplier(
                code=f"CS{i + 1:02d}",
                name=f"Cooperative {i + 1}",
                tier=1 if i < 5 else 2 if i < 15 else 3,
            )
            for i in range(30)
        ]
        s.add_all(suppliers)
        brand = Brand(code="BRAND-BENCH", name="Bench Chocolate")
        s.add(brand)
        s.flush()
        tier1, tier2, tier3 = suppliers[:5], suppliers[5:15], suppliers[15:]
        for i, seller in enumerate(tier2):
            s.add(SupplierLink(buyer_id=tier1[i % 5].id, seller_id=seller.id))
        for i, seller in enumerate(tier3):
            s.add(SupplierLink(buyer_id=tier2[i % 10].id, seller_id=seller.id))
        for t1 in tier1[:2]:  # the brand buys from two exporters: a third of the chain
            s.add(BrandSupplier(brand_id=brand.id, supplier_id=t1.id))
        buyers = [x.id for x in tier2 + tier3]
        dept_suppliers = {
            d: [buyers[(3 * d + k) % len(buyers)] for k in range(3)] for d in range(len(depts))
        }
        links = {(sid, int(ids[i])) for i, d in enumerate(dept_of) for sid in dept_suppliers[d]}
        s.execute(
            insert(SupplierVillage.__table__),
            [{"supplier_id": a, "village_id": b} for a, b in sorted(links)],
        )
        monitors = [
            add_user(
                s,
                username=f"monitor{d + 1:02d}",
                role="monitor",
                password="bench-pw-1",
                realm=realm,
                scope_codes=[dept.code],
            ).id
            for d, dept in enumerate(depts)
        ]
        brand_user = add_user(
            s,
            username="brand",
            role="brand",
            password="bench-pw-1",
            realm=realm,
            brand_code=brand.code,
        ).id
        supervisor = add_user(
            s,
            username="supervisor",
            role="supervisor",
            password="bench-pw-1",
            realm=realm,
            scope_codes=["CI"],
        ).id
        form, version, profile = bench_form_and_profile(s, ["machete"])
        return {
            "xy": xy,
            "village_ids": ids,
            "dept_of": np.array(dept_of),
            "dept_suppliers": dept_suppliers,
            "monitors": monitors,
            "brand_user": brand_user,
            "supervisor": supervisor,
            "form_id": form.id,
            "form_version_id": version.id,
            "profile_id": profile.id,
            "cells_seconds": cells_s,
            "cells": sum(c is not None for c in cells),
        }


def households(rng: np.random.Generator, world: dict, n: int) -> dict:
    """Each household's village (log-normal weights), supplier, GPS point and children count."""
    weights = rng.lognormal(0, 1, len(world["xy"]))
    village = rng.choice(len(weights), size=n, p=weights / weights.sum())
    jitter = rng.normal(0, 0.006, (n, 2))  # about 700 m
    far = rng.random(n) < 0.03
    jitter[far] += rng.choice([-1, 1], (far.sum(), 2)) * rng.uniform(0.04, 0.09, (far.sum(), 2))
    xy = world["xy"][village] + jitter
    supplier_pick = rng.integers(0, 3, n)
    supplier = np.array(
        [
            world["dept_suppliers"][d][k]
            for d, k in zip(world["dept_of"][village].tolist(), supplier_pick.tolist(), strict=True)
        ]
    )
    return {"village": village, "lon": xy[:, 0], "lat": xy[:, 1], "supplier": supplier}


def children_per_household(rng: np.random.Generator, n_households: int, n_children: int):
    """1-7 children a household, ``n_children`` in all (at least one each)."""
    counts = np.ones(n_households, dtype=np.int64)
    extra = n_children - n_households
    if extra > 0:
        counts += np.bincount(rng.integers(0, n_households, extra), minlength=n_households)
    return counts


def bulk_load(
    url: str,
    rng: np.random.Generator,
    world: dict,
    hh: dict,
    located: np.ndarray,
    distances: list,
    counts: np.ndarray,
    now: dt.datetime,
    progress,
) -> dict:
    """Households, children, submissions, visits, child visits and classifications, with Core
    ``INSERT`` in batches, one transaction; returns the row counts."""
    from clms.models import Child, ChildVisit, Classification, Household, Submission, Visit

    n = len(hh["village"])
    ids = world["village_ids"]
    form_village = ids[hh["village"]]
    village = np.where(located >= 0, located, form_village)
    source = np.where(located >= 0, "gps", "form")
    days = rng.uniform(0, 360, n)
    monitors = np.array(world["monitors"])[world["dept_of"][hh["village"]]]
    total_children = int(counts.sum())
    working = rng.random(total_children) < WORKING_SHARE
    mix_w = [c for c, _ in WORKING_MIX], [p for _, p in WORKING_MIX]
    mix_c = [c for c, _ in CLEAR_MIX], [p for _, p in CLEAR_MIX]
    categories = np.where(
        working,
        rng.choice(mix_w[0], total_children, p=mix_w[1]),
        rng.choice(mix_c[0], total_children, p=mix_c[1]),
    )
    ages = rng.integers(5, 18, total_children)
    sexes = rng.choice(["female", "male"], total_children)
    rows = {
        "households": 0,
        "children": 0,
        "submissions": 0,
        "visits": 0,
        "child_visits": 0,
        "classifications": 0,
    }
    engine = create_engine(url)
    child = 0
    try:
        with engine.begin() as conn:
            for start in range(0, n, BATCH // 4):
                stop = min(n, start + BATCH // 4)
                h_rows, c_rows, s_rows, v_rows, cv_rows, cl_rows = [], [], [], [], [], []
                for i in range(start, stop):
                    hid = i + 1
                    at = now - dt.timedelta(days=float(days[i]))
                    h_rows.append(
                        {
                            "id": hid,
                            "code": f"HH-G{hid:07d}",
                            "village_id": int(village[i]),
                            "supplier_id": int(hh["supplier"][i]),
                            "head_name": None,
                            "first_visit_at": at,
                            "last_visit_at": at,
                        }
                    )
                    s_rows.append(
                        {
                            "id": hid,
                            "instance_id": f"uuid:geo-{hid}",
                            "logical_id": f"uuid:geo-{hid}",
                            "deprecated_id": None,
                            "current": True,
                            "form_id": world["form_id"],
                            "form_version_id": world["form_version_id"],
                            "xml": b"<data/>",
                            "xml_sha256": "0" * 64,
                            "received_at": at,
                            "source": "openrosa",
                            "submitter_id": int(monitors[i]),
                            "device_id": "bench",
                            "status": "parsed",
                            "review_reasons": [],
                        }
                    )
                    v_rows.append(
                        {
                            "id": hid,
                            "submission_id": hid,
                            "kind": "household",
                            "current": True,
                            "household_id": hid,
                            "case_id": None,
                            "village_id": int(village[i]),
                            "form_village_id": int(form_village[i]),
                            "village_source": str(source[i]),
                            "gps_distance_km": distances[i],
                            "supplier_id": int(hh["supplier"][i]),
                            "monitor_id": int(monitors[i]),
                            "visited_at": at,
                            "started_at": at,
                            "ended_at": at + dt.timedelta(minutes=25),
                            "device_id": "bench",
                            "consent": True,
                            "child_present": None,
                            "lat": float(hh["lat"][i]),
                            "lon": float(hh["lon"][i]),
                            "altitude": 200.0,
                            "accuracy": 5.0,
                            "services_received": [],
                            "notes": None,
                        }
                    )
                    for position in range(1, int(counts[i]) + 1):
                        child += 1
                        category = str(categories[child - 1])
                        works = category in LABOUR
                        c_rows.append(
                            {
                                "id": child,
                                "child_uid": f"CH-G{child:08d}",
                                "household_id": hid,
                                "name": f"Child {child}",
                                "name_key": f"child {child}",
                                "sex": str(sexes[child - 1]),
                                "birth_year": now.year - int(ages[child - 1]),
                                "birth_year_exact": False,
                                "dob": None,
                                "created_at": at,
                                "merged_into_id": None,
                            }
                        )
                        cv_rows.append(
                            {
                                "id": child,
                                "visit_id": hid,
                                "child_id": child,
                                "position": position,
                                "age": int(ages[child - 1]),
                                "sex": str(sexes[child - 1]),
                                "relationship_to_head": "son_daughter",
                                "attends_school": not works,
                                "work_activities": ["harvesting"] if works else [],
                                "work_hours_7d": 20 if works else 0,
                                "chore_hours_7d": 5,
                                "hazards": [],
                                "night_work": False,
                                "injured_12m": False,
                                "worst_form_signs": [],
                                "nationality": "CIV",
                                "migrant_status": "national",
                                "lives_with_parent": True,
                            }
                        )
                        cl_rows.append(
                            {
                                "id": child,
                                "child_visit_id": child,
                                "child_id": child,
                                "current": True,
                                "rule_set_version": "bench-geo",
                                "profile_id": world["profile_id"],
                                "category": category,
                                "sdg_871": works,
                                "reasons": [],
                                "risk_factors": [],
                                "classified_at": at,
                                "previous_id": None,
                                "change_reason": None,
                            }
                        )
                for table, batch in (
                    (Household, h_rows),
                    (Child, c_rows),
                    (Submission, s_rows),
                    (Visit, v_rows),
                    (ChildVisit, cv_rows),
                    (Classification, cl_rows),
                ):
                    conn.execute(insert(table.__table__), batch)
                    rows[table.__tablename__] += len(batch)
                progress(stop)
            if engine.dialect.name == "postgresql":
                for table in rows:
                    sql = f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))"  # noqa: S608
                    conn.execute(text(sql))
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return rows


# --- the measures --------------------------------------------------------------------------------


def naive_join_seconds(cells: np.ndarray, lons, lats, sample: int, rng) -> tuple[float, int]:
    """Seconds a loop testing every cell for each point takes for ``sample`` points."""
    pick = rng.choice(len(lons), size=min(sample, len(lons)), replace=False)
    points = shapely.points(np.asarray(lons)[pick], np.asarray(lats)[pick])
    t0 = time.perf_counter()
    for point in points:
        np.flatnonzero(shapely.contains(cells, point))
    return time.perf_counter() - t0, len(pick)


def naive_map(hh: dict, counts: np.ndarray, markers: int, rng) -> tuple[float, int, int]:
    """Seconds and bytes of a folium map with one marker (and popup) per household, for
    ``markers`` households drawn at random."""
    import folium

    pick = rng.choice(len(hh["lon"]), size=min(markers, len(hh["lon"])), replace=False)
    t0 = time.perf_counter()
    fmap = folium.Map(location=[7.5, -5.5], zoom_start=7, tiles=None)
    for i in pick:
        folium.Marker(
            [float(hh["lat"][i]), float(hh["lon"][i])],
            popup=f"Household HH-G{i + 1:07d}: {int(counts[i])} children",
        ).add_to(fmap)
    html = fmap.get_root().render()
    return time.perf_counter() - t0, len(html.encode()), len(pick)


def bench(args) -> dict:
    """One run at ``args.scale`` on ``args.db``; returns the figures."""
    from clms.app import create_app
    from clms.db import session_scope
    from clms.migrate import upgrade
    from clms.models import User
    from geo import join

    rng = np.random.default_rng(args.seed)
    n_villages = max(20, round(FULL_VILLAGES * args.scale))
    n_households = max(50, round(FULL_HOUSEHOLDS * args.scale))
    n_children = max(n_households, round(FULL_CHILDREN * args.scale))
    timer = Timer()
    db = Database(args.db)
    out: dict = {
        "db": args.db,
        "scale": args.scale,
        "villages": n_villages,
        "households": n_households,
        "children": n_children,
    }
    try:
        engine = create_engine(db.url)
        upgrade(engine)
        engine.dispose()
        # the brand's reporting periods (geo.periods): years ending on the last day of last
        # month, published at once, so that the brand's latest period holds the twelve months
        # of visits the world has, as the figures before the grid did
        today = dt.datetime.now(dt.UTC).date()
        grid = {"BRAND_PERIOD_MONTHS": 12, "BRAND_PERIOD_FIRST_MONTH": today.month,
                "BRAND_PERIOD_GRACE_DAYS": 0}  # fmt: skip
        app = create_app({"DATABASE_URL": db.url, "SECRET_KEY": SECRET_KEY, "ODK_VALIDATE": "0",
                          **grid})  # fmt: skip
        log(
            f"{args.db}: {n_villages:,} villages, {n_households:,} households, "
            f"{n_children:,} children"
        )
        with timer.phase("world"):
            world = make_world(app, rng, n_villages)
        out["voronoi_cells_seconds"] = round(world["cells_seconds"], 3)
        out["cells"] = world["cells"]
        log(f"  villages and {world['cells']:,} Voronoi cells ({world['cells_seconds']:.2f} s)")
        hh = households(rng, world, n_households)
        counts = children_per_household(rng, n_households, n_children)

        # 1. the spatial join, as ingestion does it: index from the database, then locate
        join.forget()
        with app.app_context(), session_scope(app) as s:
            with timer.phase("index"):
                index = join.village_index(s)
            with timer.phase("join"):
                found = index.locate_array(hh["lon"], hh["lat"])
            chosen = world["village_ids"][hh["village"]]
            with timer.phase("distances"):
                distances = join.distances_km(
                    hh["lon"],
                    hh["lat"],
                    index.cells_of(chosen),
                    [None] * n_households,
                    [None] * n_households,
                )
            located = np.where(found >= 0, index.ids[np.maximum(found, 0)], -1)
        # as ingestion does: a point in a village of another department than the monitor's
        # (each monitor has one) leaves the visit in the chosen village
        position = {int(v): i for i, v in enumerate(world["village_ids"])}
        located_dept = np.array([world["dept_of"][position[v]] if v >= 0 else -1
                                 for v in located.tolist()])  # fmt: skip
        out_of_scope = (located >= 0) & (located_dept != world["dept_of"][hh["village"]])
        located = np.where(out_of_scope, -1, located)
        naive_s, naive_n = naive_join_seconds(
            index.cells, hh["lon"], hh["lat"], args.naive_points, rng
        )
        out["join"] = {
            "points": n_households,
            "index_build_s": round(timer.seconds["index"], 3),
            "locate_s": round(timer.seconds["join"], 3),
            "distances_s": round(timer.seconds["distances"], 3),
            "in_a_cell": int((found >= 0).sum()),
            "moved_by_gps": int(((located >= 0) & (located != chosen)).sum()),
            "kept_out_of_scope": int(out_of_scope.sum()),
            "far": int(sum(d is not None and d > 5 for d in distances)),
            "naive_sample": naive_n,
            "naive_sample_s": round(naive_s, 3),
            "naive_extrapolated_s": round(naive_s * n_households / naive_n, 1),
        }
        try:
            import geopandas as gpd

            pts = gpd.GeoDataFrame(geometry=shapely.points(hh["lon"], hh["lat"]), crs=4326)
            polys = gpd.GeoDataFrame({"vid": index.ids}, geometry=index.cells, crs=4326)
            with timer.phase("sjoin"):
                gpd.sjoin(pts, polys, how="left", predicate="intersects")
            out["join"]["geopandas_sjoin_s"] = round(timer.seconds["sjoin"], 3)
        except ImportError:  # pragma: no cover - geopandas is a dependency
            pass
        log(
            f"  join: {out['join']['locate_s']:.2f} s for {n_households:,} points "
            f"(naive: {out['join']['naive_extrapolated_s']:,.0f} s extrapolated)"
        )

        with timer.phase("load"):
            bar = Progress("  loading households", n_households)
            out["rows"] = bulk_load(
                db.url,
                rng,
                world,
                hh,
                located,
                distances,
                counts,
                dt.datetime.now(dt.UTC),
                bar.update,
            )
            bar.done()
        out["load_s"] = round(timer.seconds["load"], 1)

        # what `clms places locate --all` does with the stored visits (nothing changes: they were
        # stored with the same join)
        join.forget()
        with app.app_context(), session_scope(app) as s, timer.phase("relocate"):
            relocated = join.locate_visits(s, only_missing=False)
        out["join"]["relocate_all_s"] = round(timer.seconds["relocate"], 2)
        out["join"]["relocate_changed"] = relocated.changed
        log(
            f"  clms places locate --all: {relocated.checked:,} visits in "
            f"{timer.seconds['relocate']:.1f} s, {relocated.changed} changed"
        )

        # 2. hotspot aggregation, 3. the brand map, as the brand user: the brand's latest
        # period is released once (geo.hotspots.releases: the one aggregation of every level and
        # layer, what a page would cost if it were aggregated live), then every view reads it
        from geo.hotspots.aggregate import release_inputs
        from geo.hotspots.releases import refresh
        from geo.hotspots.settings import HotspotSettings
        from geo.hotspots.tables import hotspot_table, hotspot_tables, offered_periods
        from geo.maps.brand import PAGE_LEVELS, brand_map_data
        from geo.maps.build import build_brand_map

        with app.app_context(), session_scope(app) as s:
            brand = s.get(User, world["brand_user"])
            settings = HotspotSettings.from_config(app.config)
            latest = offered_periods(dt.datetime.now(dt.UTC).date(), settings=settings)[0]
            with timer.phase("brand_live"):
                release_inputs(s, brand.brand_id, latest)
            with timer.phase("brand_release"):
                refresh(s, settings=settings)
            with timer.phase("hotspots_village"):
                by_village = hotspot_table(s, brand, "village", settings=settings)
            with timer.phase("hotspots_supplier"):
                hotspot_table(s, brand, "supplier", settings=settings)
            # what a brand's map page costs, as the web pages do it: the page (its table of
            # every level) and the map in its frame (lazy: the same tables, and the HTML); the
            # tier and supplier layers come when chosen
            with timer.phase("brand_page_table"):
                hotspot_tables(s, brand, PAGE_LEVELS, settings=settings)
            with timer.phase("brand_page_frame"):
                frame = build_brand_map(
                    brand_map_data(s, brand, lazy=True, settings=settings),
                    layer_url="/map/layer.json?months=12",
                    assets="/static/vendor/node_modules",
                )
                frame_html = frame.get_root().render()
            # what geo.maps.brand.brand_map_html does (the standalone export, every layer), in its
            # two steps: the figures, then the HTML
            with timer.phase("brand_map_data"):
                data = brand_map_data(s, brand, settings=settings)
            with timer.phase("brand_map_html"):
                html = build_brand_map(data).get_root().render()
            for name, parts in (
                ("brand_map", ("brand_map_data", "brand_map_html")),
                ("brand_page", ("brand_page_table", "brand_page_frame")),
            ):
                timer.seconds[name] = sum(timer.seconds[k] for k in parts)
                timer.peak_mib[name] = max(timer.peak_mib[k] for k in parts)
                timer.growth_mib[name] = max(timer.growth_mib[k] for k in parts)
        out["hotspots"] = {
            "village_s": round(timer.seconds["hotspots_village"], 3),
            "supplier_s": round(timer.seconds["hotspots_supplier"], 3),
            "village_rows": len(by_village.rows),
        }
        out["brand_page"] = {
            "seconds": round(timer.seconds["brand_page"], 3),
            "table_s": round(timer.seconds["brand_page_table"], 3),
            "frame_s": round(timer.seconds["brand_page_frame"], 3),
            "frame_bytes": len(frame_html.encode()),
        }
        del frame_html
        out["brand_release"] = {
            "live_s": round(timer.seconds["brand_live"], 3),
            "release_s": round(timer.seconds["brand_release"], 3),
        }
        out["brand_map"] = {
            "seconds": round(timer.seconds["brand_map"], 3),
            "figures_s": round(timer.seconds["brand_map_data"], 3),
            "html_s": round(timer.seconds["brand_map_html"], 3),
            "layers": len(data.layers),
            "bytes": len(html.encode()),
        }
        del html
        log(f"  brand map page: {out['brand_page']['seconds']:.2f} s from the release; "
            f"aggregated live {out['brand_release']['live_s']:.2f} s, released (two periods) "
            f"{out['brand_release']['release_s']:.2f} s")  # fmt: skip
        log(
            f"  brand map: {out['brand_map']['seconds']:.2f} s, "
            f"{out['brand_map']['bytes'] / 1e6:.2f} MB"
        )
        with timer.phase("naive_map"):
            seconds, size, markers = naive_map(hh, counts, args.naive_markers, rng)
        factor = n_households / markers
        out["naive_map"] = {
            "markers": markers,
            "seconds": round(seconds, 2),
            "bytes": size,
            "extrapolated": markers < n_households,
            "extrapolated_s": round(seconds * factor, 1),
            "extrapolated_bytes": round(size * factor),
        }
        log(f"  naive map: {seconds:.1f} s and {size / 1e6:.1f} MB for {markers:,} markers")
        app.extensions["clms_engine"].dispose()
    finally:
        if args.keep:
            # the database stays for timing single calls; a PostgreSQL cluster keeps running
            # (stop it with pg_ctl -D <folder>/pg/data stop, then remove the folder)
            log(f"  database kept: {db.url} (folder {db.tmp})")
        else:
            db.close()
    out["peak_rss_mib"] = {k: round(v, 1) for k, v in timer.peak_mib.items()}
    out["peak_rss_mib_max"] = round(max(timer.peak_mib.values()), 1)
    out["rss_growth_mib"] = {k: round(v, 1) for k, v in timer.growth_mib.items()}
    out["targets"] = {
        "join_under_5s": out["join"]["locate_s"] < TARGET_JOIN_S,
        "page_under_3s": out["brand_page"]["seconds"] < TARGET_MAP_S,
        "map_under_3s": out["brand_map"]["seconds"] < TARGET_MAP_S,
        "map_under_5mb": out["brand_map"]["bytes"] < TARGET_MAP_MB * 1e6,
    }
    return out


class Progress:
    """A running count on stderr (the bench's output is the table on stdout)."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.t0 = label, total, time.perf_counter()

    def update(self, done: int) -> None:
        sys.stderr.write(
            f"\r{self.label}: {done:,} of {self.total:,} ({time.perf_counter() - self.t0:.0f} s)"
        )
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def table(r: dict) -> str:
    """The figures as a Markdown table."""
    j, m, nm, hs = r["join"], r["brand_map"], r["naive_map"], r["hotspots"]
    p, k = r["brand_page"], r["brand_release"]
    grow = r["rss_growth_mib"]
    extra = " (extrapolated)" if nm["extrapolated"] else ""
    lines = [
        f"{r['villages']:,} villages ({r['cells']:,} Voronoi cells in "
        f"{r['voronoi_cells_seconds']:.2f} s), {r['households']:,} households, "
        f"{r['children']:,} children; {r['db']}; bulk load {r['load_s']:.0f} s",
        "",
        "| measure | this system | naive baseline | target |",
        "|---|---|---|---|",
        f"| spatial join of {j['points']:,} points | {j['locate_s']:.3f} s (index built in "
        f"{j['index_build_s']:.2f} s; distances {j['distances_s']:.2f} s) | "
        f"{j['naive_extrapolated_s']:,.0f} s (every cell tested per point; {j['naive_sample']:,} "
        f"points in {j['naive_sample_s']:.1f} s, extrapolated); geopandas sjoin "
        f"{j.get('geopandas_sjoin_s', float('nan')):.2f} s | < {TARGET_JOIN_S:g} s |",
        f"| points in a cell / moved by their GPS / kept in the chosen village (the point in "
        f"another monitor's village) / over 5 km from the chosen village | {j['in_a_cell']:,} / "
        f"{j['moved_by_gps']:,} / {j['kept_out_of_scope']:,} / {j['far']:,} | | |",
        f"| `clms places locate --all` over the stored visits | {j['relocate_all_s']:.1f} s "
        f"({j['relocate_changed']:,} changed) | | |",
        f"| a brand's period aggregated (every level and layer: what a page would cost if "
        f"aggregated live) / released once (the period and the one before, in the database) | "
        f"{k['live_s']:.2f} s / {k['release_s']:.2f} s | | |",
        f"| hotspot table, brand, by village / by supplier, from the release | "
        f"{hs['village_s']:.2f} s / {hs['supplier_s']:.2f} s ({hs['village_rows']:,} village "
        f"rows) | | |",
        f"| brand map page view (the page's table of every level + the map's frame, lazy: two "
        f"requests), from the release | {p['seconds']:.2f} s: table {p['table_s']:.2f} s + "
        f"frame {p['frame_s']:.2f} s ({p['frame_bytes'] / 1e6:.2f} MB) | aggregated live "
        f"{k['live_s']:.2f} s | < {TARGET_MAP_S:g} s |",
        f"| brand map build (standalone, every layer: one aggregation) | {m['seconds']:.2f} s: "
        f"figures of {m['layers']} layers "
        f"{m['figures_s']:.2f} s + HTML {m['html_s']:.2f} s | {nm['extrapolated_s']:,.1f} s{extra} "
        f"(one marker per household; {nm['markers']:,} markers took {nm['seconds']:.1f} s) | "
        f"< {TARGET_MAP_S:g} s |",
        f"| brand map HTML | {m['bytes'] / 1e6:.2f} MB | {nm['extrapolated_bytes'] / 1e6:,.1f} "
        f"MB{extra} ({nm['bytes'] / 1e6:.1f} MB for {nm['markers']:,}) | < {TARGET_MAP_MB:g} MB |",
        f"| peak memory (RSS of the process) | {r['peak_rss_mib_max']:,.0f} MiB in all; growth "
        f"during the join {grow['join']:,.0f} MiB, the brand map {grow['brand_map']:,.0f} MiB | "
        f"growth {grow['naive_map']:,.0f} MiB for the naive map of {nm['markers']:,} | |",
    ]
    return "\n".join(lines) + "\n"


def charts(r: dict) -> dict[str, str]:
    j, m, nm = r["join"], r["brand_map"], r["naive_map"]
    return {
        "times": bar_chart_svg(
            f"Geo benchmark, {r['households']:,} households ({r['db']}): seconds",
            [
                (
                    f"spatial join, {j['points']:,} points",
                    [
                        ("STRtree (geo.join)", j["locate_s"]),
                        ("geopandas sjoin", j.get("geopandas_sjoin_s", 0.0)),
                        ("naive loop (extrap.)", j["naive_extrapolated_s"]),
                    ],
                ),
                (
                    "map build",
                    [("brand map", m["seconds"]), ("marker per household", nm["extrapolated_s"])],
                ),
            ],
            "s",
        ),
        "sizes": bar_chart_svg(
            f"Map HTML size, {r['households']:,} households: MB",
            [
                (
                    "map HTML",
                    [
                        ("brand map", m["bytes"] / 1e6),
                        ("marker per household", nm["extrapolated_bytes"] / 1e6),
                    ],
                )
            ],
            "MB",
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="share of the full size (10,000 villages, 250,000 households, "
        "1,000,000 children); 0.01 for a quick run",
    )
    parser.add_argument(
        "--naive-points",
        type=int,
        default=500,
        help="points the naive join is timed on (then extrapolated)",
    )
    parser.add_argument(
        "--naive-markers",
        type=int,
        default=25_000,
        help="households in the naive marker map (then extrapolated)",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the database after the run (a PostgreSQL cluster running), to time single "
        "calls on it",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for JSON and SVG")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    result = bench(args)
    text_table = table(result)
    print(text_table)
    name = f"geo-{args.db}"
    save_results(args.out / f"{name}.json", args, [result], text_table)
    for key, svg in charts(result).items():
        (args.out / f"{name}-{key}.svg").write_text(svg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
