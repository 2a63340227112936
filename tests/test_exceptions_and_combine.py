"""Exceptions override their base rule; combine policies; conflicts are loud."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regelmotor.core.combine import Contribution, combine
from regelmotor.core.errors import OutcomeConflict
from regelmotor.core.evaluator import Evaluator
from regelmotor.core.model import Combine, OutcomeSpec
from regelmotor.core.types import Kind, ValueType

AS_OF = date(2026, 1, 1)

EXCEPTIONS = """\
facts:
  alder: {type: int, required: true}
  psykisk: {type: bool, default: false}
  akutt: {type: bool, default: false}
rules:
  - id: hovedregel
    title: Frist 12 uker
    hjemmel: h1
    when: "true"
    then: {frist_uker: 12, kilde: hoved}
  - id: unge
    title: Unge med psykisk lidelse får 4 uker
    hjemmel: h1
    unntak_fra: hovedregel
    when: alder < 23 and psykisk
    then: {frist_uker: 4, kilde: unge}
  - id: akutt
    title: Akutt går foran unntaket for unge
    hjemmel: h1
    unntak_fra: unge
    when: alder < 23 and psykisk and akutt
    then: {frist_uker: 0, kilde: akutt}
outcomes:
  frist_uker: {type: int}
  kilde: {type: enum, values: [hoved, unge, akutt]}
"""


def test_base_rule_applies_when_no_exception_holds(make_evaluator: Callable[..., Evaluator]) -> None:
    decision = make_evaluator(EXCEPTIONS).evaluate({"alder": 40, "psykisk": True}, AS_OF)
    assert decision.outcome == {"frist_uker": 12, "kilde": "hoved"}
    base = decision.explanation.rules[0]
    assert base.applied and base.exceptions[0].rule_id == "unge" and not base.exceptions[0].held


def test_exception_overrides_its_base_and_the_trace_says_so(make_evaluator: Callable[..., Evaluator]) -> None:
    decision = make_evaluator(EXCEPTIONS).evaluate({"alder": 20, "psykisk": True}, AS_OF)
    assert decision.outcome == {"frist_uker": 4, "kilde": "unge"}
    base, unge, akutt = decision.explanation.rules
    assert base.fired and not base.applied and base.overridden_by == ["unge"]
    assert unge.applied and unge.unntak_fra == "hovedregel"
    assert not akutt.fired
    assert decision.fired_rules == ["hovedregel", "unge"]
    assert decision.applied_rules == ["unge"]


def test_exception_to_an_exception(make_evaluator: Callable[..., Evaluator]) -> None:
    decision = make_evaluator(EXCEPTIONS).evaluate({"alder": 20, "psykisk": True, "akutt": True}, AS_OF)
    assert decision.outcome == {"frist_uker": 0, "kilde": "akutt"}
    assert decision.applied_rules == ["akutt"]
    assert decision.explanation.rules[1].overridden_by == ["akutt"]


def test_exception_order_in_file_does_not_matter(make_evaluator: Callable[..., Evaluator]) -> None:
    head, rules_and_rest = EXCEPTIONS.split("rules:\n")
    rules, outcomes = rules_and_rest.split("outcomes:\n")
    blocks = ["  - id: " + b for b in rules.split("  - id: ")[1:]]
    reversed_text = head + "rules:\n" + "".join(reversed(blocks)) + "outcomes:\n" + outcomes
    assert reversed_text.index("id: akutt") < reversed_text.index("id: hovedregel")
    decision = make_evaluator(reversed_text).evaluate({"alder": 20, "psykisk": True}, AS_OF)
    assert decision.outcome == {"frist_uker": 4, "kilde": "unge"}


COMBINE = """\
facts:
  a: {type: bool, default: false}
  b: {type: bool, default: false}
rules:
  - id: ra
    title: A
    hjemmel: h1
    when: a
    then: {enig: 1, noen: true, alle: true, minst: 5, storst: 5, liste: x, prio: lav}
  - id: rb
    title: B
    hjemmel: h1
    when: b
    prioritet: 2
    then: {enig: 2, noen: false, alle: false, minst: 3, storst: 3, liste: y, prio: hoy}
  - id: rc
    title: C
    hjemmel: h1
    when: b
    then: {liste: x}
outcomes:
  enig: {type: int}
  noen: {type: bool, default: false, combine: any}
  alle: {type: bool, default: true, combine: all}
  minst: {type: int, combine: min}
  storst: {type: int, combine: max}
  liste: {type: list, items: {type: string}, combine: collect}
  prio: {type: string, combine: priority}
