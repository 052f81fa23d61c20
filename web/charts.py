"""Charts as inline SVG drawn on the server: no script, nothing downloaded, printable.

The security policy allows no inline script or style, so a chart is plain
SVG elements with classes (colours in static/css/app.css). This module only
computes the geometry; templates/_charts.html draws it, with a table of the
same numbers for screen readers and for reading exact values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WIDTH = 640
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 56, 56, 12, 36


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True)
class Chart:
    """What a template needs to draw one chart (view box WIDTH x HEIGHT)."""

    width: int
    height: int
    bars: list[Bar]
    line: list[tuple[float, float, str, int]]  # x, y, label, value
    left_ticks: list[tuple[float, str]]
    right_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    rows: list[tuple[str, int | None, int | None]] = field(default_factory=list)  # the table: label, bar, line

    @property
    def line_points(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in self.line)


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 5 x 10^k that is >= value (at least 1): round axis ends."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return int(step * power)
    return int(10 * power)


def _ticks(top: int, plot_top: float, plot_bottom: float) -> list[tuple[float, str]]:
    """Ticks at whole numbers (an axis counts slots and people: never "12.5"), four or five
    of them where the top allows, from 0 to `top`."""
    order = (5, 4, 2, 1) if str(top).startswith("5") else (4, 5, 2, 1)  # 50 by tens, 100 by 25s
    parts = next(parts for parts in order if top % parts == 0)
    return [(plot_bottom - (plot_bottom - plot_top) * part / parts, _short(top * part // parts))
            for part in range(parts + 1)]


def _short(value: float) -> str:
    """1 200 -> "1.2k", 3 000 000 -> "3M": axis labels stay narrow."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= size:
            text = f"{value / size:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def chart(labels: list[str], bars: list[int] | None = None, line: list[int | None] | None = None,
          width: int = WIDTH, height: int = HEIGHT, label_every: int | None = None) -> Chart:
    """Bars (left axis) and/or a line (right axis) over the same labels."""
    left, top, right, bottom = LEFT, TOP, width - RIGHT, height - BOTTOM
    count = max(len(labels), 1)
    step = (right - left) / count
    bar_top = nice_ceiling(max(bars or [0]))
    line_values = [value for value in (line or []) if value is not None]
    line_top = nice_ceiling(max(line_values or [0]))

    def y_of(value: float, scale_top: int) -> float:
        return bottom - (bottom - top) * value / scale_top

    drawn_bars = []
    for index, value in enumerate(bars or []):
        y = y_of(value, bar_top)
        drawn_bars.append(Bar(left + index * step + step * 0.15, y, step * 0.7, bottom - y, labels[index], value))
    drawn_line = [
        (left + index * step + step / 2, y_of(value, line_top), labels[index], value)
        for index, value in enumerate(line or [])
        if value is not None
    ]
    every = label_every or max(1, math.ceil(count / 8))
    x_labels = [(left + index * step + step / 2, text) for index, text in enumerate(labels) if index % every == 0]
    rows = [
        (text, (bars or [None] * count)[index] if bars else None, (line or [None] * count)[index] if line else None)
        for index, text in enumerate(labels)
    ]
    return Chart(
        width=width,
        height=height,
        bars=drawn_bars,
        line=drawn_line,
        left_ticks=_ticks(bar_top, top, bottom) if bars is not None else [],
        right_ticks=_ticks(line_top, top, bottom) if line is not None else [],
        x_labels=x_labels,
        plot=(left, top, right, bottom),
        rows=rows,
    )


# The page's chart colours (static/css/app.css), inside a standalone SVG file.
_STANDALONE_STYLE = (
    ".qs-chart__bar{fill:#6a6af4}.qs-chart__line{fill:none;stroke:#ce0500;stroke-width:2}"
    ".qs-chart__point{fill:#ce0500}.qs-chart__axis{stroke:#3a3a3a;stroke-width:1}"
    ".qs-chart__grid{stroke:#ddd;stroke-width:1}.qs-chart__tick{font:11px sans-serif;fill:#3a3a3a}"
    ".qs-chart__tick--line{fill:#ce0500}.qs-chart__title{font:bold 13px sans-serif;fill:#161616}"
)
TITLE_HEIGHT = 40


def standalone_svg(drawn: Chart, title: str, bar_name: str | None = None, line_name: str | None = None) -> str:
    """The chart as a standalone SVG document (the same drawing as templates/_charts.html, its
    colours inside), for files such as the documentation's figures."""
    from xml.sax.saxutils import escape

    left, top, right, bottom = drawn.plot
    keys = " · ".join(f"{name} ({kind})" for name, kind in ((bar_name, "bars"), (line_name, "line")) if name)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 -{TITLE_HEIGHT} {drawn.width} '
        f'{drawn.height + TITLE_HEIGHT}" role="img"><title>{escape(title)}</title><style>{_STANDALONE_STYLE}</style>',
        f'<text class="qs-chart__title" x="{left}" y="-24">{escape(title)}</text>',
        f'<text class="qs-chart__tick" x="{left}" y="-8">{escape(keys)}</text>',
    ]
    for y, text in drawn.left_ticks:
        parts.append(f'<line class="qs-chart__grid" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="qs-chart__tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
    for y, text in drawn.right_ticks:
        if not drawn.left_ticks:
            parts.append(f'<line class="qs-chart__grid" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="qs-chart__tick qs-chart__tick--line" x="{right + 6}" y="{y + 4:.1f}">{text}</text>')
    parts.append(f'<line class="qs-chart__axis" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    for bar in drawn.bars:
        parts.append(f'<rect class="qs-chart__bar" x="{bar.x:.1f}" y="{bar.y:.1f}" width="{bar.width:.1f}" '
                     f'height="{bar.height:.1f}"><title>{escape(bar.label)}: {bar.value}</title></rect>')
    if len(drawn.line) > 1:
        parts.append(f'<polyline class="qs-chart__line" points="{drawn.line_points}"/>')
    for x, text in drawn.x_labels:
        parts.append(f'<text class="qs-chart__tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
                     f'{escape(text)}</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)
