"""Explanation levels through the service, over real channels: a caller asks FULL (the default), FIRED or NONE
and gets that; the decision log records the level and the sha256 of the exact bytes answered; FetchDecision gives
back what was answered; and AuditService.ReplayDecision rebuilds the full explanation on the recorded version and
proves it against the recorded sha256 - with the log in SQLite and in PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import grpc
import pytest

from regelmotor.server.app import RunningServer
from regelmotor.server.wire import FULL, decision_bytes
from regelmotor.store import answered_record
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import VALID_FACTS, details, request, server_in_process
from tests.postgres_support import postgres_schema
from tests.test_wire import MOTOR

PURPOSE = "tilsynssak 2024/118"
AS_OF = date(2026, 4, 20)  # as tests.grpc_support.request asks
CALLER = (("regelmotor-caller", "dips-a"),)
EVALUATE = "/regelmotor.v1.DecisionService/Evaluate"
LEVELS = {"full": pb.EXPLANATION_LEVEL_FULL, "fired": pb.EXPLANATION_LEVEL_FIRED, "none": pb.EXPLANATION_LEVEL_NONE}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with server_in_process(workers=1) as (running, _, _):
        yield running


def _raw_evaluate(channel: grpc.Channel, message: pb.EvaluateRequest) -> bytes:
    """The answer's bytes exactly as the service sent them."""
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(EVALUATE)
    return call(message.SerializeToString(), metadata=CALLER, timeout=30)


