"""How an engine worker takes part in the decision log.

A SQLite log: the worker stores each decision itself, before it answers (`Writer.WORKERS`).
A PostgreSQL log: the worker hands each decision back with its record, the large fields already in their
canonical text, equal to what the log would make itself, for the front's group committer to store
(`Writer.FRONT`). Which of the two is chosen once, from the log (`RecordingPlan.for_log`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regelmotor.core.api import Regelmotor
from regelmotor.core.identity import Pseudonymiser
from regelmotor.core.repository import RulesetRepository
from regelmotor.server.fingerprint import request_fingerprint
from regelmotor.server.handler import EvaluationHandler
from regelmotor.server.protocol import EvaluateCalls, Skipped
from regelmotor.server.recording import AppendedHere, HandedToFront, RecordingPlan, Writer
from regelmotor.server.worker import Worker, WorkerConfig
from regelmotor.store import open_log, unpack_response
from regelmotor.store.chain import VerifyResult, canonical_json, large_parts
from regelmotor.store.record import DecisionRecord, StoredRecord
from regelmotor.store.sqlite import SQLiteDecisionLog
from regelmotor_api.v1 import decision_pb2 as pb
from tests.conftest import BUNDLED_RULESETS
from tests.grpc_support import VALID_FACTS, request
from tests.identity_numbers import FODSELSNUMRE
from tests.postgres_support import postgres_schema

MOTOR = Regelmotor(RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True))
NATIONAL_ID = FODSELSNUMRE[0]


def test_the_worker_hands_over_the_record_with_the_canonical_text_the_log_would_make() -> None:
    handler = EvaluationHandler(MOTOR, pseudonymiser=Pseudonymiser(b"k" * 32), recording=HandedToFront())
    reply = handler.evaluate(request(request_id="h-1", national_id=NATIONAL_ID).SerializeToString(), caller="dips")
    record = reply.record
    assert record is not None and record.encoded is not None and reply.decision is not None
    assert record.encoded == large_parts(record.facts, record.outcome, record.decision, record.response)
    assert json.loads(record.encoded["decision"]) == record.decision
    assert record.encoded["facts"] == canonical_json(record.facts)
    assert unpack_response(record.response) == reply.decision
    answered = pb.Decision.FromString(reply.decision)
    assert (record.decision_id, record.caller, record.request_id, record.trace_id) == (
        answered.decision_id, "dips", "h-1", answered.trace_id)
    assert record.subject == Pseudonymiser(b"k" * 32).pseudonym(NATIONAL_ID)


def test_the_record_carries_the_fingerprint_of_what_was_asked() -> None:
    pseudonymiser = Pseudonymiser(b"k" * 32)
    handler = EvaluationHandler(MOTOR, pseudonymiser=pseudonymiser, recording=HandedToFront())
    asked = request(request_id="h-2", national_id=NATIONAL_ID, as_of="", version="2024.07")
    record = handler.evaluate(asked.SerializeToString(), caller="dips").record
    assert record is not None and record.as_of != ""  # the decision has a date; the request asked none
    # The request's facts as sent (VALID_FACTS holds no numbers, which a Struct would turn into doubles).
    expected = request_fingerprint("rett-til-helsehjelp", "2024.07", "", VALID_FACTS,
                                   pseudonymiser.pseudonym(NATIONAL_ID))
    assert record.request_fingerprint == expected
    # Without a request_id there is no retry, and no fingerprint to keep.
    unnamed = handler.evaluate(request(request_id="").SerializeToString(), caller="dips").record
    assert unnamed is not None and unnamed.request_fingerprint is None


def test_without_a_log_or_a_caller_the_worker_makes_no_record() -> None:
    for handler, caller in ((EvaluationHandler(MOTOR), "dips"),
                            (EvaluationHandler(MOTOR, recording=HandedToFront()), None)):
        reply = handler.evaluate(request().SerializeToString(), caller=caller)
        assert reply.decision and reply.record is None


class CountingLog(SQLiteDecisionLog):
    """The real SQLite log, counting its appends (one append is one transaction)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.appends: list[int] = []

    def append(self, records: list[DecisionRecord]) -> list[StoredRecord]:
        self.appends.append(len(records))
        return super().append(records)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[CountingLog]:
    opened = CountingLog(tmp_path / "decisions.db")
    yield opened
    opened.close()


