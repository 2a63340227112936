"""A ruleset version's input facts and outcome fields as JSON Schema (draft 2020-12), for integrators."""

from __future__ import annotations

from typing import Any

from regelmotor.core.model import FactSpec, Ruleset
from regelmotor.core.types import Kind, ValueType, to_json_value

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _type(vtype: ValueType, spec: FactSpec | None = None) -> dict[str, Any]:
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
        schema = {"type": "string", "format": "date-time", "description": "ISO 8601 with a UTC offset"}
    else:
        assert vtype.item is not None
        item_spec = spec if vtype.item.kind is Kind.STRING else None
        return {"type": "array", "items": _type(vtype.item, item_spec)}
    if spec is not None:
        if spec.minimum is not None:
            schema["formatMinimum" if kind is Kind.DATE else "minimum"] = to_json_value(spec.minimum)
        if spec.maximum is not None:
            schema["formatMaximum" if kind is Kind.DATE else "maximum"] = to_json_value(spec.maximum)
        if spec.pattern:
            schema["pattern"] = spec.pattern
    return schema


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
