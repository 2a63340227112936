"""Declared types (`type: enum, values: [...]`) and the literal values a ruleset writes for them.

A literal is read by `values`, as a fact of its type is: a ruleset holds no value its facts could not carry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from . import shapes, values
from .model import Table
from .types import BOOL, DATE, DATETIME, DECIMAL, INT, STRING, Kind, ValueType, list_of
from .yamlsource import Path as YPath

Report = Callable[[YPath, str], None]

SCALAR_TYPES = {"bool": BOOL, "int": INT, "decimal": DECIMAL, "string": STRING, "date": DATE, "datetime": DATETIME}
TYPE_NAMES = ", ".join([*SCALAR_TYPES, "enum", "list"])


def read_date(report: Report, where: YPath, value: Any) -> date | None:
    """A date the ruleset writes (`gyldig_fra`, `i_kraft`, a case's `as_of`), read as a date fact is."""
    try:
        return values.read_date(value)
    except ValueError as exc:
        report(where, str(exc))
        return None


def read_type(report: Report, where: YPath, spec: Mapping[str, Any], tables: Mapping[str, Table]) -> ValueType | None:
    """The type a shape-checked spec declares (`type`, and `values`, `values_from` or `items`)."""
    kind = spec.get("type")
    if kind is None:
        return None  # the shape check reported the missing `type`
    if kind not in (*SCALAR_TYPES, "enum", "list"):
        report((*where, "type"), f"unknown type {kind!r}; types are: {TYPE_NAMES}")
        return None
    for key, owner in (("values", "enum"), ("values_from", "enum"), ("items", "list")):
        if key in spec and kind != owner:
            report((*where, key), f"`{key}` belongs to type {owner}, not to type {kind}")
            return None
    if kind in SCALAR_TYPES:
        return SCALAR_TYPES[str(kind)]
    if kind == "enum":
        return _enum(report, where, spec, tables)
    items = shapes.check(spec.get("items"), shapes.ITEMS, (*where, "items"), "", report) if "items" in spec else None
    if items is None:
        if "items" not in spec:
            report(where, "a list needs `items: {type: ...}`")
        return None
    item = read_type(report, (*where, "items"), items, tables)
    if item is None:
        return None
    if item.kind is Kind.LIST:
        report((*where, "items"), "lists of lists are not supported; keep facts flat")
        return None
    return list_of(item)


def _enum(report: Report, where: YPath, spec: Mapping[str, Any], tables: Mapping[str, Table]) -> ValueType | None:
    known, source = spec.get("values"), spec.get("values_from")
    if known is not None and source is not None:
        report(where, "an enum takes `values` or `values_from`, not both")
        return None
    if source is not None:
        table = tables.get(source)
        if table is None:
            report((*where, "values_from"), f"no table named {source!r}")
            return None
        return ValueType(Kind.ENUM, tuple(table.rows))
    if not known:
        report(where, "an enum needs `values`: a list of texts (or `values_from: <table>`)")
        return None
    if len(set(known)) != len(known):
        report((*where, "values"), "enum values repeat")
    return ValueType(Kind.ENUM, tuple(known))


def read_value(report: Report, where: YPath, value: Any, vtype: ValueType, what: str) -> tuple[bool, Any]:
    """Check a literal from the file against a type, as a fact of that type is checked; returns (ok, value
    converted). A value of another kind is reported as a mismatch of types, any other refusal with its reason."""
    if value is None:
        return True, None
    try:
        if vtype.kind is Kind.LIST:
            assert vtype.item is not None
            item = vtype.item
            read = [read_value(report, (*where, i), v, item, what) for i, v in enumerate(values.read_list(value))]
            return all(ok for ok, _ in read), [v for _, v in read]
        return True, values.read_scalar(value, vtype)
    except values.WrongKind:
        expected = f"one of: {', '.join(vtype.values)}" if vtype.kind is Kind.ENUM else str(vtype)
        report(where, f"{what} is {shapes.describe(value)}, which does not match type {vtype} (expected {expected})")
    except ValueError as exc:
        report(where, str(exc))
    return False, None
