"""Explanation levels: an answer at FIRED or NONE is the FULL answer with the rules that did not fire, or the whole
explanation, taken out and the level said; the writer's bytes at a level are exactly what
`answer_levels.at_level` makes of the FULL answer's bytes (what a replay re-derives); and the writer's caches of
encoded parts change no byte of any answer."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings

from regelmotor.core.errors import InvalidFacts, ParameterValueMissing
from regelmotor.core.evaluator import Evaluation
from regelmotor.core.model import Ruleset
from regelmotor.server import wire
from regelmotor.server.answer_levels import MalformedAnswer, at_level, fields, level_of, with_ids
from regelmotor_api.v1 import decision_pb2 as pb
from tests.strategies import facts_in_period, period_dates
from tests.test_wire import MOTOR, VERSIONS, case_evaluations

TRACE = "ab" * 16


def _written(evaluation: Evaluation, level: int, decision_id: str = "d-1", request_id: str = "req-1",
             trace_id: str = TRACE) -> bytes:
    return wire.decision_bytes(evaluation, evaluation.head(decision_id), request_id=request_id, trace_id=trace_id,
                               level=level)


def _assert_levels_derive_from_full(evaluation: Evaluation) -> None:
    full = _written(evaluation, wire.FULL)
    for level in wire.LEVELS:
        assert _written(evaluation, level) == at_level(full, level)
        assert level_of(_written(evaluation, level)) == level


@pytest.mark.parametrize("ruleset", VERSIONS, ids=[r.key for r in VERSIONS])
def test_every_bundled_case_at_each_level_is_its_full_answer_cut_down(ruleset: Ruleset) -> None:
    for evaluation in case_evaluations(ruleset):
        _assert_levels_derive_from_full(evaluation)


@pytest.mark.parametrize("ruleset", VERSIONS, ids=[r.key for r in VERSIONS])
def test_fired_keeps_each_fired_rule_whole_and_only_those(ruleset: Ruleset) -> None:
    for evaluation in case_evaluations(ruleset):
        full = pb.Decision.FromString(_written(evaluation, wire.FULL))
        fired = pb.Decision.FromString(_written(evaluation, wire.FIRED))
        assert list(fired.explanation.rules) == [r for r in full.explanation.rules if r.fired]
        assert [r.id for r in fired.explanation.rules] == evaluation.decision("d").fired_rules
        # Everything but the unfired rules is the full answer's.
        for name in ("derived", "parameters", "outcomes"):
            assert list(getattr(fired.explanation, name)) == list(getattr(full.explanation, name))
        fired.explanation.ClearField("rules")
        full.explanation.ClearField("rules")
        fired.ClearField("explanation_level")
        assert fired == full


def test_each_level_says_what_it_carries() -> None:
    evaluation = case_evaluations(VERSIONS[0])[0]
    full, fired, none = (pb.Decision.FromString(_written(evaluation, level)) for level in wire.LEVELS)
    # A full answer leaves the field out (byte for byte the answer of before the levels); the others say so.
    level_field = pb.Decision.DESCRIPTOR.fields_by_name["explanation_level"].number
    assert level_field not in [number for number, *_ in fields(_written(evaluation, wire.FULL))]
    assert (full.explanation_level, fired.explanation_level, none.explanation_level) == (
        pb.EXPLANATION_LEVEL_UNSPECIFIED, pb.EXPLANATION_LEVEL_FIRED, pb.EXPLANATION_LEVEL_NONE)
    assert len(full.explanation.rules) == len(evaluation.rules) > len(fired.explanation.rules)
    assert not none.HasField("explanation")
    # The decision itself is the same at every level.
    for answer in (fired, none):
        assert (answer.outcome, answer.facts, list(answer.manuell_vurdering), answer.ruleset_sha256) == (
            full.outcome, full.facts, list(full.manuell_vurdering), full.ruleset_sha256)


@pytest.mark.parametrize("request_id", ["req-1", ""], ids=["with a request_id", "without"])
def test_the_ids_of_an_answer_can_be_put_back(request_id: str) -> None:
    # A replay answers under new ids; with the recorded ones put back it is the answer of the recorded decision.
    evaluation = case_evaluations(VERSIONS[-1])[0]
    for level in wire.LEVELS:
        replayed = _written(evaluation, level, decision_id="another", request_id="", trace_id="cd" * 16)
        assert with_ids(replayed, "d-1", request_id, TRACE) == _written(evaluation, level, request_id=request_id)


def test_only_a_full_answer_is_cut_down_and_only_answers_are_read() -> None:
    evaluation = case_evaluations(VERSIONS[0])[0]
    with pytest.raises(MalformedAnswer, match="not a FULL answer"):
        at_level(_written(evaluation, wire.NONE), wire.FIRED)
    with pytest.raises(MalformedAnswer, match=r"^field 1 runs past the end$"):
        level_of(b"\x0a\x05ab")  # a length past the end
    with pytest.raises(ValueError, match="not an explanation level"):
        wire.decision_bytes(evaluation, evaluation.head("d"), level=pb.EXPLANATION_LEVEL_UNSPECIFIED)


@pytest.mark.parametrize("ruleset", VERSIONS, ids=[r.key for r in VERSIONS])
def test_random_facts_at_each_level_and_with_or_without_the_caches(ruleset: Ruleset) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(facts=facts_in_period(ruleset), as_of=period_dates(ruleset))
    def check(facts: dict[str, Any], as_of: date) -> None:
        try:
            evaluation = MOTOR.run(ruleset.meta.name, facts, as_of=as_of, version=ruleset.meta.version)
        except (InvalidFacts, ParameterValueMissing):
            reject()
        # Written with the caches as the earlier examples (other facts) left them, then with none at all.
        warm = [_written(evaluation, level) for level in wire.LEVELS]
        wire.clear_caches()
        assert [_written(evaluation, level) for level in wire.LEVELS] == warm
        _assert_levels_derive_from_full(evaluation)

    check()
