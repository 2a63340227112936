"""ICD-10 codes and ranges as rulesets write them: `E11`, `F32.2`, `F20-F31`.

A single code or category covers itself and its subcodes; a range covers every code whose category
(first three characters) lies in it. Ranges of subcodes are refused: they have no agreed meaning, so
a ruleset lists such codes one by one. Used by `icd10_in` and `icd10_classify` in `vocabulary`, through
`index_of`: which of a table's or a list's specs cover a code is looked up, not tried spec by spec.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

_CODE = r"[A-Z][0-9]{2}(?:\.[0-9A-Z]{1,2})?"
_RANGE = re.compile(rf"^({_CODE})(?:-({_CODE}))?$")


def in_range(code: str, spec: str) -> bool:
    """Whether `code` lies in `spec`: a single code or category (``E11``, ``F32.2``) covers itself
    and its subcodes; a range of categories (``F20-F31``) covers every code whose first three
    characters lie in it; a range of subcodes (``F10.2-F19.2``) is not allowed (list them)."""
    return _spec(spec).covers(code)


def range_problem(spec: str) -> str | None:
    """None if `spec` is a usable code or range, else the reason it is not."""
    match = _RANGE.match(spec)
    if not match:
        return f"{spec!r} is not an ICD-10 code or range like 'E11', 'F32.2' or 'F20-F31'"
    low, high = match.group(1), match.group(2)
    if high is not None and (len(low) > 3 or len(high) > 3):
        return f"range {spec!r}: a range must be between three-character categories; list subcodes one by one"
    if high is not None and low[:3] > high[:3]:
        return f"range {spec!r} runs backwards"
    return None


@dataclass(frozen=True, slots=True)
class _Spec:
    low: str
    subcodes: str  # the prefix of low's subcodes: "E11." for a category, "F32.2" for a subcode
    high: str | None  # the last category of a range

    def covers(self, code: str) -> bool:
        if self.high is None:
            return code == self.low or code.startswith(self.subcodes)
        return self.low <= code[:3] <= self.high


# Specs come from ruleset literals and tables, so there are few: each is parsed once, not per call (the
# regular expression was most of the time of an icd10_classify over a table of ranges).
@functools.lru_cache(maxsize=4096)
def _spec(spec: str) -> _Spec:
    match = _RANGE.match(spec)
    if not match:
        raise ValueError(f"not an ICD-10 code or range: {spec!r}")
    low, high = match.group(1), match.group(2)
    if high is None:
        return _Spec(low, low if len(low) > 3 else low + ".", None)
    return _Spec(low[:3], "", high[:3])


class RangeIndex:
    """Which of a sequence of specs cover a code, answered by lookup rather than by trying every spec (trying
    all 72 rows of a table for every code was a third of an evaluation of prioriterte-pasientgrupper).

    Gives exactly what trying each spec with `in_range` gives, for any text. A single code or category
    covers only codes of its own category (their first three characters), so those specs are found by
    category. A range covers a code when the code's first three characters lie between its ends, so the
    ranges are found by bisecting their ends: between two neighbouring ends, the same ranges cover."""

    def __init__(self, specs: Sequence[str]) -> None:
        self._by_category: dict[str, list[tuple[int, _Spec]]] = {}
        ranges: list[tuple[int, str, str]] = []  # (position, first category, last category)
        for position, spec in enumerate(_spec(text) for text in specs):
            if spec.high is None:
                self._by_category.setdefault(spec.low[:3], []).append((position, spec))
            else:
                ranges.append((position, spec.low, spec.high))
        ends = sorted({end for _, low, high in ranges for end in (low, high)})
        self._ends = ends
        # _at[k]: the ranges that cover ends[k] itself; _between[k]: those that cover what lies strictly
        # between ends[k - 1] and ends[k] (none below the first end or above the last).
        self._at = [tuple(p for p, low, high in ranges if low <= end <= high) for end in ends]
        self._between: list[tuple[int, ...]] = [()]
        self._between += [tuple(p for p, low, high in ranges if low <= ends[k - 1] and ends[k] <= high)
                          for k in range(1, len(ends))]
        self._between.append(())

    def positions(self, code: str) -> Sequence[int]:
        """The positions of the specs that cover `code`, in the order of the specs."""
        category = code[:3]
        k = bisect.bisect_left(self._ends, category)
        in_ranges = self._at[k] if k < len(self._ends) and self._ends[k] == category else self._between[k]
        singles = self._by_category.get(category)
        if singles is None:
            return in_ranges
        covering = [position for position, spec in singles if spec.covers(code)]
        return sorted((*in_ranges, *covering)) if in_ranges else covering


@functools.lru_cache(maxsize=256)
def index_of(specs: tuple[str, ...]) -> RangeIndex:
    """The index of these specs, made once (specs come from ruleset literals and tables, so there are few)."""
    return RangeIndex(specs)
