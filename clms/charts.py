"""Charts as inline SVG, drawn on the server: a bar chart and a stacked bar chart.

Pure: labels and numbers in, SVG markup out; no Flask, no database, no script. Every chart is an
image with a name (``role="img"``, a ``<title>`` and a ``<desc>`` that says what it shows); the
page also gives the same numbers in a table, for screen readers and for reading exact values.
Colours and fonts come from classes (``kpi-fill``, ``kpi-s-<series>``...) styled in ``clms.css``:
no ``style`` attribute, so a strict Content-Security-Policy holds. The caller translates every
text and formats every number.

Bars are horizontal, one row each, so long village names stay readable on a phone and the
chart grows downwards with the number of groups. A label is never cut: one longer than its column
is wrapped onto as many lines as it needs (at spaces, and inside a word only if the word alone is
wider than the column), and its row grows to hold them; so are the legend's series names.

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
LINE_HEIGHT = 15  # a line of a wrapped label
CHAR_WIDTH = 7.2  # the width of a character of the 13 px font, generously (viewBox units)
#: characters of a line of a label: the label column less its margin
LABEL_CHARS = int((LABEL_WIDTH - 12) / CHAR_WIDTH)


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
    legend = _lines(reference_label, int((WIDTH - 16) / CHAR_WIDTH)) if reference_label else []
    top = _legend_height(len(legend))
    scale = _scale(max_value, [b.value for b in bars] + [b.reference for b in bars])
    rows = [_lines(bar.label, LABEL_CHARS) for bar in bars]
    parts = [_open(chart_id, title, desc, top + _rows_height(rows))]
    if reference_label:
        parts.append(
            '<g class="kpi-legend"><line class="kpi-ref" x1="4" x2="4" y1="4" y2="20"/>'
            f"{_text(legend, 12, 16, '')}</g>"
        )
    y = top
    for bar, lines in zip(bars, rows, strict=True):
        height = _row_height(lines)
        y, row_top = y + height, y + (height - ROW_HEIGHT) // 2
        width = _x(bar.value, scale)
        parts.append(f"<g><title>{escape(bar.label)}: {escape(bar.text)}</title>")
        parts.append(_label(lines, row_top))
        y_bar = row_top
        parts.append(
            f'<rect class="kpi-track" x="{LABEL_WIDTH}" y="{y_bar + 5}" width="{_plot():.1f}" '
            f'height="{BAR_HEIGHT}"/>'
        )
        if width > 0:
            parts.append(
                f'<rect class="kpi-fill" x="{LABEL_WIDTH}" y="{y_bar + 5}" width="{width:.1f}" '
                f'height="{BAR_HEIGHT}"/>'
            )
        if bar.reference is not None:
            x = LABEL_WIDTH + _x(bar.reference, scale)
            parts.append(
                f'<line class="kpi-ref" x1="{x:.1f}" x2="{x:.1f}" y1="{y_bar + 2}" '
                f'y2="{y_bar + 5 + BAR_HEIGHT + 3}"/>'
            )
        parts.append(_value(bar.text, y_bar))
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
    step = WIDTH / max(len(series), 1)
    names = [_lines(s.label, int((step - 20) / CHAR_WIDTH)) for s in series]
    top = _legend_height(max((len(n) for n in names), default=1))
    rows = [_lines(bar.label, LABEL_CHARS) for bar in bars]
    parts = [_open(chart_id, title, desc, top + _rows_height(rows))]
    parts.append('<g class="kpi-legend">')
    x = 0.0
    for s, name in zip(series, names, strict=True):
        parts.append(
            f'<rect class="kpi-s-{escape(s.key)}" x="{x:.1f}" y="5" width="12" height="12"/>'
            f"{_text(name, x + 16, 16, '')}"
        )
        x += step
    parts.append("</g>")
    y_next = top
    for bar, lines in zip(bars, rows, strict=True):
        height = _row_height(lines)
        y, y_next = y_next + (height - ROW_HEIGHT) // 2, y_next + height
        parts.append(f"<g><title>{escape(bar.label)}: {escape(bar.text)}</title>")
        parts.append(_label(lines, y))
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


def _label(lines: list[str], y: int) -> str:
    """A row's label, its lines centred on the row's bar (whose row starts at ``y``)."""
    first = y + 19 - (len(lines) - 1) * LINE_HEIGHT / 2
    return _text(lines, LABEL_WIDTH - 8, first, ' class="kpi-label"')


def _text(lines: list[str], x: float, y: float, attributes: str) -> str:
    """A ``<text>`` of one or more lines (a ``<tspan>`` each after the first)."""
    if not lines:
        return ""
    head = f'<text{attributes} x="{x:g}" y="{y:g}">{escape(lines[0])}'
    rest = "".join(
        f'<tspan x="{x:g}" dy="{LINE_HEIGHT}">{escape(line)}</tspan>' for line in lines[1:]
    )
    return head + rest + "</text>"


def _lines(text: str, width: int) -> list[str]:
    """``text`` wrapped onto lines of at most ``width`` characters, at spaces; a word longer
    than a line is split (nothing is ever cut off).

    >>> _lines("Transfert monétaire ou protection sociale", 25)
    ['Transfert monétaire ou', 'protection sociale']
    >>> _lines("Gnamagui", 25), _lines("abcdefgh", 3)
    (['Gnamagui'], ['abc', 'def', 'gh'])
    """
    width = max(width, 1)
    lines: list[str] = []
    line = ""
    for word in text.split():
        while len(word) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            lines.append(line)
            line = word
    if line or not lines:
        lines.append(line)
    return lines


def _row_height(lines: list[str]) -> int:
    """A row's height: the bar's, or more for a label of several lines."""
    return max(ROW_HEIGHT, len(lines) * LINE_HEIGHT + 10)


def _rows_height(rows: list[list[str]]) -> int:
    return sum(_row_height(lines) for lines in rows) if rows else ROW_HEIGHT


def _legend_height(lines: int) -> int:
    """The legend's height: one line's, and a line more for each further line of a name."""
    return LEGEND_HEIGHT + max(lines - 1, 0) * LINE_HEIGHT if lines else 0


def _value(text: str, y: int) -> str:
    return (
        f'<text class="kpi-value" x="{WIDTH - VALUE_WIDTH + 6}" y="{y + 19}">{escape(text)}</text>'
    )


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
