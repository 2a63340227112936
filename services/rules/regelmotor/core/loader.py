"""Load one ruleset version file into the validated model, or report every problem with its line.

The file format is documented in docs/ruleset-format.md. Problems are collected, not raised one at a
time, so an author sees all of them in one run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import expressions as ex
from .errors import Diagnostic, RulesetInvalid
from .hashing import canonical_sha256
from .limits import MAX_ITEMS_CEILING, MAX_LENGTH_CEILING
from .model import (
    Combine,
    Constraint,
    Derived,
    FactSpec,
    Hjemmel,
    Metadata,
    OutcomeSpec,
    Parameter,
    ParameterValue,
    Rule,
    Ruleset,
    Status,
    Table,
)
from .typecheck import ExpressionTypeError, NameInfo, TypeChecker, literal_type
from .types import BOOL, DATE, DATETIME, DECIMAL, INT, STRING, Kind, ValueType, list_of
from .yamlsource import Located, YamlProblem, load_located
from .yamlsource import Path as YPath

BUILTIN_NAMES = {"as_of": NameInfo(DATE, "builtin")}
_RESERVED = {"sid", "id", "as_of"}
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")
_LEGAL_ID = re.compile(r"^(LOV|FOR)-\d{4}-\d{2}-\d{2}-\d+$")
_SCALAR_TYPES = {"bool": BOOL, "int": INT, "decimal": DECIMAL, "string": STRING, "date": DATE,
                 "datetime": DATETIME}
_TOP_KEYS = {"name", "version", "title", "description", "status", "gyldig_fra", "gyldig_til", "selected_by",
             "allow_gap_before", "notes", "hjemler", "facts", "parameters", "tables", "derived", "rules",
             "outcomes", "constraints"}


class _Reporter:
    def __init__(self, path: str, located: Located) -> None:
        self.path = path
        self.located = located
        self.diagnostics: list[Diagnostic] = []

    def error(self, where: YPath, message: str, line_offset: int = 0, column: int | None = None) -> None:
        line, col = self.located.where(where)
        self.diagnostics.append(Diagnostic(self.path, line + line_offset, column or col, message))


def load_ruleset_file(path: str | Path) -> Ruleset:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesetInvalid([Diagnostic(str(file), 1, 1, f"cannot read file: {exc.strerror}")]) from None
    return load_ruleset_text(text, str(file))


def load_ruleset_text(text: str, path: str = "<ruleset>") -> Ruleset:
    try:
        located = load_located(text)
    except YamlProblem as exc:
        raise RulesetInvalid([Diagnostic(path, exc.line, exc.column, str(exc))]) from None
    if not isinstance(located.data, dict):
        raise RulesetInvalid([Diagnostic(path, 1, 1, "a ruleset file must be a mapping of sections")])
    return _Builder(path, located).build()


class _Builder:
    def __init__(self, path: str, located: Located) -> None:
        self.doc: dict[str, Any] = located.data
        self.report = _Reporter(path, located)
        self.path = path
        self.hjemler: dict[str, Hjemmel] = {}
        self.facts: dict[str, FactSpec] = {}
        self.parameters: dict[str, Parameter] = {}
        self.tables: dict[str, Table] = {}
        self.outcomes: dict[str, OutcomeSpec] = {}
        self.names: dict[str, NameInfo] = dict(BUILTIN_NAMES)

    # Scope protocol for the vocabulary's type checks.
    def parameter(self, name: str) -> Parameter | None:
        return self.parameters.get(name)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def err(self, where: YPath, message: str) -> None:
        self.report.error(where, message)

    def build(self) -> Ruleset:
        for key in self.doc:
            if key not in _TOP_KEYS:
                self.err((key,), f"unknown section {key!r}; sections are: {', '.join(sorted(_TOP_KEYS))}")
        meta = self._metadata()
        self._hjemler()
        self._tables()
        self._facts()
        self._parameters()
        self._outcomes_declared()
        derived = self._derived()
        rules = self._rules()
        constraints = self._constraints(derived)
        self._cycles(derived, rules)
        if self.report.diagnostics or meta is None:
            raise RulesetInvalid(self.report.diagnostics)
        ordered = _order_derived(derived)
        sha, canonical = canonical_sha256(self.doc)
        return Ruleset(meta, self.hjemler, self.facts, self.parameters, self.tables, ordered, tuple(rules),
                       self.outcomes, tuple(constraints), sha, self.path, canonical)

    # --- metadata ---------------------------------------------------------------------------------

    def _metadata(self) -> Metadata | None:
        doc = self.doc
        ok = True
        for key in ("name", "version", "title", "status", "gyldig_fra"):
            if key not in doc:
                self.err((), f"missing required key {key!r}")
                ok = False
        if not ok:
            return None
        name, version = str(doc["name"]), str(doc["version"])
        if not re.match(r"^[a-z][a-z0-9-]*$", name):
            self.err(("name",), f"ruleset name {name!r} must be lower-case letters, digits and '-'")
        if not _VERSION.match(version):
            self.err(("version",), f"version {version!r} must be letters, digits, '.', '_' or '-'")
        status = doc["status"]
        if status not in {s.value for s in Status}:
            self.err(("status",), f"status must be draft or published, not {status!r}")
            return None
        gyldig_fra = self._date(("gyldig_fra",), doc["gyldig_fra"])
        gyldig_til = self._date(("gyldig_til",), doc["gyldig_til"]) if doc.get("gyldig_til") is not None else None
        if gyldig_fra and gyldig_til and gyldig_til < gyldig_fra:
            self.err(("gyldig_til",), f"gyldig_til {gyldig_til} is before gyldig_fra {gyldig_fra}")
        notes = doc.get("notes") or []
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            self.err(("notes",), "notes must be a list of texts")
            notes = []
        if gyldig_fra is None:
            return None
        return Metadata(name, version, str(doc["title"]), Status(status), gyldig_fra, gyldig_til,
                        doc.get("selected_by"), bool(doc.get("allow_gap_before", False)),
                        str(doc.get("description", "")), tuple(notes),
                        {k: self.report.located.where((k,))[0] for k in ("name", "version", "gyldig_fra",
                                                                       "gyldig_til", "selected_by", "status")})

    def _date(self, where: YPath, value: Any) -> date | None:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                self.err(where, f"impossible date {value!r}")
                return None
        self.err(where, f"expected a date YYYY-MM-DD, got {value!r}")
        return None

    def _mapping(self, where: YPath, value: Any, what: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(where, f"{what} must be a mapping")
            return {}
        return value

    def _ident(self, where: YPath, name: str, what: str) -> bool:
        if name in _RESERVED:
            self.err(where, f"{what} name {name!r} is reserved by the engine")
            return False
        if not _IDENT.match(name):
            self.err(where, f"{what} name {name!r} must be lower-case ASCII letters, digits and '_' (æ→ae, ø→o, å→a)")
            return False
        if name in self.names:
            self.err(where, f"{what} name {name!r} is already used by a {self.names[name].kind}")
            return False
        return True

    # --- hjemler --------------------------------------------------------------------------------

    def _hjemler(self) -> None:
        allowed = {"kilde", "navn", "kapittel", "paragraf", "ledd", "punktum", "bokstav", "i_kraft", "url", "verified",
                   "merknad"}
        for hid, spec in self._mapping(("hjemler",), self.doc.get("hjemler"), "hjemler").items():
            where = ("hjemler", hid)
            if not isinstance(spec, dict):
                self.err(where, f"hjemmel {hid!r} must be a mapping")
                continue
            for key in spec:
                if key not in allowed:
                    self.err((*where, key), f"unknown key {key!r} in hjemmel; allowed: {', '.join(sorted(allowed))}")
            kilde = spec.get("kilde")
            if not isinstance(kilde, str) or not kilde:
                self.err(where, f"hjemmel {hid!r} needs `kilde` (e.g. LOV-1999-07-02-63)")
                continue
            if kilde.startswith(("LOV", "FOR")) and not _LEGAL_ID.match(kilde):
                self.err((*where, "kilde"), f"{kilde!r} is not a Lovdata id like LOV-1999-07-02-63")
            if "verified" not in spec or not isinstance(spec["verified"], bool):
                self.err(where, f"hjemmel {hid!r} must say `verified: true` or `verified: false`")
            i_kraft = self._date((*where, "i_kraft"), spec["i_kraft"]) if spec.get("i_kraft") else None
            ledd = spec.get("ledd")
            if ledd is not None and not isinstance(ledd, int):
                self.err((*where, "ledd"), "ledd must be a whole number")
                ledd = None
            self.hjemler[hid] = Hjemmel(
                hid, kilde, spec.get("navn"), _opt_str(spec.get("kapittel")), _opt_str(spec.get("paragraf")), ledd,
                spec.get("punktum"),
                _opt_str(spec.get("bokstav")), i_kraft, spec.get("url"), bool(spec.get("verified")),
                spec.get("merknad"),
            )

    def _hjemmel_refs(self, where: YPath, value: Any) -> tuple[str, ...]:
        refs = [value] if isinstance(value, str) else value
        if not isinstance(refs, list) or not refs:
            self.err(where, "hjemmel must name one or more entries of `hjemler`")
            return ()
        for ref in refs:
            if ref not in self.hjemler:
                self.err(where, f"unknown hjemmel {ref!r}; declared: {', '.join(self.hjemler) or 'none'}")
        return tuple(str(r) for r in refs)

    # --- types ----------------------------------------------------------------------------------

    def _type(self, where: YPath, spec: dict[str, Any]) -> ValueType | None:
        kind = spec.get("type")
        if kind in _SCALAR_TYPES:
            return _SCALAR_TYPES[kind]
        if kind == "enum":
            values = spec.get("values")
            source = spec.get("values_from")
            if source is not None:
                table = self.tables.get(source)
                if table is None:
                    self.err((*where, "values_from"), f"no table named {source!r}")
                    return None
                return ValueType(Kind.ENUM, tuple(table.rows))
            if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
                self.err(where, "an enum needs `values`: a list of texts (or `values_from: <table>`)")
                return None
            if len(set(values)) != len(values):
                self.err((*where, "values"), "enum values repeat")
            return ValueType(Kind.ENUM, tuple(values))
        if kind == "list":
            items = spec.get("items")
            if not isinstance(items, dict):
                self.err(where, "a list needs `items: {type: ...}`")
                return None
            item = self._type((*where, "items"), items)
            if item is None:
                return None
            if item.kind is Kind.LIST:
                self.err((*where, "items"), "lists of lists are not supported; keep facts flat")
                return None
            return list_of(item)
        known = ", ".join([*_SCALAR_TYPES, "enum", "list"])
        self.err((*where, "type") if "type" in spec else where, f"unknown type {kind!r}; types are: {known}")
        return None

    def _value(self, where: YPath, value: Any, vtype: ValueType, what: str) -> tuple[bool, Any]:
        """Check a literal from the file against a type; returns (ok, value converted)."""
        if value is None:
            return True, None
        kind = vtype.kind
        if kind is Kind.LIST:
            if not isinstance(value, list):
                self.err(where, f"{what} must be a list")
                return False, None
            assert vtype.item is not None
            converted = [self._value((*where, i), v, vtype.item, what) for i, v in enumerate(value)]
            return all(ok for ok, _ in converted), [v for _, v in converted]
        if kind is Kind.DATE:
            parsed = self._date(where, value)
            return parsed is not None, parsed
        if kind is Kind.DATETIME:
            if isinstance(value, datetime) and value.tzinfo is not None:
                return True, value
            self.err(where, f"{what} must be a datetime with a UTC offset")
            return False, None
        checks: dict[Kind, Callable[[Any], bool]] = {
            Kind.BOOL: lambda v: isinstance(v, bool),
            Kind.INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
            Kind.DECIMAL: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            Kind.STRING: lambda v: isinstance(v, str),
            Kind.ENUM: lambda v: isinstance(v, str) and v in vtype.values,
        }
        if not checks[kind](value):
            expected = f"one of: {', '.join(vtype.values)}" if kind is Kind.ENUM else str(vtype)
            self.err(where, f"{what} {value!r} does not match type {vtype} (expected {expected})")
            return False, None
        if kind is Kind.DECIMAL:
            return True, Decimal(str(value))
        return True, value

    # --- tables ---------------------------------------------------------------------------------

    def _tables(self) -> None:
        for name, spec in self._mapping(("tables",), self.doc.get("tables"), "tables").items():
            where: YPath = ("tables", name)
            if not isinstance(spec, dict) or not _IDENT.match(name):
                self.err(where, f"table {name!r} must be a mapping with a lower-case name")
                continue
            key = spec.get("key")
            columns: dict[str, ValueType] = {}
            for col, col_spec in self._mapping((*where, "columns"), spec.get("columns"), "columns").items():
                col_type = self._type((*where, "columns", col), col_spec if isinstance(col_spec, dict) else {})
                if col_type is not None:
                    columns[col] = col_type
            rows: dict[str, dict[str, Any]] = {}
            raw_rows = spec.get("rows")
            if not isinstance(key, str) or not isinstance(raw_rows, list):
                self.err(where, f"table {name!r} needs `key` (a column name) and `rows` (a list)")
                continue
            for index, row in enumerate(raw_rows):
                row_where: YPath = (*where, "rows", index)
                if not isinstance(row, dict) or key not in row:
                    self.err(row_where, f"each row of {name!r} must be a mapping with its key {key!r}")
                    continue
                row_key = str(row[key])
                if row_key in rows:
                    self.err(row_where, f"table {name!r}: duplicate key {row_key!r}")
                values: dict[str, Any] = {}
                for col, cell in row.items():
                    if col == key:
                        continue
                    if col not in columns:
                        self.err((*row_where, col), f"table {name!r} has no column {col!r}")
                        continue
                    _, values[col] = self._value((*row_where, col), cell, columns[col], f"cell {col}")
                rows[row_key] = {col: values.get(col) for col in columns}
            self.tables[name] = Table(name, key, columns, rows, str(spec.get("description", "")),
                                      str(spec.get("source", "")))

    # --- facts ----------------------------------------------------------------------------------

    def _facts(self) -> None:
        allowed = {"type", "values", "values_from", "items", "required", "default", "description", "min", "max",
                   "pattern", "max_items", "max_length"}
        for name, spec in self._mapping(("facts",), self.doc.get("facts"), "facts").items():
            where: YPath = ("facts", name)
            if not isinstance(spec, dict):
                self.err(where, f"fact {name!r} must be a mapping with at least `type`")
                continue
            if not self._ident(where, name, "fact"):
                continue
            for key in spec:
                if key not in allowed:
                    self.err((*where, key), f"unknown key {key!r} for a fact; allowed: {', '.join(sorted(allowed))}")
            vtype = self._type(where, spec)
            if vtype is None:
                continue
            required = spec.get("required", False)
            if not isinstance(required, bool):
                self.err((*where, "required"), "required must be true or false")
            default: Any = [] if vtype.kind is Kind.LIST else None
            if "default" in spec:
                if required:
                    self.err((*where, "default"), f"fact {name!r} is required, so it cannot have a default")
                _, default = self._value((*where, "default"), spec["default"], vtype, "default")
            bounds: list[Any] = []
            for bound in ("min", "max"):
                _, value = self._value((*where, bound), spec.get(bound), vtype, bound)
                bounds.append(value)
            pattern = spec.get("pattern")
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    self.err((*where, "pattern"), f"pattern is not a regular expression: {exc}")
            max_items = self._size_limit(where, spec, "max_items", vtype.kind is Kind.LIST, MAX_ITEMS_CEILING)
            texts = vtype.item if vtype.kind is Kind.LIST else vtype
            max_length = self._size_limit(where, spec, "max_length", texts is not None and texts.kind is Kind.STRING,
                                          MAX_LENGTH_CEILING)
            self.facts[name] = FactSpec(name, vtype, bool(required), default, str(spec.get("description", "")),
                                        bounds[0], bounds[1], pattern, spec.get("values_from"),
                                        self.report.located.where(where)[0], max_items, max_length)
            self.names[name] = NameInfo(vtype, "fact")
        selected_by = self.doc.get("selected_by")
        if selected_by is not None:
            fact = self.facts.get(selected_by)
            if fact is None or fact.type.kind is not Kind.DATE or not fact.required:
                self.err(("selected_by",), f"selected_by must name a required date fact, not {selected_by!r}")

    def _size_limit(self, where: YPath, spec: dict[str, Any], key: str, applies: bool, ceiling: int) -> int | None:
        """A fact's declared `max_items` or `max_length`: a whole number from 1 up to the engine's ceiling."""
        value = spec.get(key)
        if value is None:
            return None
        if not applies:
            what = "a list fact" if key == "max_items" else "a string fact or a list of strings"
            self.err((*where, key), f"{key} is only for {what}")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ceiling:
            self.err((*where, key), f"{key} must be a whole number from 1 to {ceiling}, got {value!r}")
            return None
        return value

    # --- parameters -----------------------------------------------------------------------------

    def _parameters(self) -> None:
        for name, spec in self._mapping(("parameters",), self.doc.get("parameters"), "parameters").items():
            where: YPath = ("parameters", name)
            if not isinstance(spec, dict) or not _IDENT.match(name):
                self.err(where, f"parameter {name!r} must be a mapping with a lower-case name")
                continue
            vtype = self._type(where, spec)
            for key in ("unit", "source"):
                if not spec.get(key):
                    self.err(where, f"parameter {name!r} needs `{key}`")
            raw_values = spec.get("values")
            if vtype is None or not isinstance(raw_values, list) or not raw_values:
                self.err(where, f"parameter {name!r} needs `values`: a list of {{gyldig_fra, value}}")
                continue
            values: list[ParameterValue] = []
            for index, item in enumerate(raw_values):
                item_where: YPath = (*where, "values", index)
                if not isinstance(item, dict) or "gyldig_fra" not in item or "value" not in item:
                    self.err(item_where, "each value needs `gyldig_fra` and `value` (null for a declared gap)")
                    continue
                start = self._date((*item_where, "gyldig_fra"), item["gyldig_fra"])
                ok, value = self._value((*item_where, "value"), item["value"], vtype, "value")
                if start is not None and ok:
                    values.append(ParameterValue(start, value, item.get("note")))
            starts = [v.gyldig_fra for v in values]
            if starts != sorted(starts) or len(set(starts)) != len(starts):
                self.err((*where, "values"), f"parameter {name!r}: gyldig_fra dates must increase, without repeats")
            hjemmel = self._hjemmel_refs((*where, "hjemmel"), spec["hjemmel"]) if "hjemmel" in spec else ()
            self.parameters[name] = Parameter(name, vtype, str(spec.get("unit", "")),
                                              str(spec.get("description", "")), str(spec.get("source", "")),
                                              tuple(values), hjemmel)

    # --- outcomes -------------------------------------------------------------------------------

    def _outcomes_declared(self) -> None:
        for name, spec in self._mapping(("outcomes",), self.doc.get("outcomes"), "outcomes").items():
            where: YPath = ("outcomes", name)
            if not isinstance(spec, dict):
                self.err(where, f"outcome {name!r} must be a mapping with `type`")
                continue
            if not self._ident(where, name, "outcome"):
                continue
            vtype = self._type(where, spec)
            if vtype is None:
                continue
            combine_text = spec.get("combine", "unique")
            if combine_text not in {c.value for c in Combine}:
                self.err((*where, "combine"), f"combine must be one of: {', '.join(c.value for c in Combine)}")
                continue
            combine = Combine(combine_text)
            if combine in (Combine.ANY, Combine.ALL) and vtype.kind is not Kind.BOOL:
                self.err((*where, "combine"), f"combine {combine.value} needs a bool outcome, not {vtype}")
            if combine in (Combine.MIN, Combine.MAX) and not (vtype.is_numeric or vtype.kind is Kind.DATE):
                self.err((*where, "combine"), f"combine {combine.value} needs a number or date outcome")
            if (combine is Combine.COLLECT) != (vtype.kind is Kind.LIST):
                self.err((*where, "combine"), "a list outcome must use combine: collect, and only a list may")
            default_raw = spec.get("default", [] if vtype.kind is Kind.LIST else None)
            _, default = self._value((*where, "default"), default_raw, vtype, "default")
            self.outcomes[name] = OutcomeSpec(name, vtype, default, combine, str(spec.get("description", "")),
                                              self.report.located.where(where)[0], bool(spec.get("internal", False)))
            self.names[name] = NameInfo(vtype, "outcome")

    # --- derived values -------------------------------------------------------------------------

    def _derived(self) -> dict[str, Derived]:
        raw = self._mapping(("derived",), self.doc.get("derived"), "derived")
        parsed: dict[str, tuple[ex.Expr, str, str]] = {}
        for name, spec in raw.items():
            where: YPath = ("derived", name)
            text, description = (spec, "") if isinstance(spec, str) else (
                (spec.get("expr"), str(spec.get("description", ""))) if isinstance(spec, dict) else (None, ""))
            if not isinstance(text, str):
                self.err(where, f"derived value {name!r} needs an expression (`expr:`)")
                continue
            if not self._ident(where, name, "derived value"):
                continue
            expr = self._parse((*where, "expr") if isinstance(spec, dict) else where, text)
            if expr is not None:
                parsed[name] = (expr, text, description)
                self.names[name] = NameInfo(STRING, "derived")  # placeholder until typed below
        derived: dict[str, Derived] = {}
        # Type in dependency order so a derived value may read another; cycles are reported later.
        pending = dict(parsed)
        while pending:
            progressed = False
            for name, (expr, text, description) in list(pending.items()):
                deps = {n for n in expr.names() if n in pending and n != name}
                if deps:
                    continue
                progressed = True
                del pending[name]
                where = ("derived", name)
                try:
                    vtype = TypeChecker(self.names, self).infer(expr)
                except ExpressionTypeError as exc:
                    self._expr_error(where, text, exc)
                    continue
                self.names[name] = NameInfo(vtype, "derived")
                derived[name] = Derived(name, expr, text.strip(), vtype, description,
                                        tuple(sorted(_value_names(expr))), self.report.located.where(where)[0])
            if not progressed:
                cycle = _find_cycle({n: {d for d in e.names() if d in pending} for n, (e, _, _) in pending.items()})
                self.err(("derived", cycle[0]), "derived-value cycle: " + " → ".join(cycle))
                break
        return derived

    # --- rules ----------------------------------------------------------------------------------

    def _rules(self) -> list[Rule]:
        raw = self.doc.get("rules")
        if not isinstance(raw, list) or not raw:
            self.err(("rules",) if "rules" in self.doc else (), "a ruleset needs `rules`: a list of rules")
            return []
        allowed = {"id", "title", "hjemmel", "when", "then", "unntak_fra", "prioritet", "manuell_vurdering",
                   "begrunnelse"}
        rules: list[Rule] = []
        seen: dict[str, int] = {}
        for index, spec in enumerate(raw):
            where: YPath = ("rules", index)
            if not isinstance(spec, dict):
                self.err(where, "each rule must be a mapping")
                continue
            for key in spec:
                if key not in allowed:
                    self.err((*where, key), f"unknown key {key!r} in rule; allowed: {', '.join(sorted(allowed))}")
            rule_id = spec.get("id")
            if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
                self.err(where, f"rule id {rule_id!r} must be lower-case letters, digits, '_', '-' or '.'")
                continue
            if rule_id in seen:
                self.err((*where, "id"), f"duplicate rule id {rule_id!r} (first used in rule {seen[rule_id] + 1})")
                continue
            seen[rule_id] = index
            if not spec.get("title"):
                self.err(where, f"rule {rule_id!r} needs a title")
            hjemmel = self._hjemmel_refs((*where, "hjemmel"), spec.get("hjemmel"))
            text = spec.get("when")
            if not isinstance(text, str):
                self.err(where, f"rule {rule_id!r} needs `when`: a condition")
                continue
            condition = self._parse((*where, "when"), text)
            if condition is None:
                continue
            try:
                TypeChecker(self.names, self).check_condition(condition)
            except ExpressionTypeError as exc:
                self._expr_error((*where, "when"), text, exc)
                continue
            effects = self._effects(where, rule_id, spec.get("then"))
            reason = spec.get("manuell_vurdering")
            if reason is not None and (not isinstance(reason, str) or not reason.strip()):
                self.err((*where, "manuell_vurdering"), "manuell_vurdering must be a reason (text)")
            if not spec.get("then") and reason is None and not spec.get("begrunnelse"):
                self.err(where, f"rule {rule_id!r} has no effect: give `then`, `manuell_vurdering` or `begrunnelse`")
            prioritet = spec.get("prioritet", 0)
            if not isinstance(prioritet, int):
                self.err((*where, "prioritet"), "prioritet must be a whole number")
                prioritet = 0
            rules.append(Rule(rule_id, str(spec.get("title", "")), hjemmel, condition, " ".join(text.split()),
                              effects, spec.get("unntak_fra"), prioritet, reason, spec.get("begrunnelse"),
                              self.report.located.where(where)[0]))
        ids = {r.id for r in rules}
        for index, spec in enumerate(raw):
            base = spec.get("unntak_fra") if isinstance(spec, dict) else None
            if base is not None and base not in ids:
                self.err(("rules", index, "unntak_fra"), f"unntak_fra names a missing rule {base!r}")
            elif base is not None and base == spec.get("id"):
                self.err(("rules", index, "unntak_fra"), "a rule cannot be an exception to itself")
        return rules

    def _constraints(self, derived: dict[str, Derived]) -> list[Constraint]:
        raw = self.doc.get("constraints") or []
        if not isinstance(raw, list):
            self.err(("constraints",), "constraints must be a list")
            return []
        out: list[Constraint] = []
        for index, spec in enumerate(raw):
            where: YPath = ("constraints", index)
            if not isinstance(spec, dict) or not all(isinstance(spec.get(k), str) for k in ("id", "when", "field",
                                                                                           "message")):
                self.err(where, "a constraint needs `id`, `when` (the condition that makes the input invalid), "
                                "`field` (the fact to name) and `message`")
                continue
            if spec["field"] not in self.facts:
                self.err((*where, "field"), f"constraint field {spec['field']!r} is not a fact")
            condition = self._parse((*where, "when"), spec["when"])
            if condition is None:
                continue
            try:
                TypeChecker(self.names, self).check_condition(condition)
            except ExpressionTypeError as exc:
                self._expr_error((*where, "when"), spec["when"], exc)
                continue
            for name in condition.names():
                info = self.names.get(name)
                reads_outcome = info is not None and info.kind == "outcome"
                if reads_outcome or (name in derived and _reads_outcomes(name, derived, self.outcomes)):
                    self.err((*where, "when"), f"a constraint checks input only; {name!r} depends on rule outcomes")
            out.append(Constraint(spec["id"], condition, " ".join(spec["when"].split()), spec["field"],
                                  spec["message"], self.report.located.where(where)[0]))
        return out

    def _effects(self, where: YPath, rule_id: str, raw: Any) -> dict[str, ex.Expr]:
        effects: dict[str, ex.Expr] = {}
        for field, value in self._mapping((*where, "then"), raw, "then").items():
            field_where: YPath = (*where, "then", field)
            spec = self.outcomes.get(field)
            if spec is None:
                self.err(field_where, f"rule {rule_id!r} sets unknown outcome {field!r}; declare it under outcomes")
                continue
            target = spec.type.item if spec.combine is Combine.COLLECT and spec.type.item else spec.type
            if isinstance(value, str) and value.startswith("="):
                ref = value[1:].strip()
                info = self.names.get(ref)
                if info is None:
                    self.err(field_where, f"unknown fact or value {ref!r} in `{value}`")
                    continue
                if not (_assignable(info.type, target)):
                    self.err(field_where, f"type mismatch: {field} is {target}, {ref} is {info.type}")
                    continue
                effects[field] = ex.Name(0, 1, ref)
                continue
            ok, converted = self._value(field_where, value, target, f"value for {field}")
            if ok:
                effects[field] = ex.Literal(0, 1, converted)
        return effects

    # --- helpers --------------------------------------------------------------------------------

    def _parse(self, where: YPath, text: str) -> ex.Expr | None:
        try:
            return ex.parse(text)
        except ex.ExpressionSyntaxError as exc:
            self.report.error(where, str(exc), exc.line - 1)
            return None

    def _expr_error(self, where: YPath, text: str, exc: ExpressionTypeError) -> None:
        self.report.error(where, str(exc))

    def _cycles(self, derived: dict[str, Derived], rules: list[Rule]) -> None:
        graph: dict[str, set[str]] = {name: set(d.reads) for name, d in derived.items()}
        for rule in rules:
            reads = rule.condition.names() | {e.name for e in rule.effects.values() if isinstance(e, ex.Name)}
            for field in rule.effects:
                graph.setdefault(field, set()).update(reads)
        cycle = _find_cycle(graph)
        if cycle:
            first = cycle[0]
            where: YPath = ("derived", first) if first in derived else ("outcomes", first)
            self.err(where, "cycle between derived values and outcomes: " + " → ".join(cycle))


def _reads_outcomes(name: str, derived: dict[str, Derived], outcomes: dict[str, OutcomeSpec]) -> bool:
    item = derived.get(name)
    if item is None:
        return name in outcomes
    return any(_reads_outcomes(dep, derived, outcomes) for dep in item.reads if dep != name)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _assignable(source: ValueType, target: ValueType) -> bool:
    if source.kind is Kind.INT and target.kind is Kind.DECIMAL:
        return True
    if source.kind is Kind.ENUM and target.kind is Kind.STRING:
        return True
    if source.kind is Kind.ENUM and target.kind is Kind.ENUM:
        return set(source.values) <= set(target.values)
    return source.kind == target.kind and (source.kind is not Kind.LIST or source.item == target.item)


def _value_names(expr: ex.Expr) -> set[str]:
    """Names read by an expression, without the quoted data names (tables, parameters)."""
    return expr.names()


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return []


def _order_derived(derived: dict[str, Derived]) -> dict[str, Derived]:
    ordered: dict[str, Derived] = {}
    pending = dict(derived)
    while pending:
        for name, item in list(pending.items()):
            if not any(dep in pending for dep in item.reads if dep != name):
                ordered[name] = item
                del pending[name]
    return ordered


__all__ = ["literal_type", "load_ruleset_file", "load_ruleset_text"]
