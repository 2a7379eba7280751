"""The KPI benchmark runs end to end at a tiny scale (the full run is not for CI): every request
is measured by the kept facts and by the former queries, their figures are equal, and the table
and chart are written."""

from __future__ import annotations

import json

import pytest

from bench import kpis

pytestmark = pytest.mark.committing  # its own database


def test_kpis_bench_runs_at_a_tiny_scale(bench_db, tmp_path, capsys):
    argv = ["--db", bench_db, "--sizes", "full", "--visits", "300", "--cases", "20",
            "--repeats", "1", "--out", str(tmp_path / "kpis.json")]  # fmt: skip
    assert kpis.main(argv) == 0  # 1 if a figure of the kept facts differed from the former's
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "kpis.json").read_text())["results"]
    [result] = results
    assert result["db"] == bench_db and result["facts"] > 0 and result["unequal"] == []
    names = set(result["requests"])
    assert {"default", "group=village", "group=month", "area", "village", "supplier", "tier",
            "monitor", "area+tier, by month"} <= names  # fmt: skip
    for row in result["requests"].values():
        for way in ("kept", "former"):
            assert 0 < row[way]["p50_ms"] <= row[way]["p95_ms"]
    assert f"| {bench_db} | full (" in printed and "| default |" in printed
    assert (tmp_path / "kpis.svg").read_text().startswith("<svg")


def test_a_figure_that_differs_fails_the_run(monkeypatch, tmp_path):
    """The run fails when the kept facts and the former queries disagree (a broken figure)."""
    real = kpis.measure

    def broken(*args, **kwargs):
        out = real(*args, **kwargs)
        out["unequal"] = ["default"]
        return out

    monkeypatch.setattr(kpis, "measure", broken)
    argv = ["--db", "sqlite", "--sizes", "full", "--visits", "100", "--cases", "5",
            "--repeats", "1", "--no-former", "--out", str(tmp_path / "kpis.json")]  # fmt: skip
    assert kpis.main(argv) == 1
