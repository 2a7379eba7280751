"""The alert queue benchmark runs at a tiny size on each database (the full run is not for
CI): gunicorn, the API, every scenario (the deep page by OFFSET and by key included); its
figures are well formed, and a failing request fails the run instead of being timed."""

from __future__ import annotations

import json

import pytest

from bench import alert_queue

pytestmark = pytest.mark.committing  # its own database and gunicorn


def test_alert_queue_bench_runs_at_a_tiny_scale(bench_db, tmp_path, capsys):
    out = tmp_path / "alert_queue.json"
    argv = ["--db", bench_db, "--alerts", "400", "--closed", "40", "--requests", "2",
            "--warmup", "0", "--workers", "1", "--threads", "2", "--index", "with",
            "--out", str(out)]  # fmt: skip
    assert alert_queue.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| supervisor: deep 4 by key |" in printed
    [result] = json.loads(out.read_text())["results"]
    assert result["database"] == bench_db
    rows = result["variants"]["with"]
    supervisor = {name.split(": ", 1)[1]: s for name, s in rows.items()
                  if name.startswith("supervisor")}  # fmt: skip
    # page 4 of 8, by OFFSET and by key; and the deep pages of two orders by key
    for name in ("deep page 4", "deep 4 by key", "sort=age deep 4 by key",
                 "sort=-raised deep 4 by key", "first page", "baseline /me"):  # fmt: skip
        assert name in supervisor, sorted(supervisor)
    for name, s in rows.items():
        assert s["errors"] == 0, (name, s["error_samples"])
        assert s["requests"] == 2
        assert 0 < s["p50_ms"] <= s["p95_ms"] <= s["max_ms"], name
    assert "after=" in supervisor["deep 4 by key"]["path"]
    assert result["setup"]["users"]["supervisor"]["total"] == 400


def test_a_failing_request_is_an_error_not_a_time(failing_server):
    timed = alert_queue.measure(failing_server, "token", "/api/v1/alerts", 10, 3, 1, 1)
    assert timed["errors"] == 4 and timed["error_samples"][0].startswith("500")


def test_a_run_with_an_error_fails(monkeypatch, tmp_path):
    def broken(kind, args, stop):
        figures = {"requests": 2, "p50_ms": 1.0, "p95_ms": 1.0, "max_ms": 1.0, "errors": 1,
                   "error_samples": ["500: broken"]}  # fmt: skip
        return {"database": kind, "setup": {}, "variants": {"with": {"supervisor: x": figures}}}

    monkeypatch.setattr(alert_queue, "bench_database", broken)
    out = tmp_path / "alert_queue.json"
    assert alert_queue.main(["--db", "sqlite", "--out", str(out)]) == 1
