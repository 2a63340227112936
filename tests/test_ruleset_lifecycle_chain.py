"""Ruleset lifecycle, continued: retirement, two approvals racing, and the lifecycle events' hash chain under
VerifyLog and the signed checkpoints. Real gRPC channel, tokens made here, SQLite and PostgreSQL."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from regelmotor.server.app import RunningServer
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.auth_support import Issuer, bearer
from tests.grpc_support import details, struct
from tests.lifecycle_support import Person, cases, lifecycle_server, seed_directory, sha256, source
from tests.postgres_support import psycopg

AUTHOR = ("ruleset:author", "ruleset:read")
APPROVER = ("ruleset:approve", "ruleset:read")


@pytest.fixture
def server(idp: Issuer, idp_jwks: Path, tmp_path: Path, store_backend: str) -> Iterator[RunningServer]:
    with lifecycle_server(idp, idp_jwks, seed_directory(tmp_path / "rulesets"), store_backend,
                          data_dir=tmp_path / "data") as running:
        yield running


def _publish(anna: Person, bjorn: Person, version: str, fra: str) -> str:
    text = source(version, fra)
    assert anna.propose(text, cases(fra)).accepted
    bjorn.approve(version, sha256(text))
    return text


def _evaluate(server: RunningServer, idp: Issuer, as_of: str, version: str = "") -> pb.Decision:
    with grpc.insecure_channel(server.address) as channel:
        answer: pb.Decision = pb_grpc.DecisionServiceStub(channel).Evaluate(
            pb.EvaluateRequest(ruleset="sats", as_of=as_of, version=version, facts=struct({"alder": 40}),
                               request_id=f"{as_of}-{version}"),
            metadata=bearer(idp.token(scope="evaluate")), timeout=30)
        return answer


def _reason(error: pytest.ExceptionInfo[grpc.RpcError]) -> tuple[grpc.StatusCode, str]:
    call = error.value
    assert isinstance(call, grpc.Call)
    return call.code(), details(call)["ErrorInfo"].reason


def test_a_retired_version_answers_only_pinned_requests_before_its_date(
        idp: Issuer, idp_jwks: Path, tmp_path: Path, store_backend: str) -> None:
    rulesets, data = seed_directory(tmp_path / "rulesets"), tmp_path / "data"
    with lifecycle_server(idp, idp_jwks, rulesets, store_backend, data_dir=data) as server, \
            grpc.insecure_channel(server.address) as channel:
        anna, bjorn = Person(idp, channel, "anna", *AUTHOR), Person(idp, channel, "bjorn", *APPROVER)
        _publish(anna, bjorn, "2025.1", "2025-01-01")
        assert _evaluate(server, idp, "2024-05-01").version == "2024.1"  # logged: selected for 2024-05-01
        with pytest.raises(grpc.RpcError, match="logged for dates up to 2024-05-01") as caught:
            bjorn.retire("2024.1", "2024-05-01")
        assert _reason(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "DECISIONS_PINNED")
        with pytest.raises(grpc.RpcError, match=re.escape("would make version 2024.1 govern its days too")) as caught:
            bjorn.retire("2025.1", "2026-01-01")  # 2024.1 is open-ended: it would take 2025.1's days over
        assert _reason(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "TIMELINE")
        retired = bjorn.retire("2024.1", "2024-05-02").version
        assert (retired.state, retired.retired_from) == ("retired", "2024-05-02")
        assert anna.history().events[-1].action == "retired"
    with lifecycle_server(idp, idp_jwks, rulesets, store_backend, data_dir=data) as server:
        assert _evaluate(server, idp, "2024-05-01", version="2024.1").version == "2024.1"  # the replay's case
        with pytest.raises(grpc.RpcError, match="retired from 2024-05-02") as caught:
            _evaluate(server, idp, "2024-06-01", version="2024.1")
        assert _reason(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "VERSION_RETIRED")
        with pytest.raises(grpc.RpcError, match="no version of 'sats' is in force on 2024-05-01"):
            _evaluate(server, idp, "2024-05-01")
        assert _evaluate(server, idp, "2025-02-01").version == "2025.1"


def test_two_approvals_of_overlapping_versions_at_once_cannot_both_win(server: RunningServer, idp: Issuer) -> None:
    with grpc.insecure_channel(server.address) as one, grpc.insecure_channel(server.address) as other:
        anna = Person(idp, one, "anna", *AUTHOR)
        texts = {version: source(version, "2025-06-01", grense=grense)
                 for version, grense in (("2025.1", 18), ("2025.2", 19))}
        for text in texts.values():
            assert anna.propose(text, cases("2025-06-01")).accepted
        approvers = [Person(idp, one, "bjorn", *APPROVER), Person(idp, other, "carl", *APPROVER)]
        start = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def approve(person: Person, version: str) -> None:
            start.wait()
            try:
                outcomes[version] = person.approve(version, sha256(texts[version])).version.state
            except grpc.RpcError as error:
                assert isinstance(error, grpc.Call)
                outcomes[version] = details(error)["ErrorInfo"].reason

        threads = [threading.Thread(target=approve, args=(p, v)) for p, v in zip(approvers, texts, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes.values()) == ["TIMELINE", "published"], outcomes
        assert sorted(anna.states().values()) == ["proposed", "published", "published"]


def _tamper(server: RunningServer, store_backend: str, statement: str) -> None:
    """Run `statement` on the store as someone with the database's rights would: the append-only triggers off."""
    if store_backend == "sqlite":
        conn = sqlite3.connect(server.settings.data_dir / "decisions.db", isolation_level=None)
        try:
            for trigger in ("ruleset_events_no_update", "ruleset_events_no_delete", "ruleset_versions_no_update"):
                conn.execute(f"DROP TRIGGER {trigger}")
            conn.execute(statement)
        finally:
            conn.close()
        return
    with psycopg.connect(store_backend, autocommit=True) as admin:
        admin.execute("ALTER TABLE ruleset_events DISABLE TRIGGER USER")
        admin.execute("ALTER TABLE ruleset_versions DISABLE TRIGGER USER")
        admin.execute(statement)


