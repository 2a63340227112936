"""OpenTelemetry traces and metrics, and structured JSON logs.

Spans carry ids and codes only (ruleset, version, decision id, the value of the outcome the ruleset
declares as its headline), never facts or personal data. Export is off unless the standard `OTEL_*`
variables ask for OTLP.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pythonjsonlogger.json import JsonFormatter

SERVICE_NAME = "regelmotor"
_propagator = TraceContextTextMapPropagator()


def otlp_wanted(signal: str) -> bool:
    """Whether the standard OTEL_* variables ask for OTLP export of `signal` (traces or metrics)."""
    exporter = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "")
    if "otlp" in exporter:
        return True
    if exporter == "none":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"))


def tracer_provider(extra: SpanProcessor | None = None) -> TracerProvider:
    """The tracer provider the standard OTEL_* variables ask for, with `extra` (tests) as well.

    With nowhere to send spans (no OTLP and no `extra`) spans are not recorded, unless
    OTEL_TRACES_SAMPLER says otherwise: a span that is not recorded still carries its trace context,
    so trace ids are made, continued from a caller's `traceparent` and returned as before, and the
    attributes and timings nobody would read are not kept (about 30 µs an evaluation, measured)."""
    exporting = otlp_wanted("traces") or extra is not None
    sampler = None if exporting or os.environ.get("OTEL_TRACES_SAMPLER") else ALWAYS_OFF
    provider = TracerProvider(sampler=sampler, resource=Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", SERVICE_NAME)}))
    if otlp_wanted("traces"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if extra is not None:
        provider.add_span_processor(extra)
    return provider


def meter_provider(reader: MetricReader | None = None) -> MeterProvider:
    readers: list[MetricReader] = []
    if otlp_wanted("metrics"):
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if reader is not None:
        readers.append(reader)
    return MeterProvider(metric_readers=readers)


class CallContext(Protocol):
    """What telemetry reads of a call's context (a grpc or grpc.aio ServicerContext)."""

    def invocation_metadata(self) -> Any: ...


class Gauge(Protocol):
    """A synchronous gauge (`Meter.create_gauge`; the OpenTelemetry API names its class only privately)."""

    def set(self, amount: int | float, attributes: dict[str, str] | None = None) -> None: ...


@dataclass
class Telemetry:
    tracer: trace.Tracer
    evaluations: metrics.Counter
    errors: metrics.Counter
    latency: metrics.Histogram
    health_changes: metrics.Counter
    engine_workers: Gauge

    @classmethod
    def create(cls, tracers: trace.TracerProvider, meters: metrics.MeterProvider) -> Telemetry:
        meter = meters.get_meter("regelmotor")
        return cls(
            tracer=tracers.get_tracer("regelmotor.server"),
            evaluations=meter.create_counter("regelmotor.evaluations", unit="{evaluation}",
                                             description="Evaluations answered, by ruleset and status code"),
            errors=meter.create_counter("regelmotor.errors", unit="{error}",
                                        description="Calls answered with an error, by method and status code"),
            latency=meter.create_histogram("regelmotor.evaluation.duration", unit="s",
                                           description="Evaluation latency as seen by the server, by ruleset"),
            health_changes=meter.create_counter(
                "regelmotor.health.changes", unit="{change}",
                description="A condition of health changed (engine_workers, decision_log), by condition and ok"),
            engine_workers=meter.create_gauge("regelmotor.engine_workers.ready", unit="{worker}",
                                              description="Engine worker processes ready to evaluate"),
        )

    @contextmanager
    def rpc_span(self, method: str, context: CallContext) -> Iterator[trace.Span]:
        """A SERVER span for one call, continuing the caller's W3C `traceparent` if it sent one."""
        carrier = {key: value for key, value in context.invocation_metadata() or ()
                   if key in ("traceparent", "tracestate")}
        parent = _propagator.extract(carrier) if carrier else None
        service, _, name = method.rpartition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service.strip("/"), "rpc.method": name}
        with self.tracer.start_as_current_span(method, context=parent, kind=trace.SpanKind.SERVER,
                                               attributes=attributes) as span:
            yield span


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, otel_context.get_current())
    return carrier.get("traceparent")


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                       rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
