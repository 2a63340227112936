"""A ruleset version's input facts and outcome fields as JSON Schema (draft 2020-12), for integrators.

Derived from the model alone, so it lives in the core; the server sends it (RulesetService.GetRuleset)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from .limits import EARLIEST_DATE, LATEST_DATE, MAX_SAFE_INTEGER, date_range_text
from .model import FactSpec, Ruleset
from .types import Kind, ValueType, to_json_value

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _type(vtype: ValueType, spec: FactSpec | None = None) -> dict[str, Any]:
    """The JSON Schema of a value; with a fact's `spec`, also every bound the engine enforces on it."""
    kind = vtype.kind
    schema: dict[str, Any]
    if kind is Kind.BOOL:
        schema = {"type": "boolean"}
    elif kind is Kind.INT:
        schema = {"type": "integer"}
    elif kind is Kind.DECIMAL:
        schema = {"type": "number"}
    elif kind is Kind.STRING:
        schema = {"type": "string"}
    elif kind is Kind.ENUM:
        schema = {"type": "string", "enum": list(vtype.values)}
    elif kind is Kind.DATE:
        schema = {"type": "string", "format": "date"}
    elif kind is Kind.DATETIME:
        schema = {"type": "string", "format": "date-time",
                  "description": f"ISO 8601 with a UTC offset, on a date from {date_range_text()}"}
    else:
        assert vtype.item is not None
        # The engine checks each item as the fact's own type (with a list of texts, its pattern too).
        item_spec = spec if spec is None or vtype.item.kind is Kind.STRING else replace(
            spec, type=vtype.item, minimum=None, maximum=None, pattern=None)
        schema = {"type": "array", "items": _type(vtype.item, item_spec)}
        if spec is not None and spec.items_limit is not None:
            schema["maxItems"] = spec.items_limit
        return schema
    if spec is not None:
        _bounds(schema, kind, spec)
    return schema


def _bounds(schema: dict[str, Any], kind: Kind, spec: FactSpec) -> None:
    # The tighter of the fact's declared bound and the engine's own (numbers, dates).
    low, high = spec.minimum, spec.maximum
    if kind in (Kind.INT, Kind.DECIMAL):
        low = -MAX_SAFE_INTEGER if low is None else max(low, -MAX_SAFE_INTEGER)
        high = MAX_SAFE_INTEGER if high is None else min(high, MAX_SAFE_INTEGER)
    elif kind is Kind.DATE:
        low = EARLIEST_DATE if low is None else max(low, EARLIEST_DATE)
        high = LATEST_DATE if high is None else min(high, LATEST_DATE)
    if low is not None:
        schema["formatMinimum" if kind is Kind.DATE else "minimum"] = _json_bound(low)
    if high is not None:
        schema["formatMaximum" if kind is Kind.DATE else "maximum"] = _json_bound(high)
    if spec.pattern:
        schema["pattern"] = spec.pattern
    if spec.length_limit is not None and kind is Kind.STRING:
        schema["maxLength"] = spec.length_limit


def _json_bound(value: Any) -> Any:
    if isinstance(value, Decimal):  # a JSON Schema bound is a number, not the text a decimal value becomes
        return int(value) if value == value.to_integral_value() else float(value)
    return to_json_value(value)


def input_schema(ruleset: Ruleset) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, spec in ruleset.facts.items():
        entry = _type(spec.type, spec)
        if spec.description:
            entry["description"] = spec.description
        if spec.default not in (None, []):
            entry["default"] = to_json_value(spec.default)
        properties[name] = entry
    return {
        "$schema": DIALECT, "title": f"{ruleset.meta.name} {ruleset.meta.version}: facts", "type": "object",
        "properties": properties, "required": [n for n, s in ruleset.facts.items() if s.required],
        "additionalProperties": False,
    }


def outcome_schema(ruleset: Ruleset) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, spec in ruleset.outcomes.items():
        if spec.internal:
            continue
        entry = _type(spec.type)
        if spec.type.kind is not Kind.LIST:
            entry = {"anyOf": [entry, {"type": "null"}]}
        entry["description"] = spec.description or f"combined by {spec.combine.value}"
        properties[name] = entry
    return {"$schema": DIALECT, "title": f"{ruleset.meta.name} {ruleset.meta.version}: outcome", "type": "object",
            "properties": properties, "required": list(properties)}
