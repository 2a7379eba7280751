"""Where one submission's time goes: the OpenRosa request, in process, one request at a time.

The request stores the submission; parsing it afterwards (:mod:`clms.intake.process`) is not in
these figures (``bench.ingest`` measures both, end to end).

Usage (from the repository root, in the virtualenv; ``pip install pyinstrument`` for the profile)::

    python -m bench.profile_ingest --db postgresql --submissions 300
    python -m bench.profile_ingest --db sqlite --submissions 300 --html bench/results/ingest.html

It prepares a database as :mod:`bench.ingest` does, then posts the same kind of submissions through
Flask's test client (no gunicorn, no network, no concurrency) and prints, per request: wall time,
time inside the database driver, number of SQL statements by kind, and the statements run most
often; then a pyinstrument profile of the whole loop. Use it to see the cost of one request; use
``bench.ingest`` to see throughput under load.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import re
import sys
import time
from pathlib import Path

from sqlalchemy import event

from bench.common import ROOT, Database
from bench.floor_app import FLOOR_PATH, create
from bench.ingest import OPENROSA, PASSWORD, SECRET_KEY, build_payloads, prepare_database


def _normalise(sql: str) -> str:
    sql = " ".join(sql.split())
    sql = re.sub(r"\((?:%\(\w+\)s|\?|, )+\)", "(...)", sql)
    return sql[:150]


def _report_cprofile(prof: cProfile.Profile, n: int) -> None:
    """Own time by library, and the product's functions by time including callees, per request."""
    st = pstats.Stats(prof)
    by_lib: collections.Counter = collections.Counter()
    product = []
    root = str(ROOT)
    for (filename, _line, func), (_cc, _nc, tottime, cumtime, _callers) in st.stats.items():
        lib = "other"
        if filename.startswith(root) and "/.venv/" not in filename:
            lib = "product (" + filename[len(root) + 1 :].split("/", 1)[0] + "/)"
            product.append((cumtime, tottime, f"{filename[len(root) + 1 :]}:{func}"))
        else:
            for name in ("sqlalchemy", "psycopg", "lxml", "werkzeug", "flask", "sqlite3",
                         "json", "re", "uuid", "hashlib", "hmac", "logging", "typing"):  # fmt: skip
                if f"/{name}/" in filename or filename.endswith(f"/{name}.py") or name in func:
                    lib = name
                    break
        by_lib[lib] += tottime
    total = sum(by_lib.values())
    print(f"\nown time by library (cProfile, ms per request; total {total / n * 1000:.1f}):")
    for lib, t in by_lib.most_common():
        print(f"  {t / n * 1000:7.2f}  {t / total:5.1%}  {lib}")
    print("\nfunctions by own time (ms per request):")
    own = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:25]
    for (filename, line, func), (_cc, ncalls, tottime, _cum, _callers) in own:
        where = filename.replace(root + "/", "").split("site-packages/")[-1]
        print(f"  {tottime / n * 1000:7.3f}  {ncalls / n:6.1f} calls  {where}:{line}:{func}")
    print("\nproduct functions, time including callees (ms per request):")
    for cum, own, name in sorted(product, reverse=True)[:30]:
        print(f"  {cum / n * 1000:7.2f}  (own {own / n * 1000:5.2f})  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_ingest")
    parser.add_argument("--db", default="postgresql", choices=["sqlite", "postgresql"])
    parser.add_argument("--submissions", type=int, default=300)
    parser.add_argument(
        "--mode",
        default="cprofile",
        choices=["cprofile", "pyinstrument", "none"],
        help="profiler of the full path (none: plain timings)",
    )
    parser.add_argument("--html", type=Path, help="pyinstrument mode: also write its HTML report")
    args = parser.parse_args(argv)

    database = Database(args.db)
    try:
        setup = prepare_database(database.url, 1)
        payloads = build_payloads(setup, 1, [args.submissions + 20], "P", seed=7)[0]
        app = create({"DATABASE_URL": database.url, "SECRET_KEY": SECRET_KEY, "ODK_VALIDATE": "0"})
        engine = app.extensions["clms_engine"]
        stats = {"n": 0, "db_s": 0.0, "kinds": collections.Counter(), "sql": collections.Counter()}
        started: dict[int, float] = {}

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, params, context, executemany):
            started[id(cursor)] = time.perf_counter()
            stats["n"] += 1
            stats["kinds"][statement.split(None, 1)[0].upper()] += 1
            stats["sql"][_normalise(statement)] += 1

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, params, context, executemany):
            stats["db_s"] += time.perf_counter() - started.pop(id(cursor), time.perf_counter())

        client = app.test_client()
        from tests.openrosa_client import digest_authorization

        first = client.head("/submission", headers=OPENROSA)
        challenge = first.headers["WWW-Authenticate"]
        username = setup["monitors"][0][0]
        auth = {"Authorization": "counted"}  # one nonce, its count up by one a request, as Collect
        count = iter(range(1, 1 << 31))

        def post(path: str, item, headers: dict) -> None:
            _iid, body, ctype = item
            if "Authorization" in headers:
                headers = {**headers, "Authorization": digest_authorization(
                    challenge, "POST", "/submission", username, PASSWORD, next(count))}  # fmt: skip
            r = client.post(path, data=body, headers={**headers, "Content-Type": ctype})
            if r.status_code != 201:
                raise SystemExit(f"{path}: {r.status_code} {r.get_data(as_text=True)[:300]}")

        for item in payloads[:10]:  # warm-up
            post("/submission", item, {**OPENROSA, **auth})
        floor_items = build_payloads(setup, 1, [args.submissions + 10], "F", seed=8)[0]
        for item in floor_items[:10]:
            post(FLOOR_PATH, item, OPENROSA)

        measured = payloads[10 : 10 + args.submissions]
        for label, path, items, headers in (
            ("floor", FLOOR_PATH, floor_items[10:], OPENROSA),
            ("full", "/submission", measured, {**OPENROSA, **auth}),
        ):
            stats.update(n=0, db_s=0.0, kinds=collections.Counter(), sql=collections.Counter())
            profiler = cprof = None
            if label == "full" and args.mode == "pyinstrument":
                try:
                    from pyinstrument import Profiler

                    profiler = Profiler(interval=0.001)
                    profiler.start()
                except ImportError:
                    print("(pip install pyinstrument for a profile)")
            elif label == "full" and args.mode == "cprofile":
                cprof = cProfile.Profile()
                cprof.enable()
            t0, c0 = time.perf_counter(), time.process_time()
            for item in items:
                post(path, item, headers)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if profiler is not None:
                profiler.stop()
            if cprof is not None:
                cprof.disable()
            n = len(items)
            print(f"\n== {label} on {args.db}: {n} requests, {wall / n * 1000:.2f} ms per request, "
                  f"{cpu / n * 1000:.2f} ms of it CPU in this process (mode {args.mode}); "
                  f"({stats['db_s'] / n * 1000:.2f} ms in the database driver), "
                  f"{stats['n'] / n:.1f} SQL statements per request: "
                  f"{ {k: round(v / n, 1) for k, v in stats['kinds'].most_common()} }")  # fmt: skip
            if label == "full":
                print("most frequent statements (per request):")
                for sql, count in stats["sql"].most_common(25):
                    print(f"  {count / n:5.1f}  {sql}")
        if cprof is not None:
            _report_cprofile(cprof, len(measured))
        if profiler is not None:
            print(profiler.output_text(unicode=False, color=False, show_all=False))
            if args.html:
                args.html.parent.mkdir(parents=True, exist_ok=True)
                args.html.write_text(profiler.output_html())
                print(f"HTML profile: {args.html}")
        engine.dispose()
    finally:
        database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
