"""When each version of a ruleset governs, and what is wrong with a set of versions' periods.

A version governs from its `gyldig_fra` to its `gyldig_til` (inclusive) or, when that is not given, until the
day before the next version starts. Two versions starting on one day, or one running into the next, overlap; a
day between two versions that no version governs is a gap, allowed only when the later version declares
`allow_gap_before: true`. The repository checks a directory's versions with these rules, and the store checks a
version about to be published (or retired) against the published ones with the very same rules.
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
    """Every problem between neighbouring versions of the set."""
    found = []
    for (earlier, end), (later, _) in itertools.pairwise(periods(spans)):
        problem = pair_problem(name, earlier, end, later)
        if problem is not None:
            found.append(problem)
    return found
