"""Benchmark: the officers' alert queue (``GET /api/v1/alerts``) with 100,000 open alerts.

Usage (from the repository root, in the virtualenv)::

    python -m bench.alert_queue                        # SQLite and PostgreSQL, 100,000 alerts
    python -m bench.alert_queue --db postgresql --alerts 20000 --requests 100

For each database the bench creates a fresh database (a SQLite file in a temporary folder, or a
throwaway PostgreSQL cluster through ``tests/pgserver.py``), runs the migrations and loads, with
Core ``executemany`` in one transaction:

- places: one country, 3 regions, 20 departments, 1,000 villages (50 per department); how many
  alerts a village has is skewed (log-normal weights), as hotspots are; the first region holds
  about a third of the alerts;
- 30 suppliers, each buying in the villages of one or two departments;
- one household per 2.5 children, one child per open alert, ``--alerts`` open alerts (60% new,
  40% acknowledged, some of those already visited) with a severity mix of 3% critical, 25% high,
  40% medium and 32% low, raised over the last 30 days (more of them recently) with the deadlines
  of domain.md section 4, so that a realistic share is overdue; and ``--closed`` closed alerts
  (dismissed or case opened) of the same children, as a queue that has run for a while has;
- an officer scoped to the first region (about a third of the alerts) and a supervisor scoped to
  the country (all of them).

Statistics are gathered as production would have them: PostgreSQL's autovacuum analyses a table
this size within a minute, so the bench runs ``VACUUM ANALYZE``; SQLite has no statistics unless
someone runs ``ANALYZE``, and the bench leaves it so (``--sqlite-analyze`` to change that).

gunicorn then serves the product (``clms.app:create_app()``, gthread workers) as a subprocess, and
one client (``--clients`` for more) with a keep-alive ``requests.Session`` and a bearer token from
``POST /api/v1/sessions`` sends, for each user, ``--requests`` requests of each scenario after
``--warmup`` unmeasured ones: the baseline ``GET /api/v1/me`` (same authentication, no query), the
first page, ``severity=high``, the user's busiest village, ``overdue=true``, a deep page (half-way
through the queue: page 1,000 of 2,000 for the supervisor) counted by OFFSET (``?page=``) and the
same page read by key (``?after=``, the cursor ``next`` of the page before it, as a client paging
through gets it), a first page of 200, and orders by one column (their deep page by OFFSET and by
key). Every answer must be 200 with the expected total; any other is counted as an error, printed,
and makes the run fail (exit status 1).

The schema is the product's, migrated: ``ix_alerts_active_order`` (migration 0023, the active
queue in urgency order within each severity) is what lets the page by key read only its rows.

Index variants (``--index``): ``without`` drops ``ix_alerts_scope_queue`` (migration 0003, a
covering index of the queue's conditions and order led by status and village) to measure the
schema as it was before; ``with`` measures the schema as migrated (:data:`QUEUE_INDEX`, created
again after ``without``); ``both`` (the default) does one then the other on the
same database, restarting gunicorn in between.

``--gc-freeze`` serves :func:`frozen_app` instead: the product with ``gc.freeze()`` after
start-up, to measure what that would change (the product does not do it).

The table printed at the end is Markdown; the figures are also written as JSON to
``bench/results/alert_queue.json`` and gunicorn's log to ``bench/results/``. The target is a p95
under 150 ms for every queue scenario.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import random
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from sqlalchemy import create_engine, insert, text

from bench.common import ROOT, Database, Gunicorn, percentile, save_results
from clms.models import ACTIVE_ALERT_STATUSES, Alert, AlertEvent, Child, Household

RESULTS = ROOT / "bench" / "results"
PASSWORD = "bench horse battery staple"
SECRET_KEY = "bench-secret-key-not-for-production"
TARGET_P95_MS = 150.0

REGIONS = 3
DEPARTMENTS = 20
VILLAGES = 1000
SUPPLIERS = 30
CHILDREN_PER_HOUSEHOLD = 2.5
SEVERITY_MIX = [("critical", 0.03), ("high", 0.25), ("medium", 0.40), ("low", 0.32)]
CATEGORY = {
    "critical": "worst_form",
    "high": "hazardous",
    "medium": "child_labour",
    "low": "at_risk",
}
RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
# acknowledge within, first visit within (domain.md section 4)
DEADLINES = {
    "critical": (dt.timedelta(hours=24), dt.timedelta(hours=72)),
    "high": (dt.timedelta(days=3), dt.timedelta(days=7)),
    "medium": (dt.timedelta(days=7), dt.timedelta(days=14)),
    "low": (dt.timedelta(days=30), None),
}
REASONS = {
    "critical": [{"rule": "WF_SIGNS", "facts": {"age": 13, "signs": ["debt", "cannot_leave"]}}],
    "high": [
        {"rule": "HAZ_TASK", "facts": {"age": 14, "hazards": ["agrochemicals", "heavy_loads"]}},
        {"rule": "HAZ_HOURS", "facts": {"age": 14, "work_hours_7d": 45, "threshold": 43}},
    ],
    "medium": [
        {
            "rule": "CL_UNDER_LIGHT_AGE",
            "facts": {"age": 9, "work_hours_7d": 6, "light_work_age": 12},
        },
    ],
    "low": [{"rule": "AR_CHORES", "facts": {"age": 10, "chore_hours_7d": 24, "threshold": 21}}],
}

#: the queue's index, added by migration 0003 after this bench measured it. It leads with
#: ``status`` like ``ix_alerts_queue``, so SQLite's planner, which has no statistics unless
#: someone runs ANALYZE, still prefers it (it matches two columns: status and village, the
#: scope); it carries every column of the queue's order and of the overdue rule, so the counts
#: and the sorts read the index (a covering index) and never the wide rows with their JSON
#: reasons. A partial index (``WHERE status IN (...)``) was as fast on PostgreSQL, but SQLite
#: only chose it after ANALYZE.
QUEUE_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_alerts_scope_queue ON alerts "
    "(status, village_id, severity_rank, ack_due_at, acknowledged_at, visit_due_at, "
    "first_visit_at)"
)


# --- set-up ------------------------------------------------------------------------------------


def prepare_database(url: str, n_alerts: int, n_closed: int, seed: int, analyze: bool) -> dict:
    """Migrate, load places, users, households, children and alerts; returns what the bench
    needs to know (users' scopes, busiest villages, expected totals)."""
    from clms.app import create_app
    from clms.auth.users import add_user
    from clms.db import session_scope
    from clms.migrate import upgrade
    from clms.models import Area, Supplier, SupplierVillage, Village

    rng = random.Random(seed)
    engine = create_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "ODK_VALIDATE": "0"})
    try:
        with session_scope(app) as s:
            country = Area(code="BX", name="Benchland", level="country", country_code="BXL")
            s.add(country)
            s.flush()
            regions = []
            for r in range(REGIONS):
                region = Area(
                    code=f"BX-R{r + 1}",
                    name=f"Region {r + 1}",
                    level="region",
                    country_code="BXL",
                    parent_id=country.id,
                )
                s.add(region)
                regions.append(region)
            s.flush()
            departments = []
            for d in range(DEPARTMENTS):
                region = regions[d * REGIONS // DEPARTMENTS]
                dept = Area(
                    code=f"BX-D{d + 1:02d}",
                    name=f"Department {d + 1}",
                    level="department",
                    country_code="BXL",
                    parent_id=region.id,
                )
                s.add(dept)
                departments.append(dept)
            s.flush()
            villages = []  # (id, code, region index, department index)
            per_dept = VILLAGES // DEPARTMENTS
            for d, dept in enumerate(departments):
                for k in range(per_dept):
                    v = Village(
                        code=f"BV{d + 1:02d}{k + 1:03d}",
                        name=f"Village {d + 1}-{k + 1}",
                        area_id=dept.id,
                        lat=5 + d / 10,
                        lon=-6 - k / 100,
                    )
                    s.add(v)
                    villages.append([v, d * REGIONS // DEPARTMENTS, d])
            s.flush()
            villages = [(v.id, v.code, r, d) for v, r, d in villages]
            suppliers = []
            for i in range(SUPPLIERS):
                sup = Supplier(code=f"BS{i + 1:02d}", name=f"Cooperative {i + 1}", tier=2)
                s.add(sup)
                suppliers.append(sup)
            s.flush()
            # each department sells to one or two of the suppliers
            dept_suppliers = {
                d: rng.sample([sup.id for sup in suppliers], rng.choice([1, 2]))
                for d in range(DEPARTMENTS)
            }
            for vid, _code, _r, d in villages:
                for sid in dept_suppliers[d]:
                    s.add(SupplierVillage(supplier_id=sid, village_id=vid))
            realm = app.config["DIGEST_REALM"]
            add_user(
                s,
                username="officer",
                role="officer",
                password=PASSWORD,
                realm=realm,
                scope_codes=["BX-R1"],
                full_name="Bench Officer",
            )
            add_user(
                s,
                username="supervisor",
                role="supervisor",
                password=PASSWORD,
                realm=realm,
                scope_codes=["BX"],
                full_name="Bench Supervisor",
            )
            region_of_officer = 0
    finally:
        app.extensions["clms_engine"].dispose()

    # the alerts: villages weighted log-normally (hotspots), so villages differ a lot
    weights = [rng.lognormvariate(0, 1) for _ in villages]
    now = dt.datetime.now(dt.UTC)
    n_households = max(1, math.ceil(n_alerts / CHILDREN_PER_HOUSEHOLD))
    household_village = rng.choices(range(len(villages)), weights=weights, k=n_households)
    households = []
    for h, vi in enumerate(household_village):
        vid, _code, _r, d = villages[vi]
        households.append(
            {
                "id": h + 1,
                "code": f"HH-B{h + 1:07d}",
                "village_id": vid,
                "supplier_id": rng.choice(dept_suppliers[d]),
                "head_name": f"Head {h + 1}",
                "first_visit_at": now - dt.timedelta(days=60),
                "last_visit_at": now,
            }
        )
    region_of = {vid: r for vid, _code, r, _d in villages}
    children, alerts, events = [], [], []
    severities = [sev for sev, _ in SEVERITY_MIX]
    severity_weights = [w for _, w in SEVERITY_MIX]
    stats = {"by_village": {}, "by_region": [0] * REGIONS, "overdue": 0, "high": [0] * REGIONS}
    for c in range(n_alerts):
        h = households[c % n_households]
        children.append(
            {
                "id": c + 1,
                "child_uid": f"CH-B{c + 1:08d}",
                "household_id": h["id"],
                "name": f"Child {c + 1}",
                "name_key": f"child {c + 1}",
                "sex": rng.choice(["f", "m"]),
                "birth_year": rng.randint(2009, 2021),
                "birth_year_exact": False,
                "dob": None,
                "created_at": now,
            }
        )
    for a in range(n_alerts + n_closed):
        open_alert = a < n_alerts
        child = children[a] if open_alert else children[rng.randrange(n_alerts)]
        h = households[child["household_id"] - 1]
        sev = rng.choices(severities, weights=severity_weights)[0]
        ack_in, visit_in = DEADLINES[sev]
        created = now - dt.timedelta(days=30 * rng.random() ** 2, minutes=rng.randint(0, 600))
        if not open_alert:
            created -= dt.timedelta(days=rng.randint(31, 400))
        row = {
            "id": a + 1,
            "source": "visit",
            "status": "new",
            "child_id": child["id"],
            "household_id": h["id"],
            "report_id": None,
            "village_id": h["village_id"],
            "supplier_id": h["supplier_id"],
            "category": CATEGORY[sev],
            "severity": sev,
            "severity_rank": RANK[sev],
            "reasons": REASONS[sev],
            "needs_verification": True,
            "classification_id": None,
            "created_at": created,
            "updated_at": created,
            "last_seen_at": created - dt.timedelta(hours=rng.randint(1, 48)),
            "ack_due_at": created + ack_in,
            "visit_due_at": created + visit_in if visit_in else None,
            "acknowledged_at": None,
            "acknowledged_by_id": None,
            "first_visit_at": None,
            "assigned_to_id": None,
            "dismissed_at": None,
            "dismissed_reason": None,
            "escalated_at": None,
            "closed_at": None,
        }
        if open_alert and rng.random() < 0.4:
            row["status"] = "acknowledged"
            row["acknowledged_at"] = min(now, created + ack_in * rng.uniform(0.05, 1.3))
            if visit_in is not None and rng.random() < 0.5:
                row["first_visit_at"] = min(now, created + visit_in * rng.uniform(0.2, 1.2))
        elif not open_alert:
            row["status"] = rng.choice(["dismissed", "case_opened"])
            row["acknowledged_at"] = created + ack_in / 2
            row["closed_at"] = created + ack_in
            if row["status"] == "dismissed":
                row["dismissed_at"], row["dismissed_reason"] = row["closed_at"], "not confirmed"
        alerts.append(row)
        events.append(
            {
                "alert_id": row["id"],
                "at": created,
                "user_id": None,
                "action": "raised",
                "detail": {"category": row["category"], "severity": sev},
            }
        )
        if open_alert:
            region = region_of[h["village_id"]]
            stats["by_region"][region] += 1
            stats["by_village"][h["village_id"]] = stats["by_village"].get(h["village_id"], 0) + 1
            if sev == "high":
                stats["high"][region] += 1
            if _overdue(row, now):
                stats["overdue"] += 1

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table, rows in (
                (Household.__table__, households),
                (Child.__table__, children),
                (Alert.__table__, alerts),
                (AlertEvent.__table__, events),
            ):
                for i in range(0, len(rows), 5000):
                    conn.execute(insert(table), rows[i : i + 5000])
            if engine.dialect.name == "postgresql":
                for table in ("households", "children", "alerts", "alert_events"):
                    # the rows came with their ids: move the sequences past them
                    sql = f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))"  # noqa: S608
                    conn.execute(text(sql))
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        elif analyze:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()

    village_codes = {vid: code for vid, code, _r, _d in villages}
    in_region = {vid for vid, _c, r, _d in villages if r == region_of_officer}
    officer_busiest = max(in_region, key=lambda v: stats["by_village"].get(v, 0))
    supervisor_busiest = max(stats["by_village"], key=stats["by_village"].get)
    return {
        "users": {
            "officer": {
                "total": stats["by_region"][region_of_officer],
                "high": stats["high"][region_of_officer],
                "village": village_codes[officer_busiest],
                "village_total": stats["by_village"][officer_busiest],
            },
            "supervisor": {
                "total": n_alerts,
                "high": sum(stats["high"]),
                "village": village_codes[supervisor_busiest],
                "village_total": stats["by_village"][supervisor_busiest],
            },
        },
        "overdue": stats["overdue"],
        "by_region": stats["by_region"],
        "villages_with_alerts": len(stats["by_village"]),
    }


def _overdue(row: dict, now: dt.datetime) -> bool:
    if row["status"] not in ACTIVE_ALERT_STATUSES:
        return False
    if row["acknowledged_at"] is None and now > row["ack_due_at"]:
        return True
    return bool(row["visit_due_at"] and row["first_visit_at"] is None and now > row["visit_due_at"])


# --- load --------------------------------------------------------------------------------------


def deep_page(user: dict) -> int:
    """The page half-way through ``user``'s queue, 50 a page."""
    return max(1, -(-user["total"] // 50) // 2)


def scenarios(
    user: dict, cursors: dict[str, str] | None = None
) -> list[tuple[str, str, int | None]]:
    """``(name, path, expected total or None)`` for one user; the deep page is half-way, and is
    read by key too with ``cursors`` (order -> the cursor ``next`` of the page before it)."""
    deep = deep_page(user)
    keyed = [
        (f"{'' if order == 'urgency' else f'sort={order} '}deep {deep} by key",
         f"/api/v1/alerts?{'' if order == 'urgency' else f'sort={order}&'}after={cursor}",
         user["total"])
        for order, cursor in (cursors or {}).items()
    ]  # fmt: skip
    return [
        ("baseline /me", "/api/v1/me", None),
        ("first page", "/api/v1/alerts", user["total"]),
        ("severity=high", "/api/v1/alerts?severity=high", user["high"]),
        ("busiest village", f"/api/v1/alerts?village={user['village']}", user["village_total"]),
        ("overdue=true", "/api/v1/alerts?overdue=true", None),
        (f"deep page {deep}", f"/api/v1/alerts?page={deep}", user["total"]),
        ("per_page=200", "/api/v1/alerts?per_page=200", user["total"]),
        ("sort=village", "/api/v1/alerts?sort=village", user["total"]),
        (f"sort=age deep {deep}", f"/api/v1/alerts?sort=age&page={deep}", user["total"]),
        (f"sort=-raised deep {deep}", f"/api/v1/alerts?sort=-raised&page={deep}", user["total"]),
        *keyed,
    ]


#: the orders whose deep page is also read by key
KEYED_ORDERS = ("urgency", "age", "-raised")


def deep_cursors(base_url: str, token: str, user: dict) -> dict[str, str]:
    """The cursor of ``user``'s deep page in each of :data:`KEYED_ORDERS`: the ``next`` of the
    page before it (none when the deep page is the first)."""
    deep = deep_page(user)
    if deep < 2:
        return {}
    found = {}
    for order in KEYED_ORDERS:
        r = requests.get(
            f"{base_url}/api/v1/alerts?sort={order}&page={deep - 1}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
        r.raise_for_status()
        found[order] = r.json()["next"]
    return found


def measure(
    base_url: str,
    token: str,
    path: str,
    expected_total: int | None,
    n: int,
    warmup: int,
    clients: int,
) -> dict:
    """Latencies of ``n`` GETs of ``path`` (after ``warmup``), by ``clients`` keep-alive clients."""
    headers = {"Authorization": f"Bearer {token}"}
    per_client = [n // clients + (i < n % clients) for i in range(clients)]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work(count: int) -> None:
        session = requests.Session()
        mine, bad = [], []
        for i in range(warmup + count):
            t0 = time.perf_counter()
            r = session.get(base_url + path, headers=headers, timeout=60)
            ms = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                bad.append(f"{r.status_code}: {r.text[:200]}")
            elif expected_total is not None and r.json()["total"] != expected_total:
                bad.append(f"total {r.json()['total']} != {expected_total}")
            if i >= warmup:
                mine.append(ms)
        session.close()
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(work, per_client))
    seconds = time.perf_counter() - t0
    lat = sorted(latencies)
    return {
        "requests": len(lat),
        "p50_ms": round(percentile(lat, 50), 1),
        "p95_ms": round(percentile(lat, 95), 1),
        "max_ms": round(lat[-1], 1) if lat else None,
        "per_s": round(len(lat) / seconds, 1) if seconds else None,
        "errors": len(errors),
        "error_samples": errors[:3],
    }


def bench_database(kind: str, args, stop: threading.Event) -> dict:
    print(f"\n=== {kind} ===", flush=True)
    database = Database(kind)
    server = None
    try:
        t = time.perf_counter()
        setup = prepare_database(
            database.url, args.alerts, args.closed, args.seed, analyze=args.sqlite_analyze
        )
        print(
            f"loaded {args.alerts} open + {args.closed} closed alerts over "
            f"{setup['villages_with_alerts']} villages (by region {setup['by_region']}, "
            f"{setup['overdue']} overdue) in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        RESULTS.mkdir(parents=True, exist_ok=True)
        log = RESULTS / f"gunicorn-alert-queue-{kind}.log"
        log.write_text("")
        env = {
            "CLMS_DATABASE_URL": database.url,
            "CLMS_SECRET_KEY": SECRET_KEY,
            "CLMS_ODK_VALIDATE": "0",
        }
        variants = {"both": ["without", "with"], "without": ["without"], "with": ["with"]}
        out = {"database": kind, "setup": setup, "variants": {}}
        for variant in variants[args.index]:
            if variant == "without":  # migration 0003 adds the index: measure without it first
                engine = create_engine(database.url)
                try:
                    with engine.begin() as conn:
                        conn.execute(text("DROP INDEX IF EXISTS ix_alerts_scope_queue"))
                finally:
                    engine.dispose()
            if variant == "with":
                engine = create_engine(database.url)
                try:
                    with engine.begin() as conn:
                        t = time.perf_counter()
                        conn.execute(text(QUEUE_INDEX))
                        # statistics for it as autovacuum would gather; SQLite gets none unless
                        # the "without" run had them too
                        if kind == "postgresql" or args.sqlite_analyze:
                            conn.execute(text("ANALYZE alerts"))
                    print(f"created the queue index in {time.perf_counter() - t:.1f} s", flush=True)
                finally:
                    engine.dispose()
            app_spec = (
                "bench.alert_queue:frozen_app()" if args.gc_freeze else "clms.app:create_app()"
            )
            server = Gunicorn(app_spec, env, workers=args.workers, threads=args.threads, log=log)
            server.start("/api/v1/me")
            print(f"[{variant} queue index] gunicorn up: {server.command}", flush=True)
            results = {}
            for username, user in setup["users"].items():
                r = requests.post(
                    f"{server.base_url}/api/v1/sessions",
                    timeout=30,
                    json={"username": username, "password": PASSWORD},
                )
                r.raise_for_status()
                token = r.json()["token"]
                cursors = deep_cursors(server.base_url, token, user)
                for name, path, expected in scenarios(user, cursors):
                    if stop.is_set():
                        raise KeyboardInterrupt
                    res = measure(
                        server.base_url,
                        token,
                        path,
                        expected,
                        args.requests,
                        args.warmup,
                        args.clients,
                    )
                    res["path"] = path
                    results[f"{username}: {name}"] = res
                    print(
                        f"  {username:10s} {name:22s} p50 {res['p50_ms']:7.1f} ms  "
                        f"p95 {res['p95_ms']:7.1f} ms  max {res['max_ms']:7.1f} ms  "
                        f"errors {res['errors']}"
                        + (f"  e.g. {res['error_samples'][0]}" if res["errors"] else ""),
                        flush=True,
                    )
            out["variants"][variant] = results
            server.stop()
            server = None
        return out
    finally:
        if server is not None:
            server.stop()
        database.close()


def frozen_app():
    """``clms.app.create_app()``, then ``gc.freeze()`` (``--gc-freeze``).

    The application imports large libraries (pyxform, geopandas): a full garbage collection walks
    all their objects, which puts tens of milliseconds on whichever request triggers it. Freezing
    what exists after start-up takes them out of every collection.
    """
    import gc

    from clms.app import create_app

    app = create_app()
    gc.collect()
    gc.freeze()
    return app


# --- report ------------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    lines = [
        "| database | index | user: scenario | p50 ms | p95 ms | max ms | errors | p95 < 150 ms |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        for variant, rows in r["variants"].items():
            for name, s in rows.items():
                verdict = (
                    "" if "baseline" in name else ("yes" if s["p95_ms"] < TARGET_P95_MS else "NO")
                )
                lines.append(
                    f"| {r['database']} | {variant} queue index | {name} | {s['p50_ms']:.1f} "
                    f"| {s['p95_ms']:.1f} | {s['max_ms']:.1f} | {s['errors']} "
                    f"| {verdict} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.alert_queue", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite,postgresql or one")
    parser.add_argument("--alerts", type=int, default=100_000, help="open alerts")
    parser.add_argument("--closed", type=int, default=50_000, help="closed alerts besides")
    parser.add_argument("--requests", type=int, default=200, help="measured, per scenario")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured, per client")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument(
        "--index",
        choices=["both", "without", "with"],
        default="both",
        help="measure without and/or with ix_alerts_scope_queue",
    )
    parser.add_argument(
        "--sqlite-analyze",
        action="store_true",
        help="run ANALYZE on SQLite after loading (the product does not)",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="serve bench.alert_queue:frozen_app() (gc.freeze() after start-up), not the product's",
    )
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--out", type=Path, default=RESULTS / "alert_queue.json")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]

    stop = threading.Event()

    def _terminate(signum, _frame):
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    print(
        f"bench.alert_queue: {args.alerts} open + {args.closed} closed alerts, "
        f"{args.requests} requests per scenario, {args.clients} client(s), gunicorn "
        f"{args.workers} workers x {args.threads} threads; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    results = []
    started = time.perf_counter()
    try:
        for kind in kinds:
            results.append(bench_database(kind, args, stop))
    except KeyboardInterrupt:
        print("\ninterrupted; gunicorn and PostgreSQL were stopped", file=sys.stderr)
        return 130

    text_table = table(results)
    print(
        f"\nAlert queue benchmark ({args.alerts} open + {args.closed} closed alerts; "
        f"{time.perf_counter() - started:.0f} s in all)\n"
    )
    print(text_table)
    save_results(args.out, args, results, text_table, queue_index=QUEUE_INDEX)
    print(f"\nwritten to {args.out}")
    failed = any(
        s["errors"] for r in results for rows in r["variants"].values() for s in rows.values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
