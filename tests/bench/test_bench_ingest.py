"""The ingest benchmarks run at a tiny size on each database (the full runs are not for CI):
``bench.ingest`` under gunicorn with the processor next to it, and ``bench.profile_ingest``
in process; their figures are well formed, and every submission was stored."""

from __future__ import annotations

import json

import pytest

from bench import ingest, profile_ingest

pytestmark = pytest.mark.committing  # their own databases and servers


def test_ingest_bench_runs_at_a_tiny_scale(bench_db, tmp_path, capsys):
    out = tmp_path / "ingest.json"
    argv = ["--db", bench_db, "--submissions", "8", "--clients", "2", "--workers", "1",
            "--threads", "2", "--warmup", "1", "--out", str(out)]  # fmt: skip
    assert ingest.main(argv) == 0
    assert f"| {bench_db} | full ingest |" in capsys.readouterr().out
    [result] = json.loads(out.read_text())["results"]
    assert result["database"] == bench_db
    for phase in ("full", "floor"):
        figures = result[phase]
        assert figures["errors"] == 0 and figures["requests"] == 8
        assert figures["submissions_per_s"] > 0 and 0 < figures["p50_ms"] <= figures["p99_ms"]
        assert figures["peak_rss_mib"] > 0
    assert result["verification"]["ok"]
    assert result["verification"]["submissions"] == 8
    assert result["verification"]["child_visits"] == 8 * ingest.CHILDREN_PER_SUBMISSION
    assert result["ratio_full_to_floor"] > 0
    assert out.with_suffix(".svg").read_text().startswith("<svg")


def test_ingest_bench_fails_on_a_refused_submission(monkeypatch, tmp_path, capsys):
    """A run whose answers were not all 201 (or whose database does not hold what was sent)
    exits 1: an error is never averaged into the figures."""

    def refused(kind, args, stop):
        phase = {"errors": 1, "requests": 8, "submissions_per_s": 10.0, "p50_ms": 1.0,
                 "p99_ms": 2.0, "peak_rss_mib": 1.0, "seconds": 1.0, "accept_per_s": 10.0,
                 "server_cpu_ms_per_request": 1.0}  # fmt: skip
        return {"database": kind, "full": phase, "floor": phase | {"errors": 0},
                "ratio_full_to_floor": 1.0, "target_met": True,
                "verification": {"ok": True}}  # fmt: skip

    monkeypatch.setattr(ingest, "bench_database", refused)
    monkeypatch.setattr(ingest, "table", lambda results: "")
    monkeypatch.setattr(ingest, "chart_svg", lambda results: "<svg/>")
    assert ingest.main(["--db", "sqlite", "--submissions", "2", "--clients", "1",
                        "--out", str(tmp_path / "ingest.json")]) == 1  # fmt: skip
    assert "FAILED on sqlite" in capsys.readouterr().err


def test_profile_ingest_runs_at_a_tiny_scale(bench_db, capsys):
    assert profile_ingest.main(["--db", bench_db, "--submissions", "5", "--mode", "none"]) == 0
    printed = capsys.readouterr().out
    for label in ("floor", "full"):
        assert f"== {label} on {bench_db}: 5 requests," in printed
    assert "SQL statements per request" in printed
