"""The bounds of what one request may ask of the engine, in one place, and how much of it an error echoes.

No value a request can carry may make the engine overflow or do unbounded work, and no error about a
request may grow with it: every reason shows a shortened form of the input it is about, and an error
lists a bounded number of problems. docs/ruleset-format.md explains each bound.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from datetime import date
from typing import Any

from .errors import FieldViolation

# Dates accepted in facts and as `as_of`. The earliest leaves room for the birth dates of everyone
# alive (and their parents) and for old records; the latest for deadlines computed many years ahead.
# Both lie thousands of years inside Python's calendar (0001-01-01 to 9999-12-31), so no date
# arithmetic a derived value does on them (a day count, a UTC offset) can leave it.
EARLIEST_DATE = date(1800, 1, 1)
LATEST_DATE = date(2199, 12, 31)

# Whole numbers a JSON number (an IEEE double) represents exactly, and each its neighbour too
# (JavaScript's Number.MAX_SAFE_INTEGER): beyond it 2**53 + 1 arrives as 2**53.
MAX_SAFE_INTEGER = 2**53 - 1
# Decimal facts: finite, within ±MAX_SAFE_INTEGER and with at most this many decimal places, so that
# their plain decimal form (in decisions and traces) stays short.
MAX_DECIMAL_PLACES = 24

# Lists and texts: a fact may declare `max_items` / `max_length`; these apply when it does not.
DEFAULT_MAX_ITEMS = 100
DEFAULT_MAX_LENGTH = 200
# The most a ruleset may declare: a request is at most a few MiB, and each item costs a check.
MAX_ITEMS_CEILING = 10_000
MAX_LENGTH_CEILING = 100_000

# A ruleset's name and a version string: the lifecycle RPCs (approve, reject, retire, history) accept no longer
# ones, so a source that declares one is refused when it is loaded, before anything is stored.
MAX_NAME_CHARS = 100
# A correction's reason: a paragraph, shown in every listing of the version's history.
MAX_REASON_CHARS = 2000

# An error reports at most this many problems (the last one saying how many more there were).
MAX_VIOLATIONS = 20
ECHO_CHARS = 60  # the most of an input value a reason shows
FIELD_CHARS = 100  # the most of a field path (which may name an unknown fact) an error shows
_CUT = "…"


def date_range_text() -> str:
    return f"{EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}"


def in_date_range(day: date) -> bool:
    return EARLIEST_DATE <= day <= LATEST_DATE


class _Short(reprlib.Repr):
    """reprlib's bounded repr, also for the values it would print whole: huge numbers, large objects."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = ECHO_CHARS
        self.maxother = ECHO_CHARS
        self.maxlist = self.maxtuple = self.maxset = self.maxdict = 4
        self.maxlevel = 2

    def repr_int(self, x: int, level: int) -> str:
        # repr of an int beyond 4300 digits raises, and a long one is no use in a reason anyway.
        return repr(x) if x.bit_length() <= 64 else f"<a whole number of {x.bit_length()} bits>"

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        # reprlib sorts every key first: not for an object of 100 000 entries.
        if len(x) > self.maxdict:
            return f"<an object of {len(x)} entries>"
        return super().repr_dict(x, level)


_short = _Short()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + _CUT


def shown(value: Any) -> str:
    """An input value as a reason shows it: its repr, cut to ECHO_CHARS (the cut marked with '…')."""
    return _cut(_short.repr(value), ECHO_CHARS)


def shown_text(text: str) -> str:
    """Input text placed into a message as it is (a constraint's `{name}`): cut to ECHO_CHARS."""
    return _cut(text, ECHO_CHARS)


def shown_field(path: str) -> str:
    """A field path as an error shows it: cut to FIELD_CHARS, since an unknown fact's name is input."""
    return _cut(path, FIELD_CHARS)


def limited(violations: Sequence[FieldViolation], field: str) -> list[FieldViolation]:
    """At most MAX_VIOLATIONS violations: beyond that the first ones and one saying how many more (on `field`)."""
    if len(violations) <= MAX_VIOLATIONS:
        return list(violations)
    kept = list(violations[: MAX_VIOLATIONS - 1])
    return [*kept, FieldViolation(field, f"and {len(violations) - len(kept)} more problems")]
