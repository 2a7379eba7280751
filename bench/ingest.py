"""Benchmark: OpenRosa submission ingest under real gunicorn, against a floor.

Usage (from the repository root, in the virtualenv)::

    python -m bench.ingest                       # SQLite and PostgreSQL, 2000 submissions each
    python -m bench.ingest --db postgresql --submissions 5000 --clients 16 --workers 3 --threads 4

For each database the bench creates a fresh database (a SQLite file in a temporary folder, or a
throwaway PostgreSQL 15 cluster through ``tests/pgserver.py``), runs the migrations, adds a few
villages, one monitor per client (Digest password) and publishes our forms. It then starts gunicorn
as a subprocess (``bench.floor_app:create()``, gthread workers, the database and secret key in
``CLMS_*`` variables) and waits until it answers.

Load: ``--clients`` threads, each with its own keep-alive ``requests.Session``, POST unique
``clms_household_visit`` submissions (4 children each, varied values, a fresh instanceID) as
``multipart/form-data`` (part ``xml_submission_file``, header ``X-OpenRosa-Version: 1.0``). All
payloads are built before timing, and every client warms up first (a Digest handshake and a few
submissions to each endpoint). Two phases run against the same gunicorn and database, with the same
clients and the same payloads:

- floor: ``POST /bench/floor`` (bench-only, no authentication): parse the XML safely and INSERT the
  raw bytes, one commit per request; see :mod:`bench.floor_app`;
- full: ``POST /submission`` with HTTP Digest, the product's whole ingest path: the request stores
  the submission (201), and ``clms process --follow``, started next to gunicorn as production runs
  it, parses it into households, visits and children. The phase ends when the last submission is
  processed, not when the last 201 arrives: its submissions/s is end to end. The time until the
  last 201 is reported too (accepted/s).

Every response must be 201; anything else is counted as an error, printed, and makes the run fail
(exit status 1), as does a database that does not hold exactly N household submissions and N*4
child visits afterwards. Peak memory is the largest sum of RSS over the gunicorn master, its
workers and the processor, sampled from /proc every 100 ms during a phase (shared pages count once
per process); server CPU is theirs too (the processor idles through the floor phase, polling).
The target is full-ingest throughput >= 50% of the floor's; ``--require-target`` turns a miss
into exit status 2.

The table printed at the end is Markdown, ready for a README; the same figures are written as JSON
to ``bench/results/ingest.json`` (gitignored). gunicorn's log goes to ``bench/results/``.

The load generator runs on the same machine and takes CPU from the server; the client CPU seconds
of each phase are printed (and in the JSON) to show how much.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from requests.auth import HTTPDigestAuth
from sqlalchemy import create_engine, func, select

from bench.common import (
    ROOT,
    Database,
    Gunicorn,
    PhaseResult,
    Processor,
    RssSampler,
    bar_chart_svg,
    process_tree,
)
from bench.floor_app import FLOOR, FLOOR_PATH
from clms.models import Submission

RESULTS = ROOT / "bench" / "results"
PASSWORD = "bench horse battery staple"
SECRET_KEY = "bench-secret-key-not-for-production"
CHILDREN_PER_SUBMISSION = 4
OPENROSA = {"X-OpenRosa-Version": "1.0"}


# --- set-up ------------------------------------------------------------------------------------

DEPARTMENTS = {
    "CI-D1": ("Soubré", ["Gnamagui", "Lobakuya", "Okrouyo", "Grand-Zattry"]),
    "CI-D2": ("Méagui", ["Oupoyo", "Zogbodoua", "Gnipi", "Petit-Bondoukou"]),
}
SUPPLIERS = [("T1-EXP", "Coastal Cocoa Export", 1), ("T2-COOP", "Coop Soubré Espoir", 2),
             ("T3-GRP", "Groupement Méagui Sud", 3)]  # fmt: skip
BUYS_IN = {"CI-D1": "T2-COOP", "CI-D2": "T3-GRP"}


def prepare_database(url: str, clients: int) -> dict:
    """Migrate, add places, one monitor per client and our forms; create the floor table.

    Returns the realm, the live version of the household form and each monitor's villages.
    """
    from clms.app import create_app
    from clms.auth.users import add_user
    from clms.db import session_scope
    from clms.migrate import upgrade
    from clms.models import Area, Form, Supplier, SupplierVillage, Village
    from forms.publish import ensure_builtin_forms

    engine = create_engine(url)
    try:
        upgrade(engine)
        FLOOR.create(engine, checkfirst=True)
    finally:
        engine.dispose()

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "ODK_VALIDATE": "0"})
    realm = app.config["DIGEST_REALM"]
    villages_of: dict[str, list[str]] = {}
    try:
        with session_scope(app) as s:
            country = Area(code="CI", name="Côte d'Ivoire", level="country", country_code="CIV")
            region = Area(code="CI-R1", name="Nawa", level="region", country_code="CIV",
                          parent=country)  # fmt: skip
            s.add_all([country, region])
            suppliers = {code: Supplier(code=code, name=name, tier=tier)
                         for code, name, tier in SUPPLIERS}  # fmt: skip
            s.add_all(suppliers.values())
            n = 0
            for dept_code, (dept_name, names) in DEPARTMENTS.items():
                dept = Area(code=dept_code, name=dept_name, level="department",
                            country_code="CIV", parent=region)  # fmt: skip
                s.add(dept)
                s.flush()
                villages_of[dept_code] = []
                for name in names:
                    n += 1
                    v = Village(code=f"V{n}", name=name, area_id=dept.id,
                                lat=5.5 + n / 50, lon=-6.6 - n / 40)  # fmt: skip
                    s.add(v)
                    s.flush()
                    s.add(SupplierVillage(supplier_id=suppliers[BUYS_IN[dept_code]].id,
                                          village_id=v.id))  # fmt: skip
                    villages_of[dept_code].append(v.code)
            monitors = []
            for i in range(clients):
                dept_code = list(DEPARTMENTS)[i % len(DEPARTMENTS)]
                username = f"monitor{i + 1:02d}"
                add_user(s, username=username, role="monitor", password=PASSWORD, realm=realm,
                         scope_codes=[dept_code], full_name=f"Bench Monitor {i + 1}")  # fmt: skip
                monitors.append((username, dept_code))
            ensure_builtin_forms(s)
            s.flush()
            form = s.scalar(select(Form).where(Form.xml_form_id == "clms_household_visit"))
            version = form.live_version.version
    finally:
        app.extensions["clms_engine"].dispose()
    return {"realm": realm, "version": version, "monitors": monitors, "villages_of": villages_of}


# --- payloads ----------------------------------------------------------------------------------

GIRLS = ["Adjoua", "Aya", "Affoué", "Amenan", "Akissi", "Ahou", "Mariam", "Fatou", "Awa", "Bintou"]
BOYS = ["Koffi", "Kouamé", "Yao", "Konan", "Kouadio", "N'Guessan", "Moussa", "Issouf", "Ali",
        "Kacou"]  # fmt: skip
FAMILY = ["Kouassi", "Koné", "Traoré", "Yao", "N'Dri", "Ouattara", "Coulibaly", "Bamba", "Diabaté",
          "Gbagbo", "Zadi", "Tapé", "Dago", "Bléhoué"]  # fmt: skip
HAZARDS = ["sharp_tools", "agrochemicals", "heavy_loads", "land_clearing", "bush_burning",
           "climbing_heights"]  # fmt: skip
VISIT_DAY = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


def _child(rng: random.Random, family: str, used: set[str]) -> dict:
    from tests.submissions import child

    sex = rng.choice(["female", "male"])
    while True:
        first = rng.choice(GIRLS if sex == "female" else BOYS)
        if first not in used:
            used.add(first)
            break
    age = rng.randint(5, 17)
    dob = None
    if rng.random() < 0.25:  # a birth certificate was shown
        dob = (VISIT_DAY.date() - dt.timedelta(days=365 * age + rng.randint(10, 300))).isoformat()
    works = rng.random() < 0.45
    kinds = ["own_farm", "family_business", "sell_goods"]
    activities = sorted(rng.sample(kinds, rng.randint(1, 2)))
    hazards = sorted(rng.sample(HAZARDS, rng.randint(1, 3))) if works and rng.random() < 0.6 else []
    return child(
        child_name=f"{first} {family}",
        sex=sex,
        dob=dob,
        age=age,
        relationship=rng.choice(["son_daughter"] * 6 + ["grandchild", "niece_nephew"]),
        attends_school="no" if age > 12 and rng.random() < 0.3 else "yes",
        work_activities=" ".join(activities) if works else "none",
        work_hours_7d=rng.randint(2, 35) if works else 0,
        chore_hours_7d=rng.randint(0, 14),
        hazards=" ".join(hazards) or "none",
        night_work="yes" if works and rng.random() < 0.05 else "no",
        injured_12m="yes" if works and rng.random() < 0.1 else "no",
        worst_form_signs="none",
        nationality=rng.choice(["CIV"] * 8 + ["BFA", "MLI"]),
        migrant_status=rng.choice(["national"] * 8 + ["migrant_documented", "unknown"]),
        lives_with_parent=rng.choice(["yes"] * 9 + ["no"]),
    )


def household_payload(rng: random.Random, version: str, username: str, villages: list[str],
                      supplier: str, household_code: str) -> tuple[str, bytes]:  # fmt: skip
    """``(instanceID, XML)`` of one household visit with four children."""
    from tests.submissions import household_xml

    instance_id = f"uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    family = rng.choice(FAMILY)
    used: set[str] = set()
    kids = [_child(rng, family, used) for _ in range(CHILDREN_PER_SUBMISSION)]
    start = VISIT_DAY + dt.timedelta(minutes=rng.randint(0, 540))
    end = start + dt.timedelta(minutes=rng.randint(8, 40))
    xml = household_xml(
        version,
        instance_id=instance_id,
        village=rng.choice(villages),
        supplier=supplier if rng.random() < 0.85 else "none",
        household_code=household_code,
        head=f"{rng.choice(BOYS)} {family}",
        gps=f"{5.5 + rng.random() / 2:.6f} {-6.9 + rng.random() / 2:.6f} {rng.randint(150, 260)} "
        f"{rng.choice([3, 4, 5, 8, 12])}",
        children=kids,
        end=end.isoformat(timespec="milliseconds"),
    )
    xml = xml.replace(
        b"<start>2026-11-20T10:00:00.000+00:00</start>",
        f"<start>{start.isoformat(timespec='milliseconds')}</start>".encode(),
    ).replace(b"<username>awa</username>", f"<username>{username}</username>".encode())
    return instance_id, xml


def multipart(xml: bytes, rng: random.Random) -> tuple[bytes, str]:
    """The body and content type of a POST with one part, ``xml_submission_file``, as Collect."""
    boundary = f"----clmsbench{rng.getrandbits(64):016x}"
    disposition = 'form-data; name="xml_submission_file"; filename="submission.xml"'
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: text/xml\r\n\r\n"
    body = head.encode() + xml + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def build_payloads(setup: dict, clients: int, per_client: list[int], prefix: str, seed: int):
    """For each client: a list of ``(instanceID, body, content_type)``; built before timing."""
    rng = random.Random(seed)
    out = []
    for i in range(clients):
        username, dept = setup["monitors"][i]
        villages = setup["villages_of"][dept]
        items = []
        for j in range(per_client[i]):
            code = f"HH-{prefix}-{i + 1:02d}-{j + 1:05d}"
            instance_id, xml = household_payload(rng, setup["version"], username, villages,
                                                 BUYS_IN[dept], code)  # fmt: skip
            body, ctype = multipart(xml, rng)
            items.append((instance_id, body, ctype))
        out.append(items)
    return out


# --- load --------------------------------------------------------------------------------------


class Client:
    """One phone: a keep-alive session and its Digest credentials."""

    def __init__(self, base_url: str, username: str):
        self.base_url = base_url
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1)
        self.session.mount("http://", adapter)
        self.auth = HTTPDigestAuth(username, PASSWORD)

    def post(self, path: str, body: bytes, content_type: str, auth: bool) -> requests.Response:
        return self.session.post(
            self.base_url + path,
            data=body,
            headers={**OPENROSA, "Content-Type": content_type},
            auth=self.auth if auth else None,
            timeout=120,
        )


def tree_cpu_seconds(*pids: int) -> dict[int, float]:
    """utime + stime of each live process of the trees of ``pids``, by pid."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for p in process_tree(*pids):
        try:
            with open(f"/proc/{p}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            found[p] = (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue
    return found


def machine_busy_jiffies() -> tuple[int, int]:
    """``(busy, total)`` jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def run_phase(name: str, path: str, auth: bool, clients: list[Client], payloads,
              server_pids: tuple[int, ...], stop: threading.Event, db_pid: int | None = None,
              drained: Callable[[], bool] | None = None) -> PhaseResult:  # fmt: skip
    """All clients post their payloads to ``path`` as fast as answers come; closed loop.

    With ``drained``, the phase lasts until it returns True (every submission processed), polled
    every 20 ms after the last answer.
    """
    result = PhaseResult(name=name, requests=sum(len(p) for p in payloads))
    lock = threading.Lock()
    barrier = threading.Barrier(len(clients) + 1)

    def work(client: Client, items) -> None:
        latencies, statuses, samples = [], {}, []
        barrier.wait()
        for _instance_id, body, ctype in items:
            if stop.is_set():
                break
            t0 = time.perf_counter()
            try:
                r = client.post(path, body, ctype, auth)
                key = str(r.status_code)
                if r.status_code != 201 and len(samples) < 3:
                    samples.append(f"{r.status_code}: {r.text[:300]}")
            except requests.RequestException as e:
                key = f"exception:{type(e).__name__}"
                if len(samples) < 3:
                    samples.append(f"{key}: {e}")
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[key] = statuses.get(key, 0) + 1
        with lock:
            result.latencies_ms.extend(latencies)
            for k, v in statuses.items():
                result.statuses[k] = result.statuses.get(k, 0) + v
            result.error_samples.extend(samples[: 5 - len(result.error_samples)])

    threads = [
        threading.Thread(target=work, args=(c, items), daemon=True, name=f"client-{i}")
        for i, (c, items) in enumerate(zip(clients, payloads, strict=True))
    ]
    for t in threads:
        t.start()
    with RssSampler(*server_pids) as sampler:
        cpu0, srv0 = time.process_time(), tree_cpu_seconds(*server_pids)
        db0 = tree_cpu_seconds(db_pid) if db_pid else {}
        busy0, total0 = machine_busy_jiffies()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            while t.is_alive():
                t.join(0.5)  # wakes up for Ctrl-C
        result.accept_seconds = time.perf_counter() - t0
        result.client_cpu_s = time.process_time() - cpu0
        while drained is not None and not drained() and not stop.is_set():
            time.sleep(0.02)
        result.seconds = time.perf_counter() - t0
        srv1 = tree_cpu_seconds(*server_pids)
        db1 = tree_cpu_seconds(db_pid) if db_pid else {}
        busy1, total1 = machine_busy_jiffies()
    result.peak_rss_mib = sampler.peak_mib
    per_process = sorted((srv1[p] - srv0.get(p, 0.0) for p in srv1), reverse=True)
    result.server_cpu_s = sum(per_process)
    result.worker_cpu_share = [round(c / result.seconds, 2) for c in per_process]
    result.machine_busy = (busy1 - busy0) / max(1, total1 - total0)
    # backends that ended during the phase are missed: a lower bound
    result.db_cpu_s = sum(db1[p] - db0.get(p, 0.0) for p in db1)
    done = sum(result.statuses.values())
    result.errors = done - result.statuses.get("201", 0) + (result.requests - done)
    return result


# --- verification ------------------------------------------------------------------------------


def verify(url: str, measured_ids: list[str], warm_ids: list[str]) -> dict:
    """Count what the database holds for the measured (and warm-up) submissions."""
    from clms.models import ChildVisit, Submission, Visit

    engine = create_engine(url)
    counts = {"submissions": 0, "child_visits": 0, "parsed": 0, "floor_rows": 0}
    try:
        with engine.connect() as conn:
            for i in range(0, len(measured_ids), 500):
                chunk = measured_ids[i : i + 500]
                mine = Submission.instance_id.in_(chunk)
                counts["submissions"] += conn.scalar(select(func.count()).where(mine))
                counts["parsed"] += conn.scalar(
                    select(func.count()).where(mine, Submission.status == "parsed")
                )
                counts["child_visits"] += conn.scalar(
                    select(func.count())
                    .select_from(ChildVisit)
                    .join(Visit, Visit.id == ChildVisit.visit_id)
                    .join(Submission, Submission.id == Visit.submission_id)
                    .where(mine)
                )
                counts["floor_rows"] += conn.scalar(
                    select(func.count()).select_from(FLOOR).where(FLOOR.c.instance_id.in_(chunk))
                )
            counts["all_submissions"] = conn.scalar(select(func.count()).select_from(Submission))
            counts["all_floor_rows"] = conn.scalar(select(func.count()).select_from(FLOOR))
            counts["warmup"] = len(warm_ids)
    finally:
        engine.dispose()
    n = len(measured_ids)
    counts["ok"] = (
        counts["submissions"] == n
        and counts["child_visits"] == n * CHILDREN_PER_SUBMISSION
        and counts["floor_rows"] == n
        and counts["all_submissions"] == n + len(warm_ids)
        and counts["all_floor_rows"] == n + len(warm_ids)
    )
    return counts


# --- one database ------------------------------------------------------------------------------


def bench_database(kind: str, args, stop: threading.Event) -> dict:
    print(f"\n=== {kind} ===", flush=True)
    database = Database(kind)
    server = processor = waiting_engine = None
    try:
        t = time.perf_counter()
        setup = prepare_database(database.url, args.clients)
        print(f"database ready (migrated, {sum(map(len, setup['villages_of'].values()))} villages, "
              f"{args.clients} monitors, forms published; household form version "
              f"{setup['version']!r}) in {time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip

        t = time.perf_counter()
        per_client = [args.submissions // args.clients + (i < args.submissions % args.clients)
                      for i in range(args.clients)]  # fmt: skip
        payloads = build_payloads(setup, args.clients, per_client, "B", seed=args.seed)
        warm = build_payloads(setup, args.clients, [args.warmup] * args.clients, "W", args.seed + 1)
        sizes = [len(b) for items in payloads for _, b, _ in items]
        print(f"built {len(sizes)} submissions (+{args.warmup * args.clients} warm-up), "
              f"{min(sizes)}-{max(sizes)} bytes (mean {sum(sizes) / len(sizes):.0f}) "
              f"in {time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip

        RESULTS.mkdir(parents=True, exist_ok=True)
        log = RESULTS / f"gunicorn-{kind}.log"
        log.write_text("")
        env = {
            "CLMS_DATABASE_URL": database.url,
            "CLMS_SECRET_KEY": SECRET_KEY,
            "CLMS_ODK_VALIDATE": "0",
        }
        server = Gunicorn(
            "bench.floor_app:create()",
            env,
            workers=args.workers,
            threads=args.threads,
            log=log,
            keep_alive=args.keep_alive,
        )
        server.start("/submission")
        print(f"gunicorn up: {server.command} (pid {server.proc.pid}, log {log})", flush=True)
        processor = Processor(env, RESULTS / f"processor-{kind}.log")
        processor.start()
        print(f"processor up: {processor.command} (pid {processor.proc.pid})", flush=True)
        pids = (server.proc.pid, processor.proc.pid)
        waiting_engine = create_engine(database.url)

        def drained() -> bool:
            with waiting_engine.connect() as conn:
                return not conn.scalar(select(func.count()).where(Submission.status == "received"))

        db_pid = None
        if database.server is not None:
            db_pid = int((database.server.data / "postmaster.pid").read_text().split()[0])
        clients = [Client(server.base_url, setup["monitors"][i][0]) for i in range(args.clients)]

        # warm-up: all phones connect at once and do the Digest handshake (HEAD /submission must
        # answer 204), then a few submissions to each endpoint; every answer must still be 201
        def handshake(c: Client) -> None:
            r = c.session.head(server.base_url + "/submission", headers=OPENROSA, auth=c.auth)
            if r.status_code != 204:
                raise RuntimeError(f"HEAD /submission answered {r.status_code}: {r.text[:300]}")

        with ThreadPoolExecutor(len(clients)) as pool:
            list(pool.map(handshake, clients))
        warm_floor = run_phase("warm-up floor", FLOOR_PATH, False, clients, warm, pids, stop,
                               db_pid)  # fmt: skip
        warm_full = run_phase("warm-up full", "/submission", True, clients, warm, pids, stop,
                              db_pid, drained)  # fmt: skip
        for w in (warm_floor, warm_full):
            if w.errors:
                raise RuntimeError(f"{w.name}: {w.statuses} {w.error_samples}")

        phases = {}
        for key, path, auth in (("floor", FLOOR_PATH, False), ("full", "/submission", True)):
            label = "floor (parse + INSERT)" if key == "floor" else "full ingest"
            res = run_phase(label, path, auth, clients, payloads, pids, stop, db_pid,
                            drained if key == "full" else None)  # fmt: skip
            if stop.is_set():
                raise KeyboardInterrupt
            phases[key] = res
            s = res.summary()
            print(f"{label:24s} {s['submissions_per_s']:8.1f} subm/s  p50 {s['p50_ms']:7.1f} ms  "
                  f"p99 {s['p99_ms']:7.1f} ms  peak RSS {s['peak_rss_mib']:6.1f} MiB  "
                  f"{s['requests']} requests in {s['seconds']:.1f} s, errors {s['errors']}  "
                  f"(server CPU {res.server_cpu_s / res.requests * 1000:.2f} ms/req, "
                  f"client CPU {res.client_cpu_s:.1f} s)", flush=True)  # fmt: skip
            cores = os.cpu_count() or 1
            other = (res.machine_busy * cores * res.seconds - res.server_cpu_s - res.db_cpu_s
                     - res.client_cpu_s) / res.seconds  # fmt: skip
            print(f"{'':24s} machine CPU busy {res.machine_busy:.0%} of {cores} CPUs, in cores: "
                  f"gunicorn {res.server_cpu_s / res.seconds:.2f} (by process "
                  f"{res.worker_cpu_share}), PostgreSQL {res.db_cpu_s / res.seconds:.2f}, "
                  f"load generator {res.client_cpu_s / res.seconds:.2f}, anything else "
                  f"{max(0.0, other):.2f}", flush=True)  # fmt: skip
            if res.errors:
                print(f"  statuses {res.statuses}; e.g. {res.error_samples}", flush=True)

        measured_ids = [i for items in payloads for i, _, _ in items]
        warm_ids = [i for items in warm for i, _, _ in items]
        counts = verify(database.url, measured_ids, warm_ids)
        n = len(measured_ids)
        print(f"stored: {counts['submissions']}/{n} household submissions "
              f"({counts['parsed']} parsed, the rest for review), {counts['child_visits']}/"
              f"{n * CHILDREN_PER_SUBMISSION} child visits, {counts['floor_rows']}/{n} floor rows; "
              f"with warm-up {counts['all_submissions']} submissions, {counts['all_floor_rows']} "
              f"floor rows -> {'OK' if counts['ok'] else 'MISMATCH'}", flush=True)  # fmt: skip

        ratio = phases["full"].throughput / phases["floor"].throughput
        return {
            "database": kind,
            "full": phases["full"].summary()
            | {
                "server_cpu_ms_per_request": round(
                    phases["full"].server_cpu_s / phases["full"].requests * 1000, 2
                )
            },
            "floor": phases["floor"].summary()
            | {
                "server_cpu_ms_per_request": round(
                    phases["floor"].server_cpu_s / phases["floor"].requests * 1000, 2
                )
            },
            "ratio_full_to_floor": round(ratio, 3),
            "target_met": ratio >= 0.5,
            "verification": counts,
            "gunicorn": server.command,
        }
    finally:
        if processor is not None:
            processor.stop()
        if waiting_engine is not None:
            waiting_engine.dispose()
        if server is not None:
            server.stop()
        database.close()


# --- report ------------------------------------------------------------------------------------


def chart_svg(results: list[dict]) -> str:
    """Submissions per second, full ingest against the floor, per database."""
    groups = [
        (f"{r['database']}: full = {r['ratio_full_to_floor']:.0%} of floor",
         [("full ingest", r["full"]["submissions_per_s"]),
          ("floor", r["floor"]["submissions_per_s"])])
        for r in results
    ]  # fmt: skip
    return bar_chart_svg("Household submissions per second (16 clients)", groups, "/s")


def table(results: list[dict]) -> str:
    head = (
        "| database | path | submissions/s | p50 ms | p99 ms | peak RSS MiB | requests | errors "
        "| full/floor (target >= 50%) |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        for key, label in (("full", "full ingest"), ("floor", "floor")):
            s = r[key]
            verdict = ""
            if key == "full":
                met = "met" if r["target_met"] else "NOT met"
                verdict = f"{r['ratio_full_to_floor']:.0%} {met}"
            lines.append(
                f"| {r['database']} | {label} | {s['submissions_per_s']:.1f} | {s['p50_ms']:.1f} "
                f"| {s['p99_ms']:.1f} | {s['peak_rss_mib']:.0f} | {s['requests']} | {s['errors']} "
                f"| {verdict} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite,postgresql or one")
    parser.add_argument("--submissions", type=int, default=2000, help="per database and phase")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument(
        "--keep-alive",
        type=int,
        default=30,
        help="gunicorn --keep-alive seconds (0: a new connection per request)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="warm-up submissions per client")
    parser.add_argument("--seed", type=int, default=20261120)
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest.json")
    parser.add_argument(
        "--require-target",
        action="store_true",
        help="exit with status 2 when full ingest is below 50%% of the floor",
    )
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if args.submissions < args.clients:
        parser.error("--submissions must be at least --clients")

    stop = threading.Event()

    def _terminate(signum, _frame):
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # also when started with SIGINT ignored
    print(f"bench.ingest: {args.submissions} submissions per database and phase, "
          f"{args.clients} clients, gunicorn {args.workers} workers x {args.threads} threads "
          f"(gthread); {os.cpu_count()} CPUs, Python {platform.python_version()}",
          flush=True)  # fmt: skip

    results = []
    started = time.perf_counter()
    try:
        for kind in kinds:
            results.append(bench_database(kind, args, stop))
    except KeyboardInterrupt:
        stop.set()
        print("\ninterrupted; gunicorn and PostgreSQL were stopped", file=sys.stderr)
        return 130

    text = table(results)
    print(f"\nIngest benchmark ({args.submissions} household submissions x "
          f"{CHILDREN_PER_SUBMISSION} children per database and path; {args.clients} clients; "
          f"gunicorn {args.workers} workers x {args.threads} threads; {os.cpu_count()} CPUs; "
          f"{time.perf_counter() - started:.0f} s in all)\n")  # fmt: skip
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {"submissions": args.submissions, "clients": args.clients,
                   "workers": args.workers, "threads": args.threads, "warmup": args.warmup,
                   "children_per_submission": CHILDREN_PER_SUBMISSION, "cpus": os.cpu_count(),
                   "python": platform.python_version()},
        "results": results,
        "table": text,
    }, indent=2, ensure_ascii=False) + "\n")  # fmt: skip
    chart = args.out.with_suffix(".svg")
    chart.write_text(chart_svg(results))
    print(f"\nwritten to {args.out} and {chart}")

    failed = [
        r["database"]
        for r in results
        if r["full"]["errors"] or r["floor"]["errors"] or not r["verification"]["ok"]
    ]
    if failed:
        print(f"FAILED on {', '.join(failed)}: non-201 answers or wrong counts", file=sys.stderr)
        return 1
    if args.require_target and not all(r["target_met"] for r in results):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
