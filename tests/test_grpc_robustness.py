"""Bad input never gets INTERNAL and never hurts the server; a crashed engine worker costs at most the
calls it was running (UNAVAILABLE, safe to retry); SIGTERM drains: NOT_SERVING first, in-flight
calls finish."""

from __future__ import annotations

import os
import signal
import string
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regelmotor.server.app import RunningServer
from regelmotor.v1 import decision_pb2 as pb
from regelmotor.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import VALID_FACTS, request, server_in_process, struct
from tests.server_process import running_server

FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[RunningServer]:
    with server_in_process(workers=2) as (running, _, _):
        yield running


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                         st.text(max_size=30), st.sampled_from(["2026-02-30", "2026-03-30", "1900-01-01", "F32.2",
                                                                "tsb", "2025-03-04T13:05:00+01:00"]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4)), max_leaves=8)
fact_names = st.sampled_from([*VALID_FACTS, "vurderingsdato", "klinisk_frist_uker", "individuelle_forhold",
                              "sektor", "diagnoser", "x"])
random_facts = st.dictionaries(fact_names | st.text(string.ascii_lowercase, max_size=12), json_values, max_size=12)
mutated_facts = st.builds(lambda extra: {**VALID_FACTS, **extra}, random_facts)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random-bytes", "random-facts", "mutated-facts", "fields"]))
    if kind == "random-bytes":
        return draw(st.binary(max_size=300))
    facts = draw(random_facts if kind == "random-facts" else mutated_facts)
    message = pb.EvaluateRequest(
        ruleset=draw(st.sampled_from(["rett-til-helsehjelp", "utskrivningsklar", "prioriterte-pasientgrupper", "",
                                      "nope", "../../etc"])),
        version=draw(st.sampled_from(["", "2024.07", "2019.1", "x"])),
        as_of=draw(st.sampled_from(["", "2026-04-20", "2026-13-01", "i går", "2024-02-29"])),
        request_id=draw(st.text(max_size=250)),
    )
    try:
        message.facts.CopyFrom(struct(facts))
    except (ValueError, TypeError):
        message.facts.CopyFrom(struct({"x": 1}))
    return message.SerializeToString()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=requests())
def test_malformed_and_random_requests_never_get_internal(fuzz_server: RunningServer, payload: bytes) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{fuzz_server.port}") as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/regelmotor.v1.DecisionService/Evaluate")
        try:
            answer = call(payload, timeout=30)
            assert pb.Decision.FromString(answer).decision_id
        except grpc.RpcError as error:
            assert error.code() not in FORBIDDEN, (error.code(), error.details())
            assert error.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                                    grpc.StatusCode.FAILED_PRECONDITION}, (error.code(), error.details())


def test_oversized_and_stream_garbage_leave_the_server_healthy(fuzz_server: RunningServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{fuzz_server.port}") as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/regelmotor.v1.DecisionService/Evaluate")
        with pytest.raises(grpc.RpcError, match=r"Received message larger than max \(6291457 vs\. 4194304\)"
                           ) as caught:
            call(b"\x0a" + b"\xff" * (6 * 1024 * 1024), timeout=30)
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        stream: grpc.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(
            "/regelmotor.v1.DecisionService/EvaluateStream")
        answers = [pb.EvaluateStreamResponse.FromString(a)
                   for a in stream(iter([b"\xff\xff", request().SerializeToString(), b""]), timeout=30)]
        assert [a.WhichOneof("result") for a in answers] == ["error", "decision", "error"]
        assert answers[0].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert answers[2].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]  # an empty request names no ruleset
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        assert pb_grpc.DecisionServiceStub(channel).Evaluate(request(), timeout=30).version == "2024.07"


def _engine_workers(server_pid: int) -> list[int]:
    """The engine worker processes of a server (not multiprocessing's resource tracker)."""
    workers: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ")
        except (OSError, ValueError, IndexError):
            continue
        if parent == server_pid and b"multiprocessing.spawn" in command and b"resource_tracker" not in command:
            workers.append(int(entry))
    return workers


def test_a_crashing_worker_costs_only_its_calls_and_is_replaced() -> None:
    with running_server(workers=2) as server:
        codes: Counter[str] = Counter()
        stop = threading.Event()

        def load() -> None:
            with grpc.insecure_channel(server.address) as channel:
                stub = pb_grpc.DecisionServiceStub(channel)
                while not stop.is_set():
                    try:
                        stub.Evaluate(request(), timeout=30)
                        codes["OK"] += 1
                    except grpc.RpcError as error:
                        codes[error.code().name] += 1

        threads = [threading.Thread(target=load) for _ in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        original = _engine_workers(server.process.pid)
        assert len(original) == 2
        for pid in original:  # a segfault in durable_rules' C code, as it would happen
            os.kill(pid, signal.SIGSEGV)
            time.sleep(0.3)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(set(_engine_workers(server.process.pid)) - set(original)) < 2:
            time.sleep(0.2)
        replaced = set(_engine_workers(server.process.pid)) - set(original)
        ok_before = codes["OK"]
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join()
        assert len(replaced) == 2, "both killed workers were replaced"
        assert set(codes) <= {"OK", "UNAVAILABLE"}, codes
        assert codes["UNAVAILABLE"] <= 6 * 2, codes  # at most the calls in flight when each worker died
        assert codes["OK"] > ok_before, "the service kept answering after the crashes"
        with grpc.insecure_channel(server.address) as channel:
            assert pb_grpc.DecisionServiceStub(channel).Evaluate(request(), timeout=30).version == "2024.07"
        assert server.terminate() == 0


def test_sigterm_turns_health_not_serving_first_and_drains_in_flight_calls() -> None:
    with running_server(workers=2, env={"REGELMOTOR_GRACE_SECONDS": "20"}) as server:
        channel = grpc.insecure_channel(server.address)
        statuses: list[int] = []
        watching = threading.Event()

        def watch() -> None:
            try:
                for reply in health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""),
                                                                        timeout=60):
                    statuses.append(reply.status)
                    watching.set()
            except grpc.RpcError:
                pass

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        assert watching.wait(10)
        sent = threading.Event()

        def slow_requests() -> Iterator[pb.EvaluateRequest]:
            for index in range(20):
                yield request(request_id=str(index))
                if index == 4:
                    sent.set()
                    time.sleep(2.0)  # the stream is still open when SIGTERM arrives

        results: list[Any] = []
        stream_done = threading.Event()

        def run_stream() -> None:
            results.extend(pb_grpc.DecisionServiceStub(channel).EvaluateStream(slow_requests(), timeout=60))
            stream_done.set()

        streamer = threading.Thread(target=run_stream, daemon=True)
        streamer.start()
        assert sent.wait(30)
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        assert stream_done.wait(40), "the in-flight stream was not allowed to finish"
        code = server.process.wait(40)
        watcher.join(5)
        channel.close()
    assert [r.index for r in results] == list(range(20))
    assert all(r.WhichOneof("result") == "decision" for r in results)
    assert statuses[0] == health_pb2.HealthCheckResponse.SERVING
    assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
    assert code == 0
