"""The allowed keys of every section of a ruleset (and of a cases file), and the type of each value.

This is the model of the file format: the readers check each entry against its shape here, and the JSON Schema
that editors use (`format_schema`) is generated from the same shapes, with what each kind of value is in JSON
Schema terms (`Expect.schema`) and which shape the entries of a section have (`Expect.entries`, `items`,
`shape`).

One check serves every section, so a misspelt key (`combin: max`) or a value of the wrong type
(`internal: 'no'`, which Python would take as true) is refused with its line wherever it occurs,
instead of silently falling back to a default. Booleans must be YAML booleans (true/false), whole
numbers YAML integers, text YAML strings. A key given as null counts as not given, except where
null is a value (`value: null`, `default: null`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .model import Combine, Status
from .types import Kind
from .yamlsource import Path as YPath

Report = Callable[[YPath, str], None]

_BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "ja", "nei", "sant", "usant"}


@dataclass(frozen=True)
class Expect:
    """What a key's value must be."""

    what: str
    accepts: Callable[[Any], bool]
    nullable: bool = False  # null is a value here, not "not given"
    schema: Mapping[str, Any] = field(default_factory=dict)  # the same in JSON Schema ({}: anything)
    # For an editor's schema only (each reader checks these itself, with its own messages): the shape of the
    # value (a mapping), of each entry of a mapping of named entries, or of each item of a list.
    shape: Shape | None = None
    entries: Shape | None = None
    items: Shape | None = None


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_STRING = {"type": "string"}
TEXT = Expect("text", lambda v: isinstance(v, str), schema=_STRING)
BOOL = Expect("true or false", lambda v: isinstance(v, bool), schema={"type": "boolean"})
WHOLE = Expect("a whole number", _is_whole, schema={"type": "integer"})
# A YAML date, or text the loader reads as a date and reports when it is not one.
DATE = Expect("a date YYYY-MM-DD",
              lambda v: isinstance(v, str) or (isinstance(v, date) and not isinstance(v, datetime)),
              schema={"type": "string", "format": "date"})
MAPPING = Expect("a mapping", lambda v: isinstance(v, dict), schema={"type": "object"})
LIST = Expect("a list", lambda v: isinstance(v, list), schema={"type": "array"})
TEXTS = Expect("a list of texts", _is_text_list, schema={"type": "array", "items": _STRING})
TEXT_OR_TEXTS = Expect("text or a list of texts", lambda v: isinstance(v, str) or _is_text_list(v),
                       schema={"anyOf": [_STRING, TEXTS.schema]})
LABEL = Expect("text or a whole number", lambda v: isinstance(v, str) or _is_whole(v),
               schema={"type": ["string", "integer"]})
SCALAR = Expect("text, a number or a date", lambda v: isinstance(v, (str, int, float, date)),
                schema={"type": ["string", "number"]})
# A literal checked later against the declared type of its fact, outcome, column or parameter.
VALUE = Expect("a value", lambda v: True, nullable=True)


def one_of(expect: Expect, choices: list[str]) -> Expect:
    """`expect`, with the values the reader accepts listed for an editor (the reader checks them itself)."""
    return Expect(expect.what, expect.accepts, schema={**expect.schema, "enum": choices})


def mapping_of(shape: Shape) -> Expect:
    """A mapping whose value is an entry of `shape` (as `items: {type: ...}`)."""
    return Expect(MAPPING.what, MAPPING.accepts, schema=MAPPING.schema, shape=shape)


def named(shape: Shape) -> Expect:
    """A mapping of names to entries of `shape` (as `facts:`)."""
    return Expect(MAPPING.what, MAPPING.accepts, schema=MAPPING.schema, entries=shape)


def list_of(shape: Shape) -> Expect:
    """A list of entries of `shape` (as `rules:`)."""
    return Expect(LIST.what, LIST.accepts, schema=LIST.schema, items=shape)


@dataclass(frozen=True)
class Shape:
    label: str  # "rule", "fact", ...: names the entry in messages
    keys: Mapping[str, Expect]
    required: Mapping[str, str] = field(default_factory=dict)  # key -> hint shown when it is missing
    member: str = "key"
    shorthand: Expect | None = None  # what the entry may be instead of a mapping (a derived value: its expr)


def check(spec: Any, shape: Shape, where: YPath, name: str, report: Report) -> dict[str, Any] | None:
    """The entry's allowed, well-typed keys; None (reported) when `spec` is not a mapping.

    Reports each unknown key with the allowed ones, each value of the wrong type and each missing
    required key. `name` completes the label in messages ("rule 'frist'")."""
    label = f"{shape.label} {name}".strip()
    if not isinstance(spec, dict):
        report(where, f"{label} must be a mapping with the keys {_listing(shape.keys)}, not {describe(spec)}")
        return None
    checked: dict[str, Any] = {}
    refused: set[str] = set()
    for key, value in spec.items():
        expect = shape.keys.get(key)
        if expect is None:
            report((*where, key), f"unknown {shape.member} {key!r} in {label}; allowed: {_listing(shape.keys)}")
            refused.add(key)
        elif value is None and not expect.nullable:
            continue  # null: not given
        elif not expect.accepts(value):
            report((*where, key),
                   f"`{key}` of {label} must be {expect.what}, not {describe(value)}{_hint(expect, value)}")
            refused.add(key)
        else:
            checked[key] = value
    for key, hint in shape.required.items():
        if key not in checked and key not in refused:
            report(where, f"{label} needs `{key}`{hint}")
    return checked


