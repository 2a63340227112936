"""The Decision as written straight to wire bytes (regelmotor.server.wire) is the Decision the protobuf
library builds (regelmotor.server.convert.decision_to_proto), at every explanation level: on every bundled test
case, on random facts for every shipped version, and on random JSON values."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import load_cases
from regelmotor.core.decision import Correction, Selection
from regelmotor.core.errors import InvalidFacts, ParameterValueMissing
from regelmotor.core.evaluator import Evaluation
from regelmotor.core.model import Ruleset
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository
from regelmotor.server import protowire, wire
from regelmotor.server.convert import decision_to_proto, to_value
from regelmotor_api.v1 import decision_pb2 as pb
from tests.conftest import BUNDLED_RULESETS
from tests.strategies import facts_in_period, period_dates

MOTOR = Regelmotor(RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True))
VERSIONS = [r for name in MOTOR.repository.names() for r in MOTOR.repository.all_versions(name)]


def _assert_same(evaluation: Evaluation) -> None:
    decision = evaluation.decision("d-1")
    head = evaluation.head("d-1")
    for level in wire.LEVELS:
        reference = decision_to_proto(decision, request_id="req-1", trace_id="ab" * 16, level=level)
        written = pb.Decision.FromString(wire.decision_bytes(evaluation, head, request_id="req-1",
                                                             trace_id="ab" * 16, level=level))
        assert written == reference
        # Equal messages serialise alike, so what is stored and hashed does not depend on the encoder.
        assert written.SerializeToString(deterministic=True) == reference.SerializeToString(deterministic=True)
    # The head is the decision without its explanation.
    assert head.applied_rules == decision.applied_rules
    assert (head.facts, head.outcome, head.manuell_vurdering) == (decision.facts, decision.outcome,
                                                                  decision.manuell_vurdering)


def case_evaluations(ruleset: Ruleset) -> list[Evaluation]:
    path = BUNDLED_RULESETS / ruleset.meta.name / f"{ruleset.meta.version}{CASES_SUFFIX}"
    evaluations = []
    for case in load_cases(path, ruleset):
        if case.expect_error is None:
            evaluations.append(MOTOR.run(ruleset.meta.name, case.facts, as_of=case.as_of,
                                         version=ruleset.meta.version))
    return evaluations


@pytest.mark.parametrize("ruleset", VERSIONS, ids=[r.key for r in VERSIONS])
def test_every_bundled_case_is_written_as_the_protobuf_library_builds_it(ruleset: Ruleset) -> None:
    evaluations = case_evaluations(ruleset)
    assert evaluations
    for evaluation in evaluations:
        _assert_same(evaluation)
        _assert_same(evaluation)  # again: the version's plan and the encoder's caches are warm now


@pytest.mark.parametrize("selection", [
    Selection(Correction("2024.07", "2026-03-01T12:00:00.000000+00:00"), None),
    Selection(Correction("2024.07", None), "2026-02-28T23:59:59.000000+00:00"),
    Selection(None, "2026-02-28T23:59:59.000000+00:00")], ids=["correction", "directory correction", "known_at"])
def test_a_correction_and_known_at_are_written_as_the_protobuf_library_builds_them(selection: Selection) -> None:
    ruleset = VERSIONS[0]
    case = next(c for c in load_cases(BUNDLED_RULESETS / ruleset.meta.name / f"{ruleset.meta.version}{CASES_SUFFIX}",
                                      ruleset) if c.expect_error is None)
    evaluation = MOTOR.evaluator(ruleset).run(case.facts, case.as_of, selection=selection)
    _assert_same(evaluation)
    answer = pb.Decision.FromString(wire.decision_bytes(evaluation, evaluation.head("d-1"), level=wire.FULL))
    assert answer.known_at == (selection.known_at or "")
    assert answer.HasField("correction") == (selection.correction is not None)
    if selection.correction is not None:
        assert answer.correction.supersedes == "2024.07"
        assert answer.correction.published_at == (selection.correction.published_at or "")


@pytest.mark.parametrize("ruleset", VERSIONS, ids=[r.key for r in VERSIONS])
def test_random_facts_are_written_as_the_protobuf_library_builds_them(ruleset: Ruleset) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(facts=facts_in_period(ruleset), as_of=period_dates(ruleset))
    def check(facts: dict[str, Any], as_of: date) -> None:
        try:
            evaluation = MOTOR.run(ruleset.meta.name, facts, as_of=as_of, version=ruleset.meta.version)
        except (InvalidFacts, ParameterValueMissing):
            reject()  # a documented refusal (tests/test_properties.py checks which): nothing is written
        _assert_same(evaluation)

    check()


_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20) | st.floats(
    allow_nan=False, allow_infinity=False)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(values=st.dictionaries(st.text(max_size=10), _json, max_size=6))
def test_struct_bytes_equal_the_library_struct(values: dict[str, Any]) -> None:
    expected = struct_pb2.Struct()
    expected.update(values)
    assert struct_pb2.Struct.FromString(protowire.struct_bytes(values)) == expected
    # Twice: the second time the map entries come from the encoder's cache.
    assert struct_pb2.Struct.FromString(protowire.struct_bytes(values)) == expected


@settings(max_examples=300, deadline=None)
@given(value=_json)
def test_value_bytes_equal_the_library_value(value: Any) -> None:
    assert struct_pb2.Value.FromString(protowire.value_bytes(value)) == to_value(value)


def test_negative_zero_keeps_its_sign_after_zero_was_written() -> None:
    protowire.struct_bytes({"x": 0.0})
    parsed = struct_pb2.Struct.FromString(protowire.struct_bytes({"x": -0.0}))
    assert math.copysign(1, float(parsed["x"])) == -1  # type: ignore[arg-type]


def test_long_fields_get_multi_byte_lengths() -> None:
    text = "å" * 20_000  # 40 000 bytes: past the table of short lengths
    parsed = struct_pb2.Struct.FromString(protowire.struct_bytes({"merknad": text, "n": -0.0, "big": 2**60}))
    assert parsed["merknad"] == text
    assert math.copysign(1, float(parsed["n"])) == -1  # type: ignore[arg-type]
    assert parsed["big"] == float(2**60)


def test_a_value_json_cannot_hold_is_refused() -> None:
    with pytest.raises(TypeError, match="not a JSON value"):
        protowire.value_bytes(date(2026, 1, 1))


def test_cached_map_entries_keep_value_types_apart() -> None:
    # 1, True and 1.0 are equal dict keys in Python; the entry cache must not hand one out for another.
    kinds = []
    for value in (1, True, 1.0, "1", None, 1, True):
        parsed = struct_pb2.Struct.FromString(protowire.struct_bytes({"alder": value}))
        kinds.append(parsed.fields["alder"].WhichOneof("kind"))
    assert kinds == ["number_value", "bool_value", "number_value", "string_value", "null_value", "number_value",
                     "bool_value"]


def test_the_caches_of_encoded_parts_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protowire, "CACHE_LIMIT", 3)
    for n in range(10):
        values: dict[str, Any] = {"n": n, "tekst": f"verdi-{n}"}
        expected = struct_pb2.Struct()
        expected.update(values)
        assert struct_pb2.Struct.FromString(protowire.struct_bytes(values)) == expected
        assert protowire.cached_entries() <= 3
