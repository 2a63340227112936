"""A request_id is a retry of the very same request, or refused - over real channels, on every recording path.

The same caller and request_id with the same ruleset, version pin, as_of, facts and national_id get the
decision stored the first time (and one record). With any of them different the call is refused with
ALREADY_EXISTS and ErrorInfo reason REQUEST_ID_REUSED, the answer holds nothing of the stored decision (it may
be another patient's), and nothing is stored. Paths: the engine workers' own SQLite log (two workers), the
inline engine (no workers) with SQLite, and PostgreSQL through the front's group committer (one worker, so
the record crosses the pipe; and inline)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from regelmotor.server.app import RunningServer
from regelmotor.server.fingerprint import request_fingerprint
from regelmotor.store import ListFilter
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import VALID_FACTS, details, request, server_in_process
from tests.identity_numbers import FODSELSNUMRE
from tests.postgres_support import postgres_schema

NATIONAL_ID = FODSELSNUMRE[0]
OTHER_ID = FODSELSNUMRE[1]

# How a request can differ from the first one under the same request_id (the first: VALID_FACTS for
# rett-til-helsehjelp, as_of 2026-04-20, no version pin, no national_id).
DIFFERENT: dict[str, tuple[dict[str, Any] | None, dict[str, str]]] = {
    "facts": ({**VALID_FACTS, "forventet_nytte": False}, {}),
    "ruleset": ({"fodselsdato": "1985-06-15"}, {"ruleset": "prioriterte-pasientgrupper"}),
    "version": (None, {"version": "2024.07"}),  # the version in force anyway: still not what was asked
    "as_of": (None, {"as_of": "2026-04-21"}),
    "national_id": (None, {"national_id": NATIONAL_ID}),
}

PATHS = {
    "sqlite-workers": {"workers": 2},
    "sqlite-inline": {"workers": 0},
    "postgres-worker": {"workers": 1, "postgres": True},
    "postgres-inline": {"workers": 0, "postgres": True},
}


@pytest.fixture(scope="module", params=list(PATHS))
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    settings = dict(PATHS[request.param])
    if settings.pop("postgres", False):
        with postgres_schema() as dsn, server_in_process(decision_log=dsn, **settings) as (running, _, _):
            yield running
    else:
        with server_in_process(**settings) as (running, _, _):
            yield running


@pytest.fixture
def caller() -> str:
    return f"idem-{uuid.uuid4().hex[:10]}"  # each test's records apart from the others'


def _stub(server: RunningServer) -> tuple[grpc.Channel, pb_grpc.DecisionServiceStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    return channel, pb_grpc.DecisionServiceStub(channel)


def _evaluate(server: RunningServer, caller: str, message: pb.EvaluateRequest) -> pb.Decision:
    channel, stub = _stub(server)
    with channel:
        answer: pb.Decision = stub.Evaluate(message, metadata=[("regelmotor-caller", caller)], timeout=30)
        return answer


def _refused(server: RunningServer, caller: str, message: pb.EvaluateRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError, match=r"request_id .* was already used for a different request") as caught:
        _evaluate(server, caller, message)
    return caught.value


def _stream(server: RunningServer, caller: str, messages: list[pb.EvaluateRequest]) -> list[pb.EvaluateStreamResponse]:
    channel, stub = _stub(server)
    with channel:
        return list(stub.EvaluateStream(iter(messages), metadata=[("regelmotor-caller", caller)], timeout=60))


def _stored(server: RunningServer, caller: str) -> list[str]:
    assert server.log is not None
    return [record.decision_id for record in server.log.iterate(ListFilter(caller=caller))]


def _traces_of(decision: pb.Decision) -> list[str]:
    """What would give the stored decision away: its ids, and every outcome value written as text."""
    values = [decision.decision_id, decision.trace_id, decision.ruleset_sha256]
    values += [value.string_value for value in decision.outcome.fields.values() if value.string_value]
    return values


def _reveals(decision: pb.Decision, *answers: bytes | str | Message) -> list[str]:
    blobs = [a if isinstance(a, bytes) else a.encode() if isinstance(a, str) else a.SerializeToString()
             for a in answers]
    return [value for value in _traces_of(decision) for blob in blobs if value.encode() in blob]


def _assert_reused(error: pb.ErrorResult | grpc.RpcError, request_id: str) -> None:
    if isinstance(error, grpc.RpcError):
        assert error.code() is grpc.StatusCode.ALREADY_EXISTS, error
        info = details(error)["ErrorInfo"]
        message = error.details() or ""
    else:
        assert error.code == code_pb2.ALREADY_EXISTS, error
        [packed] = error.details
        info = error_details_pb2.ErrorInfo()
        assert packed.Unpack(info)
        message = error.message
    assert (info.reason, info.domain, dict(info.metadata)) == ("REQUEST_ID_REUSED", "regelmotor.no",
                                                               {"request_id": request_id})
    assert f"request_id {request_id!r} was already used for a different request" in message
    assert "new request_id" in message


def _everything_sent(error: grpc.RpcError) -> list[bytes | str]:
    """Everything the client got with a failed call: status message and trailing metadata (the details)."""
    trailing = [item.value for item in (error.trailing_metadata() or ())]
    return [error.details() or "", *trailing]


def test_a_retry_with_the_same_content_gets_the_stored_decision(server: RunningServer, caller: str) -> None:
    first = _evaluate(server, caller, request(request_id="same-1", national_id=NATIONAL_ID))
    # Struct keys come in any order: the facts are compared as canonical JSON.
    reordered = dict(reversed(list(VALID_FACTS.items())))
    again = _evaluate(server, caller, request(reordered, request_id="same-1", national_id=NATIONAL_ID))
    assert again == first
    assert _stored(server, caller) == [first.decision_id]
    # Another caller's request_id is its own.
    other = _evaluate(server, f"{caller}-b", request(request_id="same-1"))
    assert other.decision_id != first.decision_id


@pytest.mark.parametrize("difference", list(DIFFERENT))
def test_the_same_request_id_with_a_different_request_is_refused_and_reveals_nothing(
        server: RunningServer, caller: str, difference: str) -> None:
    first = _evaluate(server, caller, request(request_id="k-1"))
    facts, fields = DIFFERENT[difference]
    error = _refused(server, caller, request(facts, request_id="k-1", **fields))
    _assert_reused(error, "k-1")
    assert _reveals(first, *_everything_sent(error)) == []
    assert _stored(server, caller) == [first.decision_id]  # nothing new stored
    # The first request, retried, still gets its own decision.
    assert _evaluate(server, caller, request(request_id="k-1")) == first


def test_another_patient_under_a_used_request_id_is_refused(server: RunningServer, caller: str) -> None:
    first = _evaluate(server, caller, request(request_id="p-1", national_id=NATIONAL_ID))
    error = _refused(server, caller, request(request_id="p-1", national_id=OTHER_ID))
    _assert_reused(error, "p-1")
    assert _reveals(first, *_everything_sent(error)) == []
    assert _stored(server, caller) == [first.decision_id]


def test_a_stream_refuses_each_reused_item_on_its_own(server: RunningServer, caller: str) -> None:
    earlier = _evaluate(server, caller, request(request_id="s-0"))
    changed = {**VALID_FACTS, "kostnad_rimelig": False}
    items = [request(request_id="s-1"),                 # new
             request(changed, request_id="s-1"),        # the same request_id with other facts, in the same stream
             request(request_id="s-2"),                 # new
             request(request_id="s-1"),                 # the same request as item 0
             request(changed, request_id="s-0"),        # reuses the unary call's request_id
             request(request_id="s-0")]                 # retries the unary call
    results = _stream(server, caller, items)
    assert [r.index for r in results] == list(range(6))
    assert [r.request_id for r in results] == ["s-1", "s-1", "s-2", "s-1", "s-0", "s-0"]
    # With two workers, batches of one stream are evaluated side by side: which of items 0 and 1 is stored
    # first is not fixed, but exactly one request is, and the other is refused.
    kinds = [r.WhichOneof("result") for r in results]
    assert (kinds[0], kinds[1], kinds[3]) in (("decision", "error", "decision"), ("error", "decision", "error"))
    won = results[0].decision if kinds[0] == "decision" else results[1].decision
    for result in (results[0], results[1], results[3]):
        if result.WhichOneof("result") == "decision":
            assert result.decision == won
        else:
            _assert_reused(result.error, "s-1")
            assert _reveals(won, result) == []
    assert kinds[2] == "decision" and kinds[5] == "decision" and results[5].decision == earlier
    assert kinds[4] == "error"
    _assert_reused(results[4].error, "s-0")
    assert _reveals(earlier, results[4]) == []
    assert sorted(_stored(server, caller)) == sorted([earlier.decision_id, won.decision_id,
                                                      results[2].decision.decision_id])
    assert server.log is not None and server.log.verify().ok


def test_concurrent_calls_reusing_a_request_id_store_one_request(server: RunningServer, caller: str) -> None:
    changed = {**VALID_FACTS, "forventet_nytte": False}
    asked = [request(request_id="c-1") if i % 2 == 0 else request(changed, request_id="c-1") for i in range(8)]

    def call(message: pb.EvaluateRequest) -> pb.Decision | grpc.RpcError:
        try:
            return _evaluate(server, caller, message)
        except grpc.RpcError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(call, asked))
    [stored] = _stored(server, caller)
    winners = {i % 2 for i, answer in enumerate(answers) if isinstance(answer, pb.Decision)}
    assert len(winners) == 1  # only the request stored first is answered, every time with its decision
    [side] = winners
    for i, answer in enumerate(answers):
        if i % 2 == side:
            assert isinstance(answer, pb.Decision) and answer.decision_id == stored
        else:
            assert isinstance(answer, grpc.RpcError)
            _assert_reused(answer, "c-1")


def test_the_fingerprint_covers_each_part_of_the_request_and_only_as_asked() -> None:
    facts = {"a": 1.0, "b": [True, {"c": "æ"}]}
    base = request_fingerprint("r", "", "", facts, None)
    assert len(base) == 64 and int(base, 16) >= 0
    assert request_fingerprint("r", "", "", dict(reversed(list(facts.items()))), None) == base
    assert len({base, request_fingerprint("s", "", "", facts, None), request_fingerprint("r", "1", "", facts, None),
                request_fingerprint("r", "", "2026-01-01", facts, None),
                request_fingerprint("r", "", "", {**facts, "a": 2.0}, None),
                request_fingerprint("r", "", "", facts, "p" * 64)}) == 6
    with pytest.raises(ValueError, match="not JSON compliant"):
        request_fingerprint("r", "", "", {"a": float("nan")}, None)


@pytest.mark.parametrize("request_id", ["a\x00b", "line\nbreak", "del\x7f", "c1\x85"])
def test_a_request_id_with_a_control_character_is_refused_naming_it_and_health_stays(
        server: RunningServer, caller: str, request_id: str) -> None:
    # PostgreSQL cannot store NUL in text: a request_id holding one failed the write, was answered UNAVAILABLE
    # and turned DecisionService NOT_SERVING - one caller's bad request took the service out of rotation.
    with pytest.raises(grpc.RpcError, match="request_id: must not contain control characters") as caught:
        _evaluate(server, caller, request(request_id=request_id))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details(caught.value)["BadRequest"].field_violations] == ["request_id"]
    [item] = _stream(server, caller, [request(request_id=request_id)])
    assert item.error.code == code_pb2.INVALID_ARGUMENT and "request_id" in item.error.message
    assert _stored(server, caller) == []
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="regelmotor.v1.DecisionService"), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert server.log is not None and server.log.verify().ok
