"""Every AuditService read says why (`formaal`), and the access log records it with what was asked — over real
channels. A search by national_id is recorded with the pseudonym only."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from regelmotor.server.app import RunningServer
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import details, request, server_in_process
from tests.identity_numbers import FODSELSNUMRE

NATIONAL_ID = FODSELSNUMRE[2]
PURPOSE = "tilsynssak 2024/118"
AUDITOR = "revisor-purpose"

Call = Callable[[apb_grpc.AuditServiceStub, str], Any]
# Each AuditService RPC, called with a given formaal (ExportDecisions is read to its end).
CALLS: dict[str, Call] = {
    "ListDecisions": lambda stub, formaal: stub.ListDecisions(
        apb.ListDecisionsRequest(formaal=formaal, filter=apb.DecisionFilter(ruleset="pasientrettigheter")),
        metadata=[("regelmotor-caller", AUDITOR)], timeout=30),
    "GetDecision": lambda stub, formaal: stub.GetDecision(
        apb.GetDecisionRequest(formaal=formaal, decision_id=_DECISION["id"]),
        metadata=[("regelmotor-caller", AUDITOR)], timeout=30),
    "ReplayDecision": lambda stub, formaal: stub.ReplayDecision(
        apb.ReplayDecisionRequest(formaal=formaal, decision_id=_DECISION["id"]),
        metadata=[("regelmotor-caller", AUDITOR)], timeout=30),
    "VerifyLog": lambda stub, formaal: stub.VerifyLog(
        apb.VerifyLogRequest(formaal=formaal), metadata=[("regelmotor-caller", AUDITOR)], timeout=30),
    "ExportDecisions": lambda stub, formaal: list(stub.ExportDecisions(
        apb.ExportDecisionsRequest(formaal=formaal, filter=apb.DecisionFilter(caller="purpose-dips")),
        metadata=[("regelmotor-caller", AUDITOR)], timeout=30)),
}
_DECISION: dict[str, str] = {}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with server_in_process(workers=0) as (running, _, _):
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            decision = pb_grpc.DecisionServiceStub(channel).Evaluate(
                request(None, national_id=NATIONAL_ID, request_id="purpose-1"),
                metadata=[("regelmotor-caller", "purpose-dips")], timeout=30)
        _DECISION["id"] = decision.decision_id
        yield running


def _audit(server: RunningServer) -> tuple[grpc.Channel, apb_grpc.AuditServiceStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    return channel, apb_grpc.AuditServiceStub(channel)


BAD_PURPOSES = [
    ("", r"formaal: required: say why you read"),
    ("   \t ", r"formaal: required: say why you read"),
    ("ok", r"formaal: must be 3 to 500 characters, not 2"),
    ("x" * 501, r"formaal: must be 3 to 500 characters, not 501"),
    ("sak 1\nForfalsket linje", r"formaal: must not contain control characters"),
]


@pytest.mark.parametrize("rpc", sorted(CALLS))
@pytest.mark.parametrize(("formaal", "reason"), BAD_PURPOSES)
def test_a_read_without_a_purpose_is_invalid_argument_naming_formaal_and_not_answered(
        server: RunningServer, rpc: str, formaal: str, reason: str) -> None:
    assert server.log is not None
    logged = len(server.log.access_log())
    channel, stub = _audit(server)
    with channel, pytest.raises(grpc.RpcError, match=reason) as caught:
        CALLS[rpc](stub, formaal)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    [violation] = details(caught.value)["BadRequest"].field_violations
    assert violation.field == "formaal"
    assert len(server.log.access_log()) == logged  # refused before anything was read or logged


@pytest.mark.parametrize("rpc", sorted(CALLS))
def test_every_read_records_its_purpose_with_what_was_asked(server: RunningServer, rpc: str) -> None:
    assert server.log is not None
    channel, stub = _audit(server)
    with channel:
        CALLS[rpc](stub, f"  {PURPOSE} ({rpc})  ")
    entry = server.log.access_log()[-1]
    assert entry["who"] == AUDITOR and entry["action"] == rpc
    assert entry["detail"]["formaal"] == f"{PURPOSE} ({rpc})"  # stripped
    asked = {"ListDecisions": ("ruleset", "pasientrettigheter"), "GetDecision": ("decision_id", _DECISION["id"]),
             "ReplayDecision": ("decision_id", _DECISION["id"]), "ExportDecisions": ("caller", "purpose-dips")}
    if rpc in asked:
        key, value = asked[rpc]
        assert entry["detail"][key] == value


def test_a_search_by_national_id_is_recorded_with_the_pseudonym_only(
        server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    assert server.log is not None
    stored = server.log.get(_DECISION["id"])
    assert stored is not None and stored.subject
    caplog.set_level(logging.DEBUG)
    channel, stub = _audit(server)
    with channel:
        found = stub.ListDecisions(apb.ListDecisionsRequest(
            formaal=PURPOSE, filter=apb.DecisionFilter(national_id=NATIONAL_ID)),
            metadata=[("regelmotor-caller", AUDITOR)], timeout=30)
        exported = list(stub.ExportDecisions(apb.ExportDecisionsRequest(
            formaal=PURPOSE, filter=apb.DecisionFilter(national_id=NATIONAL_ID)),
            metadata=[("regelmotor-caller", AUDITOR)], timeout=30))
    assert [d.decision_id for d in found.decisions] == [_DECISION["id"]] and len(exported) == 1
    entries = server.log.access_log()[-2:]
    assert [e["detail"]["subject"] for e in entries] == [stored.subject, stored.subject]
    assert NATIONAL_ID not in repr(server.log.access_log())
    assert caplog.records and NATIONAL_ID not in caplog.text
    assert all(NATIONAL_ID not in repr(record.__dict__) for record in caplog.records)
