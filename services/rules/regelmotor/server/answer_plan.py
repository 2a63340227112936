"""What one ruleset version fixes about its answers, worked out once per version: the wire bytes the answer
writer (regelmotor.server.wire) joins with what each evaluation adds.

For each rule: its static fields (id, title, hjemmel, condition, unntak_fra, ...: `convert.rule_template`)
serialised by the protobuf library, with each combination of its fired/applied flags after them; each of its
conditions' text and polarity (the whole field, for a condition that reads no value); its exceptions' traces;
and what its trace depends on (the verdicts of its conditions, the values they read and the values it gives),
as getters that collect them in one call each, for the writer's cache of encoded rules. For each derived value
its name and expression; for each rule the OutcomeTrace.from_rules entry naming it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from regelmotor.core.expressions import Literal, Name
from regelmotor.core.model import Rule
from regelmotor.core.view import EvaluationView, RuleShape
from regelmotor_api.v1 import decision_pb2 as pb

from .convert import rule_template
from .protowire import LENGTH, VARINT, field, tag, text

_R = pb.RuleTrace.DESCRIPTOR
_C = pb.ConditionTrace.DESCRIPTOR
_EX = pb.ExceptionTrace.DESCRIPTOR
_DT = pb.DerivedTrace.DESCRIPTOR
_OT = pb.OutcomeTrace.DESCRIPTOR

RULE_FIRED = tag(_R, "fired", VARINT) + b"\x01"
RULE_APPLIED = tag(_R, "applied", VARINT) + b"\x01"
RULE_CONDITION = tag(_R, "conditions", LENGTH)
RULE_EXCEPTION = tag(_R, "exceptions", LENGTH)
RULE_OVERRIDDEN_BY = tag(_R, "overridden_by", LENGTH)
CONDITION_TEXT = tag(_C, "condition", LENGTH)
CONDITION_HELD = tag(_C, "held", VARINT) + b"\x01"
CONDITION_NEGATED = tag(_C, "negated", VARINT) + b"\x01"
EXCEPTION_RULE = tag(_EX, "rule_id", LENGTH)
EXCEPTION_HELD = tag(_EX, "held", VARINT) + b"\x01"
DERIVED_NAME = tag(_DT, "name", LENGTH)
DERIVED_EXPRESSION = tag(_DT, "expression", LENGTH)
OUTCOME_FROM_RULES = tag(_OT, "from_rules", LENGTH)

Getter = Callable[[Mapping[str, Any]], tuple[Any, ...]]


def tuple_getter(names: tuple[str, ...]) -> Getter:
    """A function giving the values of `names` in a mapping, as a tuple (`itemgetter`, which gives a lone
    value for one name, made to give a tuple always)."""
    if len(names) >= 2:
        return itemgetter(*names)
    if names:
        only = names[0]
        return lambda values: (values[only],)
    return lambda values: ()


@dataclass(frozen=True, slots=True)
class ConditionPlan:
    slot: int  # the same atom (round, text, polarity) in several rules shares a slot, so it is written once
    round: int
    text: str
    reads: tuple[str, ...]
    unheld: bytes  # the condition's text and polarity, encoded; whole (tag and length too) when it reads nothing
    held: bytes  # ... the same with held = true


@dataclass(frozen=True, slots=True)
class ExceptionPlan:
    rule_id: str
    unheld: bytes  # the ExceptionTrace field with held = false
    held: bytes  # ... with held = true
    overriding: bytes  # the rule's overridden_by entry, when it held


@dataclass(frozen=True, slots=True)
class RulePlan:
    key: int  # unique among the rules of every version planned in this process
    rule: Rule
    round: int  # the engine round that decides it (and its conditions)
    # The static fields followed by the flags, by 2 * fired + applied.
    heads: tuple[bytes, bytes, bytes, bytes]
    fields: tuple[str, ...]  # the outcomes it sets
    conditions: tuple[ConditionPlan, ...]
    exceptions: tuple[ExceptionPlan, ...]  # the rules that are exceptions to it
    # What its trace depends on besides its flags and its exceptions' verdicts: the verdicts of its conditions
    # (from the round's verdicts by text) and the JSON values it reads or gives (by name). None: it depends on
    # more (an effect other than a literal or a name, which the ruleset format does not have today).
    verdicts: Getter
    values: Getter | None
    # A rule whose title or begrunnelse names a parameter: its shape, whose static fields depend on the decision's
    # selection date (`heads_on`); None: `heads` serve every decision.
    worded: RuleShape | None = None


@dataclass(frozen=True, slots=True)
class AnswerPlan:
    rules: tuple[RulePlan, ...]
    slots: int
    read: tuple[str, ...]  # every name a rule's trace depends on (`RulePlan.values`)
    derived: dict[str, bytes]  # derived value -> its name and expression, encoded
    from_rules: dict[str, bytes]  # rule id -> an OutcomeTrace.from_rules entry naming it


_plans: dict[tuple[str, str], AnswerPlan] = {}
_rule_keys = itertools.count()


def plan_of(evaluation: EvaluationView) -> AnswerPlan:
    """The plan of the evaluation's ruleset version (made at its first answer)."""
    ruleset = evaluation.ruleset
    key = (ruleset.key, ruleset.sha256)
    found = _plans.get(key)
    if found is None:
        found = _plans[key] = _make_plan(evaluation)
    return found