def _verify(server: RunningServer, idp: Issuer) -> apb.VerifyLogResponse:
    with grpc.insecure_channel(server.address) as channel:
        answer: apb.VerifyLogResponse = apb_grpc.AuditServiceStub(channel).VerifyLog(
            apb.VerifyLogRequest(formaal="kontroll av regelsettenes historikk"),
            metadata=bearer(idp.token(scope="audit")), timeout=30)
        return answer


def _proposed_and_approved(server: RunningServer, idp: Issuer) -> None:
    with grpc.insecure_channel(server.address) as channel:
        _publish(Person(idp, channel, "anna", *AUTHOR), Person(idp, channel, "bjorn", *APPROVER),
                 "2025.1", "2025-01-01")


@pytest.mark.parametrize(("statement", "event", "says"), [
    ("UPDATE ruleset_events SET who = 'anna' WHERE action = 'approved'", 3, "does not match its hash"),
    ("UPDATE ruleset_versions SET source = source || '#' WHERE version = '2025.1'", 2,
     "no longer match it"),
    ("DELETE FROM ruleset_events WHERE action = 'proposed'", 3, "does not link to event 1"),
])
def test_verify_log_finds_an_edited_or_removed_lifecycle_event(server: RunningServer, idp: Issuer, store_backend: str,
                                                               statement: str, event: int, says: str) -> None:
    _proposed_and_approved(server, idp)
    assert _verify(server, idp).ok
    _tamper(server, store_backend, statement)
    verified = _verify(server, idp)
    assert not verified.ok
    assert (verified.first_problem.kind, verified.first_problem.seq) == ("lifecycle altered", event)
    assert says in verified.first_problem.message


def test_a_removed_newest_event_is_found_against_the_signed_checkpoint(server: RunningServer, idp: Issuer,
                                                                        store_backend: str) -> None:
    _proposed_and_approved(server, idp)
    assert server.service.checkpointer is not None
    signed = server.service.checkpointer.checkpoint().checkpoint
    assert signed is not None and signed.lifecycle_id == 3
    # The chain alone stays whole: only the checkpoint shows the newest event is gone.
    _tamper(server, store_backend, "DELETE FROM ruleset_events WHERE action = 'approved'")
    verified = _verify(server, idp)
    assert not verified.ok
    assert (verified.first_problem.kind, verified.first_problem.seq) == ("lifecycle altered", 3)
    assert "is gone or has another hash than the checkpoint signed" in verified.first_problem.message
