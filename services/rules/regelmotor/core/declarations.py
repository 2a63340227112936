"""The declarative sections of a ruleset source: metadata, hjemler, tables, facts, parameters, outcomes.

Each reader takes a section already known to be a mapping, checks every entry's shape (allowed keys,
value types) and meaning, records what it declares in `Declared`, and reports each problem at its
line. The expression sections (derived values, rules, constraints) are read in `logic`.
"""

from __future__ import annotations

import re
from typing import Any

from . import shapes
from .errors import Diagnostic, Severity
from .limits import MAX_ITEMS_CEILING, MAX_LENGTH_CEILING, MAX_NAME_CHARS, MAX_REASON_CHARS, shown
from .literals import read_date, read_type, read_value
from .model import Combine, FactSpec, Hjemmel, Metadata, OutcomeSpec, Parameter, ParameterValue, Status, Table
from .typecheck import NameInfo
from .types import DATE, Kind, ValueType
from .yamlsource import Located
from .yamlsource import Path as YPath

IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
# known_at: a decision's own key, found by its text in the log (regelmotor.store.base.LOOKUP_MARK), so no name
# inside a decision may be it.
RESERVED = {"sid", "id", "as_of", "known_at"}
BUILTIN_NAMES = {"as_of": NameInfo(DATE, "builtin")}
MAX_DIAGNOSTICS = 100  # an author fixes the first ones first; a caller's answer stays small
_RULESET_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")
_LEGAL_ID = re.compile(r"^(LOV|FOR)-\d{4}-\d{2}-\d{2}-\d+$")
_METADATA_LINES = ("name", "version", "gyldig_fra", "gyldig_til", "selected_by", "status", "supersedes",
                   "correction_reason")


class Reporter:
    """Collects diagnostics, each placed at the line and column of the value concerned."""

    def __init__(self, path: str, located: Located) -> None:
        self.path = path
        self.located = located
        self.diagnostics: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.left_out = 0

    def error(self, where: YPath, message: str, line_offset: int = 0, column: int | None = None) -> None:
        if len(self.diagnostics) >= MAX_DIAGNOSTICS:
            self.left_out += 1
            return
        line, col = self.located.where(where)
        self.diagnostics.append(Diagnostic(self.path, line + line_offset, column or col, message))

    def warn(self, where: YPath, message: str) -> None:
        if len(self.warnings) < MAX_DIAGNOSTICS:
            line, col = self.located.where(where)
            self.warnings.append(Diagnostic(self.path, line, col, message, Severity.WARNING))

    def all(self) -> list[Diagnostic]:
        if not self.left_out:
            return list(self.diagnostics)
        return [*self.diagnostics, Diagnostic(self.path, 1, 1, f"… and {self.left_out} more problems")]


class Declared:
    """What the declarative sections declare; the expression sections and type checks read it."""

    def __init__(self, report: Reporter) -> None:
        self.report = report
        self.hjemler: dict[str, Hjemmel] = {}
        self.facts: dict[str, FactSpec] = {}
        self.parameters: dict[str, Parameter] = {}
        self.tables: dict[str, Table] = {}
        self.outcomes: dict[str, OutcomeSpec] = {}
        self.names: dict[str, NameInfo] = dict(BUILTIN_NAMES)

    def err(self, where: YPath, message: str) -> None:
        self.report.error(where, message)

    def line(self, where: YPath) -> int:
        return self.report.located.where(where)[0]

    # Scope protocol for the vocabulary's type checks.
    def parameter(self, name: str) -> Parameter | None:
        return self.parameters.get(name)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def ident(self, where: YPath, name: str, what: str) -> bool:
        if name in RESERVED:
            self.err(where, f"{what} name {name!r} is reserved by the engine")
            return False
        if not IDENT.match(name):
            self.err(where, f"{what} name {name!r} must be lower-case ASCII letters, digits and '_' (æ→ae, ø→o, å→a)")
            return False
        if name in self.names:
            self.err(where, f"{what} name {name!r} is already used by a {self.names[name].kind}")
            return False
        return True

    def hjemmel_refs(self, where: YPath, refs: str | list[str] | None) -> tuple[str, ...]:
        listed = [refs] if isinstance(refs, str) else refs
        if not listed:
            self.err(where, "hjemmel must name one or more entries of `hjemler`")
            return ()
        for ref in listed:
            if ref not in self.hjemler:
                self.err(where, f"unknown hjemmel {ref!r}; declared: {listing(self.hjemler)}")
        return tuple(listed)

    def entries(self, doc: dict[str, Any], section: str) -> list[tuple[str, YPath, Any]]:
        return [(name, (section, name), spec) for name, spec in doc.get(section, {}).items()]


