"""OpenTelemetry: a span per call and per evaluation, the caller's trace continued, metrics recorded,
and no facts or personal data in span attributes. Checked with the SDK's in-memory exporters."""

from __future__ import annotations

import json
import logging

import grpc
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from regelmotor.server.telemetry import setup_logging, tracer_provider
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import VALID_FACTS, metric_points, request, server_in_process

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


def test_spans_continue_the_callers_trace_and_carry_only_ids() -> None:
    with server_in_process(workers=0) as (server, spans, reader), \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        decision = stub.Evaluate(request(), metadata=[("traceparent", TRACEPARENT)], timeout=30)
        with pytest.raises(grpc.RpcError, match="fagomrade: 'kirurgi' is not a known value"):
            stub.Evaluate(request({**VALID_FACTS, "fagomrade": "kirurgi"}), timeout=30)
        finished = spans.get_finished_spans()
        evaluations = metric_points(reader, "regelmotor.evaluations")
        errors = metric_points(reader, "regelmotor.errors")
        latency = metric_points(reader, "regelmotor.evaluation.duration")
    assert decision.trace_id == CALLER_TRACE
    rpc = [s for s in finished if s.name == "/regelmotor.v1.DecisionService/Evaluate"]
    evaluation = [s for s in finished if s.name == "regelmotor.evaluate"]
    assert len(rpc) == 2 and len(evaluation) == 2
    first_rpc, first_evaluation = rpc[0], evaluation[0]
    assert format(first_rpc.context.trace_id, "032x") == CALLER_TRACE
    assert first_evaluation.parent is not None and first_evaluation.parent.span_id == first_rpc.context.span_id
    attributes = dict(first_rpc.attributes or {})
    assert attributes["rpc.system"] == "grpc" and attributes["rpc.method"] == "Evaluate"
    assert attributes["regelmotor.ruleset"] == "rett-til-helsehjelp" and attributes["regelmotor.version"] == "2024.07.1"
    assert attributes["regelmotor.decision_id"] == decision.decision_id
    # The value of the outcome the ruleset declares as its headline (rett-til-helsehjelp: `headline: utfall`).
    assert (attributes["regelmotor.headline"], attributes["regelmotor.headline_outcome"]) == ("rett", "utfall")
    assert dict(first_evaluation.attributes or {})["regelmotor.headline"] == "rett"
    assert dict(rpc[1].attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    # No fact values anywhere in span attributes (birth date, referral date, condition).
    for span in finished:
        text = json.dumps(dict(span.attributes or {}))
        for value in ("2004-05-02", "2026-03-30", "tsb_alkohol"):
            assert value not in text, (span.name, text)
    assert {"ruleset": "rett-til-helsehjelp", "code": "OK", "value": 1} in evaluations
    assert any(p["code"] == "INVALID_ARGUMENT" and p["value"] == 1 for p in errors)
    assert any(p["ruleset"] == "rett-til-helsehjelp" and p["value"] == 1 for p in latency)


def test_logs_are_json_lines_with_ids_and_no_facts(capfd: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO")
    try:
        with server_in_process(workers=0) as (server, _, _), \
                grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            decision = pb_grpc.DecisionServiceStub(channel).Evaluate(request(), timeout=30)
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    evaluate = next(line for line in lines if line["message"] == "evaluate")
    assert evaluate["decision_id"] == decision.decision_id and evaluate["code"] == "OK"
    assert evaluate["level"] == "INFO" and evaluate["trace_id"] == decision.trace_id
    assert "2004-05-02" not in json.dumps(lines)


_OTEL_TRACE_VARIABLES = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                         "OTEL_TRACES_SAMPLER")


def test_with_nowhere_to_export_spans_are_not_recorded_but_trace_ids_are_made_and_continued(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _OTEL_TRACE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    tracer = tracer_provider().get_tracer("test")
    with tracer.start_as_current_span("root") as root:
        assert not root.is_recording() and root.get_span_context().trace_id != 0
    parent = TraceContextTextMapPropagator().extract({"traceparent": TRACEPARENT})
    with tracer.start_as_current_span("child", context=parent) as child:
        assert not child.is_recording() and format(child.get_span_context().trace_id, "032x") == CALLER_TRACE
    exported = InMemorySpanExporter()
    with tracer_provider(SimpleSpanProcessor(exported)).get_tracer("test").start_as_current_span("kept") as kept:
        assert kept.is_recording()
    assert [span.name for span in exported.get_finished_spans()] == ["kept"]
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")  # the standard variable still decides
    with tracer_provider().get_tracer("test").start_as_current_span("asked") as asked:
        assert asked.is_recording()


def test_the_callers_trace_reaches_the_decision_through_an_engine_worker() -> None:
    # The worker makes its tracer with tracer_provider(); nothing is exported from it here.
    with server_in_process(workers=1) as (server, _, _), grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        decision = pb_grpc.DecisionServiceStub(channel).Evaluate(request(), metadata=[("traceparent", TRACEPARENT)],
                                                                 timeout=30)
    assert decision.trace_id == CALLER_TRACE
