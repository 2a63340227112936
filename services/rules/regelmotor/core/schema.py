"""Strict validation of input facts against a ruleset's declared schema, with pydantic.

durable_rules compares a string with a number lexicographically, so nothing reaches it before it
has been strictly typed here: no numbers in strings, no strings for dates without checking the
calendar, no datetimes without a UTC offset, no unknown facts. Nothing beyond the bounds in
`limits` either (dates, number magnitudes, list and text lengths), so no fact can overflow the
arithmetic of a derived value or cost work out of proportion. Every problem is reported with the
fact's path (``individuelle_forhold[2]``) and a reason that shows at most a shortened echo of the input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from .errors import FieldViolation, InvalidFacts
from .limits import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_LENGTH,
    MAX_DECIMAL_PLACES,
    MAX_SAFE_INTEGER,
    MAX_VIOLATIONS,
    date_range_text,
    in_date_range,
    limited,
    shown,
    shown_field,
)
from .model import FactSpec
from .types import Kind, ValueType

# ASCII digits only: `\d` would also take Arabic-Indic, Devanagari, fullwidth ... digits.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                           r"(Z|[+-][0-9]{2}:[0-9]{2})")
_UNKNOWN_FACT = "unknown fact: this ruleset version does not declare it"


def _in_range(day: date, value: date) -> None:
    if not in_date_range(day):
        raise ValueError(f"{value.isoformat()} is outside the dates the engine accepts ({date_range_text()})")


def strict_date(value: Any) -> date:
    """A date fact (or `as_of`): a `date`, or text YYYY-MM-DD in ASCII digits, within the accepted range."""
    if isinstance(value, datetime):
        raise ValueError("expected a date (YYYY-MM-DD), got a datetime")
    if isinstance(value, str):
        if not _ISO_DATE.fullmatch(value):
            raise ValueError(f"expected a date as text YYYY-MM-DD (ASCII digits), got {shown(value)}")
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"impossible date {shown(value)}") from None
    if not isinstance(value, date):
        raise ValueError(f"expected a date as text YYYY-MM-DD, got {shown(value)}")
    _in_range(value, value)
    return value


def _strict_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        if not _ISO_DATETIME.fullmatch(value):
            raise ValueError("expected an ISO 8601 datetime with a UTC offset in ASCII digits, e.g. "
                             f"2025-03-04T13:05:00+01:00, got {shown(value)}")
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 datetime: {shown(value)}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"expected an ISO 8601 datetime with UTC offset, got {shown(value)}")
    if value.tzinfo is None:
        raise ValueError("a datetime needs a UTC offset, e.g. 2025-03-04T13:05:00+01:00")
    # Its own date in range keeps its UTC instant (at most a day away) far inside Python's calendar.
    _in_range(value.date(), value)
    return value


def _bounded(number: float | Decimal) -> None:
    if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        raise ValueError(f"a number here must lie within ±{MAX_SAFE_INTEGER} (2**53 - 1)")


def _strict_int(value: Any) -> int:
    # JSON numbers may arrive as floats (protobuf Struct has only doubles): accept 5.0, not 5.5.
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got a boolean")
    if isinstance(value, float) and value.is_integer():
        _bounded(value)
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {shown(value)}")
    _bounded(value)
    return value


def _strict_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"expected a number, got {shown(value)}")
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


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {shown(value)}")
    return value


def _text(limit: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {shown(value)}")
        if len(value) > limit:  # before any pattern is tried on it
            raise ValueError(f"at most {limit} characters, got {len(value)}")
        return value

    return check


def _list(limit: int) -> Callable[[Any], list[Any]]:
    def check(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {shown(value)}")
        if len(value) > limit:  # before a single item is checked: 300 000 codes cost nothing
            raise ValueError(f"at most {limit} items, got {len(value)}")
        return value

    return check


def _enum(values: tuple[str, ...]) -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in values:
            raise ValueError(f"{shown(value)} is not a known value; known values: {', '.join(values)}")
        return value

    return Annotated[str, BeforeValidator(check)]


def _annotation(vtype: ValueType, spec: FactSpec | None) -> Any:
    kind = vtype.kind
    constraints: dict[str, Any] = {}
    if spec is not None:
        if spec.minimum is not None:
            constraints["ge"] = spec.minimum
        if spec.maximum is not None:
            constraints["le"] = spec.maximum
        if spec.pattern is not None:
            constraints["pattern"] = spec.pattern
    length = (spec.length_limit if spec is not None else None) or DEFAULT_MAX_LENGTH
    simple: dict[Kind, tuple[type, Callable[[Any], Any]]] = {
        Kind.BOOL: (bool, _strict_bool),
        Kind.INT: (int, _strict_int),
        Kind.DECIMAL: (Decimal, _strict_decimal),
        Kind.STRING: (str, _text(length)),
        Kind.DATE: (date, strict_date),
        Kind.DATETIME: (datetime, _strict_datetime),
    }
    if kind in simple:
        python_type, check = simple[kind]
        return Annotated[python_type, BeforeValidator(check), Field(**constraints)]
    if kind is Kind.ENUM:
        return _enum(vtype.values)
    if kind is Kind.LIST and vtype.item is not None:
        item = _annotation(vtype.item, spec if vtype.item.kind is Kind.STRING else None)
        items = (spec.items_limit if spec is not None else None) or DEFAULT_MAX_ITEMS
        return Annotated[list[item], BeforeValidator(_list(items))]  # type: ignore[valid-type]
    raise TypeError(f"no schema for {vtype}")


class FactValidator:
    """Validates raw facts (JSON-like dicts) for one ruleset version."""

    def __init__(self, facts: dict[str, FactSpec]) -> None:
        self.facts = facts
        fields: dict[str, Any] = {}
        for name, spec in facts.items():
            annotation = _annotation(spec.type, spec)
            if spec.required:
                fields[name] = (annotation, ...)
            else:
                fields[name] = (annotation | None, None)
        config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
        self.model: type[BaseModel] = create_model("Facts", __config__=config, **fields)

    def validate(self, raw: Any) -> dict[str, Any]:
        """Typed facts with defaults applied, or InvalidFacts listing the violations (at most MAX_VIOLATIONS)."""
        if not isinstance(raw, dict):
            raise InvalidFacts([FieldViolation("facts", "facts must be an object of named values")])
        unknown = [name for name in raw if name not in self.facts]
        if len(unknown) > MAX_VIOLATIONS:
            # Counted here, so 100 000 unknown names do not become 100 000 pydantic errors.
            named = [FieldViolation(shown_field(str(name)), _UNKNOWN_FACT) for name in unknown[: MAX_VIOLATIONS - 1]]
            raise InvalidFacts([*named, FieldViolation("facts", f"and {len(unknown) - len(named)} more unknown facts")])
        try:
            parsed = self.model.model_validate(raw)
        except ValidationError as exc:
            raise InvalidFacts(limited([_violation(e) for e in exc.errors()], "facts")) from None
        values = parsed.model_dump()
        for name, spec in self.facts.items():
            if values.get(name) is None:
                values[name] = list(spec.default) if isinstance(spec.default, list) else spec.default
        return values


def _violation(error: Any) -> FieldViolation:
    path = ""
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith(("function-", "list[", "constrained-")) or part in ("str", "int", "date"):
            continue
        else:
            path += ("." if path else "") + str(part)
    message = error["msg"]
    if error["type"] == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        message = f"{shown(error.get('input'))} does not have the required form (pattern {pattern})"
    elif error["type"] == "extra_forbidden":
        message = _UNKNOWN_FACT
    elif error["type"] == "missing":
        message = "required fact is missing"
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return FieldViolation(shown_field(path) if path else "facts", message)
