"""The case benchmark runs end to end at a tiny scale (the full run is not for CI): every page,
home pages included, answers 200, the child-visit export has a row per child visit (by the
previous path and the database-written one), the case-list export a row per case."""

from __future__ import annotations

import json

import pytest

from bench import cases

pytestmark = pytest.mark.committing  # its own database and gunicorn


def test_cases_bench_runs_at_a_tiny_scale(bench_db, tmp_path, capsys):
    argv = ["--db", bench_db, "--base-cases", "20", "--base-visits", "300", "--cases", "40",
            "--visits", "600", "--requests", "3", "--warmup", "1", "--kpi-requests", "1",
            "--kpi-warmup", "0", "--workers", "1", "--threads", "2", "--no-xlsx"]  # fmt: skip
    assert cases.main([*argv, "--out", str(tmp_path / "cases.json")]) == 0
    printed = capsys.readouterr().out
    for role in ("officer", "supervisor", "provider", "admin"):
        assert f"| {bench_db} | {role}: home |" in printed

    results = json.loads((tmp_path / "cases.json").read_text())["results"]
    assert [(r["size"], r["setup"]["cases"]) for r in results] == [("baseline", 20), ("full", 40)]
    for r in results:
        assert {name: p["errors"] for name, p in r["pages"].items()} == dict.fromkeys(r["pages"], 0)
        assert r["setup"]["provider"]["referrals"], "the provider chosen has referrals"
        export = r["exports"]["csv"]
        assert export["rows"] == export["expected_rows"] > 0
        cases_export = r["exports"]["cases csv"]
        assert cases_export["rows"] == cases_export["expected_rows"] == r["setup"]["cases"]
        # the child-visit export by the path before issue 19 and by the database-written one
        assert set(r["paths"]) == {"csv previous", "csv database"}
        for e in r["paths"].values():
            assert e["rows"] == export["expected_rows"] and e["rows_per_s"] > 0
    assert f"| {bench_db} | CSV by the database path, baseline |" in printed
    for name in ("pages", "homes", "kpis", "export-memory", "export-paths"):
        assert (tmp_path / f"cases-{name}.svg").read_text().startswith("<svg")


def test_a_failing_page_is_an_error_not_a_time(failing_server):
    import requests

    with requests.Session() as web:
        timed = cases.latencies(web, failing_server, "/cases", 3, 1)
    assert timed["errors"] == 4 and "500" in timed["error_samples"][0]