def _heads(static: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """A rule's static fields followed by each combination of its flags, by 2 * fired + applied."""
    return static, static + RULE_APPLIED, static + RULE_FIRED, static + RULE_FIRED + RULE_APPLIED


_worded_heads: dict[tuple[int, str, str | None], tuple[bytes, bytes, bytes, bytes]] = {}
WORDED_CACHE_LIMIT = 10_000  # distinct (rule, wording) pairs kept; a rule has one per period of its parameters


def heads_on(plan: RulePlan, evaluation: EvaluationView) -> tuple[bytes, bytes, bytes, bytes]:
    """The rule's heads in this evaluation: `plan.heads`, or for a worded rule those of its decision's date."""
    shape = plan.worded
    if shape is None:
        return plan.heads
    title, begrunnelse = shape.texts(evaluation.selection_date)
    key = (plan.key, title, begrunnelse)
    found = _worded_heads.get(key)
    if found is None:
        trace = shape.static_trace(evaluation.selection_date)
        found = _heads(rule_template(evaluation.ruleset.sha256, trace).SerializeToString())
        if len(_worded_heads) >= WORDED_CACHE_LIMIT:
            _worded_heads.clear()
        _worded_heads[key] = found
    return found


def _given_by_values(rule: Rule) -> bool:
    """Whether what the rule gives is a literal or the value of a name, for every outcome it sets."""
    return all(isinstance(effect, (Literal, Name)) for effect in rule.effects.values())


def _make_plan(evaluation: EvaluationView) -> AnswerPlan:
    slots: dict[tuple[int, str, bool], int] = {}
    read: dict[str, None] = {}  # ordered set
    rules = []
    sha256 = evaluation.ruleset.sha256
    for shape in evaluation.rules:
        conditions = []
        for atom, negated in shape.conditions:
            slot = slots.setdefault((shape.round, atom.text, negated), len(slots))
            unheld = text(CONDITION_TEXT, atom.text) + (CONDITION_NEGATED if negated else b"")
            held = unheld + CONDITION_HELD
            if not atom.reads:
                unheld, held = field(RULE_CONDITION, unheld), field(RULE_CONDITION, held)
            conditions.append(ConditionPlan(slot, shape.round, atom.text, tuple(atom.reads), unheld, held))
        static = rule_template(sha256, shape.static_trace()).SerializeToString()
        exceptions = tuple(
            ExceptionPlan(e.id, field(RULE_EXCEPTION, text(EXCEPTION_RULE, e.id)),
                          field(RULE_EXCEPTION, text(EXCEPTION_RULE, e.id) + EXCEPTION_HELD),
                          text(RULE_OVERRIDDEN_BY, e.id))
            for e in shape.exceptions)
        heads = _heads(static)
        rule = shape.rule
        names = tuple(dict.fromkeys([name for c in conditions for name in c.reads]
                                    + [e.name for e in rule.effects.values() if isinstance(e, Name)]))
        read.update(dict.fromkeys(names))
        rules.append(RulePlan(next(_rule_keys), rule, shape.round, heads, tuple(rule.effects), tuple(conditions),
                              exceptions, tuple_getter(tuple(dict.fromkeys(c.text for c in conditions))),
                              tuple_getter(names) if _given_by_values(rule) else None,
                              shape if shape.wording is not None else None))
    ruleset = evaluation.ruleset
    derived = {name: text(DERIVED_NAME, d.name) + text(DERIVED_EXPRESSION, d.text)
               for name, d in ruleset.derived.items()}
    from_rules = {rule.id: text(OUTCOME_FROM_RULES, rule.id) for rule in ruleset.rules}
    return AnswerPlan(tuple(rules), len(slots), tuple(read), derived, from_rules)