def listing(names: Any, limit: int = 20) -> str:
    """Known names for a message, the first `limit` of them."""
    shown = list(names)
    if not shown:
        return "none"
    more = f" … ({len(shown) - limit} more)" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def read_metadata(d: Declared, doc: dict[str, Any]) -> Metadata | None:
    """The ruleset's identity and period; None when a required key is missing (already reported)."""
    if any(key not in doc for key in ("name", "version", "title", "status", "gyldig_fra")):
        return None
    name, version, status = doc["name"], doc["version"], doc["status"]
    if len(name) > MAX_NAME_CHARS:
        d.err(("name",), f"ruleset name is {len(name)} characters; at most {MAX_NAME_CHARS}")
    elif not _RULESET_NAME.match(name):
        d.err(("name",), f"ruleset name {name!r} must be lower-case letters, digits and '-'")
    if len(version) > MAX_NAME_CHARS:
        d.err(("version",), f"version is {len(version)} characters; at most {MAX_NAME_CHARS}")
    elif not _VERSION.match(version):
        d.err(("version",), f"version {version!r} must be letters, digits, '.', '_' or '-'")
    if status not in {s.value for s in Status}:
        d.err(("status",), f"status must be draft or published, not {status!r}")
        return None
    gyldig_fra = read_date(d.err, ("gyldig_fra",), doc["gyldig_fra"])
    gyldig_til = read_date(d.err, ("gyldig_til",), doc["gyldig_til"]) if "gyldig_til" in doc else None
    if gyldig_fra and gyldig_til and gyldig_til < gyldig_fra:
        d.err(("gyldig_til",), f"gyldig_til {gyldig_til} is before gyldig_fra {gyldig_fra}")
    supersedes, reason = _correction(d, doc, version)
    if gyldig_fra is None:
        return None
    return Metadata(name, version, doc["title"], Status(status), gyldig_fra, gyldig_til, doc.get("selected_by"),
                    doc.get("allow_gap_before", False), doc.get("description", ""), tuple(doc.get("notes", ())),
                    doc.get("headline"), supersedes, reason, {key: d.line((key,)) for key in _METADATA_LINES})


def _correction(d: Declared, doc: dict[str, Any], version: str) -> tuple[str | None, str]:
    """`supersedes` and `correction_reason`: both or neither (a correction always says why)."""
    supersedes, reason = doc.get("supersedes"), str(doc.get("correction_reason", "")).strip()
    if supersedes is None:
        if reason:
            d.err(("correction_reason",), "correction_reason is given but supersedes is not: name the version "
                                          "this one corrects")
        return None, ""
    if len(supersedes) > MAX_NAME_CHARS or not _VERSION.match(supersedes):
        d.err(("supersedes",), f"supersedes must name a version (letters, digits, '.', '_' or '-', at most "
                               f"{MAX_NAME_CHARS} characters), not {shown(supersedes)}")
    elif supersedes == version:
        d.err(("supersedes",), f"version {version!r} cannot supersede itself")
    if not reason:
        d.err(("supersedes",), "a correction needs `correction_reason`: why the superseded version's reading "
                               "was wrong (the law did not change)")
    elif len(reason) > MAX_REASON_CHARS:
        d.err(("correction_reason",), f"correction_reason is {len(reason)} characters; at most {MAX_REASON_CHARS}")
    return supersedes, reason


def read_hjemler(d: Declared, doc: dict[str, Any]) -> None:
    for hid, where, raw in d.entries(doc, "hjemler"):
        spec = shapes.check(raw, shapes.HJEMMEL, where, repr(hid), d.err)
        if spec is None or "kilde" not in spec:
            continue
        kilde = spec["kilde"]
        if not kilde.strip():
            d.err((*where, "kilde"), f"hjemmel {hid!r} needs `kilde` (e.g. LOV-1999-07-02-63)")
        if kilde.startswith(("LOV", "FOR")) and not _LEGAL_ID.match(kilde):
            d.err((*where, "kilde"), f"{kilde!r} is not a Lovdata id like LOV-1999-07-02-63")
        if raw.get("verified") is None:  # a value of the wrong type was reported by the shape check
            d.err(where, f"hjemmel {hid!r} must say `verified: true` or `verified: false`")
        i_kraft = read_date(d.err, (*where, "i_kraft"), spec["i_kraft"]) if "i_kraft" in spec else None
        d.hjemler[hid] = Hjemmel(
            hid, kilde, spec.get("navn"), _opt_str(spec.get("kapittel")), _opt_str(spec.get("paragraf")),
            spec.get("ledd"), spec.get("punktum"), spec.get("bokstav"), i_kraft, spec.get("url"),
            spec.get("verified", False), spec.get("merknad"))


