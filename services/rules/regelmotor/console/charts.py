"""Bar charts drawn on the server as SVG, each with the table that carries its numbers (a screen reader, a
printout and a person who wants the exact count read the table; the picture is for the eye).

General on purpose: categories along the x axis, one bar per series in each category, grouped side by side or
stacked. No JavaScript, no style attributes (the console's Content-Security-Policy): colours are SVG presentation
attributes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

# Colours with at least 3:1 contrast against white (WCAG 1.4.11, graphical objects), told apart by lightness too.
PALETTE = ("#0b4f8a", "#c25e00", "#1d6b34", "#6b2f8a", "#a8231c", "#4a4a4a")
MAX_CATEGORIES = 12  # more would not be readable as bars: the table alone shows them
MAX_SERIES = len(PALETTE)


@dataclass(frozen=True)
class Series:
    """One kind of bar: its name (in the legend and the table's header) and a value per category."""

    name: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class BarChart:
    """What to draw: `caption` names the chart and its table; `categories` the groups along the x axis."""

    caption: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    category_heading: str = ""
    stacked: bool = False

    def __post_init__(self) -> None:
        if any(len(s.values) != len(self.categories) for s in self.series):
            raise ValueError("each series has one value per category")

    @property
    def drawable(self) -> bool:
        """Whether bars can show it (else the table alone does)."""
        return 0 < len(self.categories) <= MAX_CATEGORIES and 0 < len(self.series) <= MAX_SERIES


_WIDTH, _HEIGHT, _LEFT, _BOTTOM, _TOP, _LEGEND = 640, 260, 56, 40, 12, 24


def _largest(chart: BarChart) -> float:
    if chart.stacked:
        totals = [sum(s.values[i] for s in chart.series) for i in range(len(chart.categories))]
        return max([*totals, 0.0])
    return max([*(v for s in chart.series for v in s.values), 0.0])


def _bars(chart: BarChart, scale: float) -> list[str]:
    plot_width = _WIDTH - _LEFT - 8
    slot = plot_width / len(chart.categories)
    per_category = 1 if chart.stacked else len(chart.series)
    bar = max(2.0, (slot * 0.8) / per_category)
    floor = float(_HEIGHT - _BOTTOM)
    parts: list[str] = []
    for index, category in enumerate(chart.categories):
        left = _LEFT + index * slot + slot * 0.1
        stacked_top = floor
        for number, series in enumerate(chart.series):
            height = series.values[index] * scale
            x = left if chart.stacked else left + number * bar
            y = stacked_top - height if chart.stacked else floor - height
            stacked_top = y if chart.stacked else stacked_top
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                         f'fill="{PALETTE[number]}"><title>{escape(category)}, {escape(series.name)}: '
                         f'{series.values[index]:g}</title></rect>')
        parts.append(f'<text x="{left + slot * 0.4:.1f}" y="{floor + 16:.0f}" text-anchor="middle" font-size="12" '
                     f'fill="#1a1a1a">{escape(category)}</text>')
    return parts


def _ticks(chart: BarChart, largest: float) -> list[float]:
    steps = [largest * step / 4 for step in range(5)]
    if all(float(v).is_integer() for s in chart.series for v in s.values):
        return sorted({float(round(v)) for v in steps})  # counts: no half decisions on the axis
    return steps


def _axis(chart: BarChart, largest: float, scale: float) -> list[str]:
    floor = _HEIGHT - _BOTTOM
    parts = [f'<line x1="{_LEFT}" y1="{floor}" x2="{_WIDTH - 8}" y2="{floor}" stroke="#4a4a4a"/>']
    for value in _ticks(chart, largest):
        y = floor - value * scale
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#4a4a4a">'
                     f'{value:g}</text>')
    return parts


def _legend(chart: BarChart) -> list[str]:
    parts = []
    for number, series in enumerate(chart.series):
        x = _LEFT + number * 150
        y = _HEIGHT + 6
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{PALETTE[number]}"/>'
                     f'<text x="{x + 18}" y="{y + 11}" font-size="12" fill="#1a1a1a">{escape(series.name)}</text>')
    return parts


def chart_svg(chart: BarChart) -> Markup:
    """The picture: an <svg> marked as an image named by the caption (the table beside it holds the numbers);
    empty when the chart is not `drawable`."""
    if not chart.drawable:
        return Markup("")
    largest = _largest(chart)
    scale = (_HEIGHT - _BOTTOM - _TOP) / largest if largest > 0 else 0.0
    body = "".join(_axis(chart, largest, scale) + _bars(chart, scale) + _legend(chart))
    return Markup(f'<svg class="diagram" viewBox="0 0 {_WIDTH} {_HEIGHT + _LEGEND}" width="{_WIDTH}" '
                  f'height="{_HEIGHT + _LEGEND}" role="img" aria-label="{escape(chart.caption)}" '
                  f'xmlns="http://www.w3.org/2000/svg">{body}</svg>')


def chart_table(chart: BarChart, number: Callable[[float], str] = lambda v: f"{v:g}") -> Markup:
    """The numbers: a table with a caption, a row per category and a column per series (`number` formats them)."""
    head = "".join(f'<th scope="col" class="tall">{escape(s.name)}</th>' for s in chart.series)
    rows = "".join(
        f'<tr><th scope="row">{escape(category)}</th>'
        + "".join(f'<td class="tall">{escape(number(s.values[i]))}</td>' for s in chart.series) + "</tr>"
        for i, category in enumerate(chart.categories))
    return Markup(f'<table class="diagramtabell"><caption>{escape(chart.caption)}</caption><thead><tr>'
                  f'<th scope="col">{escape(chart.category_heading)}</th>{head}</tr></thead><tbody>{rows}</tbody>'
                  f'</table>')
