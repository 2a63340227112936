"""Strict validation of input facts against a ruleset's declared schema, with pydantic.

durable_rules compares a string with a number lexicographically, so nothing reaches it before it
has been strictly typed here: no numbers in strings, no strings for dates without checking the
calendar, no datetimes without a UTC offset, no unknown facts. Nothing beyond the bounds in
`limits` either (dates, number magnitudes, list and text lengths), so no fact can overflow the
arithmetic of a derived value or cost work out of proportion. What a value of each type is comes
from `values`, which a ruleset's own literals are read by too. Every problem is reported with the
fact's path (``individuelle_forhold[2]``) and a reason that shows at most a shortened echo of the input.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from . import values
from .errors import FieldViolation, InvalidFacts
from .limits import DEFAULT_MAX_ITEMS, DEFAULT_MAX_LENGTH, MAX_VIOLATIONS, limited, shown, shown_field
from .model import FactSpec
from .types import Kind, ValueType

_UNKNOWN_FACT = "unknown fact: this ruleset version does not declare it"


def _text(limit: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = values.read_text(value)
        if len(text) > limit:  # before any pattern is tried on it
            raise ValueError(f"at most {limit} characters, got {len(text)}")
        return text

    return check


def _list(limit: int) -> Callable[[Any], list[Any]]:
    def check(value: Any) -> list[Any]:
        items = values.read_list(value)
        if len(items) > limit:  # before a single item is checked: 300 000 codes cost nothing
            raise ValueError(f"at most {limit} items, got {len(items)}")
        return items

    return check


def _enum(known: tuple[str, ...]) -> Any:
    return Annotated[str, BeforeValidator(lambda value: values.read_enum(value, known))]


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
        Kind.BOOL: (bool, values.read_bool),
        Kind.INT: (int, values.read_int),
        Kind.DECIMAL: (Decimal, values.read_decimal),
        Kind.STRING: (str, _text(length)),
        Kind.DATE: (date, values.read_date),
        Kind.DATETIME: (datetime, values.read_datetime),
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
        # The facts that have a default other than null: an absent (or null) one is given it.
        self._defaults = [(name, spec.default) for name, spec in facts.items() if spec.default is not None]

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
        # Every declared fact is a field (an absent optional one is None); the values are the validators' own
        # (dates, decimals, new lists), so the model's fields are the facts: model_dump would only copy them.
        typed = dict(parsed.__dict__)
        for name, default in self._defaults:
            if typed[name] is None:
                typed[name] = list(default) if isinstance(default, list) else default
        return typed


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
