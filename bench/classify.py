"""Benchmark: classifying child visits with the product's batch function, against a floor.

Usage (from the repository root, in the virtualenv)::

    python -m bench.classify                 # 1,000,000 child visits
    python -m bench.classify --rows 200000 --repeat 5 --require-target

The rows are synthetic ``child_visits`` mappings (the data-dictionary keys, as SQLAlchemy
``.mappings()`` rows or the submission processor hand them over), drawn with a seeded random
generator in a realistic mix: about 70% of children with no work (the form then leaves hours,
hazards, night work and injury empty), 15% in work without hazards (some light work, some long
hours, a few injured), 14% in work with hazards, 1% with a worst-form sign; ages 5-17 with a few
unknown; some not in school; chores spread to above 21 h. They are built before timing.

Timed, each ``--repeat`` times (the median is reported), on one core, garbage collector on; wall
time gives the child visits a second, the process's CPU time the same per CPU second (less
sensitive to other work on the machine):

- floor: iterate the same rows and build a trivial tuple per row (two look-ups), the least any
  per-row Python code can cost;
- product: :func:`alerts.rules.classify_rows` under the Côte d'Ivoire profile, in one call and in
  batches of ``--batch`` rows (what a transaction of the submission processor or of
  ``clms reclassify`` hands it).

Memory: peak resident set size of the process (``resource.getrusage(RUSAGE_SELF).ru_maxrss``,
KiB on Linux: rows and results together) and the growth of the resident set while the product
classifies (from ``/proc/self/statm``, before and after a one-call run with its results kept).

Target: at least 200,000 child visits a second (``--require-target`` turns a miss into exit
status 2). Figures are printed and written as JSON to ``bench/results/classify.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from alerts.profiles.seeds import seed_profiles
from alerts.rules import HAZARD_CODES, RULE_SET_VERSION, Profile, classify_rows
from bench.common import ROOT, rss_kib

RESULTS = ROOT / "bench" / "results"
TARGET = 200_000  # child visits a second
HAZARDS = sorted(HAZARD_CODES)
SIGNS = ["cannot_leave", "debt", "recruited_by_third_party", "separated_from_family"]
ACTIVITIES = ["own_farm", "family_business", "sell_goods", "paid_work"]


def synthetic_rows(n: int, seed: int) -> list[dict]:
    """``n`` child visits in the realistic mix described in the module docstring."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        age = rng.randint(5, 17) if rng.random() > 0.01 else None
        row = {
            "age": age,
            "attends_school": rng.random() < 0.88,
            "work_activities": ["none"],
            "work_hours_7d": None,
            "chore_hours_7d": min(int(rng.expovariate(1 / 7)), 60),
            "hazards": [],
            "night_work": None,
            "injured_12m": None,
            "worst_form_signs": ["none"],
        }
        kind = rng.random()
        if kind >= 0.70:  # working
            row["work_activities"] = rng.sample(ACTIVITIES, rng.randint(1, 2))
            row["work_hours_7d"] = rng.choice((rng.randint(1, 13), rng.randint(14, 50)))
            row["hazards"] = ["none"]
            row["night_work"] = rng.random() < 0.03
            row["injured_12m"] = rng.random() < 0.05
            if kind >= 0.85:
                row["hazards"] = rng.sample(HAZARDS, rng.randint(1, 3))
            if kind >= 0.99:
                row["worst_form_signs"] = rng.sample(SIGNS, 1)
        rows.append(row)
    return rows


def floor(rows: list[dict]) -> list[tuple]:
    """The least per-row work: look two values up and build a tuple."""
    return [(r["age"], r["work_hours_7d"]) for r in rows]


def in_batches(profile: Profile, rows: list[dict], size: int) -> list:
    out = []
    for start in range(0, len(rows), size):
        out.extend(classify_rows(profile, rows[start : start + size]))
    return out


