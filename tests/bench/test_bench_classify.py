"""The classification benchmark runs at a tiny size (the full run is not for CI): the same code
path (``alerts.rules.classify_rows``), its figures well formed."""

from __future__ import annotations

import json

from bench import classify


def test_classify_bench_runs_at_a_tiny_scale(tmp_path, capsys):
    out = tmp_path / "classify.json"
    assert classify.main(["--rows", "2000", "--repeat", "1", "--batch", "300",
                          "--out", str(out)]) == 0  # fmt: skip
    assert "| classify_rows, one call |" in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["config"]["rows"] == 2000
    assert sum(saved["categories"].values()) == 2000  # every row classified once
    assert set(saved["categories"]) <= {"none", "at_risk", "child_labour", "hazardous",
                                        "worst_form"}  # fmt: skip
    for path in ("floor", "one_call", "batches"):
        assert saved["per_second"][path] > 0
        assert all(s > 0 for s in saved["seconds"][path])
    assert saved["memory"]["peak_rss_mib_ru_maxrss"] > 0
    assert isinstance(saved["target_met"], bool)
