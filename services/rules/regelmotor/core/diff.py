"""What changed between two ruleset versions, in terms a reviewer reads: rules, parameters, schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .model import Rule, Ruleset
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

    @property
    def empty(self) -> bool:
        return not any([self.metadata, self.rules_added, self.rules_removed, self.rules_changed, self.parameters,
                        self.facts, self.derived, self.outcomes, self.tables])

    def lines(self) -> list[str]:
        out = [f"--- {self.a}", f"+++ {self.b}"]
        for title, items in (("metadata", self.metadata), ("facts (input schema)", self.facts),
                             ("parameters", self.parameters), ("tables", self.tables),
                             ("derived values", self.derived), ("outcomes", self.outcomes)):
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


def _rule_changes(a: Rule, b: Rule) -> list[str]:
    changes: list[str] = []
    if a.condition_text != b.condition_text:
        changes.append(f"when: {a.condition_text} → {b.condition_text}")
    effects_a = {k: str(v) for k, v in a.effects.items()}
    effects_b = {k: str(v) for k, v in b.effects.items()}
    if effects_a != effects_b:
        changes.append(f"then: {effects_a} → {effects_b}")
    for attr in ("title", "hjemmel", "unntak_fra", "prioritet", "manuell_vurdering"):
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
    for rule_id in rules_a.keys() & rules_b.keys():
        changes = _rule_changes(rules_a[rule_id], rules_b[rule_id])
        if changes:
            result.rules_changed[rule_id] = changes
    result.facts = _compare_maps("fact", a.facts, b.facts,
                                 lambda f: f"{f.type}{' required' if f.required else ''}"
                                           f"{'' if f.default in (None, []) else f' default {f.default}'}"
                                           f"{'' if f.minimum is None else f' min {f.minimum}'}"
                                           f"{'' if f.maximum is None else f' max {f.maximum}'}")
    result.parameters = _compare_maps(
        "parameter", a.parameters, b.parameters,
        lambda p: ", ".join(f"{v.gyldig_fra.isoformat()}: {to_json_value(v.value)}" for v in p.values) + f" {p.unit}")
    result.tables = _compare_maps("table", a.tables, b.tables, lambda t: to_json_value(t.rows))
    result.derived = _compare_maps("derived", a.derived, b.derived, lambda d: d.text)
    result.outcomes = _compare_maps("outcome", a.outcomes, b.outcomes,
                                    lambda o: f"{o.type} combine {o.combine.value} default {to_json_value(o.default)}")
    return result