def read_tables(d: Declared, doc: dict[str, Any]) -> None:
    for name, where, raw in d.entries(doc, "tables"):
        spec = shapes.check(raw, shapes.TABLE, where, repr(name), d.err)
        if spec is None:
            continue
        if not IDENT.match(name):
            d.err(where, f"table name {name!r} must be lower-case ASCII letters, digits and '_'")
            continue
        columns: dict[str, ValueType] = {}
        for column, column_where, column_raw in d.entries(spec, "columns"):
            column_where = (*where, *column_where)
            column_spec = shapes.check(column_raw, shapes.COLUMN, column_where, repr(column), d.err)
            column_type = read_type(d.err, column_where, column_spec, d.tables) if column_spec is not None else None
            if column_type is not None:
                columns[column] = column_type
        if "key" in spec and "rows" in spec:
            rows = _rows(d, where, name, spec["key"], columns, spec["rows"])
            d.tables[name] = Table(name, spec["key"], columns, rows, spec.get("description", ""),
                                   spec.get("source", ""))


def _rows(d: Declared, where: YPath, name: str, key: str, columns: dict[str, ValueType],
          raw_rows: list[Any]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(raw_rows):
        row_where: YPath = (*where, "rows", index)
        if not isinstance(row, dict) or key not in row:
            d.err(row_where, f"each row of {name!r} must be a mapping with its key {key!r}")
            continue
        key_value = row[key]
        if not isinstance(key_value, (str, int)) or isinstance(key_value, bool):
            d.err((*row_where, key), f"the key of a row must be text or a whole number, not "
                                     f"{shapes.describe(key_value)}")
            continue
        row_key = str(key_value)
        if row_key in rows:
            d.err(row_where, f"table {name!r}: duplicate key {row_key!r}")
        values: dict[str, Any] = {}
        for column, cell in row.items():
            if column == key:
                continue
            if column not in columns:
                d.err((*row_where, column), f"table {name!r} has no column {column!r}; columns: {listing(columns)}")
                continue
            _, values[column] = read_value(d.err, (*row_where, column), cell, columns[column], f"cell {column}")
        rows[row_key] = {column: values.get(column) for column in columns}
    return rows


def read_facts(d: Declared, doc: dict[str, Any]) -> None:
    for name, where, raw in d.entries(doc, "facts"):
        spec = shapes.check(raw, shapes.FACT, where, repr(name), d.err)
        if spec is None or not d.ident(where, name, "fact"):
            continue
        vtype = read_type(d.err, where, spec, d.tables)
        if vtype is None:
            continue
        required = spec.get("required", False)
        default: Any = [] if vtype.kind is Kind.LIST else None
        if "default" in spec:
            if required:
                d.err((*where, "default"), f"fact {name!r} is required, so it cannot have a default")
            _, default = read_value(d.err, (*where, "default"), spec["default"], vtype, "default")
        bounds = [read_value(d.err, (*where, bound), spec.get(bound), vtype, bound)[1] for bound in ("min", "max")]
        pattern = spec.get("pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except (re.error, RecursionError, OverflowError) as exc:
                d.err((*where, "pattern"), f"pattern is not a regular expression: {exc}")
        max_items = _size_limit(d, where, spec, "max_items", vtype.kind is Kind.LIST, MAX_ITEMS_CEILING)
        texts = vtype.item if vtype.kind is Kind.LIST else vtype
        max_length = _size_limit(d, where, spec, "max_length", texts is not None and texts.kind is Kind.STRING,
                                 MAX_LENGTH_CEILING)
        d.facts[name] = FactSpec(name, vtype, required, default, spec.get("description", ""), minimum=bounds[0],
                                 maximum=bounds[1], pattern=pattern, line=d.line(where), max_items=max_items,
                                 max_length=max_length)
        d.names[name] = NameInfo(vtype, "fact")
    selected_by = doc.get("selected_by")
    if selected_by is not None:
        fact = d.facts.get(selected_by)
        if fact is None or fact.type.kind is not Kind.DATE or not fact.required:
            d.err(("selected_by",), f"selected_by must name a required date fact, not {selected_by!r}")


def _size_limit(d: Declared, where: YPath, spec: dict[str, Any], key: str, applies: bool, ceiling: int) -> int | None:
    """A fact's declared `max_items` or `max_length`: a whole number from 1 up to the engine's ceiling."""
    value = spec.get(key)
    if value is None:
        return None
    if not applies:
        what = "a list fact" if key == "max_items" else "a string fact or a list of strings"
        d.err((*where, key), f"{key} is only for {what}")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ceiling:
        d.err((*where, key), f"{key} must be a whole number from 1 to {ceiling}, got {shown(value)}")
        return None
    return value


def read_parameters(d: Declared, doc: dict[str, Any]) -> None:
    for name, where, raw in d.entries(doc, "parameters"):
        spec = shapes.check(raw, shapes.PARAMETER, where, repr(name), d.err)
        if spec is None:
            continue
        if not IDENT.match(name):
            d.err(where, f"parameter name {name!r} must be lower-case ASCII letters, digits and '_'")
            continue
        # A parameter's `values` are its dated values, so its type is read without them.
        type_spec: dict[str, Any] = {key: spec[key] for key in ("type", "values_from", "items") if key in spec}
        vtype = read_type(d.err, where, type_spec, d.tables)
        if vtype is None or not spec.get("values"):
            if vtype is not None:
                d.err(where, f"parameter {name!r} needs `values`: a list of {{gyldig_fra, value}}")
            continue
        values: list[ParameterValue] = []
        for index, item in enumerate(spec["values"]):
            item_where: YPath = (*where, "values", index)
            value_spec = shapes.check(item, shapes.PARAMETER_VALUE, item_where, "", d.err)
            if value_spec is None or "gyldig_fra" not in value_spec or "value" not in value_spec:
                continue
            start = read_date(d.err, (*item_where, "gyldig_fra"), value_spec["gyldig_fra"])
            ok, value = read_value(d.err, (*item_where, "value"), value_spec["value"], vtype, "value")
            secondary = _secondary_source(d, item_where, value_spec, value)
            if start is not None and ok:
                values.append(ParameterValue(start, value, value_spec.get("note"), secondary))
        starts = [v.gyldig_fra for v in values]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            d.err((*where, "values"), f"parameter {name!r}: gyldig_fra dates must increase, without repeats")
        hjemmel = d.hjemmel_refs((*where, "hjemmel"), spec["hjemmel"]) if "hjemmel" in spec else ()
        d.parameters[name] = Parameter(name, vtype, spec.get("unit", ""), spec.get("description", ""),
                                       spec.get("source", ""), tuple(values), hjemmel)


def _secondary_source(d: Declared, where: YPath, value_spec: dict[str, Any], value: Any) -> str | None:
    """The secondary source a parameter value rests on (`sekundaerkilde`): text naming it, on a value (a declared
    gap has nothing to rest on)."""
    source = value_spec.get("sekundaerkilde")
    if source is None:
        return None
    if not source.strip():
        d.err((*where, "sekundaerkilde"), "sekundaerkilde must name the source the value rests on, not be empty")
        return None
    if value is None:
        d.err((*where, "sekundaerkilde"), "sekundaerkilde is for a value; value: null declares that there is none")
        return None
    return " ".join(source.split())


def read_outcomes(d: Declared, doc: dict[str, Any]) -> None:
    for name, where, raw in d.entries(doc, "outcomes"):
        spec = shapes.check(raw, shapes.OUTCOME, where, repr(name), d.err)
        if spec is None or not d.ident(where, name, "outcome"):
            continue
        vtype = read_type(d.err, where, spec, d.tables)
        if vtype is None:
            continue
        combine_text = spec.get("combine", "unique")
        if combine_text not in {c.value for c in Combine}:
            d.err((*where, "combine"), f"combine must be one of: {', '.join(c.value for c in Combine)}, "
                                       f"not {combine_text!r}")
            continue
        combine = Combine(combine_text)
        if combine in (Combine.ANY, Combine.ALL) and vtype.kind is not Kind.BOOL:
            d.err((*where, "combine"), f"combine {combine.value} needs a bool outcome, not {vtype}")
        if combine in (Combine.MIN, Combine.MAX) and not (vtype.is_numeric or vtype.kind is Kind.DATE):
            d.err((*where, "combine"), f"combine {combine.value} needs a number or date outcome")
        if (combine is Combine.COLLECT) != (vtype.kind is Kind.LIST):
            d.err((*where, "combine"), "a list outcome must use combine: collect, and only a list may")
        default_raw = spec.get("default", [] if vtype.kind is Kind.LIST else None)
        _, default = read_value(d.err, (*where, "default"), default_raw, vtype, "default")
        d.outcomes[name] = OutcomeSpec(name, vtype, default, combine, spec.get("description", ""), d.line(where),
                                       spec.get("internal", False))
        d.names[name] = NameInfo(vtype, "outcome")
    _check_headline(d, doc)


def _check_headline(d: Declared, doc: dict[str, Any]) -> None:
    """`headline` names the outcome that sums up a decision: a declared, public outcome with one value."""
    headline = doc.get("headline")
    if headline is None:
        return
    spec = d.outcomes.get(headline)
    if spec is None:
        if headline not in doc.get("outcomes", {}):  # else the outcome's own problem is reported already
            d.err(("headline",), f"headline {headline!r} is not a declared outcome; declared: {listing(d.outcomes)}")
    elif spec.internal:
        d.err(("headline",), f"headline {headline!r} is an internal outcome: it must be part of the public outcome")
    elif spec.type.kind is Kind.LIST:
        d.err(("headline",), f"headline {headline!r} is a list: it must be an outcome with one value")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
