"""Charts as inline SVG, drawn on the server: a bar chart and a stacked bar chart.

Pure: labels and numbers in, SVG markup out; no Flask, no database, no script. Every chart is an
image with a name (``role="img"``, a ``<title>`` and a ``<desc>`` that says what it shows); the
page also gives the same numbers in a table, for screen readers and for reading exact values.
Colours and fonts come from classes (``kpi-fill``, ``kpi-s-<series>``...) styled in ``clms.css``:
no ``style`` attribute, so a strict Content-Security-Policy holds. The caller translates every
text and formats every number.

Bars are horizontal, one row each, so long village names stay readable on a phone and the
chart grows downwards with the number of groups.

>>> svg = bar_chart("rate", "Identification rate", "Share of children identified, by village.",
...                 [Bar("Gnamagui", 25.0, "25 %"), Bar("Oupoyo", 50.0, "50 %")], max_value=100)
>>> svg.startswith('<svg class="kpi-chart" role="img" aria-labelledby="rate-title rate-desc"')
True
>>> 'width="195.0"' in svg  # half of the 390 units of the scale
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
LABEL_WIDTH = 190
VALUE_WIDTH = 60
ROW_HEIGHT = 28
BAR_HEIGHT = 18
LEGEND_HEIGHT = 26
MAX_LABEL = 26  # characters of a label shown in the chart (the full one is in the bar's title)


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its value (None: no value), the value as shown, and an optional
    reference on the same scale drawn as a mark across the bar (e.g. the area's rate)."""

    label: str
    value: float | None
    text: str
    reference: float | None = None


@dataclass(frozen=True)
class Series:
    """One series of a stacked chart: ``key`` names its class (``kpi-s-<key>``)."""

    key: str
    label: str


@dataclass(frozen=True)
class StackedBar:
    """One stacked bar: a value per series (in the order of the series) and the total as shown."""

    label: str
    values: Sequence[float]
    text: str


def bar_chart(
    chart_id: str,
    title: str,
    desc: str,
    bars: Sequence[Bar],
    *,
    max_value: float | None = None,
    reference_label: str | None = None,
) -> Chart:
    """A horizontal bar chart; the scale runs from 0 to ``max_value`` (default: the largest
    value or reference). ``reference_label`` names the reference marks in a legend."""
    top = LEGEND_HEIGHT if reference_label else 0
    scale = _scale(max_value, [b.value for b in bars] + [b.reference for b in bars])
    parts = [_open(chart_id, title, desc, top + ROW_HEIGHT * max(len(bars), 1))]
    if reference_label:
        parts.append(
            '<g class="kpi-legend"><line class="kpi-ref" x1="4" x2="4" y1="4" y2="20"/>'
            f'<text x="12" y="16">{escape(reference_label)}</text></g>'
        )
    for i, bar in enumerate(bars):
        y = top + i * ROW_HEIGHT
        width = _x(bar.value, scale)
        parts.append(f"<g><title>{escape(bar.label)}: {escape(bar.text)}</title>")
        parts.append(_label(bar.label, y))
        parts.append(
            f'<rect class="kpi-track" x="{LABEL_WIDTH}" y="{y + 5}" width="{_plot():.1f}" '
            f'height="{BAR_HEIGHT}"/>'
        )
        if width > 0:
            parts.append(
                f'<rect class="kpi-fill" x="{LABEL_WIDTH}" y="{y + 5}" width="{width:.1f}" '
                f'height="{BAR_HEIGHT}"/>'
            )
        if bar.reference is not None:
            x = LABEL_WIDTH + _x(bar.reference, scale)
            parts.append(
                f'<line class="kpi-ref" x1="{x:.1f}" x2="{x:.1f}" y1="{y + 2}" '
                f'y2="{y + 5 + BAR_HEIGHT + 3}"/>'
            )
        parts.append(_value(bar.text, y))
        parts.append("</g>")
    parts.append("</svg>")
    return _markup(parts, title)


def stacked_bar_chart(
    chart_id: str,
    title: str,
    desc: str,
    bars: Sequence[StackedBar],
    series: Sequence[Series],
) -> Chart:
    """A horizontal stacked bar chart with a legend of the series; the scale runs from 0 to the
    largest total."""
    scale = _scale(None, [sum(v or 0 for v in b.values) for b in bars])
    top = LEGEND_HEIGHT
    parts = [_open(chart_id, title, desc, top + ROW_HEIGHT * max(len(bars), 1))]
    parts.append('<g class="kpi-legend">')
    x = 0.0
    step = WIDTH / max(len(series), 1)
    for s in series:
        parts.append(
            f'<rect class="kpi-s-{escape(s.key)}" x="{x:.1f}" y="5" width="12" height="12"/>'
            f'<text x="{x + 16:.1f}" y="16">{escape(_short(s.label, 16))}</text>'
        )
        x += step
    parts.append("</g>")
    for i, bar in enumerate(bars):
        y = top + i * ROW_HEIGHT
        parts.append(f"<g><title>{escape(bar.label)}: {escape(bar.text)}</title>")
        parts.append(_label(bar.label, y))
        x = float(LABEL_WIDTH)
        for s, value in zip(series, bar.values, strict=True):
            width = _x(value, scale)
            if width > 0:
                parts.append(
                    f'<rect class="kpi-s-{escape(s.key)}" x="{x:.1f}" y="{y + 5}" '
                    f'width="{width:.1f}" height="{BAR_HEIGHT}"><title>{escape(s.label)}: '
                    f"{_number(value)}</title></rect>"
                )
            x += width
        parts.append(_value(bar.text, y))
        parts.append("</g>")
    parts.append("</svg>")
    return _markup(parts, title)


# --- helpers -------------------------------------------------------------------------------------


class Chart(Markup):
    """The SVG of a chart, which also knows its title (for a visible caption)."""

    title: str


def _markup(parts: list[str], title: str) -> Chart:
    # every text and attribute value put into ``parts`` went through escape() above; the rest
    # is markup of our own, so the whole is safe to show as it is
    chart = Chart("".join(parts))  # noqa: S704
    chart.title = title
    return chart


def _plot() -> float:
    return float(WIDTH - LABEL_WIDTH - VALUE_WIDTH)


def _scale(max_value: float | None, values: Sequence[float | None]) -> float:
    if max_value:
        return float(max_value)
    largest = max((v for v in values if v is not None), default=0)
    return float(largest) or 1.0


def _x(value: float | None, scale: float) -> float:
    if not value or value < 0:
        return 0.0
    return min(value, scale) / scale * _plot()


def _open(chart_id: str, title: str, desc: str, height: int) -> str:
    cid = escape(chart_id)
    return (
        f'<svg class="kpi-chart" role="img" aria-labelledby="{cid}-title {cid}-desc" '
        f'viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{cid}-title">{escape(title)}</title>'
        f'<desc id="{cid}-desc">{escape(desc)}</desc>'
    )


def _label(label: str, y: int) -> str:
    return (
        f'<text class="kpi-label" x="{LABEL_WIDTH - 8}" y="{y + 19}">'
        f"{escape(_short(label, MAX_LABEL))}</text>"
    )


def _value(text: str, y: int) -> str:
    return (
        f'<text class="kpi-value" x="{WIDTH - VALUE_WIDTH + 6}" y="{y + 19}">{escape(text)}</text>'
    )


def _short(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
