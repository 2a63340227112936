"""The validity of a ruleset's versions on a time line, drawn as SVG on the server (no script): one bar per
version from its first to its last day; a version without an end runs to the right edge with an arrow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

WIDTH = 760  # the drawing's width in SVG units (it scales with the page)
LABELS = 110  # room on the left for the version labels
ROW = 30  # height of one version's row
AXIS = 34  # room below the rows for the years
SELECTABLE = ("published", "retired")  # the states whose versions follow one another without overlap


@dataclass(frozen=True)
class VersionSpan:
    """One version's period as the page shows it."""

    version: str
    title: str
    state: str  # draft, proposed, published, retired, rejected
    start: date
    end: date | None  # the last day it governs (inclusive); None: until further notice
    retired_from: date | None  # for a retired version: the first day it no longer answers
    supersedes: str = ""  # a correction: the version it decides in place of, for its days


@dataclass(frozen=True)
class Bar:
    span: VersionSpan
    x: float
    y: float
    width: float
    open_ended: bool


@dataclass(frozen=True)
class Tick:
    x: float
    year: int


@dataclass(frozen=True)
class Timeline:
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    today_x: float
    width: int
    height: int
    row: int
    labels: int


def spans(versions: list[dict[str, Any]]) -> list[VersionSpan]:
    """The periods of versions as GetRulesetHistory's StoredVersion (or ListRulesets' VersionInfo, whose
    `status` stands for the state) gives them, oldest first: a version without gyldig_til ends the day before the
    next published one starts; a retired one at the latest the day before it was retired from. A correction is not
    on that timeline: without gyldig_til it runs as long as the version it corrects."""
    ordered = sorted(versions, key=lambda v: (v["gyldig_fra"], bool(v.get("supersedes")), v["version"]))
    timeline = [v for v in ordered if not v.get("supersedes")]
    found: dict[str, VersionSpan] = {}
    for index, version in enumerate(timeline):
        later = [v for v in timeline[index + 1:] if _state(v) in SELECTABLE]
        found[version["version"]] = _span(version, _declared_end(version) or (
            date.fromisoformat(later[0]["gyldig_fra"]) - timedelta(days=1) if later and _state(version) in SELECTABLE
            else None))
    _place_corrections([v for v in ordered if v.get("supersedes")], found)
    return [found[v["version"]] for v in ordered if v["version"] in found]


def _place_corrections(corrections: list[dict[str, Any]], found: dict[str, VersionSpan]) -> None:
    """Each correction's span, parents first: without a gyldig_til it ends when the version it corrects does."""
    waiting = corrections
    while waiting:
        pending = {w["version"] for w in waiting}
        ready = [v for v in waiting if v["supersedes"] in found or v["supersedes"] not in pending]
        for version in ready:
            corrected = found.get(version["supersedes"])
            found[version["version"]] = _span(version, _declared_end(version) or (corrected.end if corrected else None))
        waiting = [v for v in waiting if v not in ready] if ready else []  # corrections in a circle: not drawn


def _state(version: dict[str, Any]) -> str:
    return str(version.get("state") or version.get("status", ""))


def _declared_end(version: dict[str, Any]) -> date | None:
    return date.fromisoformat(version["gyldig_til"]) if version.get("gyldig_til") else None


def _span(version: dict[str, Any], end: date | None) -> VersionSpan:
    retired = date.fromisoformat(version["retired_from"]) if version.get("retired_from") else None
    if retired is not None and (end is None or retired <= end):
        end = retired - timedelta(days=1)
    return VersionSpan(version["version"], version.get("title", ""), _state(version),
                       date.fromisoformat(version["gyldig_fra"]), end, retired, version.get("supersedes", ""))


def draw(periods: list[VersionSpan], today: date) -> Timeline:
    """Where each bar and each year goes: from the first of January of the first start to the first of January
    after the last day shown (today, or the latest start or end, whichever is later)."""
    first = date(min([p.start for p in periods] + [today]).year, 1, 1)
    last_day = max([today] + [p.start for p in periods] + [p.end for p in periods if p.end is not None])
    stop = date(last_day.year + 1, 1, 1)
    scale = (WIDTH - LABELS - 10) / max((stop - first).days, 1)

    def x_of(day: date) -> float:
        return round(LABELS + (day - first).days * scale, 1)

    bars = tuple(
        Bar(p, x_of(p.start), 8 + i * ROW,
            max(round((x_of(p.end + timedelta(days=1)) if p.end else WIDTH - 10) - x_of(p.start), 1), 3.0),
            p.end is None)
        for i, p in enumerate(periods))
    years = range(first.year, stop.year)  # not the right edge's year: its label would be cut off
    step = 1 if len(years) <= 12 else 2 if len(years) <= 24 else 5
    ticks = tuple(Tick(x_of(date(year, 1, 1)), year) for year in years if year % step == 0)
    return Timeline(bars, ticks, x_of(today), WIDTH, 8 + len(periods) * ROW + AXIS, ROW, LABELS)
