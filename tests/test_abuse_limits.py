"""Abuse limits over real channels: calls in progress per caller (Evaluate + EvaluateStream; AuditService
exports), and EvaluateStreams that send nothing are ended."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import details, request, server_in_process

PURPOSE = "tilsynssak 2024/118"


def _caller(name: str) -> list[tuple[str, str]]:
    return [("regelmotor-caller", name)]


def _held_open(first: pb.EvaluateRequest, release: threading.Event) -> Iterator[pb.EvaluateRequest]:
    """Requests of a stream that sends one request, then nothing until released (and then half-closes)."""
    yield first
    release.wait(60)


def _open_stream(channel: grpc.Channel, caller: str, release: threading.Event) -> Any:
    """An EvaluateStream that is open on the server: its first answer has come back."""
    stream = pb_grpc.DecisionServiceStub(channel).EvaluateStream(
        _held_open(request(None, request_id=f"{caller}-open"), release), metadata=_caller(caller), timeout=60)
    assert next(stream).WhichOneof("result") == "decision"
    return stream


def _refused_for_limit(error: grpc.RpcError, setting: str, limit: int) -> None:
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    info = details(error)["ErrorInfo"]
    assert info.reason == "CALLER_CONCURRENCY_LIMIT"
    assert dict(info.metadata) == {"setting": setting, "limit": str(limit)}


def test_a_caller_beyond_its_limit_is_refused_while_another_caller_is_served() -> None:
    with server_in_process(workers=1, max_calls_per_caller=2) as (server, _, _):
        release = threading.Event()
        with grpc.insecure_channel(server.address) as channel:
            decisions = pb_grpc.DecisionServiceStub(channel)
            streams = [_open_stream(channel, "greedy", release) for _ in range(2)]
            try:
                with pytest.raises(grpc.RpcError, match=r"already has 2 such calls in progress") as caught:
                    decisions.Evaluate(request(None, request_id="greedy-3"), metadata=_caller("greedy"), timeout=10)
                _refused_for_limit(caught.value, "max_calls_per_caller", 2)
                with pytest.raises(grpc.RpcError, match=r"max_calls_per_caller") as caught:
                    list(decisions.EvaluateStream(iter([request(None, request_id="greedy-4")]),
                                                  metadata=_caller("greedy"), timeout=10))
                _refused_for_limit(caught.value, "max_calls_per_caller", 2)
                # Another caller is still served, by a call and by a stream.
                assert decisions.Evaluate(request(None, request_id="modest-1"), metadata=_caller("modest"),
                                          timeout=10).version
                assert len(list(decisions.EvaluateStream(iter([request(None, request_id="modest-2")]),
                                                         metadata=_caller("modest"), timeout=10))) == 1
            finally:
                release.set()
            assert [list(stream) for stream in streams] == [[], []]
            # The streams have ended: their places are free again.
            assert decisions.Evaluate(request(None, request_id="greedy-5"), metadata=_caller("greedy"),
                                      timeout=10).version


def _exported(stub: apb_grpc.AuditServiceStub, caller: str) -> Any:
    return stub.ExportDecisions(apb.ExportDecisionsRequest(formaal=PURPOSE), metadata=_caller(caller), timeout=60)


def _export_when_free(stub: apb_grpc.AuditServiceStub, caller: str) -> list[Any]:
    deadline = time.monotonic() + 10
    while True:
        try:
            return list(_exported(stub, caller))
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_exports_are_limited_per_caller() -> None:
    with server_in_process(workers=0, max_exports_per_caller=1) as (server, _, _):
        with grpc.insecure_channel(server.address) as channel:
            # About 40 KB a decision: 150 are several MB, far more than flow control lets through unread.
            items = [request(None, request_id=f"export-{i}") for i in range(150)]
            assert len(list(pb_grpc.DecisionServiceStub(channel).EvaluateStream(iter(items), timeout=120))) == 150
        # No BDP probing: the reader's window stays small, so an export it does not read stays open on the server.
        with grpc.insecure_channel(server.address, options=[("grpc.http2.bdp_probe", 0)]) as slow, \
                grpc.insecure_channel(server.address) as fast:
            held = _exported(apb_grpc.AuditServiceStub(slow), "revisor-a")
            try:
                assert next(held).json_line
                with pytest.raises(grpc.RpcError, match=r"max_exports_per_caller") as caught:
                    list(_exported(apb_grpc.AuditServiceStub(fast), "revisor-a"))
                _refused_for_limit(caught.value, "max_exports_per_caller", 1)
                assert len(list(_exported(apb_grpc.AuditServiceStub(fast), "revisor-b"))) == 150
            finally:
                held.cancel()
            # A cancelled export frees its place, once the server has seen the cancellation.
            assert len(_export_when_free(apb_grpc.AuditServiceStub(fast), "revisor-a")) == 150


def test_a_stream_that_sends_nothing_is_ended_after_stream_idle_seconds() -> None:
    with server_in_process(workers=1, stream_idle_seconds=1.0, max_calls_per_caller=1) as (server, _, _):
        release = threading.Event()
        with grpc.insecure_channel(server.address) as channel:
            decisions = pb_grpc.DecisionServiceStub(channel)
            try:
                stream = _open_stream(channel, "sleepy", release)
                with pytest.raises(grpc.RpcError, match=r"sent nothing for 1 s \(stream_idle_seconds\)") as caught:
                    next(stream)  # the stream's own timeout is 60 s: ending well before proves the idle limit
                assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
                info = details(caught.value)["ErrorInfo"]
                assert info.reason == "STREAM_IDLE" and info.metadata["setting"] == "stream_idle_seconds"
            finally:
                release.set()
            # The ended stream no longer counts against its caller.
            assert decisions.Evaluate(request(None, request_id="sleepy-2"), metadata=_caller("sleepy"),
                                      timeout=10).version


def test_a_stream_that_keeps_sending_is_not_ended_as_idle() -> None:
    with server_in_process(workers=1, stream_idle_seconds=2.0) as (running, _, _):
        ready = threading.Event()

        def slowly() -> Iterator[pb.EvaluateRequest]:
            for index in range(6):  # about 3 s in all, more than stream_idle_seconds, never 2 s silent
                yield request(None, request_id=f"slow-{index}")
                ready.wait(0.5)

        with grpc.insecure_channel(running.address) as channel:
            answers = list(pb_grpc.DecisionServiceStub(channel).EvaluateStream(slowly(), timeout=60))
        assert [answer.index for answer in answers] == list(range(6))
        assert all(answer.WhichOneof("result") == "decision" for answer in answers)
