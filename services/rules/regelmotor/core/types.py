"""The value types a ruleset can declare, and how values of each type reach the engine.

durable_rules compares a string with a number lexicographically, so every value is strictly typed
before it is encoded. Dates become integers ``YYYYMMDD`` and datetimes whole epoch seconds, so the
engine compares them numerically and correctly; an absent value is encoded as JSON null, which no
comparison in the engine matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    BOOL = "bool"
    INT = "int"
    DECIMAL = "decimal"
    STRING = "string"
    ENUM = "enum"
    DATE = "date"
    DATETIME = "datetime"
    LIST = "list"
    NULL = "null"  # the type of the literal `null` only


NUMERIC_KINDS = frozenset({Kind.INT, Kind.DECIMAL})


@dataclass(frozen=True)
class ValueType:
    """A declared type. Enums carry their allowed values; lists carry their item type."""

    kind: Kind
    values: tuple[str, ...] = ()
    item: ValueType | None = None

    def __str__(self) -> str:
        if self.kind is Kind.LIST and self.item is not None:
            return f"list of {self.item}"
        if self.kind is Kind.ENUM and self.values:
            return "enum (" + ", ".join(self.values) + ")"
        return self.kind.value

    @property
    def is_numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS

    @property
    def is_textual(self) -> bool:
        return self.kind in (Kind.STRING, Kind.ENUM)

    def comparable_with(self, other: ValueType) -> bool:
        """Whether `self op other` is meaningful (numbers with numbers, text with text, same dates)."""
        if self.is_numeric and other.is_numeric:
            return True
        if self.is_textual and other.is_textual:
            return True
        return self.kind == other.kind and self.kind not in (Kind.LIST, Kind.NULL)


BOOL = ValueType(Kind.BOOL)
INT = ValueType(Kind.INT)
DECIMAL = ValueType(Kind.DECIMAL)
STRING = ValueType(Kind.STRING)
DATE = ValueType(Kind.DATE)
DATETIME = ValueType(Kind.DATETIME)
NULL = ValueType(Kind.NULL)


def list_of(item: ValueType) -> ValueType:
    return ValueType(Kind.LIST, item=item)


# The types whose values the engine takes as they are: checked by exact type first, as most values are of them.
_AS_IS = frozenset({type(None), bool, int, str, float})


def encode_for_engine(value: Any) -> Any:
    """Encode a strictly typed Python value as the JSON value the engine compares."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    if kind is date:  # the exact types first: most values are of them (subclasses take the general way below)
        return value.year * 10000 + value.month * 100 + value.day
    if kind is list:
        return [item if type(item) in _AS_IS else encode_for_engine(item) for item in value] or None
    return general_engine_value(value)


def engine_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """encode_for_engine of each value, by name; a value of a plain type is taken as it is, without a call."""
    as_is = _AS_IS
    return {name: value if type(value) in as_is else encode_for_engine(value) for name, value in values.items()}


def general_engine_value(value: Any) -> Any:
    """encode_for_engine of any value, by the general way (tests/test_value_encoding.py holds the two alike)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        return int(value.astimezone(UTC).timestamp())
    if isinstance(value, date):
        return value.year * 10000 + value.month * 100 + value.day
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        # An empty list is encoded as null: the engine's `$iall` never matches an empty array,
        # so "x not in list" is compiled as "list is null or every item differs".
        return [general_engine_value(v) for v in value] or None
    return value


def to_json_value(value: Any) -> Any:
    """A value as plain JSON for decisions and traces (ISO dates, decimals as strings)."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    if kind is date:  # the exact types first, as in encode_for_engine
        return value.isoformat()
    if kind is list:
        return [item if type(item) in _AS_IS else to_json_value(item) for item in value]
    return general_json_value(value)


def json_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """to_json_value of each value, by name; a value of a plain type is its own JSON, taken without a call."""
    as_is = _AS_IS
    return {name: value if type(value) in as_is else to_json_value(value) for name, value in values.items()}


def general_json_value(value: Any) -> Any:
    """to_json_value of any value, by the general way (tests/test_value_encoding.py holds the two alike)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (list, tuple)):
        return [general_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): general_json_value(v) for k, v in value.items()}
    raise TypeError(f"no JSON form for {type(value).__name__}")