def _handler(log: SQLiteDecisionLog) -> EvaluationHandler:
    return EvaluationHandler(MOTOR, pseudonymiser=Pseudonymiser(b"k" * 32), recording=AppendedHere(log, owned=False))


def test_a_worker_with_a_log_stores_the_decision_before_it_answers(log: CountingLog) -> None:
    reply = _handler(log).evaluate(request(request_id="w-1", national_id=NATIONAL_ID).SerializeToString(),
                                   caller="dips-a")
    assert reply.error is None and reply.decision is not None and reply.record is None  # nothing for the front
    answered = pb.Decision.FromString(reply.decision)
    stored = log.get(answered.decision_id)
    assert stored is not None and unpack_response(stored.response) == reply.decision
    assert (stored.caller, stored.request_id, stored.trace_id) == ("dips-a", "w-1", answered.trace_id)
    assert stored.subject == Pseudonymiser(b"k" * 32).pseudonym(NATIONAL_ID)
    assert stored.decision["applied_rules"] and stored.outcome == stored.decision["outcome"]
    assert log.verify() == VerifyResult(ok=True, checked=1)


def test_a_retried_request_id_gets_the_first_decision_and_no_second_record(log: CountingLog) -> None:
    handler = _handler(log)
    first = handler.evaluate(request(request_id="w-2").SerializeToString(), caller="dips-a")
    again = handler.evaluate(request(request_id="w-2").SerializeToString(), caller="dips-a")
    other = handler.evaluate(request(request_id="w-2").SerializeToString(), caller="dips-b")  # another caller
    assert again.decision == first.decision and again.summary.decision_id == first.summary.decision_id
    assert other.decision != first.decision
    assert log.verify() == VerifyResult(ok=True, checked=2)


def test_a_request_id_reused_in_one_batch_is_refused_and_the_rest_is_stored(log: CountingLog) -> None:
    changed = {**VALID_FACTS, "forventet_nytte": False}
    items = [(0, request(request_id="b-same")), (1, request(changed, request_id="b-same")),
             (2, request(request_id="b-other")), (3, request(request_id="b-same"))]
    replies = _handler(log).evaluate_batch([(i, m.SerializeToString()) for i, m in items], caller="batch")
    first = replies[0].decision
    assert first is not None and replies[3].decision == first and replies[2].decision is not None
    refused = replies[1]
    assert refused.decision is None and refused.error is not None and refused.record is None
    error = pb.ErrorResult.FromString(refused.error)
    assert error.code == 6 and b"REQUEST_ID_REUSED" in refused.error  # ALREADY_EXISTS
    assert (refused.summary.code, refused.summary.decision_id, refused.summary.request_id) == (6, "", "b-same")
    assert pb.Decision.FromString(first).decision_id.encode() not in refused.error
    assert log.appends == [4, 1, 1, 1, 1]  # refused as a whole, then one at a time: only item 1 fails
    assert log.verify() == VerifyResult(ok=True, checked=2)


def test_a_replay_has_no_caller_and_is_not_recorded(log: CountingLog) -> None:
    reply = _handler(log).evaluate(request(request_id="w-3").SerializeToString(), caller=None)
    assert reply.decision is not None and log.get(pb.Decision.FromString(reply.decision).decision_id) is None
    assert log.verify() == VerifyResult(ok=True, checked=0)


