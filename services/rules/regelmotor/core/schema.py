"""Strict validation of input facts against a ruleset's declared schema, with pydantic.

durable_rules compares a string with a number lexicographically, so nothing reaches it before it
has been strictly typed here: no numbers in strings, no strings for dates without checking the
calendar, no datetimes without a UTC offset, no unknown facts. Every problem is reported with the
fact's path (``individuelle_forhold[2]``) and a reason.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from .errors import FieldViolation, InvalidFacts
from .model import FactSpec
from .types import Kind, ValueType

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def strict_date(value: Any) -> date:
    if isinstance(value, datetime):
        raise ValueError("expected a date (YYYY-MM-DD), got a datetime")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"impossible date {value!r}") from None
    raise ValueError(f"expected a date as text YYYY-MM-DD, got {value!r}")


def _strict_datetime(value: Any) -> datetime:
    if isinstance(value, str) and "T" in value:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 datetime: {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"expected an ISO 8601 datetime with UTC offset, got {value!r}")
    if value.tzinfo is None:
        raise ValueError("a datetime needs a UTC offset, e.g. 2025-03-04T13:05:00+01:00")
    return value


def _strict_int(value: Any) -> int:
    # JSON numbers may arrive as floats (protobuf Struct has only doubles): accept 5.0, not 5.5.
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"expected a whole number, got {value!r}")


def _strict_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"expected a number, got {value!r}")
    result = Decimal(str(value))
    if not result.is_finite():
        raise ValueError("expected a finite number")
    return result


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _strict_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value


def _enum(values: tuple[str, ...]) -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in values:
            raise ValueError(f"{value!r} is not a known value; known values: {', '.join(values)}")
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
    simple = {
        Kind.BOOL: (bool, _strict_bool),
        Kind.INT: (int, _strict_int),
        Kind.DECIMAL: (Decimal, _strict_decimal),
        Kind.STRING: (str, _strict_str),
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
        return Annotated[list[item], BeforeValidator(_strict_list)]  # type: ignore[valid-type]
    raise TypeError(f"no schema for {vtype}")


def _strict_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {value!r}")
    return value


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
        """Typed facts with defaults applied, or InvalidFacts listing every violation."""
        if not isinstance(raw, dict):
            raise InvalidFacts([FieldViolation("facts", "facts must be an object of named values")])
        try:
            parsed = self.model.model_validate(raw)
        except ValidationError as exc:
            raise InvalidFacts([_violation(e) for e in exc.errors()]) from None
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
        message = f"{error.get('input')!r} does not have the required form (pattern {pattern})"
    elif error["type"] == "extra_forbidden":
        message = "unknown fact: this ruleset version does not declare it"
    elif error["type"] == "missing":
        message = "required fact is missing"
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return FieldViolation(path or "facts", message)

