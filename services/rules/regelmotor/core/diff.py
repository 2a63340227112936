"""What changed between two ruleset versions, in terms a reviewer reads: rules, parameters, schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .model import FactSpec, Rule, Ruleset
from .types import to_json_value


@dataclass
class RulesetDiff:
    a: str
    b: str
    metadata: list[str] = field(default_factory=list)
    rules_added: list[str] = field(default_factory=list)
    rules_removed: list[str] = field(default_factory=list)
    rules_changed: dict[str, list[str]] = field(default_factory=dict)
    parameters: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    hjemler: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any([self.metadata, self.rules_added, self.rules_removed, self.rules_changed, self.parameters,
                        self.facts, self.derived, self.outcomes, self.tables, self.hjemler, self.constraints])

    def lines(self) -> list[str]:
        out = [f"--- {self.a}", f"+++ {self.b}"]
        for title, items in (("metadata", self.metadata), ("facts (input schema)", self.facts),
                             ("parameters", self.parameters), ("tables", self.tables),
                             ("derived values", self.derived), ("outcomes", self.outcomes),
                             ("hjemler", self.hjemler), ("constraints", self.constraints)):
            if items:
                out.append(f"{title}:")
                out.extend(f"  {item}" for item in items)
        if self.rules_added or self.rules_removed or self.rules_changed:
            out.append("rules:")
            out.extend(f"  + {r}" for r in self.rules_added)
            out.extend(f"  - {r}" for r in self.rules_removed)
            for rule_id, changes in self.rules_changed.items():
                out.append(f"  ~ {rule_id}")
                out.extend(f"      {c}" for c in changes)
        if self.empty:
            out.append("no differences in meaning")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _compare_maps(kind: str, a: dict[str, Any], b: dict[str, Any], describe: Any) -> list[str]:
    out: list[str] = []
    for name in sorted(set(a) | set(b)):
        if name not in a:
            out.append(f"+ {kind} {name}: {describe(b[name])}")
        elif name not in b:
            out.append(f"- {kind} {name}")
        elif describe(a[name]) != describe(b[name]):
            out.append(f"~ {kind} {name}: {describe(a[name])} → {describe(b[name])}")
    return out


def _describe_fact(f: FactSpec) -> str:
    parts = [str(f.type)]
    if f.required:
        parts.append("required")
    for label, value in (("default", f.default), ("min", f.minimum), ("max", f.maximum), ("pattern", f.pattern),
                         ("max_items", f.max_items), ("max_length", f.max_length)):
        if value not in (None, []):
            parts.append(f"{label} {to_json_value(value)}")
    return " ".join(parts)


def _rule_changes(a: Rule, b: Rule) -> list[str]:
    changes: list[str] = []
    if a.condition_text != b.condition_text:
        changes.append(f"when: {a.condition_text} → {b.condition_text}")
    effects_a = {k: str(v) for k, v in a.effects.items()}
    effects_b = {k: str(v) for k, v in b.effects.items()}
    if effects_a != effects_b:
        changes.append(f"then: {effects_a} → {effects_b}")
    for attr in ("title", "hjemmel", "unntak_fra", "prioritet", "manuell_vurdering", "begrunnelse"):
        if getattr(a, attr) != getattr(b, attr):
            changes.append(f"{attr}: {getattr(a, attr)!r} → {getattr(b, attr)!r}")
    return changes


def diff_rulesets(a: Ruleset, b: Ruleset) -> RulesetDiff:
    result = RulesetDiff(f"{a.key} ({a.source_path})", f"{b.key} ({b.source_path})")
    for attr in ("name", "version", "title", "status", "gyldig_fra", "gyldig_til", "selected_by"):
        va, vb = getattr(a.meta, attr), getattr(b.meta, attr)
        if va != vb:
            result.metadata.append(f"{attr}: {to_json_value(va)} → {to_json_value(vb)}")
    rules_a = {r.id: r for r in a.rules}
    rules_b = {r.id: r for r in b.rules}
    result.rules_added = [r for r in rules_b if r not in rules_a]
    result.rules_removed = [r for r in rules_a if r not in rules_b]
    common_a = [r for r in rules_a if r in rules_b]
    common_b = [r for r in rules_b if r in rules_a]
    if common_a != common_b:
        # Order matters: `collect` outcomes list values in rule order.
        result.metadata.append(f"rule order: {', '.join(common_a)} → {', '.join(common_b)}")
    for rule_id in rules_a.keys() & rules_b.keys():
        changes = _rule_changes(rules_a[rule_id], rules_b[rule_id])
        if changes:
            result.rules_changed[rule_id] = changes
    result.facts = _compare_maps("fact", a.facts, b.facts, _describe_fact)
    result.parameters = _compare_maps(
        "parameter", a.parameters, b.parameters,
        lambda p: ", ".join(f"{v.gyldig_fra.isoformat()}: {to_json_value(v.value)}" for v in p.values) + f" {p.unit}")
    for name in sorted(set(a.tables) | set(b.tables)):
        if name not in a.tables or name not in b.tables:
            result.tables.append(f"{'+' if name in b.tables else '-'} table {name}")
            continue
        rows_a, rows_b = a.tables[name].rows, b.tables[name].rows
        result.tables += _compare_maps(f"{name} row", rows_a, rows_b, lambda row: to_json_value(row))
        if a.tables[name].columns != b.tables[name].columns:
            result.tables.append(f"~ table {name} columns changed")
    result.hjemler = _compare_maps("hjemmel", a.hjemler, b.hjemler,
                                   lambda h: f"{h.cite()} i_kraft {h.i_kraft} url {h.url}")
    result.constraints = _compare_maps("constraint", {c.id: c for c in a.constraints},
                                       {c.id: c for c in b.constraints},
                                       lambda c: f"when {c.condition_text} → {c.field}: {c.message}")
    result.derived = _compare_maps("derived", a.derived, b.derived, lambda d: d.text)
    result.outcomes = _compare_maps("outcome", a.outcomes, b.outcomes,
                                    lambda o: f"{o.type} combine {o.combine.value} default {to_json_value(o.default)}")
    return result
