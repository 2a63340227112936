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

from regelmotor.core.limits import MAX_VIOLATIONS
from regelmotor.core.repository import RulesetRepository
from regelmotor.server.app import RunningServer
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.conftest import BUNDLED_RULESETS
from tests.grpc_support import VALID_FACTS, details, request, server_in_process, struct
from tests.identity_numbers import SYNTHETIC, VALID
from tests.server_process import running_server
from tests.strategies import in_digits, non_ascii_digit_classes
from tests.test_grpc_api import STAY_2013

FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[RunningServer]:
    with server_in_process(workers=2) as (running, _, _):
        yield running


WIDE = "\U0010ffff"  # four bytes of UTF-8
# Dates at and just beyond the calendar's edges and the engine's accepted range, and datetimes whose UTC
# offset would carry them off the calendar.
EDGE_DATES = ["0001-01-01", "9999-12-31", "1799-12-31", "1800-01-01", "2199-12-31", "2200-01-01"]
EDGE_DATETIMES = ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "1800-01-01T00:00:00+23:59",
                  "2199-12-31T23:59:59-23:59", "2025-03-04T13:05:00+01:00"]
# Texts with digits the engine reads: dates, datetimes, numbers as text, municipality and ICD-10 codes.
DIGIT_TEXTS = ["2026-03-30", "2025-03-04T13:05:00+01:00", "5", "104", "0301", "F32.2"]

other_digits = st.builds(in_digits, st.sampled_from(DIGIT_TEXTS), st.sampled_from(non_ascii_digit_classes()))
# Numbers at and beyond what a double holds exactly, and the smallest and largest doubles.
EDGE_NUMBERS = [2.0**53 - 1, 2.0**53, -(2.0**53), 2.0**63, 1e300, -1e300, 5e-324, 1e-25]
edge_scalars = st.sampled_from(EDGE_DATES + EDGE_DATETIMES + EDGE_NUMBERS) | other_digits
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                         st.integers(-2**60, 2**60).map(float), st.text(max_size=30), edge_scalars,
                         st.sampled_from(["2026-02-30", "2026-03-30", "1900-01-01", "F32.2", "tsb",
                                          "2025-03-04T13:05:00+01:00"]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4)), max_leaves=8)
# A request each bundled ruleset answers (with its evaluation date), for mutations to start from, and the name
# of every fact any of them declares, so edge values reach every fact's checks.
STAY_2024 = {
    "utskrivningsklar_dato": "2024-03-04", "sektor": "somatikk", "innlagt": "2024-02-26T14:00:00+01:00",
    "forventet_behov_kommunale_tjenester": True, "varsel_innlagt": "2024-02-27T09:00:00+01:00",
    "problemstillinger_innleggelse_avklart": True, "ovrige_problemstillinger_avklart": True,
    "uavklarte_problemstillinger_begrunnet": True, "funksjonsniva_vurdert": True,
    "lege_vurdert_utskrivningsklar": True, "melding_utskrivningsklar": "2024-03-04T11:00:00+01:00",
    "kommune_svar": "kan_ikke_ta_imot", "kommune_klar_dato": "2024-03-08", "bostedskommune": "0301",
    "oppholdskommune": "4601",
}
BASES: dict[str, tuple[dict[str, Any], str]] = {
    "rett-til-helsehjelp": (VALID_FACTS, "2026-04-20"),
    "utskrivningsklar": (STAY_2024, "2024-04-01"),
    "prioriterte-pasientgrupper": ({"fodselsdato": "1950-01-01", "diagnoser": ["F32.2", "E11"]}, "2025-01-01"),
}
_bundled = RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True)
FACT_NAMES = sorted({fact for name in _bundled.names() for ruleset in _bundled.all_versions(name)
                     for fact in ruleset.facts})
fact_names = st.sampled_from([*FACT_NAMES, "x"])

# Made, not drawn item by item: a list of up to 100 000 items, a text of up to 1 MB, 100 000 keys; one of them
# per request, which then stays under the server's 4 MiB request limit and so reaches the engine.
huge_lists = st.builds(lambda item, size: [item] * size,
                       st.sampled_from(["E11", "tsb", 5, 2.5, True, None, "2026-03-30", "٢٠٢٦"]),
                       st.sampled_from([101, 10_000, 100_000]))
huge_texts = st.builds(lambda char, size: char * size, st.sampled_from(["x", "å", WIDE, "٣"]),
                       st.sampled_from([201, 10_000, 200_000])) | st.just("0" * 1_000_000)
many_keys = st.builds(lambda size: {f"ukjent_{n}": n for n in range(size)}, st.sampled_from([21, 1000, 100_000]))
changes = {
    "random": st.dictionaries(fact_names | st.text(string.ascii_lowercase, max_size=12), json_values, max_size=12),
    "edge": st.dictionaries(fact_names, edge_scalars | st.lists(edge_scalars, max_size=3), min_size=1, max_size=3),
    "huge": st.builds(lambda name, value: {name: value}, fact_names, huge_lists | huge_texts) | many_keys,
}
valid_as_of = st.just("")  # today
bad_as_of = st.sampled_from(["2026-13-01", "i går", "20260420", *EDGE_DATES]) | st.builds(
    in_digits, st.just("2026-04-20"), st.sampled_from(non_ascii_digit_classes()))