"""


def test_combine_policies_over_several_rules(make_evaluator: Callable[..., Evaluator]) -> None:
    evaluator = make_evaluator(COMBINE.replace("then: {enig: 2,", "then: {enig: 1,"))
    decision = evaluator.evaluate({"a": True, "b": True}, AS_OF)
    assert decision.outcome == {"enig": 1, "noen": True, "alle": False, "minst": 3, "storst": 5,
                                "liste": ["x", "y"], "prio": "hoy"}
    traces = {t.name: t for t in decision.explanation.outcomes}
    assert traces["minst"].from_rules == ["rb"] and traces["prio"].from_rules == ["rb"]


def test_defaults_when_no_rule_applies(make_evaluator: Callable[..., Evaluator]) -> None:
    decision = make_evaluator(COMBINE).evaluate({}, AS_OF)
    assert decision.outcome == {"enig": None, "noen": False, "alle": True, "minst": None, "storst": None,
                                "liste": [], "prio": None}
    assert all(t.from_rules == [] for t in decision.explanation.outcomes)


def test_unique_conflict_is_an_error_naming_rules_and_values(make_evaluator: Callable[..., Evaluator]) -> None:
    with pytest.raises(OutcomeConflict, match=r"^conflicting values for outcome 'enig' under policy unique: "
                                              r"ra gives 1, rb gives 2$") as caught:
        make_evaluator(COMBINE).evaluate({"a": True, "b": True}, AS_OF)
    message = str(caught.value)
    assert "'enig'" in message and "ra gives 1" in message and "rb gives 2" in message


def test_priority_tie_with_different_values_is_a_conflict(make_evaluator: Callable[..., Evaluator]) -> None:
    body = COMBINE.replace("then: {enig: 2,", "then: {enig: 1,").replace("prioritet: 2", "prioritet: 0")
    evaluator = make_evaluator(body)
    with pytest.raises(OutcomeConflict, match=r"^conflicting values for outcome 'prio' under policy priority: "
                                              r"ra gives 'lav', rb gives 'hoy'$") as caught:
        evaluator.evaluate({"a": True, "b": True}, AS_OF)
    assert "'prio'" in str(caught.value) and "under policy priority" in str(caught.value)


MANUAL = """\
facts:
  frist: {type: int}
rules:
  - id: rett
    title: Rett
    hjemmel: h1
    when: present(frist)
    then: {utfall: rett}
  - id: manuell
    title: Mangler frist
    hjemmel: h1
    when: not present(frist)
    manuell_vurdering: Fristen må settes manuelt.
    then: {utfall: manuell_vurdering}
outcomes:
  utfall: {type: enum, values: [rett, manuell_vurdering]}
"""


def test_manual_review_is_a_third_outcome_with_a_reason(make_evaluator: Callable[..., Evaluator]) -> None:
    evaluator = make_evaluator(MANUAL)
    manual = evaluator.evaluate({}, AS_OF)
    assert manual.outcome == {"utfall": "manuell_vurdering"}
    assert [(m.rule_id, m.begrunnelse) for m in manual.manuell_vurdering] == [("manuell", "Fristen må settes manuelt.")]
    plain = evaluator.evaluate({"frist": 4}, AS_OF)
    assert plain.outcome == {"utfall": "rett"} and plain.manuell_vurdering == []


# --- order independence: properties -------------------------------------------------------------

ORDERLESS = [Combine.UNIQUE, Combine.PRIORITY, Combine.ANY, Combine.ALL, Combine.MIN, Combine.MAX]
_VALUES = {Combine.ANY: st.booleans(), Combine.ALL: st.booleans()}


def _combined(spec: OutcomeSpec, contributions: list[Contribution]) -> tuple[str, Any, set[str]]:
    """The value and the deciding rules (as a set), or the conflict (rule -> value) when there is one."""
    try:
        value, deciding = combine(spec, contributions)
    except OutcomeConflict as conflict:
        return "conflict", conflict.conflict.values, set(conflict.conflict.values)
    return "value", value, set(deciding)


@st.composite
def _contributions(draw: st.DrawFn, policy: Combine) -> list[Contribution]:
    values = _VALUES.get(policy, st.none() | st.integers(0, 3))  # few values: agreements and ties are common
    count = draw(st.integers(0, 6))
    return [Contribution(f"r{i}", draw(values), draw(st.integers(0, 2))) for i in range(count)]


@given(data=st.data(), policy=st.sampled_from(ORDERLESS))
def test_every_policy_but_collect_gives_the_same_result_in_any_rule_order(data: st.DataObject,
                                                                          policy: Combine) -> None:
    spec = OutcomeSpec("x", ValueType(Kind.BOOL if policy in (Combine.ANY, Combine.ALL) else Kind.INT), None,
                       policy, "")
    contributions = data.draw(_contributions(policy), label="contributions")
    shuffled = data.draw(st.permutations(contributions), label="another order")
    assert _combined(spec, shuffled) == _combined(spec, contributions)


@given(values=st.lists(st.none() | st.sampled_from("xyz"), max_size=6))
def test_collect_lists_the_values_in_rule_order_without_repeats(values: list[str | None]) -> None:
    spec = OutcomeSpec("x", ValueType(Kind.LIST, item=ValueType(Kind.STRING)), [], Combine.COLLECT, "")
    contributions = [Contribution(f"r{i}", value, 0) for i, value in enumerate(values)]
    value, deciding = combine(spec, contributions)
    assert value == list(dict.fromkeys(v for v in values if v is not None))
    assert deciding == [c.rule_id for c in contributions]


# Rules of every policy, an exception and a rule that reads an outcome (so it runs in a later round).
PERMUTED_RULES = {
    "r1": """  - id: r1
    title: R1
    hjemmel: h1
    when: a
    then: {enig: 1, noen: true, alle: true, minst: 5, storst: 5, liste: x, prio: lav}
