"""When each version of a ruleset governs, and what is wrong with a set of versions' periods.

A version governs from its `gyldig_fra` to its `gyldig_til` (inclusive) or, when that is not given, until the
day before the next version starts. Two versions starting on one day, or one running into the next, overlap; a
day between two versions that no version governs is a gap, allowed only when the later version declares
`allow_gap_before: true`. The repository checks a directory's versions with these rules, and the store checks a
version about to be published (or retired) against the published ones with the very same rules.

A **correction** (`supersedes: <version>`) is not on that timeline: it decides in place of the version it
corrects, for the days it covers, once it is published. It must lie within that version's period (from its own
`gyldig_fra` to its `gyldig_til`, or to the end of the corrected version's period), and two corrections of one
version must not cover the same day (a correction of a correction supersedes that correction instead).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Span:
    """What of a version its period depends on."""

    version: str
    start: date  # gyldig_fra
    declared_end: date | None  # gyldig_til (inclusive); None: until the next version starts
    allow_gap_before: bool = False
    supersedes: str | None = None  # a correction of this version (not on the timeline itself)


@dataclass(frozen=True)
class TimelineProblem:
    """A problem between two versions, placed at one of them (`version`) and at the key (`gyldig_fra` or
    `gyldig_til`) to change."""

    version: str
    key: str
    message: str


def periods(spans: Iterable[Span]) -> list[tuple[Span, date | None]]:
    """Each version by start, with the last day it governs (None: open-ended)."""
    ordered = sorted(spans, key=lambda s: s.start)
    found: list[tuple[Span, date | None]] = []
    for index, span in enumerate(ordered):
        end = span.declared_end
        if end is None and index + 1 < len(ordered):
            end = ordered[index + 1].start - timedelta(days=1)
        found.append((span, end))
    return found


def pair_problem(name: str, earlier: Span, end: date | None, later: Span) -> TimelineProblem | None:
    """What is wrong between two versions next to each other (`end`: the earlier one's last day), if anything."""
    if earlier.start == later.start:
        return TimelineProblem(later.version, "gyldig_fra",
                               f"version {later.version} starts on the same day as {earlier.version} "
                               f"({later.start.isoformat()}): the periods overlap")
    if end is not None and end >= later.start:
        return TimelineProblem(earlier.version, "gyldig_til",
                               f"version {earlier.version} runs to {end.isoformat()}, overlapping version "
                               f"{later.version} from {later.start.isoformat()}")
    if end is not None and end + timedelta(days=1) < later.start and not later.allow_gap_before:
        return TimelineProblem(later.version, "gyldig_fra",
                               f"gap: no version of {name!r} governs {(end + timedelta(days=1)).isoformat()} – "
                               f"{(later.start - timedelta(days=1)).isoformat()}; declare `allow_gap_before: true` "
                               "if that is intended")
    return None


def timeline_problems(name: str, spans: Iterable[Span]) -> list[TimelineProblem]:
    """Every problem between neighbouring versions of the set, and of its corrections."""
    every = list(spans)
    found = []
    for (earlier, end), (later, _) in itertools.pairwise(periods(s for s in every if s.supersedes is None)):
        problem = pair_problem(name, earlier, end, later)
        if problem is not None:
            found.append(problem)
    return found + correction_problems(name, every)


def correction_problems(name: str, spans: Iterable[Span]) -> list[TimelineProblem]:
    """What is wrong with the corrections among `spans`: one naming no version of the set, or one of itself
    (in a circle), one reaching outside the period of the version it corrects, two corrections of one version
    covering the same day."""
    every = list(spans)
    bounds = _Bounds(every)
    found: list[TimelineProblem] = []
    siblings: dict[str, list[tuple[Span, date | None]]] = {}
    for span in sorted((s for s in every if s.supersedes is not None), key=lambda s: s.start):
        corrected = bounds.of(span.supersedes or "")
        if corrected is None:
            found.append(TimelineProblem(span.version, "supersedes", bounds.missing(name, span)))
            continue
        start, end = corrected
        problem = _outside(span, start, end)
        if problem is not None:
            found.append(problem)
            continue
        siblings.setdefault(span.supersedes or "", []).append((span, span.declared_end or end))
    for corrected_version, corrections in siblings.items():
        for (earlier, end), (later, _) in itertools.pairwise(corrections):
            if end is None or end >= later.start:
                found.append(TimelineProblem(
                    later.version, "gyldig_fra",
                    f"corrections {earlier.version} and {later.version} of {corrected_version} both cover "
                    f"{later.start.isoformat()}: correct the correction instead (supersedes: {earlier.version})"))
    return found


def _outside(span: Span, start: date, end: date | None) -> TimelineProblem | None:
    corrected = span.supersedes
    if span.start < start:
        return TimelineProblem(span.version, "gyldig_fra",
                               f"correction {span.version} starts on {span.start.isoformat()}, before version "
                               f"{corrected} governs ({start.isoformat()}): a correction lies within the period "
                               "of the version it corrects")
    if end is not None and span.start > end:
        return TimelineProblem(span.version, "gyldig_fra",
                               f"correction {span.version} starts on {span.start.isoformat()}, after version "
                               f"{corrected} stops governing ({end.isoformat()})")
    if end is not None and span.declared_end is not None and span.declared_end > end:
        return TimelineProblem(span.version, "gyldig_til",
                               f"correction {span.version} runs to {span.declared_end.isoformat()}, beyond the "
                               f"period of version {corrected} (to {end.isoformat()})")
    return None


class _Bounds:
    """The first and last day of each version's period: a version on the timeline by `periods`, a correction
    from its start to its own `gyldig_til` or else the end of what it corrects."""

    def __init__(self, spans: list[Span]) -> None:
        self.spans = {s.version: s for s in spans}
        self.known: dict[str, tuple[date, date | None]] = {
            span.version: (span.start, end) for span, end in periods(s for s in spans if s.supersedes is None)}

    def of(self, version: str, seen: frozenset[str] = frozenset()) -> tuple[date, date | None] | None:
        if version in self.known:
            return self.known[version]
        span = self.spans.get(version)
        if span is None or span.supersedes is None or version in seen:
            return None  # not in the set, or corrections in a circle
        corrected = self.of(span.supersedes, seen | {version})
        if corrected is None:
            return None
        return span.start, span.declared_end or corrected[1]

    def missing(self, name: str, span: Span) -> str:
        if span.supersedes in self.spans:
            return (f"version {span.version} supersedes {span.supersedes}, which (through its own supersedes) "
                    f"comes back to {span.version}: corrections cannot go in a circle")
        return (f"version {span.version} supersedes {span.supersedes}, which is not a version of {name!r} "
                "here (a published correction corrects a published version)")