# Identity numbers: none, published ones of every kind (synthetic ones are refused by default), the same written
# in another digit class, or any text.
national_ids = st.just("") | st.sampled_from(VALID + SYNTHETIC) | st.builds(
    in_digits, st.sampled_from(VALID), st.sampled_from(non_ascii_digit_classes())) | st.text(max_size=14)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random-bytes", "random-facts", "fields", *changes]))
    if kind == "random-bytes":
        return draw(st.binary(max_size=300))
    ruleset = draw(st.sampled_from(list(BASES)) | st.sampled_from(["", "nope", "../../etc", "x" * 10_000]))
    base, as_of = BASES.get(ruleset, (VALID_FACTS, "2026-04-20"))
    if kind == "random-facts":
        facts = draw(changes["random"])
    else:  # a request the ruleset answers, with a few facts changed ("fields": none)
        facts = {**base, **(draw(changes[kind]) if kind in changes else {})}
    message = pb.EvaluateRequest(
        ruleset=ruleset, version=draw(st.just("") | st.sampled_from(["2024.07", "2019.1", "x"])),
        as_of=draw(st.just(as_of) | valid_as_of | bad_as_of), request_id=draw(st.text(max_size=250)),
        national_id=draw(national_ids))
    try:
        message.facts.CopyFrom(struct(facts))
    except (ValueError, TypeError):
        message.facts.CopyFrom(struct({"x": 1}))
    return message.SerializeToString()


def test_malformed_and_random_requests_never_get_internal(fuzz_server: RunningServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{fuzz_server.port}") as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/regelmotor.v1.DecisionService/Evaluate")

        @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])
        @given(payload=requests())
        def answered_without_internal(payload: bytes) -> None:
            try:
                answer = call(payload, timeout=30)
                assert pb.Decision.FromString(answer).decision_id
            except grpc.RpcError as error:
                assert error.code() not in FORBIDDEN, (error.code(), error.details())
                # ALREADY_EXISTS: a request_id drawn again for a different request (REQUEST_ID_REUSED).
                assert error.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                                        grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS}, (
                    error.code(), error.details())

        answered_without_internal()
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        assert pb_grpc.DecisionServiceStub(channel).Evaluate(request(), timeout=30).version == "2024.07.1"


OVERSIZED = {
    "100 000 unknown keys": ("rett-til-helsehjelp", {**VALID_FACTS, **{f"ukjent_{n}": n for n in range(100_000)}},
                             "ukjent_", "unknown fact"),
    "a 1 MB unknown key": ("rett-til-helsehjelp", {**VALID_FACTS, "u" * 1_000_000: 1}, "u" * 99 + "…",  # cut
                           "unknown fact"),
    "a 1 MB enum value": ("rett-til-helsehjelp", {**VALID_FACTS, "tilstand": "å" * 500_000}, "tilstand",
                          "is not a known value"),
    "a 1 MB string": ("utskrivningsklar", {**STAY_2013, "bostedskommune": "0" * 1_000_000}, "bostedskommune",
                      "at most 200 characters, got 1000000"),
    "300 000 codes": ("prioriterte-pasientgrupper", {"fodselsdato": "1950-01-01", "diagnoser": ["E11"] * 300_000},
                      "diagnoser", "at most 100 items, got 300000"),
}


@pytest.mark.parametrize(("ruleset", "facts", "field", "reason"), list(OVERSIZED.values()), ids=list(OVERSIZED))
def test_oversized_facts_get_invalid_argument_naming_the_field(fuzz_server: RunningServer, ruleset: str,
                                                               facts: dict[str, Any], field: str,
                                                               reason: str) -> None:
    message = request(facts, ruleset=ruleset, as_of="2026-04-20")
    assert message.ByteSize() < 4 * 1024 * 1024  # within the server's request limit: the engine sees it
    with grpc.insecure_channel(f"127.0.0.1:{fuzz_server.port}") as channel:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError, match="INVALID_ARGUMENT") as caught:
            pb_grpc.DecisionServiceStub(channel).Evaluate(message, timeout=60)
        elapsed = time.monotonic() - started
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    violations = details(caught.value)["BadRequest"].field_violations
    assert any(v.field.startswith(field) and reason in v.description for v in violations), violations
    assert len(violations) <= MAX_VIOLATIONS
    assert elapsed < 30  # generous: refused without working through the input


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
        assert pb_grpc.DecisionServiceStub(channel).Evaluate(request(), timeout=30).version == "2024.07.1"


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
            assert pb_grpc.DecisionServiceStub(channel).Evaluate(request(), timeout=30).version == "2024.07.1"
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