def timed(fn, repeat: int) -> tuple[float, list[float], float]:
    """Median wall seconds, every run's wall seconds, and median CPU seconds of this process."""
    seconds, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(seconds), seconds, statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.classify", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="child visits to classify")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median kept)")
    parser.add_argument("--batch", type=int, default=1000, help="rows per call in batch mode")
    parser.add_argument("--seed", type=int, default=20261120)
    parser.add_argument("--out", type=Path, default=RESULTS / "classify.json")
    parser.add_argument("--require-target", action="store_true",
                        help=f"exit with status 2 below {TARGET:,} child visits/s")  # fmt: skip
    args = parser.parse_args(argv)

    profiles = {row["code"]: Profile.from_mapping(row) for row in seed_profiles(None)}
    profile = profiles["CIV"]
    print(f"bench.classify: {args.rows:,} child visits, profile {profile.code} v{profile.version}, "
          f"rule set {RULE_SET_VERSION}; {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}", flush=True)  # fmt: skip

    started = time.perf_counter()
    rows = synthetic_rows(args.rows, args.seed)
    print(f"built the rows in {time.perf_counter() - started:.1f} s", flush=True)

    rss_before = rss_kib(os.getpid())
    kept = classify_rows(profile, rows)  # warm-up, and the results whose memory we report
    rss_growth_kib = rss_kib(os.getpid()) - rss_before
    mix = Counter(r.category for r in kept)
    sdg = sum(r.sdg_871 for r in kept)
    del kept

    floor_s, floor_all, floor_cpu = timed(lambda: floor(rows), args.repeat)
    one_s, one_all, one_cpu = timed(lambda: classify_rows(profile, rows), args.repeat)
    batch_s, batch_all, batch_cpu = timed(
        lambda: in_batches(profile, rows, args.batch), args.repeat
    )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    def rate(seconds: float) -> float:
        return args.rows / seconds if seconds else 0.0

    best = min(rate(one_s), rate(batch_s))
    met = best >= TARGET
    table = "\n".join([
        "| path | seconds (median) | child visits/s | per CPU second | x floor time |",
        "|---|---:|---:|---:|---:|",
        f"| floor: iterate + trivial tuple | {floor_s:.3f} | {rate(floor_s):,.0f} | "
        f"{rate(floor_cpu):,.0f} | 1.0 |",
        f"| classify_rows, one call | {one_s:.3f} | {rate(one_s):,.0f} | {rate(one_cpu):,.0f} | "
        f"{one_s / floor_s:.1f} |",
        f"| classify_rows, batches of {args.batch} | {batch_s:.3f} | {rate(batch_s):,.0f} | "
        f"{rate(batch_cpu):,.0f} | {batch_s / floor_s:.1f} |",
    ])  # fmt: skip
    print()
    print(table)
    print(f"\ncategories: {', '.join(f'{k} {v:,}' for k, v in mix.most_common())}; "
          f"SDG 8.7.1 flag set for {sdg:,}")  # fmt: skip
    print(f"peak RSS (ru_maxrss, whole process: rows + results): {peak_kib / 1024:,.1f} MiB; "
          f"RSS growth while classifying {args.rows:,} rows (results kept): "
          f"{rss_growth_kib / 1024:,.1f} MiB")  # fmt: skip
    print(f"target {TARGET:,}/s: {'met' if met else 'MISSED'} (slower path {best:,.0f}/s); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other work on the "
          "machine slows the wall-clock figures, not the CPU ones)")  # fmt: skip

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {"rows": args.rows, "repeat": args.repeat, "batch": args.batch,
                   "seed": args.seed, "profile": f"{profile.code} v{profile.version}",
                   "rule_set_version": RULE_SET_VERSION, "cpus": os.cpu_count(),
                   "python": platform.python_version()},
        "seconds": {"floor": floor_all, "one_call": one_all, "batches": batch_all},
        "per_second": {"floor": round(rate(floor_s)), "one_call": round(rate(one_s)),
                       "batches": round(rate(batch_s))},
        "per_cpu_second": {"floor": round(rate(floor_cpu)), "one_call": round(rate(one_cpu)),
                           "batches": round(rate(batch_cpu))},
        "load_average_1min": os.getloadavg()[0],
        "memory": {"peak_rss_mib_ru_maxrss": round(peak_kib / 1024, 1),
                   "rss_growth_mib_while_classifying": round(rss_growth_kib / 1024, 1)},
        "categories": dict(mix),
        "sdg_871": sdg,
        "target_per_second": TARGET,
        "target_met": met,
        "table": table,
    }, indent=2) + "\n")  # fmt: skip
    print(f"written to {args.out}")
    if args.require_target and not met:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
