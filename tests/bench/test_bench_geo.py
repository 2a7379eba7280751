"""The geo benchmark runs end to end at a tiny scale (the full run is not for CI)."""

from __future__ import annotations

import json

from bench import geo


def test_geo_bench_runs_at_a_tiny_scale(bench_db, tmp_path, capsys):
    argv = ["--db", bench_db, "--scale", "0.002", "--naive-points", "20", "--naive-markers", "50"]
    assert geo.main([*argv, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| spatial join of 500 points |" in printed
    assert "| brand map HTML |" in printed

    saved = json.loads((tmp_path / f"geo-{bench_db}.json").read_text())
    [result] = saved["results"]
    assert (result["villages"], result["households"], result["children"]) == (20, 500, 2000)
    assert result["rows"]["children"] == 2000
    assert result["rows"]["classifications"] == 2000
    join = result["join"]
    # the spatial join placed nearly every point (they are drawn near villages inside the outline)
    assert join["in_a_cell"] >= 0.95 * join["points"]
    # the visits were stored as ingestion places them: locating them again changes nothing
    assert join["relocate_changed"] == 0
    assert result["brand_map"]["bytes"] > 1000
    assert result["naive_map"]["markers"] == 50 and result["naive_map"]["extrapolated"]
    assert result["peak_rss_mib_max"] > 0
    for name in ("times", "sizes"):
        assert (tmp_path / f"geo-{bench_db}-{name}.svg").read_text().startswith("<svg")
