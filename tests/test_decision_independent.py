"""A Decision is its caller's own: changing any list or dict in one changes no other decision, and nothing the
engine keeps for the next (the per-version plans the Decision builder shares between decisions hold only
immutable values; regelmotor.core.explain). Each decision here is changed in every list and dict it holds, and
the next decision of the same facts must be what it would have been."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from datetime import date
from typing import Any

import pytest

from regelmotor.core.decision import Decision
from regelmotor.core.errors import RegelmotorError
from regelmotor.core.evaluator import Evaluator
from tests.answer_digests import bundled_motor, case_inputs, versions

MOTOR = bundled_motor()
VERSIONS = versions(MOTOR)
AS_OF = date(2026, 1, 1)

# A list read by a condition, a value given as a result, an exception: the parts of a rule's trace that come from
# the plan or from the values, in a small ruleset of their own.
LISTS = """\
facts:
  koder: {type: list, items: {type: string}, default: []}
  a: {type: bool, default: false}
  navn: {type: string, default: ola}
rules:
  - id: r1
    title: Liste
    hjemmel: h1
    when: a and "X1" in koder
    then: {liste: x, kopi: =navn}
  - id: r2
    title: Unntak
    hjemmel: h1
    unntak_fra: r1
    when: not a
    then: {liste: z}
outcomes:
  liste: {type: list, items: {type: string}, combine: collect}
  kopi: {type: string}
"""


def _spoil(value: Any) -> None:
    """Change every list and dict inside `value` in place (a frozen dataclass's fields are still mutable lists)."""
    if is_dataclass(value):
        for field in fields(value):
            _spoil(getattr(value, field.name))
    elif isinstance(value, list):
        for item in value:
            _spoil(item)
        value.append("changed by the caller")
    elif isinstance(value, dict):
        for item in value.values():
            _spoil(item)
        value["changed"] = "by the caller"


def _text(decision: Decision) -> str:
    return json.dumps(decision.to_dict(), sort_keys=True, ensure_ascii=False)


def _assert_independent(decide: Callable[[], Decision]) -> None:
    first = decide()
    expected, shown = _text(first), repr(first)
    _spoil(first)
    assert repr(first) != shown  # the spoiling reached it
    assert _text(decide()) == expected


@pytest.mark.parametrize("ruleset", VERSIONS, ids=[r.key for r in VERSIONS])
def test_changing_a_bundled_decision_changes_no_later_one(ruleset: Any) -> None:
    for _, facts, as_of in case_inputs(ruleset):
        decide = functools.partial(MOTOR.evaluate, ruleset.meta.name, facts, as_of=as_of,
                                   version=ruleset.meta.version, decision_id="d")
        try:
            decide()
        except RegelmotorError:  # a refused case has no decision to change
            continue
        _assert_independent(decide)


@pytest.mark.parametrize("facts", [{"a": True, "koder": ["X1", "X2"]}, {"koder": ["X1"]}, {}])
def test_values_read_and_given_are_a_decisions_own(make_evaluator: Callable[..., Evaluator],
                                                          facts: dict[str, Any]) -> None:
    evaluator = make_evaluator(LISTS)
    _assert_independent(lambda: evaluator.evaluate(facts, AS_OF, decision_id="d"))
    rule = evaluator.evaluate(facts, AS_OF, decision_id="d").explanation.rules[0]
    assert rule.result == {"liste": "x", "kopi": "ola"}
    assert rule.conditions[1].reads == {"koder": facts.get("koder", [])}


def test_a_literal_effect_is_never_a_list_so_the_plan_may_share_it(make_evaluator: Callable[..., Evaluator]) -> None:
    # The Decision builder's plan hands every decision the same literal results (explain.py); that is safe only
    # because the format refuses a list literal: a list outcome takes one scalar item per rule (combine: collect).
    body = LISTS.replace("then: {liste: x, kopi: =navn}", "then: {kopi: [x, y]}").replace(
        "kopi: {type: string}", "kopi: {type: list, items: {type: string}}")
    with pytest.raises(RegelmotorError, match="a list outcome must use combine: collect"):
        make_evaluator(body)
