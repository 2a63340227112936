"""The Decision builder: an evaluation's answer as `Decision` (and its head), read through `EvaluationView`.

`Evaluation.head()` and `Evaluation.decision()` call these; they read nothing but the view, as the wire
encoder does, so both writers see the same values.
"""

from __future__ import annotations

from collections.abc import Mapping

from .decision import (
    ConditionTrace,
    Decision,
    DecisionHead,
    ExceptionTrace,
    Explanation,
    ManualReview,
    RuleTrace,
)
from .view import EvaluationView, RuleShape


def head(view: EvaluationView, decision_id: str) -> DecisionHead:
    """The decision without its explanation."""
    ruleset = view.ruleset
    json_of = view.json_of
    applied = view.applied
    outcome = {n: json_of(n) for n, spec in ruleset.outcomes.items() if not spec.internal}
    manual = [ManualReview(r.id, r.manuell_vurdering) for r in ruleset.rules
              if r.manuell_vurdering and applied.get(r.id)]
    applied_rules = [shape.rule.id for shape in view.rules if applied[shape.rule.id]]
    meta = ruleset.meta
    return DecisionHead(decision_id, meta.name, meta.version, ruleset.sha256, view.engine_version,
                        view.as_of.isoformat(), view.selected_by, view.selection_date.isoformat(),
                        {k: json_of(k) for k in view.facts}, outcome, manual, applied_rules,
                        correction=view.correction, known_at=view.known_at)


def decision(view: EvaluationView, decision_id: str) -> Decision:
    """The decision with its whole explanation."""
    top = head(view, decision_id)
    held, fired, applied = view.held, view.rule_fired, view.applied
    rules = [rule_trace(view, shape, held, fired, applied) for shape in view.rules]
    explanation = Explanation(rules, list(view.derived), list(view.parameters), list(view.outcomes))
    return Decision(top.decision_id, top.ruleset, top.version, top.ruleset_sha256, top.engine_version,
                    top.as_of, top.selected_by, top.selection_date, top.facts, top.outcome,
                    top.manuell_vurdering, explanation, correction=top.correction, known_at=top.known_at)


def rule_trace(view: EvaluationView, shape: RuleShape, held: Mapping[int, Mapping[str, bool]],
               fired: Mapping[str, bool], applied: Mapping[str, bool]) -> RuleTrace:
    """One rule's trace; `held`, `fired` and `applied` are the view's, read once for all rules."""
    rule = shape.rule
    held_in_round = held[shape.round]
    json_of = view.json_of
    conditions = [ConditionTrace(atom.text, held_in_round[atom.text], {n: json_of(n) for n in atom.reads}, negated)
                  for atom, negated in shape.conditions]
    exceptions = [ExceptionTrace(e.id, bool(fired.get(e.id))) for e in shape.exceptions]
    result = {field: view.effect_json(rule, field) for field in rule.effects}
    title, begrunnelse = (rule.title, rule.begrunnelse) if shape.wording is None else shape.texts(view.selection_date)
    return RuleTrace(
        rule.id, title, list(shape.hjemmel), rule.condition_text, fired[rule.id], applied[rule.id], result,
        conditions, rule.unntak_fra, exceptions, [e.rule_id for e in exceptions if e.held], rule.manuell_vurdering,
        begrunnelse, shape.round,
    )