""",
    "r2": """  - id: r2
    title: R2
    hjemmel: h1
    when: b
    prioritet: 2
    then: {enig: 1, noen: false, alle: false, minst: 3, storst: 3, liste: y, prio: hoy}
""",
    "r3": """  - id: r3
    title: R3
    hjemmel: h1
    when: c
    then: {enig: 2, liste: z, storst: 9}
""",
    "r4": """  - id: r4
    title: R4, an exception to R1
    hjemmel: h1
    unntak_fra: r1
    when: a and n > 5
    then: {prio: unntak, minst: 1, liste: z}
""",
    "r5": """  - id: r5
    title: R5 reads an outcome
    hjemmel: h1
    when: noen
    then: {flagg: true, liste: y}
""",
    "r6": """  - id: r6
    title: R6
    hjemmel: h1
    when: n >= 3
    prioritet: 1
    then: {prio: mid, alle: true, liste: x}
""",
}
PERMUTED_HEAD = """facts:
  a: {type: bool, default: false}
  b: {type: bool, default: false}
  c: {type: bool, default: false}
  n: {type: int, required: true}
rules:
"""
PERMUTED_OUTCOMES = """outcomes:
  enig: {type: int}
  noen: {type: bool, default: false, combine: any}
  alle: {type: bool, default: true, combine: all}
  minst: {type: int, combine: min}
  storst: {type: int, combine: max}
  liste: {type: list, items: {type: string}, combine: collect}
  prio: {type: string, combine: priority}
  flagg: {type: bool, default: false, combine: any}
"""
LISTE = {"r1": "x", "r2": "y", "r3": "z", "r4": "z", "r5": "y", "r6": "x"}


def _decide(evaluator: Evaluator, facts: dict[str, Any]) -> tuple[str, Any, Any]:
    """The outcome (without the collected list), applied and fired rules as sets; or the conflict."""
    try:
        decision = evaluator.evaluate(facts, AS_OF)
    except OutcomeConflict as conflict:
        return "conflict", conflict.conflict.outcome, conflict.conflict.values
    outcome = {k: v for k, v in decision.outcome.items() if k != "liste"}
    deciding = {t.name: set(t.from_rules) for t in decision.explanation.outcomes}
    return "decision", (outcome, deciding), (set(decision.applied_rules), set(decision.fired_rules))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(sorted(PERMUTED_RULES)), a=st.booleans(), b=st.booleans(), c=st.booleans(),
       n=st.integers(0, 10))
def test_a_ruleset_decides_alike_whatever_the_order_of_its_rules(
        make_evaluator: Callable[..., Evaluator], order: list[str], a: bool, b: bool, c: bool, n: int) -> None:
    facts = {"a": a, "b": b, "c": c, "n": n}
    in_file_order = make_evaluator(PERMUTED_HEAD + "".join(PERMUTED_RULES[r] for r in sorted(PERMUTED_RULES))
                                   + PERMUTED_OUTCOMES)
    permuted = make_evaluator(PERMUTED_HEAD + "".join(PERMUTED_RULES[r] for r in order) + PERMUTED_OUTCOMES)
    expected = _decide(in_file_order, facts)
    assert _decide(permuted, facts) == expected
    if expected[0] == "decision":
        # collect is the one policy that follows the file: its values in the order of the rules there.
        applied = expected[2][0]
        liste = permuted.evaluate(facts, AS_OF).outcome["liste"]
        assert liste == list(dict.fromkeys(LISTE[r] for r in order if r in applied))