def _answers(server: RunningServer, prefix: str) -> dict[str, bytes]:
    """The same facts answered at each level, plus once with the level left unset."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        found = {"unset": _raw_evaluate(channel, request(None, request_id=f"{prefix}-unset"))}
        for name, level in LEVELS.items():
            asked = request(None, request_id=f"{prefix}-{name}")
            asked.explanation = level
            found[name] = _raw_evaluate(channel, asked)
    return found


def _without_ids(answer: bytes) -> pb.Decision:
    decision = pb.Decision.FromString(answer)
    for name in ("decision_id", "request_id", "trace_id"):
        decision.ClearField(name)
    return decision


def test_each_level_is_answered_and_said(server: RunningServer) -> None:
    answers = _answers(server, "levels")
    unset, full, fired, none = (_without_ids(answers[name]) for name in ("unset", "full", "fired", "none"))
    assert full == unset and full.explanation_level == pb.EXPLANATION_LEVEL_UNSPECIFIED
    evaluation = MOTOR.run("rett-til-helsehjelp", VALID_FACTS, as_of=AS_OF)
    assert len(full.explanation.rules) == len(evaluation.rules)
    assert fired.explanation_level == pb.EXPLANATION_LEVEL_FIRED
    assert [r.id for r in fired.explanation.rules] == [r.id for r in full.explanation.rules if r.fired] != []
    assert none.explanation_level == pb.EXPLANATION_LEVEL_NONE and not none.HasField("explanation")
    for partial in (fired, none):
        assert (partial.outcome, partial.facts, partial.version) == (full.outcome, full.facts, full.version)
    assert len(answers["none"]) * 5 < len(answers["fired"]) < len(answers["full"])


def test_an_unknown_level_is_refused_naming_the_field(server: RunningServer) -> None:
    asked = request(None, request_id="unknown-level")
    asked.explanation = 7  # type: ignore[assignment]  # a level from a newer API: proto3 enums are open
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, \
            pytest.raises(grpc.RpcError, match="unknown explanation level 7") as caught:
        pb_grpc.DecisionServiceStub(channel).Evaluate(asked, metadata=CALLER, timeout=30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    [violation] = details(caught.value)["BadRequest"].field_violations
    assert violation.field == "explanation" and "unknown explanation level 7" in violation.description


def test_a_stream_takes_a_level_per_request(server: RunningServer) -> None:
    asked = []
    for index, level in enumerate([pb.EXPLANATION_LEVEL_NONE, pb.EXPLANATION_LEVEL_UNSPECIFIED,
                                   pb.EXPLANATION_LEVEL_FIRED]):
        item = request(None, request_id=f"stream-{index}")
        item.explanation = level
        asked.append(item)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        results = list(pb_grpc.DecisionServiceStub(channel).EvaluateStream(iter(asked), metadata=CALLER, timeout=30))
    assert [r.decision.explanation_level for r in results] == [
        pb.EXPLANATION_LEVEL_NONE, pb.EXPLANATION_LEVEL_UNSPECIFIED, pb.EXPLANATION_LEVEL_FIRED]


def test_a_retry_must_ask_the_same_level(server: RunningServer) -> None:
    first = request(None, request_id="retry-level")
    first.explanation = pb.EXPLANATION_LEVEL_NONE
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        answered = _raw_evaluate(channel, first)
        assert _raw_evaluate(channel, first) == answered  # the same request: the stored answer again
        other = request(None, request_id="retry-level")  # the same, but the full explanation
        with pytest.raises(grpc.RpcError, match="'retry-level' was already used for a different request") as caught:
            _raw_evaluate(channel, other)
    assert caught.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert details(caught.value)["ErrorInfo"].reason == "REQUEST_ID_REUSED"


def _replay(server: RunningServer, decision_id: str) -> apb.ReplayDecisionResponse:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        replay: apb.ReplayDecisionResponse = apb_grpc.AuditServiceStub(channel).ReplayDecision(
            apb.ReplayDecisionRequest(formaal=PURPOSE, decision_id=decision_id), timeout=30)
        return replay


def _fetch(server: RunningServer, decision_id: str) -> bytes:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/regelmotor.v1.DecisionService/FetchDecision")
        return call(pb.FetchDecisionRequest(decision_id=decision_id).SerializeToString(), metadata=CALLER, timeout=30)


def _assert_recorded_and_proven(server: RunningServer, prefix: str) -> None:
    answers = _answers(server, prefix)
    full_tree = _without_ids(answers["full"])
    assert server.log is not None
    for name in LEVELS:
        answer = answers[name]
        decision = pb.Decision.FromString(answer)
        record = server.log.get(decision.decision_id)
        assert record is not None
        assert record.decision["explanation_level"] == name
        assert record.decision["answer_sha256"] == hashlib.sha256(answer).hexdigest()
        assert _fetch(server, decision.decision_id) == answer  # what was answered, as it was answered
        replay = _replay(server, decision.decision_id)
        assert replay.answer_matches and replay.identical
        assert replay.answer_sha256 == replay.replayed_answer_sha256 == hashlib.sha256(answer).hexdigest()
        assert replay.explanation_level == LEVELS[name]
        # The full tree, under the recorded ids, whatever level was answered.
        assert (replay.decision.decision_id, replay.decision.request_id, replay.decision.trace_id) == (
            decision.decision_id, decision.request_id, decision.trace_id)
        assert _without_ids(replay.decision.SerializeToString()) == full_tree


def test_replay_rebuilds_the_full_tree_and_proves_the_answer_sqlite(server: RunningServer) -> None:
    _assert_recorded_and_proven(server, "sqlite")


def test_replay_rebuilds_the_full_tree_and_proves_the_answer_postgresql() -> None:
    with postgres_schema() as dsn, server_in_process(workers=1, decision_log=dsn) as (server, _, _):
        _assert_recorded_and_proven(server, "pg")


@contextmanager
def _inline_server() -> Iterator[RunningServer]:
    with server_in_process(workers=0) as (running, _, _):
        yield running


def test_a_replay_that_rebuilds_other_bytes_does_not_prove_the_answer() -> None:
    # A record whose sha256 is not the one of the answer the facts give (as if the answer had been another):
    # written through the log's own interface, so the chain is intact and only the proof can tell.
    with _inline_server() as server:
        assert server.log is not None
        evaluation = MOTOR.run("rett-til-helsehjelp", VALID_FACTS, as_of=AS_OF, version="2024.07")
        head = evaluation.head("forged-1")
        answer = decision_bytes(evaluation, head, request_id="r", trace_id="ab" * 16, level=FULL)
        decision = {"applied_rules": head.applied_rules, "explanation_level": "full", "answer_sha256": "0" * 64}
        server.log.append([answered_record(
            decision_id="forged-1", caller="dips-a", request_id="r", ruleset=head.ruleset, version=head.version,
            ruleset_sha256=head.ruleset_sha256, engine_version=head.engine_version, as_of=head.as_of, subject=None,
            facts=head.facts, outcome=head.outcome, decision=decision, answer=answer, trace_id="ab" * 16,
            request_fingerprint=None, prepare=False)])
        replay = _replay(server, "forged-1")
    assert replay.identical  # field by field the stored answer is what the replay gives ...
    assert not replay.answer_matches  # ... but it is not the answer the record says was given
    assert replay.answer_sha256 == "0" * 64 and replay.replayed_answer_sha256 == hashlib.sha256(answer).hexdigest()


def test_a_record_from_before_the_levels_is_read_and_proven_by_its_stored_answer() -> None:
    # Written as the service wrote records before the levels: no level, no sha256 in the decision JSON.
    with _inline_server() as server:
        assert server.log is not None
        evaluation = MOTOR.run("rett-til-helsehjelp", VALID_FACTS, as_of=AS_OF, version="2024.07")
        head = evaluation.head("old-1")
        answer = decision_bytes(evaluation, head, request_id="r-old", trace_id="ab" * 16)
        server.log.append([answered_record(
            decision_id="old-1", caller="dips-a", request_id="r-old", ruleset=head.ruleset, version=head.version,
            ruleset_sha256=head.ruleset_sha256, engine_version=head.engine_version, as_of=head.as_of, subject=None,
            facts=head.facts, outcome=head.outcome, decision={"applied_rules": head.applied_rules}, answer=answer,
            trace_id="ab" * 16, request_fingerprint=None, prepare=False)])
        replay = _replay(server, "old-1")
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            got = apb_grpc.AuditServiceStub(channel).GetDecision(
                apb.GetDecisionRequest(formaal=PURPOSE, decision_id="old-1"), timeout=30)
    digest = hashlib.sha256(answer).hexdigest()
    assert replay.answer_matches and replay.explanation_level == pb.EXPLANATION_LEVEL_FULL
    assert replay.answer_sha256 == digest and got.answer_sha256 == digest
    assert replay.decision == pb.Decision.FromString(answer)
