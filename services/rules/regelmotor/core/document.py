"""What a readable document of one ruleset version says, as plain data: the Markdown writer
(`regelmotor ruleset doc`, cli/document.py) and the web console's version page both present this, so the two
cannot drift apart in what they show."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from .cases import Case
from .model import FactSpec, Hjemmel, Ruleset
from .types import to_json_value


def plain_value(value: Any) -> str:
    """A value as one line of text for a reader: "—" for none, ja/nei, JSON for lists and maps."""
    if value is None:
        return "—"
    if isinstance(value, (list, dict)):
        return json.dumps(to_json_value(value), ensure_ascii=False)
    if isinstance(value, bool):
        return "ja" if value else "nei"
    return str(to_json_value(value))


def fact_bounds(fact: FactSpec) -> str:
    """A fact's declared bounds, and the size limits that apply to it (declared or the engine's defaults)."""
    parts = [f"min {plain_value(fact.minimum)}" if fact.minimum is not None else "",
             f"max {plain_value(fact.maximum)}" if fact.maximum is not None else "",
             f"høyst {fact.items_limit} elementer" if fact.items_limit is not None else "",
             f"høyst {fact.length_limit} tegn" + (" hver" if fact.items_limit is not None else "")
             if fact.length_limit is not None else "",
             f"mønster `{fact.pattern}`" if fact.pattern else ""]
    return ", ".join(part for part in parts if part) or "—"


@dataclass(frozen=True)
class FactEntry:
    name: str
    type: str
    required: bool
    default: Any  # None: no default
    bounds: str
    description: str


@dataclass(frozen=True)
class ParameterValueEntry:
    gyldig_fra: date
    value: Any  # None: explicitly no value from this date
    note: str | None
    sekundaerkilde: str | None = None  # the secondary source the value rests on, if it does

    @property
    def merknad(self) -> str | None:
        """The note and the secondary-source mark as one text for a reader (None: neither)."""
        mark = f"Hviler på sekundærkilde: {self.sekundaerkilde}" if self.sekundaerkilde else None
        return "; ".join(part for part in (self.note, mark) if part) or None


@dataclass(frozen=True)
class ParameterEntry:
    name: str
    unit: str
    source: str
    description: str
    values: tuple[ParameterValueEntry, ...]


@dataclass(frozen=True)
class TableEntry:
    name: str
    source: str
    header: tuple[str, ...]  # the key column, then the others
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class DerivedEntry:
    name: str
    type: str
    expression: str
    description: str


@dataclass(frozen=True)
class ConstraintEntry:
    id: str
    invalid_when: str
    field: str
    message: str


@dataclass(frozen=True)
class RuleEntry:
    id: str
    title: str
    hjemler: tuple[Hjemmel, ...]
    unntak_fra: str | None
    exceptions: tuple[str, ...]  # the rules that are exceptions to this one
    condition: str
    effects: tuple[tuple[str, str], ...]  # (outcome field, expression as written)
    prioritet: int
    manuell_vurdering: str | None
    begrunnelse: str | None


@dataclass(frozen=True)
class OutcomeEntry:
    name: str
    internal: bool
    type: str
    default: Any
    combine: str
    description: str


@dataclass(frozen=True)
class CaseEntry:
    name: str
    as_of: date
    facts: dict[str, Any]
    expected: dict[str, Any]  # the outcome expected, or the error expected


@dataclass(frozen=True)
class RulesetDocument:
    """One version as its document reads, section by section."""

    title: str
    name: str
    version: str
    status: str
    gyldig_fra: date
    gyldig_til: date | None
    selected_by: str  # the fact that selects the version, or "as_of"
    headline: str | None
    sha256: str
    description: str
    notes: tuple[str, ...]
    hjemler: tuple[Hjemmel, ...]
    facts: tuple[FactEntry, ...]
    parameters: tuple[ParameterEntry, ...]
    tables: tuple[TableEntry, ...]
    derived: tuple[DerivedEntry, ...]
    constraints: tuple[ConstraintEntry, ...]
    rules: tuple[RuleEntry, ...]
    outcomes: tuple[OutcomeEntry, ...]
    cases: tuple[CaseEntry, ...]
    supersedes: str | None = None  # a correction: the version it corrects, and why
    correction_reason: str = ""


def describe(ruleset: Ruleset, cases: list[Case]) -> RulesetDocument:
    """The document of `ruleset`, with its test cases."""
    meta = ruleset.meta
    return RulesetDocument(
        title=meta.title, name=meta.name, version=meta.version, status=meta.status.value,
        gyldig_fra=meta.gyldig_fra, gyldig_til=meta.gyldig_til, selected_by=meta.selected_by or "as_of",
        headline=meta.headline, sha256=ruleset.sha256, description=meta.description.strip() if meta.description
        else "", notes=tuple(meta.notes),
        supersedes=meta.supersedes, correction_reason=meta.correction_reason, hjemler=tuple(ruleset.hjemler.values()),
        facts=tuple(FactEntry(f.name, str(f.type), f.required, f.default if f.default != [] else None,
                              fact_bounds(f), f.description or "—") for f in ruleset.facts.values()),
        parameters=tuple(ParameterEntry(p.name, p.unit, p.source, p.description or "",
                                        tuple(ParameterValueEntry(v.gyldig_fra, v.value, v.note, v.sekundaerkilde)
                                              for v in p.values))
                         for p in ruleset.parameters.values()),
        tables=tuple(TableEntry(t.name, t.source, (t.key, *t.columns),
                                tuple((key, *row.values()) for key, row in t.rows.items()))
                     for t in ruleset.tables.values()),
        derived=tuple(DerivedEntry(d.name, str(d.type), d.text, d.description or "—")
                      for d in ruleset.derived.values()),
        constraints=tuple(ConstraintEntry(c.id, c.condition_text, c.field, c.message) for c in ruleset.constraints),
        rules=_rules(ruleset),
        outcomes=tuple(OutcomeEntry(o.name, o.internal, str(o.type), o.default, o.combine.value,
                                    o.description or "—") for o in ruleset.outcomes.values()),
        cases=tuple(CaseEntry(c.name, c.as_of, c.facts, _expected(c)) for c in cases),
    )


def _expected(case: Case) -> dict[str, Any]:
    """What a case expects: the error, or the outcome fields and, when it checks them, the parameters whose values
    rest on a secondary source (under the key the cases file uses)."""
    if case.expect_error:
        return case.expect_error
    expected = {k: to_json_value(v) for k, v in case.expect.items()}
    if case.expect_sekundaerkilde is not None:
        expected["expect_sekundaerkilde"] = sorted(case.expect_sekundaerkilde)
    return expected


def _rules(ruleset: Ruleset) -> tuple[RuleEntry, ...]:
    return tuple(
        RuleEntry(rule.id, rule.title, tuple(ruleset.hjemler[h] for h in rule.hjemmel), rule.unntak_fra,
                  tuple(r.id for r in ruleset.rules if r.unntak_fra == rule.id), rule.condition_text,
                  tuple((field, str(expr)) for field, expr in rule.effects.items()), rule.prioritet,
                  rule.manuell_vurdering, rule.begrunnelse.strip() if rule.begrunnelse else None)
        for rule in ruleset.rules)
