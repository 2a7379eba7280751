"""Chart labels are never cut: the longest label, in French, is wrapped onto lines that fit the
label column, whole, in the chart and in a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clms import charts
from clms.cases.catalogue import SERVICES
from clms.charts import Bar, Series, StackedBar, bar_chart, stacked_bar_chart
from clms.i18n import translator
from clms.vocabulary import WORDS
from tests.browser import CHROMIUM, CHROMIUM_ARGS

CSS = Path(__file__).resolve().parents[2] / "clms" / "static" / "clms.css"


def french_labels() -> list[str]:
    """What the indicators' charts label their bars and series with, in French: the services of
    the catalogue and the words of the categories; the longest first."""
    french = translator("fr")
    labels = [fr for _code, _en, fr, *_ in SERVICES]
    labels += [french(WORDS[c]) for c in ("worst_form", "hazardous", "child_labour", "at_risk")]
    return sorted(labels, key=len, reverse=True)


def _label_lines(svg: str) -> list[list[str]]:
    """The lines of each label of ``svg``."""
    return [
        re.split(r"<tspan[^>]*>", text.replace("</tspan>", ""))
        for text in re.findall(r'<text class="kpi-label"[^>]*>(.*?)</text>', svg, re.S)
    ]


def test_the_longest_french_label_is_wrapped_whole():
    labels = french_labels()
    longest = labels[0]
    assert len(longest) > charts.LABEL_CHARS * 2  # the case this test is about: 3 lines or more
    svg = bar_chart("c", "t", "d", [Bar(label, 10.0, "10") for label in labels], max_value=20)
    shown = _label_lines(svg)
    assert [" ".join(lines).replace("&#39;", "'") for lines in shown] == labels  # every word
    assert "…" not in svg
    assert max(len(lines) for lines in shown) >= 3
    for lines in shown:
        assert all(len(line.replace("&#39;", "'")) <= charts.LABEL_CHARS for line in lines)
    # the rows grow with their lines: the chart is taller than one row a label
    height = int(re.search(r'viewBox="0 0 \d+ (\d+)"', svg)[1])
    assert height > charts.ROW_HEIGHT * len(labels)


def test_a_short_label_keeps_its_single_row():
    svg = bar_chart("c", "t", "d", [Bar("Gnamagui", 5.0, "5"), Bar("Oupoyo", 5.0, "5")])
    assert 'viewBox="0 0 640 56"' in svg and "<tspan" not in svg


def test_the_legend_of_a_stacked_chart_is_wrapped_whole():
    french = translator("fr")
    series = [Series(c, french(WORDS[c])) for c in ("worst_form", "hazardous", "child_labour",
                                                    "at_risk", "none")]  # fmt: skip
    svg = stacked_bar_chart("s", "t", "d", [StackedBar(french_labels()[0], [1, 1, 1, 1, 1], "5")],
                            series)  # fmt: skip
    legend = svg.split('<g class="kpi-legend">', 1)[1].split("</g>", 1)[0]
    words = re.sub(r"<[^>]+>", " ", legend).split()
    for s in series:
        assert " ".join(s.label.replace("'", "&#39;").split()) in " ".join(words)
    assert "…" not in svg


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing")
def test_in_a_browser_every_label_line_fits_its_column():
    """Drawn by chromium at a phone's width, no line of a label starts left of the chart (a
    label wider than its column would be cut there)."""
    from playwright.sync_api import sync_playwright

    labels = french_labels()
    svg = bar_chart("c", "t", "d", [Bar(label, 10.0, "10") for label in labels], max_value=20)
    page_html = f"<html><head><style>{CSS.read_text('utf-8')}</style></head><body>{svg}</body>"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.set_content(page_html)
            boxes = page.eval_on_selector_all(
                "text.kpi-label",
                "els => els.map(e => { const b = e.getBBox(); return [b.x, b.x + b.width]; })",
            )
        finally:
            browser.close()
    assert len(boxes) == len(labels)
    for (left, right), label in zip(boxes, labels, strict=True):
        assert left >= 0, f"{label!r} starts at {left:.0f}: cut"
        assert right <= charts.LABEL_WIDTH, label