def describe(value: Any) -> str:
    """A value as an author would name it in their file, cut short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {_clip(repr(value))}"
    if isinstance(value, (int, float)):
        return f"the number {_clip(repr(value))}"
    if isinstance(value, datetime):
        return f"the datetime {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _hint(expect: Expect, value: Any) -> str:
    # By what it accepts: a key whose values are listed for editors (`one_of`) is still text.
    if expect.accepts is BOOL.accepts and isinstance(value, str) and value.strip().lower() in _BOOLEAN_WORDS:
        return " (write true or false without quotes)"
    if expect.accepts in (TEXT.accepts, LABEL.accepts, TEXT_OR_TEXTS.accepts) and isinstance(
            value, (bool, int, float, date)):
        return " (put it in quotes to make it text)"
    return ""


def _listing(keys: Mapping[str, Expect]) -> str:
    return ", ".join(sorted(keys))


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the sections -------------------------------------------------------------------------------
# From the innermost out, since a section names the shape of its entries.

TYPE_NAME = one_of(TEXT, [kind.value for kind in Kind if kind is not Kind.NULL])
ITEMS = Shape("list items", {"type": TYPE_NAME, "values": TEXTS, "values_from": TEXT, "items": MAPPING},
              required={"type": ""})
_TYPE_KEYS: dict[str, Expect] = {"type": TYPE_NAME, "values": TEXTS, "values_from": TEXT, "items": mapping_of(ITEMS)}

HJEMMEL = Shape("hjemmel", {
    "kilde": TEXT, "navn": TEXT, "kapittel": LABEL, "paragraf": LABEL, "ledd": WHOLE, "punktum": WHOLE,
    "bokstav": TEXT, "i_kraft": DATE, "url": TEXT, "verified": BOOL, "merknad": TEXT,
}, required={"kilde": " (e.g. LOV-1999-07-02-63)"})  # `verified` too, checked with its own message
FACT = Shape("fact", {
    **_TYPE_KEYS, "required": BOOL, "default": VALUE, "description": TEXT, "min": VALUE, "max": VALUE,
    "pattern": TEXT, "max_items": VALUE, "max_length": VALUE,  # size limits: checked with their range
}, required={"type": ""})
PARAMETER_VALUE = Shape("parameter value", {
    "gyldig_fra": DATE, "value": VALUE, "note": TEXT, "sekundaerkilde": TEXT,
}, required={"gyldig_fra": "", "value": " (null for a declared gap)"})
PARAMETER = Shape("parameter", {
    "type": TYPE_NAME, "values_from": TEXT, "items": mapping_of(ITEMS), "unit": TEXT, "source": TEXT,
    "description": TEXT, "hjemmel": TEXT_OR_TEXTS, "values": list_of(PARAMETER_VALUE),
}, required={"type": "", "unit": "", "source": "", "values": ": a list of {gyldig_fra, value}"})
COLUMN = Shape("column", {**_TYPE_KEYS, "description": TEXT}, required={"type": ""})
TABLE = Shape("table", {"key": TEXT, "columns": named(COLUMN), "rows": LIST, "description": TEXT, "source": TEXT},
              required={"key": " (the column that keys the rows)", "rows": ": a list of rows"})
DERIVED = Shape("derived value", {"expr": TEXT, "description": TEXT}, required={"expr": ": an expression"},
                shorthand=TEXT)
RULE = Shape("rule", {
    "id": TEXT, "title": TEXT, "hjemmel": TEXT_OR_TEXTS, "when": TEXT, "then": MAPPING, "unntak_fra": TEXT,
    "prioritet": WHOLE, "manuell_vurdering": TEXT, "begrunnelse": TEXT,
}, required={"id": "", "title": "", "hjemmel": ": one or more entries of `hjemler`", "when": ": a condition"})
OUTCOME = Shape("outcome", {
    **_TYPE_KEYS, "default": VALUE, "combine": one_of(TEXT, [c.value for c in Combine]), "description": TEXT,
    "internal": BOOL,
}, required={"type": ""})
CONSTRAINT = Shape("constraint", {"id": TEXT, "when": TEXT, "field": TEXT, "message": TEXT}, required={
    "id": "", "when": " (the condition that makes the input invalid)", "field": " (the fact to name)",
    "message": ""})
RULESET = Shape("the ruleset", {
    "name": TEXT, "version": TEXT, "title": TEXT, "description": TEXT,
    "status": one_of(TEXT, [s.value for s in Status]), "gyldig_fra": DATE,
    "gyldig_til": DATE, "selected_by": TEXT, "allow_gap_before": BOOL, "notes": TEXTS, "headline": TEXT,
    "supersedes": TEXT, "correction_reason": TEXT, "hjemler": named(HJEMMEL),
    "facts": named(FACT), "parameters": named(PARAMETER), "tables": named(TABLE), "derived": named(DERIVED),
    "rules": list_of(RULE), "outcomes": named(OUTCOME), "constraints": list_of(CONSTRAINT),
}, required={"name": "", "version": ' (text, e.g. version: "2024.1")', "title": "",
             "status": " (draft or published)", "gyldig_fra": " (the first day this version governs)"},
    member="section")

EXPECTED_ERROR = Shape("expect_error", {"type": TEXT, "contains": SCALAR})
CASE = Shape("case", {
    "name": TEXT, "as_of": DATE, "facts": MAPPING, "expect": MAPPING, "fired": TEXTS, "expect_version": TEXT,
    "expect_error": mapping_of(EXPECTED_ERROR), "expect_sekundaerkilde": TEXTS,
}, required={"name": "", "as_of": ": YYYY-MM-DD"})
