"""Exceptions override their base rule; combine policies; conflicts are loud."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from regelmotor.core.errors import OutcomeConflict
from regelmotor.core.evaluator import Evaluator

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
