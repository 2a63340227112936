"""Decisions per day and outcome value (CountDecisions) as a stacked bar chart drawn on the server (SVG, no script)
and as the table beside it, which carries the same numbers for a screen reader and for copying."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ..formatting import norsk_dato, norsk_tall
from .audit_words import in_words

# Distinguishable hues, each at least 4.5:1 against white (WCAG AA for text; the chart's bars need 3:1).
PALETTE = ("#0b4f8a", "#b3261e", "#1d6b34", "#6a3d9a", "#8a4b00", "#00607a", "#7a1f5c")
OTHERS = "#4a4a4a"  # the values past the palette, drawn together
WIDTH, HEIGHT = 760, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 44


@dataclass(frozen=True)
class Series:
    """One value of the outcome as drawn: its words, its colour, and how many decisions had it in the period."""

    label: str
    colour: str
    total: int


# A bar's piece for one value, as the template draws it: x, y, width, height, colour, and title (its own words: a
# tooltip, and what a screen reader that enters the image hears).
Bar = dict[str, float | str]


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    series: list[Series]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    # The drawing's size and the plot's edges (width, height, left, right, bottom), for the template.
    frame: dict[str, int]


@dataclass(frozen=True)
class TableRow:
    day: str  # in words: 16. april 2026
    counts: list[int]  # one per value, in the order of Table.values
    total: int


@dataclass(frozen=True)
class Table:
    values: list[str]
    rows: list[TableRow]
    totals: list[int]
    total: int


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _step(highest: int) -> int:
    """A round step (1, 2 or 5 times a power of ten) that gives at most five ticks up to `highest`."""
    power: int = pow(10, max(0, int(math.log10(max(highest, 1))) - 1))
    for factor in (1, 2, 5, 10, 20, 50):
        if highest / (factor * power) <= 5:
            return factor * power
    return 100 * power


def build(counts: list[dict[str, Any]], first: date, last: date) -> tuple[Chart, Table]:
    """The chart and the table for CountDecisions' rows (day, value, count) over the days first to last."""
    by_day: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    words: dict[str, str] = {}
    for row in counts:
        key, amount = _key(row.get("value")), int(row["count"])
        by_day.setdefault(row["day"], {})[key] = amount
        totals[key] = totals.get(key, 0) + amount
        words[key] = in_words(row.get("value"))
    keys = sorted(totals, key=lambda k: (-totals[k], words[k]))
    table = Table(values=[words[k] for k in keys],
                  rows=[TableRow(norsk_dato(day), [by_day[day].get(k, 0) for k in keys], sum(by_day[day].values()))
                        for day in sorted(by_day)],
                  totals=[totals[k] for k in keys], total=sum(totals.values()))
    return _chart(by_day, keys, words, totals, first, last), table


def _colours(keys: list[str]) -> dict[str, str]:
    if len(keys) <= len(PALETTE):
        return dict(zip(keys, PALETTE, strict=False))
    shown = len(PALETTE) - 1
    return {k: PALETTE[i] if i < shown else OTHERS for i, k in enumerate(keys)}


def _chart(by_day: dict[str, dict[str, int]], keys: list[str], words: dict[str, str], totals: dict[str, int],
           first: date, last: date) -> Chart:
    colours = _colours(keys)
    days = (last - first).days + 1
    slot = (WIDTH - _LEFT - _RIGHT) / days
    highest = max((sum(values.values()) for values in by_day.values()), default=0)
    step = _step(highest)
    top = max(step, math.ceil(highest / step) * step)
    scale = (HEIGHT - _TOP - _BOTTOM) / top
    bars: list[Bar] = []
    for index in range(days):
        day = first + timedelta(days=index)
        stacked = 0
        for key in keys:
            amount = by_day.get(day.isoformat(), {}).get(key, 0)
            if amount:
                y = HEIGHT - _BOTTOM - (stacked + amount) * scale
                bars.append({"x": round(_LEFT + index * slot + slot * 0.1, 2), "y": round(y, 2),
                             "width": round(max(slot * 0.8, 1), 2), "height": round(amount * scale, 2),
                             "colour": colours[key], "title": f"{norsk_dato(day)}: {words[key]}, {norsk_tall(amount)}"})
                stacked += amount
    y_ticks = [Tick(round(HEIGHT - _BOTTOM - value * scale, 2), norsk_tall(value)) for value in range(0, top + 1, step)]
    every = max(1, math.ceil(days / 6))
    x_ticks = [Tick(round(_LEFT + (index + 0.5) * slot, 2), f"{(first + timedelta(days=index)).day}."
                    f"{(first + timedelta(days=index)).month}.") for index in range(0, days, every)]
    series = _series(keys, words, totals, colours)
    frame = {"width": WIDTH, "height": HEIGHT, "left": _LEFT, "right": WIDTH - _RIGHT, "bottom": HEIGHT - _BOTTOM}
    return Chart(bars, series, y_ticks, x_ticks, frame)


def _series(keys: list[str], words: dict[str, str], totals: dict[str, int], colours: dict[str, str]) -> list[Series]:
    """The legend: each value with its own colour, then the rest together ("andre verdier")."""
    own = [Series(words[k], colours[k], totals[k]) for k in keys if colours[k] != OTHERS]
    rest = sum(totals[k] for k in keys if colours[k] == OTHERS)
    return own + ([Series("andre verdier", OTHERS, rest)] if rest else [])
