"""A form for a ruleset version's facts, made from its input schema (JSON Schema, RulesetService.GetRuleset),
and the facts read back from what was filled in.

Every fact becomes a labelled field with the schema's description as help: dates as date pickers, choices as
selects (a list of choices as check boxes), yes/no as a select that may be left empty, numbers as number fields,
other lists one item per line, nested objects as fieldsets. What the person typed is read leniently: a value
that is not what the schema asks for is sent as typed, so the API's own reason is shown at the field. Only the
console's bounds (lengths, list sizes) are checked here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from ..formatting import OSLO, norsk_tall
from .forklaring import lesbart_navn

PREFIX = "fakta."  # form names of facts, apart from the form's own fields (csrf_token, as_of)
MAX_TEXT_CHARS = 1000  # a text fact without its own maxLength
MAX_ITEMS = 100  # a list fact without its own maxItems
MAX_ITEM_CHARS = 200
MAX_DEPTH = 4  # nested objects shown; deeper ones are left out of the form


@dataclass(frozen=True)
class FactField:
    """One fact of the form."""

    name: str  # the fact's path, e.g. "henvisning.mottatt"
    label: str
    help: str
    kind: str  # date, datetime, enum, boolean, integer, number, text, choices, list, object
    required: bool
    options: tuple[str, ...] = ()
    minimum: str = ""
    maximum: str = ""
    max_chars: int = MAX_TEXT_CHARS
    max_items: int = MAX_ITEMS
    item_kind: str = "text"
    children: tuple[FactField, ...] = ()
    form_name: str = ""  # the name in the form, when it is not PREFIX + name (the form's own fields)

    @property
    def element_id(self) -> str:
        return "felt-" + self.name.replace(".", "-")

    @property
    def input_name(self) -> str:
        return self.form_name or PREFIX + self.name


def described_by(field: FactField, problem: str | None) -> str:
    """The ids of a field's help text and of its error, if any (for aria-describedby)."""
    ids = ([f"{field.element_id}-hjelp"] if field.help else []) + ([f"{field.element_id}-feil"] if problem else [])
    return " ".join(ids)


def _kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if kind == "string":
        if "enum" in schema:
            return "enum"
        return {"date": "date", "date-time": "datetime"}.get(str(schema.get("format")), "text")
    if kind == "array":
        items = schema.get("items") or {}
        return "choices" if isinstance(items, Mapping) and "enum" in items else "list"
    return {"boolean": "boolean", "integer": "integer", "number": "number", "object": "object"}.get(
        str(kind), "text")


def _bound_words(schema: Mapping[str, Any], kind: str) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    whole = "Et helt tall" if kind == "integer" else "Et tall"
    if kind not in ("integer", "number") or low is None or high is None or max(abs(low), abs(high)) > 10**9:
        return ""
    return f"{whole} fra {norsk_tall(low)} til {norsk_tall(high)}."


def _help(schema: Mapping[str, Any], kind: str, max_items: int) -> str:
    parts = [str(schema.get("description") or schema.get("title") or "").strip()]
    parts.append(_bound_words(schema, kind))
    if kind == "list":
        parts.append(f"Én per linje, høyst {max_items}.")
    if kind == "datetime":
        parts.append("Norsk tid.")
    if "default" in schema and kind != "object":
        default = schema["default"]
        shown = ("ja" if default else "nei") if isinstance(default, bool) else str(default)
        parts.append(f"Uten verdi: {shown}.")
    return " ".join(part for part in parts if part)


def _field(name: str, schema: Mapping[str, Any], required: bool, depth: int) -> FactField | None:
    kind = _kind(schema)
    items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
    max_items = min(int(schema.get("maxItems", MAX_ITEMS)), MAX_ITEMS)
    children: tuple[FactField, ...] = ()
    if kind == "object":
        if depth >= MAX_DEPTH:
            return None
        children = tuple(fields_from_schema(schema, prefix=name + ".", depth=depth + 1))
    options = tuple(str(v) for v in (schema.get("enum") or (items or {}).get("enum") or ()))
    low = schema.get("formatMinimum", schema.get("minimum"))
    high = schema.get("formatMaximum", schema.get("maximum"))
    max_chars = min(int(schema.get("maxLength", (items or {}).get("maxLength", MAX_TEXT_CHARS))), MAX_TEXT_CHARS)
    return FactField(name=name, label=str(schema.get("title") or lesbart_navn(name.rsplit(".", 1)[-1])),
                     help=_help(schema, kind, max_items), kind=kind, required=required, options=options,
                     minimum="" if low is None else str(low), maximum="" if high is None else str(high),
                     max_chars=max_chars, max_items=max_items, item_kind=_kind(items or {}), children=children)


def fields_from_schema(schema: Mapping[str, Any], *, prefix: str = "", depth: int = 0) -> list[FactField]:
    """The form's fields for the properties of an object schema, in the schema's order."""
    required = [str(name) for name in schema.get("required") or ()]
    properties = schema.get("properties") or {}
    # The schema travels as a protobuf Struct, which keeps no order: the required facts first, in the order the
    # schema lists them, then the others by name.
    ordered = [n for n in required if n in properties] + sorted(n for n in properties if n not in required)
    fields = []
    for name in ordered:
        property_schema = properties[name]
        if isinstance(property_schema, Mapping):
            made = _field(prefix + name, property_schema, name in required, depth)
            if made is not None:
                fields.append(made)
    return fields


