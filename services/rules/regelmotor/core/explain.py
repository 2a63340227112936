"""The Decision builder: an evaluation's answer as `Decision` (and its head), read through `EvaluationView`.

`Evaluation.head()` and `Evaluation.decision()` call these, each with its own version's plan; they read nothing but
the view and that plan, as the wire encoder reads the view and its own plan, so both writers see the same values.
What a version fixes about every decision (each rule's trace but its verdicts and values, the public outcomes, the
rules that ask for manual review) is worked out once per version as a `DecisionPlan`, so that a decision only fills
in values.

Every decision gets objects of its own: new traces, lists and dicts. What the plan holds and a decision shares
is immutable (strings, tuples, frozen `HjemmelRef`s, and the scalar JSON of literal effects: the format gives a list
outcome only through `combine: collect`, one scalar item per rule, and a plan refuses a list literal rather than
share it). tests/test_decision_independent.py changes every list and dict of a decision and looks at the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .decision import (
    ConditionTrace,
    Decision,
    DecisionHead,
    ExceptionTrace,
    Explanation,
    HjemmelRef,
    ManualReview,
    RuleTrace,
)
from .errors import EngineFailure
from .expressions import Expr, Literal, Name
from .model import Rule, Ruleset
from .types import to_json_value
from .view import EvaluationView, RuleShape


@dataclass(frozen=True, slots=True)
class TracePlan:
    """What a version fixes about one rule's trace; the evaluation adds verdicts and values."""

    rule_id: str
    title: str
    begrunnelse: str | None
    hjemmel: tuple[HjemmelRef, ...]
    condition: str
    unntak_fra: str | None
    manuell_vurdering: str | None
    round: int
    # (atom's text, the names it reads, negated, the name when it reads just one)
    conditions: tuple[tuple[str, tuple[str, ...], bool, str | None], ...]
    exceptions: tuple[str, ...]  # the ids of the rules that are exceptions to it
    # (outcome, the name whose value it gives, None) or (outcome, None, a literal's JSON, a scalar)
    effects: tuple[tuple[str, str | None, Any], ...]
    literal_result: tuple[tuple[str, Any], ...] | None  # (outcome, JSON) when all it gives are literals
    worded: RuleShape | None  # its shape when its title or begrunnelse names a parameter (rendered per day)


@dataclass(frozen=True, slots=True)
class DecisionPlan:
    """What one version fixes about every decision of it, worked out once (by its `Evaluator`)."""

    rules: tuple[TracePlan, ...]  # in file order
    public_outcomes: tuple[str, ...]  # the outcomes of the answer (not internal), in declaration order
    manual: tuple[tuple[str, str], ...]  # (rule id, its manuell_vurdering) of the rules that have one


def plan_decision(ruleset: Ruleset, rules: Sequence[RuleShape]) -> DecisionPlan:
    return DecisionPlan(
        tuple(_trace_plan(shape) for shape in rules),
        tuple(name for name, spec in ruleset.outcomes.items() if not spec.internal),
        tuple((rule.id, rule.manuell_vurdering) for rule in ruleset.rules if rule.manuell_vurdering))


def effect_sources(rule: Rule) -> dict[str, tuple[str | None, Any]]:
    """What `rule` gives each outcome: a name's value (name, None), or a literal's JSON (None, its JSON), which is
    the same in every evaluation."""
    return {field: (expr.name, None) if isinstance(expr, Name) else (None, _literal_json(expr))
            for field, expr in rule.effects.items()}


def head(view: EvaluationView, plan: DecisionPlan, decision_id: str) -> DecisionHead:
    """The decision without its explanation."""
    applied = view.applied
    return DecisionHead(*_basis(view, plan, decision_id),
                        [trace.rule_id for trace in plan.rules if applied[trace.rule_id]],
                        correction=view.correction, known_at=view.known_at)


def decision(view: EvaluationView, plan: DecisionPlan, decision_id: str) -> Decision:
    """The decision with its whole explanation."""
    held, fired, applied, json = view.held, view.rule_fired, view.applied, view.json_values
    day = view.selection_date
    rules = []
    for trace in plan.rules:
        rule_id = trace.rule_id
        held_in_round = held[trace.round]
        # Loops rather than comprehensions, and a condition's one read or a rule's literal results without one:
        # most rules have one or two conditions that read one name each, and give literals (measured: a third less).
        conditions = []
        for text, reads, negated, one in trace.conditions:
            conditions.append(ConditionTrace(text, held_in_round[text],
                                             {one: json[one]} if one is not None else {n: json[n] for n in reads},
                                             negated))
        if trace.literal_result is not None:
            result = dict(trace.literal_result)
        else:
            result = {field: constant if name is None else json[name] for field, name, constant in trace.effects}
        if trace.exceptions:
            exceptions = [ExceptionTrace(e, bool(fired.get(e))) for e in trace.exceptions]
            overridden_by = [e.rule_id for e in exceptions if e.held]
        else:
            exceptions, overridden_by = [], []
        title, begrunnelse = (trace.title, trace.begrunnelse) if trace.worded is None else trace.worded.texts(day)
        rules.append(RuleTrace(
            rule_id, title, list(trace.hjemmel), trace.condition, fired[rule_id], applied[rule_id], result,
            conditions, trace.unntak_fra, exceptions, overridden_by, trace.manuell_vurdering, begrunnelse,
            trace.round))
    explanation = Explanation(rules, list(view.derived), list(view.parameters), list(view.outcomes))
    return Decision(*_basis(view, plan, decision_id), explanation, correction=view.correction, known_at=view.known_at)


_Basis = tuple[str, str, str, str, str, str, str, str, dict[str, Any], dict[str, Any], list[ManualReview]]


def _basis(view: EvaluationView, plan: DecisionPlan, decision_id: str) -> _Basis:
    """The fields of `DecisionBasis` but the keyword ones, in their order."""
    json, applied, ruleset = view.json_values, view.applied, view.ruleset
    meta = ruleset.meta
    return (decision_id, meta.name, meta.version, ruleset.sha256, view.engine_version, view.as_of.isoformat(),
            view.selected_by, view.selection_date.isoformat(), {k: json[k] for k in view.facts},
            {n: json[n] for n in plan.public_outcomes},
            [ManualReview(rule_id, reason) for rule_id, reason in plan.manual if applied.get(rule_id)])


def _trace_plan(shape: RuleShape) -> TracePlan:
    rule = shape.rule
    effects = tuple((field, name, constant) for field, (name, constant) in effect_sources(rule).items())
    if any(isinstance(constant, (list, dict)) for _, _, constant in effects):  # shared by every decision: never
        raise EngineFailure(f"rule {rule.id!r} gives a list or mapping literal, which the format does not allow")
    literal = all(name is None for _, name, _ in effects)
    return TracePlan(
        rule.id, rule.title, rule.begrunnelse, shape.hjemmel, rule.condition_text, rule.unntak_fra,
        rule.manuell_vurdering, shape.round,
        tuple((atom.text, tuple(atom.reads), negated, atom.reads[0] if len(atom.reads) == 1 else None)
              for atom, negated in shape.conditions),
        tuple(e.id for e in shape.exceptions), effects,
        tuple((field, constant) for field, _, constant in effects) if literal else None,
        shape if shape.wording is not None else None)


def _literal_json(expr: Expr) -> Any:
    if not isinstance(expr, Literal):  # the loader gives an effect a name or a literal, nothing else
        raise EngineFailure(f"a rule's effect cannot be {expr}")
    return to_json_value(expr.value)

