"""Bar charts drawn on the server as SVG, each with the table that carries its numbers (a screen reader, a
printout and a person who wants the exact count read the table; the picture is for the eye) and a legend in text.

General on purpose: categories along the x axis, one bar per series in each category, grouped side by side or
stacked. No JavaScript, no style attributes (the console's Content-Security-Policy): colours are SVG presentation
attributes. The one place the console draws bars: the impact report and the auditor's statistics both use it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

from .formatting import norsk_tall

# Hues a person tells apart, each at least 4.5:1 against white (WCAG AA for text; bars need 3:1), the last grey
# kept for the series past the others (`at_most`).
PALETTE = ("#0b4f8a", "#b3261e", "#1d6b34", "#6a3d9a", "#8a4b00", "#00607a", "#7a1f5c")
OTHERS = "#4a4a4a"
OTHERS_NAME = "andre verdier"
MAX_CATEGORIES = 12  # more would not be readable as grouped bars: the table alone shows them
MAX_SERIES = len(PALETTE) + 1
MAX_AXIS_LABELS = 8  # labels under the x axis; with more categories every n-th is written


@dataclass(frozen=True)
class Series:
    """One kind of bar: its name (in the legend and the table's header) and a value per category."""

    name: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class BarChart:
    """What to draw: `caption` names the chart and its table; `categories` the groups along the x axis (in full,
    as the table and a bar's title say them), `labels` their short form under the axis (else the categories)."""

    caption: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    category_heading: str = ""
    stacked: bool = False
    labels: tuple[str, ...] = ()
    most_categories: int = MAX_CATEGORIES

    def __post_init__(self) -> None:
        if any(len(s.values) != len(self.categories) for s in self.series):
            raise ValueError("each series has one value per category")
        if self.labels and len(self.labels) != len(self.categories):
            raise ValueError("one label per category")

    @property
    def drawable(self) -> bool:
        """Whether bars can show it (else the table alone does)."""
        return 0 < len(self.categories) <= self.most_categories and 0 < len(self.series) <= MAX_SERIES


def colour(number: int, chart: BarChart) -> str:
    """The colour of the chart's series `number`: the palette's, and grey for the folded rest (`at_most`)."""
    folded = chart.series[number].name == OTHERS_NAME and number == len(chart.series) - 1
    return OTHERS if folded or number >= len(PALETTE) else PALETTE[number]


def at_most(series: list[Series], most: int = len(PALETTE)) -> tuple[Series, ...]:
    """The series with their own colour, the rest added together as «andre verdier» (drawn grey)."""
    if len(series) <= most:
        return tuple(series)
    rest = series[most - 1:]
    folded = Series(OTHERS_NAME, tuple(sum(values) for values in zip(*(s.values for s in rest), strict=True)))
    return (*series[:most - 1], folded)


_WIDTH, _HEIGHT, _LEFT, _BOTTOM, _TOP, _LEGEND_ROW, _PER_ROW = 640, 260, 56, 40, 12, 20, 4


def _largest(chart: BarChart) -> float:
    if chart.stacked:
        totals = [sum(s.values[i] for s in chart.series) for i in range(len(chart.categories))]
        return max([*totals, 0.0])
    return max([*(v for s in chart.series for v in s.values), 0.0])


def _step(largest: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving at most five ticks up to `largest`."""
    power = 10.0 ** math.floor(math.log10(largest))
    return next(factor * power for factor in (0.2, 0.5, 1, 2, 5, 10) if largest / (factor * power) <= 5)


def _ticks(chart: BarChart, largest: float) -> list[float]:
    if largest <= 0:
        return [0.0]
    step = _step(largest)
    if all(float(v).is_integer() for s in chart.series for v in s.values):
        step = max(1.0, float(round(step)))  # counts: no half decisions on the axis
    return [step * n for n in range(math.ceil(largest / step - 1e-9) + 1)]


def _bars(chart: BarChart, scale: float) -> list[str]:
    slot = (_WIDTH - _LEFT - 8) / len(chart.categories)
    per_category = 1 if chart.stacked else len(chart.series)
    bar = max(1.0, (slot * 0.8) / per_category)
    floor = float(_HEIGHT - _BOTTOM)
    labels = chart.labels or chart.categories
    every = math.ceil(len(chart.categories) / MAX_AXIS_LABELS)
    parts: list[str] = []
    for index, category in enumerate(chart.categories):
        left = _LEFT + index * slot + slot * 0.1
        stacked_top = floor
        for number, series in enumerate(chart.series):
            height = series.values[index] * scale
            if chart.stacked and height == 0:
                continue  # nothing to stack: no empty piece with a title of its own
            x = left if chart.stacked else left + number * bar
            y = stacked_top - height if chart.stacked else floor - height
            stacked_top = y if chart.stacked else stacked_top
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                         f'fill="{colour(number, chart)}"><title>{escape(category)}, {escape(series.name)}: '
                         f'{norsk_tall(series.values[index])}</title></rect>')
        if index % every == 0:
            parts.append(f'<text x="{left + slot * 0.4:.1f}" y="{floor + 16:.0f}" text-anchor="middle" '
                         f'font-size="12" fill="#1a1a1a">{escape(labels[index])}</text>')
    return parts


def _axis(ticks: list[float], scale: float) -> list[str]:
    floor = _HEIGHT - _BOTTOM
    parts = [f'<line x1="{_LEFT}" y1="{floor}" x2="{_WIDTH - 8}" y2="{floor}" stroke="#4a4a4a"/>']
    for value in ticks:
        y = floor - value * scale
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#4a4a4a">'
                     f'{norsk_tall(value if not value.is_integer() else int(value))}</text>')
    return parts


def _legend(chart: BarChart) -> list[str]:
    parts = []
    for number, series in enumerate(chart.series):
        x = _LEFT + (number % _PER_ROW) * 150
        y = _HEIGHT + 6 + (number // _PER_ROW) * _LEGEND_ROW
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour(number, chart)}"/>'
                     f'<text x="{x + 18}" y="{y + 11}" font-size="12" fill="#1a1a1a">{escape(series.name)}</text>')
    return parts


def chart_svg(chart: BarChart, legend: bool = True) -> Markup:
    """The picture: an <svg> marked as an image named by the caption (the table beside it holds the numbers);
    empty when the chart is not `drawable`. Without `legend` the page shows `chart_legend` instead."""
    if not chart.drawable:
        return Markup("")
    ticks = _ticks(chart, _largest(chart))
    scale = (_HEIGHT - _BOTTOM - _TOP) / ticks[-1] if ticks[-1] > 0 else 0.0
    below = math.ceil(len(chart.series) / _PER_ROW) * _LEGEND_ROW + 4 if legend else 0
    body = "".join(_axis(ticks, scale) + _bars(chart, scale) + (_legend(chart) if legend else []))
    return Markup(f'<svg class="diagram" viewBox="0 0 {_WIDTH} {_HEIGHT + below}" width="{_WIDTH}" '
                  f'height="{_HEIGHT + below}" role="img" aria-label="{escape(chart.caption)}" '
                  f'xmlns="http://www.w3.org/2000/svg">{body}</svg>')


def chart_legend(chart: BarChart, number: Callable[[float], str] = norsk_tall) -> Markup:
    """The colours in words, each series with its total: «ja: 12» (the swatch is for the eye only)."""
    items = "".join(
        f'<li><svg width="14" height="14" aria-hidden="true" focusable="false"><rect width="14" height="14" '
        f'fill="{colour(n, chart)}"/></svg> {escape(s.name)}: {escape(number(sum(s.values)))}</li>'
        for n, s in enumerate(chart.series))
    return Markup(f'<ul class="diagramforklaring" aria-label="Fargene i diagrammet">{items}</ul>')


def chart_table(chart: BarChart, number: Callable[[float], str] = lambda v: f"{v:g}", sums: bool = False,
                omit_empty: bool = False) -> Markup:
    """The numbers: a table with a caption, a row per category and a column per series (`number` formats them);
    with `sums` a column and a row of totals; with `omit_empty` no row for a category that is all zero."""
    head = "".join(f'<th scope="col" class="tall">{escape(s.name)}</th>' for s in chart.series)
    rows = "".join(
        f'<tr><th scope="row">{escape(category)}</th>'
        + "".join(f'<td class="tall">{escape(number(s.values[i]))}</td>' for s in chart.series)
        + (f'<td class="tall">{escape(number(sum(s.values[i] for s in chart.series)))}</td>' if sums else "")
        + "</tr>"
        for i, category in enumerate(chart.categories)
        if not (omit_empty and all(s.values[i] == 0 for s in chart.series)))
    foot = ""
    if sums:
        head += '<th scope="col" class="tall">Sum</th>'
        totals = [sum(s.values) for s in chart.series]
        foot = ('<tfoot><tr><th scope="row">Sum</th>'
                + "".join(f'<td class="tall">{escape(number(t))}</td>' for t in [*totals, sum(totals)])
                + "</tr></tfoot>")
    return Markup(f'<table class="diagramtabell"><caption>{escape(chart.caption)}</caption><thead><tr>'
                  f'<th scope="col">{escape(chart.category_heading)}</th>{head}</tr></thead><tbody>{rows}</tbody>'
                  f'{foot}</table>')
