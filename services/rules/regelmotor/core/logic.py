"""The expression sections of a ruleset source: derived values, rules (with exceptions) and constraints.

Expressions are parsed and type-checked against what `declarations` declared; cycles between
derived values and outcomes, and between exceptions (`unntak_fra`), are reported with the names on
the cycle, since either would make evaluation impossible.
"""

from __future__ import annotations

import re
from typing import Any

from . import expressions as ex
from . import shapes
from .declarations import Declared, listing
from .graphs import dependency_order, exception_cycle, find_cycle
from .literals import read_value
from .model import Combine, Constraint, Derived, Rule
from .typecheck import ExpressionTypeError, NameInfo, TypeChecker
from .types import STRING, Kind, ValueType
from .wording import WORDED_FIELDS, placeholders, stated_numbers
from .yamlsource import Path as YPath

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def parse_expression(d: Declared, where: YPath, text: str) -> ex.Expr | None:
    try:
        return ex.parse(text)
    except ex.ExpressionSyntaxError as exc:
        d.report.error(where, str(exc), exc.line - 1)
        return None


def _checked_condition(d: Declared, where: YPath, text: str) -> ex.Expr | None:
    condition = parse_expression(d, where, text)
    if condition is None:
        return None
    try:
        TypeChecker(d.names, d).check_condition(condition)
    except ExpressionTypeError as exc:
        d.err(where, str(exc))
        return None
    return condition


# --- derived values ---------------------------------------------------------------------------


def read_derived(d: Declared, doc: dict[str, Any]) -> dict[str, Derived]:
    """Derived values in dependency order; a derived value may read another (cycles are reported)."""
    parsed: dict[str, tuple[ex.Expr, str, str]] = {}
    for name, where, raw in d.entries(doc, "derived"):
        if isinstance(raw, str):
            spec: dict[str, Any] | None = {"expr": raw}
            expr_where = where
        else:
            spec = shapes.check(raw, shapes.DERIVED, where, repr(name), d.err)
            expr_where = (*where, "expr")
        if spec is None or "expr" not in spec or not d.ident(where, name, "derived value"):
            continue
        expr = parse_expression(d, expr_where, spec["expr"])
        if expr is not None:
            parsed[name] = (expr, spec["expr"], spec.get("description", ""))
            d.names[name] = NameInfo(STRING, "derived")  # placeholder until typed below
    order, cyclic = dependency_order({name: expr.names() for name, (expr, _, _) in parsed.items()})
    derived: dict[str, Derived] = {}
    for name in order:
        expr, text, description = parsed[name]
        if any(dep in parsed and dep not in derived and dep != name for dep in expr.names()):
            continue  # reads a derived value that could not be typed (already reported)
        where = ("derived", name)
        try:
            vtype = TypeChecker(d.names, d).infer(expr)
        except ExpressionTypeError as exc:
            d.err(where, str(exc))
            continue
        d.names[name] = NameInfo(vtype, "derived")
        derived[name] = Derived(name, expr, text.strip(), vtype, description, tuple(sorted(expr.names())),
                                d.line(where))
    if cyclic:
        cycle = find_cycle({name: parsed[name][0].names() for name in cyclic})
        d.err(("derived", cycle[0]), "derived-value cycle: " + " → ".join(cycle))
    return derived


# --- rules ------------------------------------------------------------------------------------


def read_rules(d: Declared, doc: dict[str, Any]) -> list[Rule]:
    raw = doc.get("rules")
    if not raw:
        d.err(("rules",) if "rules" in doc else (), "a ruleset needs `rules`: a list of rules")
        return []
    rules: list[Rule] = []
    seen: dict[str, int] = {}  # rule id -> index in the file
    bases: dict[str, str | None] = {}  # rule id -> the rule it is an exception to
    for index, raw_rule in enumerate(raw):
        where: YPath = ("rules", index)
        spec = shapes.check(raw_rule, shapes.RULE, where, "", d.err)
        if spec is None or "id" not in spec:
            continue
        rule_id = spec["id"]
        if not _RULE_ID.match(rule_id):
            d.err((*where, "id"), f"rule id {rule_id!r} must be lower-case letters, digits, '_', '-' or '.'")
            continue
        if rule_id in seen:
            d.err((*where, "id"), f"duplicate rule id {rule_id!r} (first used in rule {seen[rule_id] + 1})")
            continue
        seen[rule_id] = index
        bases[rule_id] = spec.get("unntak_fra")
        rule = _rule(d, where, rule_id, spec)
        if rule is not None:
            rules.append(rule)
    _check_exceptions(d, seen, bases)
    return rules


def _rule(d: Declared, where: YPath, rule_id: str, spec: dict[str, Any]) -> Rule | None:
    hjemmel = d.hjemmel_refs((*where, "hjemmel"), spec.get("hjemmel"))
    if "title" in spec and not spec["title"].strip():
        d.err((*where, "title"), f"rule {rule_id!r} needs a title")
    text = spec.get("when")
    if text is None:
        return None  # reported by the shape check
    condition = _checked_condition(d, (*where, "when"), text)
    if condition is None:
        return None
    effects = _effects(d, where, rule_id, spec.get("then", {}))
    _check_wording(d, where, rule_id, spec)
    reason = spec.get("manuell_vurdering")
    if reason is not None and not reason.strip():
        d.err((*where, "manuell_vurdering"), "manuell_vurdering must be a reason (text)")
    if not spec.get("then") and reason is None and not spec.get("begrunnelse"):
        d.err(where, f"rule {rule_id!r} has no effect: give `then`, `manuell_vurdering` or `begrunnelse`")
    return Rule(rule_id, spec.get("title", ""), hjemmel, condition, " ".join(text.split()), effects,
                spec.get("unntak_fra"), spec.get("prioritet", 0), reason, spec.get("begrunnelse"), d.line(where))