def test_a_batch_is_stored_in_one_transaction_and_its_bad_items_are_not(log: CountingLog) -> None:
    items = [(i, request(request_id=f"b-{i}").SerializeToString()) for i in range(5)]
    items.insert(2, (9, request(ruleset="").SerializeToString()))  # INVALID_ARGUMENT: nothing to store
    replies = _handler(log).evaluate_batch(items, caller="batch")
    assert [r.error is None for r in replies] == [True, True, False, True, True, True]
    assert log.appends == [5]
    for reply in replies:
        if reply.decision is not None:
            assert log.get(pb.Decision.FromString(reply.decision).decision_id) is not None
    assert log.verify() == VerifyResult(ok=True, checked=5)


def test_unary_calls_sent_to_a_worker_together_are_stored_in_one_transaction_before_any_is_answered(
        log: CountingLog) -> None:
    worker = Worker(WorkerConfig(role="engine"), engine=_handler(log))
    later, passed = time.monotonic() + 60, time.monotonic() - 1
    calls = [(request(request_id=f"c-{n}").SerializeToString(), None, f"caller-{n}", passed if n == 2 else later)
             for n in range(4)]
    calls.append((request(ruleset="").SerializeToString(), None, "caller-4", later))  # refused: nothing to store
    answers = worker.answers(EvaluateCalls(tuple(calls)))
    assert log.appends == [3]  # calls 0, 1 and 3: one commit, not one a call
    assert isinstance(answers[2], Skipped) and len(answers) == 5
    refused: Any = answers[4]
    assert refused.decision is None and pb.ErrorResult.FromString(refused.error).code == 3
    for n in (0, 1, 3):
        reply: Any = answers[n]
        answered = pb.Decision.FromString(reply.decision)
        stored = log.get(answered.decision_id)
        assert stored is not None and (stored.caller, stored.request_id) == (f"caller-{n}", f"c-{n}")
    assert log.verify() == VerifyResult(ok=True, checked=3)


def test_unary_calls_sent_together_to_a_worker_whose_log_is_gone_are_each_refused_safe_to_retry(
        log: CountingLog) -> None:
    worker = Worker(WorkerConfig(role="engine"), engine=_handler(log))
    log.close()
    calls = tuple((request(request_id=f"g-{n}").SerializeToString(), None, "dips", None) for n in range(3))
    for answer in worker.answers(EvaluateCalls(calls)):
        reply: Any = answer
        assert reply.decision is None and pb.ErrorResult.FromString(reply.error).code == 14  # UNAVAILABLE
        assert b"DECISION_NOT_RECORDED" in reply.error


def test_a_decision_the_log_cannot_store_is_not_answered(log: CountingLog) -> None:
    handler = _handler(log)
    log.close()
    reply = handler.evaluate(request(request_id="w-4").SerializeToString(), caller="dips-a")
    assert reply.decision is None and reply.error is not None
    error = pb.ErrorResult.FromString(reply.error)
    assert error.code == 14 and "not answered" in error.message  # UNAVAILABLE: safe to retry
    assert b"DECISION_NOT_RECORDED" in reply.error


def test_the_log_chooses_who_writes_it_once(log: CountingLog) -> None:
    assert RecordingPlan.for_log(None) == RecordingPlan(Writer.NONE)
    plan = RecordingPlan.for_log(log)
    assert plan == RecordingPlan(Writer.WORKERS, str(log.path))  # SQLite: each engine opens the file itself
    engine = plan.engine_side()
    assert isinstance(engine, AppendedHere) and engine.owned and engine.log is not log
    engine.close()
    front = plan.front_side(log)
    assert front.committer is None  # the front stores nothing: the engines have
    with pytest.raises(ValueError, match="exactly when the workers write it"):
        RecordingPlan(Writer.FRONT, str(log.path))


def test_a_postgresql_log_is_written_by_the_fronts_group_committer() -> None:
    with postgres_schema() as dsn:
        log = open_log(dsn)
        try:
            plan = RecordingPlan.for_log(log)
            assert plan == RecordingPlan(Writer.FRONT)  # no DSN goes to the workers
            assert isinstance(plan.engine_side(), HandedToFront)
            front = plan.front_side(log)
            assert front.committer is not None and front.committer.log is log
            front.close()
        finally:
            log.close()
