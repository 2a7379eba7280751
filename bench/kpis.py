"""Benchmark: the KPI report (what ``/kpis`` and ``GET /api/v1/kpis`` compute) over every
grouping and filter, by the kept facts (issue 19) and by the implementation they replaced, on
the same data in the same run.

Usage (from the repository root, in the virtualenv)::

    python -m bench.kpis                                  # SQLite and PostgreSQL, 100,000 and
                                                          # 1,000,000 child visits
    python -m bench.kpis --db postgresql --sizes full --visits 5000000 --cases 250000
    python -m bench.kpis --url sqlite:////path/clms.sqlite3   # a database loaded already
    python -m bench.kpis --no-former --repeats 3            # the kept facts only, quicker

Each database is measured at two sizes (``--base-visits``, default 100,000 child visits, and
``--visits``, default 1,000,000; ``--base-cases`` / ``--cases`` cases), each loaded as
``bench.cases`` loads its databases (:func:`bench.cases.prepare_database`: households visited over
the last year by the monitors of their department, a quarter of the children working, alerts,
cases in every state with their timelines and referrals, follow-up visits, then the kept facts
made by ``clms kpis rebuild-facts``'s code; ``VACUUM ANALYZE`` on PostgreSQL). ``--url`` measures
a database loaded already (by an earlier run or the product) instead.

The report is computed in this process, as the supervisor of the whole country (every child
visit in scope), for each of these requests: the default (the 12 months to today, no grouping),
each grouping (village, area, supplier, tier, monitor, month, quarter), each filter alone (a
region, a village, a supplier, tier 1, a monitor), and filters together with a grouping; each
``--repeats`` times after one unmeasured run: p50 and p95 in milliseconds. With the former
implementation (``tests/alerts/kpis_oracle.py``, swapped into the live modules) the same
requests are measured again, and every figure of both must be equal, or the run fails (exit
status 1). The pages add their template and the HTTP round trip (``bench.cases`` measures those
through gunicorn); this measures the figures, which are all but a few milliseconds of them.

The table is printed as Markdown; the figures go to ``bench/results/kpis.json`` and a chart to
``bench/results/kpis.svg``. Timings are of a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bench.common import ROOT, Database, bar_chart_svg, percentile, save_results

RESULTS = ROOT / "bench" / "results"


def requests_of(session: Session) -> list[tuple[str, dict]]:
    """``(name, query parameters)`` of every request measured, with codes found in the data."""
    region = session.execute(  # a first-level area below the country
        text(
            "SELECT min(code) FROM areas WHERE parent_id IN "
            "(SELECT id FROM areas WHERE parent_id IS NULL)"
        )
    ).scalar()
    village = session.execute(text("SELECT min(code) FROM villages")).scalar()
    supplier = session.execute(text("SELECT min(code) FROM suppliers")).scalar()
    monitor = session.execute(
        text(
            "SELECT min(u.username) FROM users u JOIN visits v ON v.monitor_id = u.id "
            "WHERE u.role = 'monitor'"
        )
    ).scalar()
    out: list[tuple[str, dict]] = [("default", {})]
    for group in ("village", "area", "supplier", "tier", "monitor", "month", "quarter"):
        out.append((f"group={group}", {"group": group}))
    filters = {"area": region, "village": village, "supplier": supplier, "tier": "1",
               "monitor": monitor}  # fmt: skip
    for name, value in filters.items():
        if value:
            out.append((f"{name}", {name: value}))
    if region:
        out.append(("area+tier, by month", {"area": region, "tier": "1", "group": "month"}))
    if supplier:
        out.append(("supplier, by village", {"supplier": supplier, "group": "village"}))
    if monitor:
        out.append(("monitor, by quarter", {"monitor": monitor, "group": "quarter"}))
    return out


def measure(url: str, repeats: int, former: bool, only=None, progress=print) -> dict:
    """Every request's p50/p95 (ms) by the kept facts and (``former``) by the former queries,
    and whether their figures were equal; ``only``: the names of the requests to measure
    (None: all)."""
    from alerts.kpis import kpi_report, parse_filters
    from clms.db import make_engine
    from clms.models import User

    engine = make_engine(url)
    out: dict = {"requests": {}, "unequal": []}
    today = dt.date.today()
    try:
        with Session(engine) as session:
            user = session.scalar(select(User).where(User.username == "supervisor"))
            asked = [(n, p) for n, p in requests_of(session) if only is None or n in only]
            ways = [("kept", contextlib.nullcontext)]
            if former:
                from tests.alerts.kpis_oracle import former as former_queries

                ways.append(("former", former_queries))
            for i, (name, params) in enumerate(asked, 1):
                filters = parse_filters(params, today)
                row: dict = {"params": params}
                reports = {}
                for way, context in ways:
                    times = []
                    with context():
                        for n in range(repeats + 1):
                            t0 = time.perf_counter()
                            report = kpi_report(session, user, filters)
                            if n:  # the first is unmeasured: compiled statements, cold pages
                                times.append((time.perf_counter() - t0) * 1000)
                            session.rollback()  # each as its own request's transaction
                    times.sort()
                    row[way] = {"p50_ms": round(percentile(times, 50), 1),
                                "p95_ms": round(percentile(times, 95), 1)}  # fmt: skip
                    figures = report.as_dict()
                    reports[way] = {k: figures[k] for k in ("overall", "groups", "monitors")}
                if former and reports["kept"] != reports["former"]:
                    out["unequal"].append(name)
                out["requests"][name] = row
                shown = ", ".join(f"{w} p95 {row[w]['p95_ms']:,.0f} ms" for w, _ in ways)
                progress(f"  [{i}/{len(asked)}] {name}: {shown}", flush=True)
    finally:
        engine.dispose()
    return out


def bench_size(kind: str, size: str, n_cases: int, n_visits: int, args) -> dict:
    from bench.cases import prepare_database

    result: dict = {"db": kind, "size": size}
    database = None if args.url else Database(kind)
    try:
        url = args.url or database.url
        if database is not None:
            from sqlalchemy import create_engine

            from clms.migrate import upgrade

            print(
                f"{kind}, {size}: loading {n_visits:,} child visits, {n_cases:,} cases", flush=True
            )
            engine = create_engine(url)
            upgrade(engine)
            engine.dispose()
            setup = prepare_database(url, n_cases, n_visits, args.seed, args.sqlite_analyze)
            result["setup"] = {k: setup[k] for k in ("child_visits", "current_child_visits",
                                                     "cases", "alerts", "seconds")}  # fmt: skip
        engine = _engine(url)
        try:
            with engine.connect() as conn:
                count = text("SELECT count(*) FROM kpi_child_facts")
                result["facts"] = conn.execute(count).scalar()
        finally:
            engine.dispose()
        print(f"{kind}, {size}: {result['facts']:,} kept facts; measuring", flush=True)
        only = None if args.only is None else {n.strip() for n in args.only.split(",")}
        result.update(measure(url, args.repeats, not args.no_former, only))
    finally:
        if database is not None:
            database.close()
    return result


def _engine(url: str):
    from sqlalchemy import create_engine

    return create_engine(url)


def table(results: list[dict]) -> str:
    lines = [
        "| database | size (kept facts) | request | kept facts p50 / p95 ms "
        "| former p50 / p95 ms |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        for name, row in r["requests"].items():
            kept = f"{row['kept']['p50_ms']:,.0f} / {row['kept']['p95_ms']:,.0f}"
            former = (
                f"{row['former']['p50_ms']:,.0f} / {row['former']['p95_ms']:,.0f}"
                if "former" in row
                else "-"
            )
            lines.append(
                f"| {r['db']} | {r['size']} ({r['facts']:,}) | {name} | {kept} | {former} |"
            )
    return "\n".join(lines)


def chart(results: list[dict]) -> str:
    groups = []
    for r in results:
        bars = []
        for way in ("kept", "former"):
            p95 = [row[way]["p95_ms"] for row in r["requests"].values() if way in row]
            if p95:
                bars.append((f"{way}: worst p95", max(p95) / 1000))
        groups.append((f"{r['db']}, {r['facts']:,} facts", bars))
    return bar_chart_svg("KPI report, worst p95 over every request (s)", groups, "s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.kpis", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite,postgresql or one")
    parser.add_argument("--visits", type=int, default=1_000_000, help="child visits, full size")
    parser.add_argument("--cases", type=int, default=50_000, help="cases, full size")
    parser.add_argument("--base-visits", type=int, default=100_000, help="child visits, baseline")
    parser.add_argument("--base-cases", type=int, default=5_000, help="cases, baseline")
    parser.add_argument("--sizes", default="baseline,full", help="baseline,full or one")
    parser.add_argument("--url", help="measure this database, loaded already (one size, its db)")
    parser.add_argument("--repeats", type=int, default=5, help="measured runs per request")
    parser.add_argument("--no-former", action="store_true", help="skip the former queries")
    parser.add_argument("--only", help="the requests to measure, by name, comma-separated")
    parser.add_argument("--sqlite-analyze", action="store_true", help="ANALYZE after loading")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--out", type=Path, default=RESULTS / "kpis.json")
    args = parser.parse_args(argv)
    if args.url:
        kinds, wanted = ["postgresql" if args.url.startswith("postgresql") else "sqlite"], ["given"]
    else:
        kinds = [k.strip() for k in args.db.split(",") if k.strip()]
        wanted = [s.strip() for s in args.sizes.split(",") if s.strip()]
    sizes = {"baseline": (args.base_cases, args.base_visits), "full": (args.cases, args.visits),
             "given": (0, 0)}  # fmt: skip
    print(
        f"bench.kpis: {args.repeats} runs per request; {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results = []
    try:
        for kind in kinds:
            for size in wanted:
                results.append(bench_size(kind, size, *sizes[size], args))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    text_table = table(results)
    print("\n" + text_table)
    save_results(args.out, args, results, text_table)
    (args.out.parent / f"{args.out.stem}.svg").write_text(chart(results))
    print(f"\nwritten to {args.out} and {args.out.parent}/{args.out.stem}.svg")
    unequal = [(r["db"], r["size"], name) for r in results for name in r["unequal"]]
    if unequal:
        print(f"FIGURES DIFFER between the kept facts and the former queries: {unequal}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
