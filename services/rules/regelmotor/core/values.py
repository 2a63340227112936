"""What a value of each declared type is, in one place.

The facts of a request (`schema`), the literals of a ruleset (`literals`: defaults, bounds, table
cells, parameter values, the values rules set) and the `date('…')` and `datetime('…')` of a condition
(`expressions`) are all read by these functions, so a ruleset cannot hold a value its facts could not
carry, nor read a date another way than a request does.

Each reader takes a value as JSON or YAML gives it and returns the engine's value (int, Decimal,
date, …), or raises ValueError with a reason that echoes at most a shortened form of the value.
`WrongKind`, a ValueError, says the value is not of the type at all (text for a number, a value the
enum does not know); any other ValueError is a value of the right kind that is impossible
(2025-02-30) or outside the bounds of `limits`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .limits import MAX_DECIMAL_PLACES, MAX_SAFE_INTEGER, date_range_text, in_date_range, shown
from .types import Kind, ValueType

# ASCII digits only: `\d` would also take Arabic-Indic, Devanagari, fullwidth ... digits.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                           r"(Z|[+-][0-9]{2}:[0-9]{2})")


class WrongKind(ValueError):
    """The value is not of the type at all: text for a number, a list for a date, an unknown enum value."""


def read_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise WrongKind(f"expected true or false, got {shown(value)}")
    return value


def read_int(value: Any) -> int:
    # JSON numbers may arrive as floats (protobuf Struct has only doubles): accept 5.0, not 5.5.
    if isinstance(value, bool):
        raise WrongKind("expected a whole number, got a boolean")
    if isinstance(value, float) and value.is_integer():
        _bounded(value)
        value = int(value)
    if not isinstance(value, int):
        raise WrongKind(f"expected a whole number, got {shown(value)}")
    _bounded(value)
    return value


def read_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise WrongKind(f"expected a number, got {shown(value)}")
    if isinstance(value, int):
        _bounded(value)  # before Decimal(str(...)), which a huge int would make costly
    result = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not result.is_finite():
        raise ValueError("expected a finite number")
    _bounded(result)
    exponent = result.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        raise ValueError(f"a number here has at most {MAX_DECIMAL_PLACES} decimal places, got {shown(value)}")
    return result


def read_text(value: Any) -> str:
    if not isinstance(value, str):
        raise WrongKind(f"expected text, got {shown(value)}")
    return value


def read_enum(value: Any, known: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in known:
        raise WrongKind(f"{shown(value)} is not a known value; known values: {', '.join(known)}")
    return value


def read_date(value: Any) -> date:
    """A `date`, or text YYYY-MM-DD in ASCII digits, within the accepted range."""
    if isinstance(value, datetime):
        raise WrongKind("expected a date (YYYY-MM-DD), got a datetime")
    if isinstance(value, str):
        if not _ISO_DATE.fullmatch(value):
            raise ValueError(f"expected a date as text YYYY-MM-DD (ASCII digits), got {shown(value)}")
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"impossible date {shown(value)}") from None
    if not isinstance(value, date):
        raise WrongKind(f"expected a date as text YYYY-MM-DD, got {shown(value)}")
    _in_range(value, value)
    return value


def read_datetime(value: Any) -> datetime:
    """A `datetime` with a UTC offset, or ISO 8601 text with one in ASCII digits, on a date in the accepted range."""
    if isinstance(value, str):
        if not _ISO_DATETIME.fullmatch(value):
            raise ValueError("expected an ISO 8601 datetime with a UTC offset in ASCII digits, e.g. "
                             f"2025-03-04T13:05:00+01:00, got {shown(value)}")
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 datetime: {shown(value)}") from None
    if not isinstance(value, datetime):
        raise WrongKind(f"expected an ISO 8601 datetime with UTC offset, got {shown(value)}")
    if value.tzinfo is None:
        raise ValueError("a datetime needs a UTC offset, e.g. 2025-03-04T13:05:00+01:00")
    # Its own date in range keeps its UTC instant (at most a day away) far inside Python's calendar.
    _in_range(value.date(), value)
    return value


def read_list(value: Any) -> list[Any]:
    """A list as it is; its items are read by the reader of the item type."""
    if not isinstance(value, list):
        raise WrongKind(f"expected a list, got {shown(value)}")
    return value


SCALAR_READERS: dict[Kind, Callable[[Any], Any]] = {
    Kind.BOOL: read_bool,
    Kind.INT: read_int,
    Kind.DECIMAL: read_decimal,
    Kind.STRING: read_text,
    Kind.DATE: read_date,
    Kind.DATETIME: read_datetime,
}


def read_scalar(value: Any, vtype: ValueType) -> Any:
    """A value of a scalar type (every kind but list), by the reader of its kind."""
    if vtype.kind is Kind.ENUM:
        return read_enum(value, vtype.values)
    return SCALAR_READERS[vtype.kind](value)


def _in_range(day: date, value: date) -> None:
    if not in_date_range(day):
        raise ValueError(f"{value.isoformat()} is outside the dates the engine accepts ({date_range_text()})")


def _bounded(number: float | Decimal) -> None:
    if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        raise ValueError(f"a number here must lie within ±{MAX_SAFE_INTEGER} (2**53 - 1)")
