"""A hospital system reads back a decision it was answered, in full, and only its own: another caller's
decision is answered exactly as an unknown id (NOT_FOUND), so nothing is revealed about it."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.auth_support import AUDIENCE, ISSUER, Issuer, bearer
from tests.grpc_support import request, server_in_process


def _fetch(stub: pb_grpc.DecisionServiceStub, decision_id: str, metadata: list[tuple[str, str]]) -> pb.Decision:
    answer: pb.Decision = stub.FetchDecision(pb.FetchDecisionRequest(decision_id=decision_id), metadata=metadata,
                                             timeout=30)
    return answer


def test_with_tokens_a_caller_fetches_its_own_decisions_and_nothing_else(tmp_path: Path) -> None:
    issuer = Issuer()
    issuer.add_rsa("k1")
    jwks = issuer.write_jwks(tmp_path / "jwks.json")
    own = bearer(issuer.token(client_id="dips-arena"))
    other = bearer(issuer.token(client_id="metavision"))
    with server_in_process(workers=1, auth_jwks_file=jwks, auth_issuer=ISSUER, auth_audience=AUDIENCE) as (
            server, _, _), grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        answered = stub.Evaluate(request(request_id="fetch-1"), metadata=own, timeout=30)
        fetched = _fetch(stub, answered.decision_id, own)
        refusals = []
        for decision_id, metadata in ((answered.decision_id, other), ("no-such-decision", own)):
            with pytest.raises(grpc.RpcError, match="no decision with this id was answered to you") as caught:
                _fetch(stub, decision_id, metadata)
            refusals.append((caught.value.code(), caught.value.details()))
    assert fetched == answered, "the decision as it was answered, explanation and all"
    assert len(fetched.explanation.rules) > 0
    assert refusals[0] == refusals[1], "another caller's decision looks exactly like an unknown one"
    assert refusals[0][0] is grpc.StatusCode.NOT_FOUND


def test_bad_ids_are_invalid_argument_and_a_service_without_a_log_says_so() -> None:
    with server_in_process(workers=0) as (server, _, _), grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        for bad in ("", "x" * 101):
            with pytest.raises(grpc.RpcError, match="decision_id: required") as caught:
                _fetch(stub, bad, [])
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with server_in_process(workers=0, decision_log="off") as (server, _, _), \
            grpc.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.RpcError, match="keeps no decision log") as caught:
            _fetch(pb_grpc.DecisionServiceStub(channel), "some-id", [])
        assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