def _number(text: str, kind: str) -> Any:
    """12 for "12", 1.5 for "1,5"; the text as typed when it is no number (the API then says why)."""
    cleaned = text.replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        return int(cleaned) if kind == "integer" else float(cleaned)
    except ValueError:
        return text


def _scalar(kind: str, text: str) -> Any:
    if kind == "boolean":
        return {"ja": True, "nei": False}.get(text, text)
    if kind in ("integer", "number"):
        return _number(text, kind)
    if kind == "datetime":
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
        # <input type="datetime-local"> has no offset: the time is Norwegian time, as the help text says.
        return (moment if moment.tzinfo else moment.replace(tzinfo=OSLO)).isoformat()
    return text


@dataclass
class FilledForm:
    """Facts read from a filled-in form, what was typed (to show it again), and the console's own refusals."""

    facts: dict[str, Any]
    typed: dict[str, Any]
    problems: dict[str, str]


def _read_list(field: FactField, form: MultiDict[str, str], filled: FilledForm) -> Any:
    if field.kind == "choices":
        chosen = [v for v in form.getlist(field.input_name) if v][:MAX_ITEMS + 1]
        filled.typed[field.name] = chosen
        if len(chosen) > field.max_items:
            filled.problems[field.name] = f"Velg høyst {field.max_items}."
        return chosen or None
    raw = form.get(field.input_name, "")
    filled.typed[field.name] = raw[:field.max_items * (MAX_ITEM_CHARS + 2)]
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    if len(lines) > field.max_items:
        filled.problems[field.name] = f"Høyst {field.max_items} linjer, ikke {len(lines)}."
    elif any(len(line) > MAX_ITEM_CHARS for line in lines):
        filled.problems[field.name] = f"Hver linje kan være høyst {MAX_ITEM_CHARS} tegn."
    return [_scalar(field.item_kind, line) for line in lines] or None


def _read(field: FactField, form: MultiDict[str, str], filled: FilledForm) -> Any:
    if field.kind == "object":
        nested = {child.name.rsplit(".", 1)[-1]: value for child in field.children
                  if (value := _read(child, form, filled)) is not None}
        return nested or None
    if field.kind in ("choices", "list"):
        return _read_list(field, form, filled)
    raw = form.get(field.input_name, "").strip()
    filled.typed[field.name] = raw[:field.max_chars]
    if len(raw) > field.max_chars:
        filled.problems[field.name] = f"Høyst {field.max_chars} tegn, ikke {len(raw)}."
    return _scalar(field.kind, raw) if raw else None


def read_facts(fields: list[FactField], form: MultiDict[str, str]) -> FilledForm:
    """The facts of a filled-in form; empty fields are left out (the ruleset's defaults then apply)."""
    filled = FilledForm(facts={}, typed={}, problems={})
    for field in fields:
        value = _read(field, form, filled)
        if value is not None:
            filled.facts[field.name] = value
    return filled


_INDEX = re.compile(r"\[(\d+)\]")


def field_of_violation(api_field: str, names: set[str]) -> tuple[str | None, str]:
    """The form field an API field violation is about (facts.a.b[2] -> a.b), and which item, in words."""
    path = api_field.removeprefix("facts.")
    item = _INDEX.search(path)
    base = _INDEX.sub("", path)
    words = f"Nr. {int(item.group(1)) + 1}: " if item else ""
    return (base if base in names else None), words


def all_names(fields: list[FactField]) -> set[str]:
    names = set()
    for field in fields:
        names.add(field.name)
        names |= all_names(list(field.children))
    return names


def _typed_value(field: FactField, value: Any) -> Any:
    """A fact's value as a person would have typed it in `field` (what `read_facts` reads back to the value)."""
    if field.kind == "choices":
        return [str(item) for item in value] if isinstance(value, list) else [str(value)]
    if field.kind == "list":
        return "\n".join(str(item) for item in value) if isinstance(value, list) else str(value)
    if isinstance(value, bool):
        return "ja" if value else "nei"
    if field.kind == "datetime" and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        # <input type="datetime-local"> shows Norwegian time without an offset.
        return (moment.astimezone(OSLO) if moment.tzinfo else moment).strftime("%Y-%m-%dT%H:%M:%S")
    return str(value)


def typed_from_facts(fields: list[FactField], facts: Mapping[str, Any]) -> dict[str, Any]:
    """The form filled with `facts` (JSON values, e.g. a test case's): for each field, what `read_facts`
    expects typed; facts the form has no field for are left out."""
    typed: dict[str, Any] = {}
    for field in fields:
        value = facts.get(field.name.rsplit(".", 1)[-1])
        if value is None:
            continue
        if field.kind == "object":
            typed |= typed_from_facts(list(field.children), value) if isinstance(value, Mapping) else {}
        else:
            typed[field.name] = _typed_value(field, value)
    return typed