def _check_wording(d: Declared, where: YPath, rule_id: str, spec: dict[str, Any]) -> None:
    """Each `{name}` in the title or begrunnelse is a parameter; a number a parameter holds, stated as it is, is
    a warning (the text goes stale when the parameter changes)."""
    for key in WORDED_FIELDS:
        text = spec.get(key)
        for name in placeholders(text):
            if name not in d.parameters:
                d.err((*where, key), f"{{{name}}} in the {key} of rule {rule_id!r} is not a parameter; "
                                     f"parameters: {listing(d.parameters)}")
        for stated in stated_numbers(text, d.parameters):
            d.report.warn((*where, key), (
                f"the {key} of rule {rule_id!r} states {stated.text}, a value of parameter {stated.parameter!r} "
                f"(from {stated.gyldig_fra}); write {{{stated.parameter}}} instead, so that it shows the value in "
                "force and does not go stale when the parameter changes"))


def _check_exceptions(d: Declared, index_of: dict[str, int], bases: dict[str, str | None]) -> None:
    """Every `unntak_fra` names another rule, and following them never comes back to a rule."""
    linked: dict[str, str | None] = {}
    for rule_id, base in bases.items():
        where: YPath = ("rules", index_of[rule_id], "unntak_fra")
        if base is None:
            linked[rule_id] = None
        elif base not in index_of:
            d.err(where, f"unntak_fra names a missing rule {base!r}")
        elif base == rule_id:
            d.err(where, "a rule cannot be an exception to itself")
        else:
            linked[rule_id] = base
    cycle = exception_cycle(linked)
    if cycle:
        d.err(("rules", index_of[cycle[0]], "unntak_fra"),
              "exceptions form a cycle (each is an exception to the next): " + " → ".join(cycle))


def _effects(d: Declared, where: YPath, rule_id: str, then: dict[str, Any]) -> dict[str, ex.Expr]:
    effects: dict[str, ex.Expr] = {}
    for field, value in then.items():
        field_where: YPath = (*where, "then", field)
        spec = d.outcomes.get(field)
        if spec is None:
            d.err(field_where, f"rule {rule_id!r} sets unknown outcome {field!r}; declare it under outcomes")
            continue
        target = spec.type.item if spec.combine is Combine.COLLECT and spec.type.item else spec.type
        if isinstance(value, str) and value.startswith("="):
            ref = value[1:].strip()
            info = d.names.get(ref)
            if info is None:
                d.err(field_where, f"unknown fact or value {ref!r} in `{value}`")
            elif not assignable(info.type, target):
                d.err(field_where, f"type mismatch: {field} is {target}, {ref} is {info.type}")
            else:
                effects[field] = ex.Name(0, 1, ref)
            continue
        ok, converted = read_value(d.err, field_where, value, target, f"value for {field}")
        if ok:
            effects[field] = ex.Literal(0, 1, converted)
    return effects


def assignable(source: ValueType, target: ValueType) -> bool:
    if source.kind is Kind.INT and target.kind is Kind.DECIMAL:
        return True
    if source.kind is Kind.ENUM and target.kind is Kind.STRING:
        return True
    if source.kind is Kind.ENUM and target.kind is Kind.ENUM:
        return set(source.values) <= set(target.values)
    return source.kind == target.kind and (source.kind is not Kind.LIST or source.item == target.item)


# --- constraints and cycles -------------------------------------------------------------------


def read_constraints(d: Declared, doc: dict[str, Any], derived: dict[str, Derived]) -> list[Constraint]:
    reads_outcomes = _reading_outcomes(d, derived)
    out: list[Constraint] = []
    ids: set[str] = set()
    for index, raw in enumerate(doc.get("constraints", [])):
        where: YPath = ("constraints", index)
        spec = shapes.check(raw, shapes.CONSTRAINT, where, "", d.err)
        if spec is None or any(key not in spec for key in ("id", "when", "field", "message")):
            continue
        if spec["id"] in ids:
            d.err((*where, "id"), f"duplicate constraint id {spec['id']!r}")
            continue
        ids.add(spec["id"])
        if spec["field"] not in d.facts:
            d.err((*where, "field"), f"constraint field {spec['field']!r} is not a fact; facts: {listing(d.facts)}")
        condition = _checked_condition(d, (*where, "when"), spec["when"])
        if condition is None:
            continue
        for name in sorted(condition.names() & reads_outcomes):
            d.err((*where, "when"), f"a constraint checks input only; {name!r} depends on rule outcomes")
        out.append(Constraint(spec["id"], condition, " ".join(spec["when"].split()), spec["field"], spec["message"],
                              d.line(where)))
    return out


def _reading_outcomes(d: Declared, derived: dict[str, Derived]) -> set[str]:
    """Outcomes, and the derived values that read one (directly or through others)."""
    found = set(d.outcomes)
    for name in derived:  # dependency order: what a derived value reads is decided before it
        if any(dep in found for dep in derived[name].reads if dep != name):
            found.add(name)
    return found


def check_cycles(d: Declared, derived: dict[str, Derived], rules: list[Rule]) -> None:
    graph: dict[str, set[str]] = {name: set(item.reads) for name, item in derived.items()}
    for rule in rules:
        reads = rule.condition.names() | {e.name for e in rule.effects.values() if isinstance(e, ex.Name)}
        for field in rule.effects:
            graph.setdefault(field, set()).update(reads)
    cycle = find_cycle(graph)
    if cycle:
        first = cycle[0]
        where: YPath = ("derived", first) if first in derived else ("outcomes", first)
        d.err(where, "cycle between derived values and outcomes: " + " → ".join(cycle))
