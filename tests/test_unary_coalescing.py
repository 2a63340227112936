"""Unary Evaluate calls that find every engine worker busy are sent to the next free worker together (one message,
`EvaluateCalls`), over real channels and real worker processes: each caller still gets its own decision, its own
deadline and its own error."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from functools import partial
from typing import Any

import grpc
from google.protobuf import json_format

from regelmotor.server.app import RunningServer
from regelmotor.server.protocol import EvaluateCalls, Skipped
from regelmotor.server.worker import Worker, WorkerConfig
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import VALID_FACTS, details, request, server_in_process

CALLERS = 12


def _facts(number: int) -> dict[str, Any]:
    """A referral of its own for each caller: received on a different day."""
    return {**VALID_FACTS, "ansiennitetsdato": (date(2026, 2, 1) + timedelta(days=number)).isoformat()}


def _busy_worker(stub: pb_grpc.DecisionServiceStub) -> Iterator[pb.EvaluateStreamResponse]:
    """A stream that keeps the one engine worker busy for a while; its first answer has come back."""
    stream: Iterator[pb.EvaluateStreamResponse] = stub.EvaluateStream(
        iter([request(request_id="") for _ in range(300)]), timeout=120)
    assert next(stream).WhichOneof("result") == "decision"
    return stream


def _caller(stub: pb_grpc.DecisionServiceStub, number: int, timeout: float = 60) -> Callable[[], object]:
    """Caller `number`: its own referral and request_id."""
    return partial(stub.Evaluate, request(_facts(number), request_id=f"caller-{number}"), timeout=timeout)


def _at_once(calls: list[Callable[[], object]]) -> list[object]:
    """Run the calls on threads of their own, released together; each result, or the RpcError it raised."""
    results: list[object] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = calls[index]()
        except grpc.RpcError as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_callers_sent_to_a_worker_together_each_get_their_own_decision() -> None:
    with server_in_process(workers=1) as (server, _, _), grpc.insecure_channel(server.address) as channel:
        assert server.pool is not None
        stub = pb_grpc.DecisionServiceStub(channel)
        stream = _busy_worker(stub)
        results = _at_once([_caller(stub, number) for number in range(CALLERS)])
        assert len(list(stream)) == 299
        batches = server.pool.stats.batches
    assert batches >= 1, "the callers that waited for the busy worker went to it together"
    for number, decision in enumerate(results):
        assert isinstance(decision, pb.Decision), decision
        assert decision.request_id == f"caller-{number}"
        assert json_format.MessageToDict(decision.facts)["ansiennitetsdato"] == _facts(number)["ansiennitetsdato"]
    assert len({decision.decision_id for decision in results if isinstance(decision, pb.Decision)}) == CALLERS


def test_a_caller_whose_deadline_passes_alone_gets_deadline_exceeded_its_companions_their_decisions() -> None:
    with server_in_process(workers=1) as (server, _, _), grpc.insecure_channel(server.address) as channel:
        assert server.pool is not None
        stub = pb_grpc.DecisionServiceStub(channel)
        hurried = CALLERS // 2
        calls = [_caller(stub, number, 0.05 if number == hurried else 60) for number in range(CALLERS)]
        results: list[object] = []
        # The one worker is stopped while the callers come, and for long after the hurried one's 50 ms: its
        # deadline passes for certain while the others wait (a busy stream left that to the machine's speed).
        worker = server.pool.pids()[0]
        os.kill(worker, signal.SIGSTOP)
        try:
            callers = threading.Thread(target=lambda: results.extend(_at_once(calls)))
            callers.start()
            time.sleep(1.0)
        finally:
            os.kill(worker, signal.SIGCONT)
        callers.join(90)
    for number, result in enumerate(results):
        if number == hurried:
            assert isinstance(result, grpc.RpcError) and result.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        else:
            assert isinstance(result, pb.Decision) and result.request_id == f"caller-{number}", result


def test_an_item_whose_deadline_has_passed_is_skipped_by_the_worker_and_the_others_answered() -> None:
    from regelmotor.core.repository import RulesetSnapshot
    from tests.conftest import BUNDLED_RULESETS

    worker = Worker(WorkerConfig(role="engine", snapshot=RulesetSnapshot.read(BUNDLED_RULESETS), allow_drafts=True))
    try:
        later = time.monotonic() + 60
        items = tuple((request(_facts(number), request_id=f"caller-{number}").SerializeToString(), None, "sykehus",
                       time.monotonic() - 1 if number == 1 else later) for number in range(3))
        answers = list(worker.answers(EvaluateCalls(items)))
    finally:
        worker.close()
    assert isinstance(answers[1], Skipped)
    for number in (0, 2):
        reply: Any = answers[number]
        assert reply.error is None and reply.summary.request_id == f"caller-{number}"
        assert pb.Decision.FromString(reply.decision).request_id == f"caller-{number}"


def _kill_the_worker_mid_batch(server: RunningServer) -> int:
    """On the server's loop: as soon as the worker has been sent a batch, stop it, let the front read what it had
    already written, and kill it. The calls of the batch still unanswered then."""
    pool = server.pool
    assert pool is not None

    async def watch() -> int:
        while True:  # every turn of the loop, so the worker is stopped before it can answer the whole batch
            for pid, unanswered in pool.batches_in_flight().items():
                if unanswered > 1:
                    os.kill(pid, signal.SIGSTOP)
                    await asyncio.sleep(0.2)  # answers already in the pipe are read and given to their callers
                    unanswered = pool.batches_in_flight().get(pid, 0)
                    os.kill(pid, signal.SIGKILL)
                    return unanswered
            await asyncio.sleep(0)

    return int(server.run(asyncio.wait_for(watch(), 60)))


def test_a_worker_killed_mid_batch_fails_each_unanswered_call_of_it_safe_to_retry() -> None:
    with server_in_process(workers=1) as (server, _, _), grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        stream = _busy_worker(stub)
        killed: list[int] = []
        killer = threading.Thread(target=lambda: killed.append(_kill_the_worker_mid_batch(server)))
        killer.start()
        results = _at_once([_caller(stub, number) for number in range(CALLERS)])
        killer.join()
        list(stream)  # the stream's batch in the worker fails too; what it says is the stream's own test
        after = stub.Evaluate(request(request_id="after"), timeout=60)  # a replacement worker answers
    crashed = [result for result in results if isinstance(result, grpc.RpcError)]
    assert len(crashed) == killed[0] >= 1
    for error in crashed:
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert details(error)["ErrorInfo"].reason == "WORKER_CRASHED" and "safe to retry" in (error.details() or "")
    assert all(isinstance(result, pb.Decision) for result in results if result not in crashed)
    assert after.request_id == "after"
