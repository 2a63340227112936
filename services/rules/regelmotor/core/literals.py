"""Declared types (`type: enum, values: [...]`) and the literal values a ruleset writes for them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from . import shapes
from .model import Table
from .types import BOOL, DATE, DATETIME, DECIMAL, INT, STRING, Kind, ValueType, list_of
from .yamlsource import Path as YPath

Report = Callable[[YPath, str], None]

SCALAR_TYPES = {"bool": BOOL, "int": INT, "decimal": DECIMAL, "string": STRING, "date": DATE, "datetime": DATETIME}
TYPE_NAMES = ", ".join([*SCALAR_TYPES, "enum", "list"])


def read_date(report: Report, where: YPath, value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            report(where, f"impossible date {value[:40]!r}")
            return None
    report(where, f"expected a date YYYY-MM-DD, not {shapes.describe(value)}")
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
    values, source = spec.get("values"), spec.get("values_from")
    if values is not None and source is not None:
        report(where, "an enum takes `values` or `values_from`, not both")
        return None
    if source is not None:
        table = tables.get(source)
        if table is None:
            report((*where, "values_from"), f"no table named {source!r}")
            return None
        return ValueType(Kind.ENUM, tuple(table.rows))
    if not values:
        report(where, "an enum needs `values`: a list of texts (or `values_from: <table>`)")
        return None
    if len(set(values)) != len(values):
        report((*where, "values"), "enum values repeat")
    return ValueType(Kind.ENUM, tuple(values))


def read_value(report: Report, where: YPath, value: Any, vtype: ValueType, what: str) -> tuple[bool, Any]:
    """Check a literal from the file against a type; returns (ok, value converted)."""
    if value is None:
        return True, None
    kind = vtype.kind
    if kind is Kind.LIST:
        if not isinstance(value, list):
            report(where, f"{what} must be a list")
            return False, None
        assert vtype.item is not None
        converted = [read_value(report, (*where, i), v, vtype.item, what) for i, v in enumerate(value)]
        return all(ok for ok, _ in converted), [v for _, v in converted]
    if kind is Kind.DATE:
        parsed = read_date(report, where, value)
        return parsed is not None, parsed
    if kind is Kind.DATETIME:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return True, value
        report(where, f"{what} must be a datetime with a UTC offset")
        return False, None
    if not _CHECKS[kind](value, vtype):
        expected = f"one of: {', '.join(vtype.values)}" if kind is Kind.ENUM else str(vtype)
        report(where, f"{what} is {shapes.describe(value)}, which does not match type {vtype} (expected {expected})")
        return False, None
    if kind is Kind.DECIMAL:
        return True, Decimal(str(value))
    return True, value


_CHECKS: dict[Kind, Callable[[Any, ValueType], bool]] = {
    Kind.BOOL: lambda v, t: isinstance(v, bool),
    Kind.INT: lambda v, t: isinstance(v, int) and not isinstance(v, bool),
    Kind.DECIMAL: lambda v, t: isinstance(v, (int, float)) and not isinstance(v, bool),
    Kind.STRING: lambda v, t: isinstance(v, str),
    Kind.ENUM: lambda v, t: isinstance(v, str) and v in t.values,
}
