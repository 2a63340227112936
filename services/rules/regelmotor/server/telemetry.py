"""OpenTelemetry traces and metrics, and structured JSON logs.

Spans carry ids and codes only (ruleset, version, decision id, the value of the outcome the ruleset
declares as its headline), never facts or personal data. Export is off unless the standard `OTEL_*`
variables ask for OTLP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    ruleset_reloads: metrics.Counter
    # The per-caller limits' counts of calls in progress (setting, count), read only when the metrics are
    # collected (`regelmotor.calls.in_progress`): nothing is added on a call's way.
    in_progress: list[tuple[str, Callable[[], int]]] = field(default_factory=list)

    @classmethod
    def create(cls, tracers: trace.TracerProvider, meters: metrics.MeterProvider) -> Telemetry:
        meter = meters.get_meter("regelmotor")
        telemetry = cls(
            tracer=tracers.get_tracer("regelmotor.server"),
            evaluations=meter.create_counter("regelmotor.evaluations", unit="{evaluation}",
                                             description="Evaluations answered, by ruleset and status code"),
            errors=meter.create_counter("regelmotor.errors", unit="{error}",
                                        description="Calls answered with an error, by method and status code"),
            latency=meter.create_histogram("regelmotor.evaluation.duration", unit="s",
                                           description="Evaluation latency as seen by the server, by ruleset"),
            health_changes=meter.create_counter(
                "regelmotor.health.changes", unit="{change}",
                description="A condition of health changed (engine_workers, decision_log, ruleset_reload), by "
                            "condition and ok"),
            engine_workers=meter.create_gauge("regelmotor.engine_workers.ready", unit="{worker}",
                                              description="Engine worker processes ready to evaluate"),
            ruleset_reloads=meter.create_counter(
                "regelmotor.ruleset.reloads", unit="{reload}",
                description="Changed ruleset versions in the store taken by every engine worker (outcome served) "
                            "or not taken, the versions served before kept (outcome refused)"),
        )
        meter.create_observable_up_down_counter(
            "regelmotor.calls.in_progress", callbacks=[telemetry._observe_in_progress], unit="{call}",
            description="Calls under a per-caller limit in progress (open streams included), by its setting")
        return telemetry

    def _observe_in_progress(self, _options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        return [metrics.Observation(count(), {"regelmotor.limit": setting}) for setting, count in self.in_progress]

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


def traceparent_of(span: trace.Span) -> str | None:
    """The W3C `traceparent` that continues `span`, as the propagator would inject it (None for an invalid span),
    made from the span's context directly: once per call, so without the propagator's context lookups."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def setup_logging(level: str = "INFO") -> None:
    handler = LinesPerLoopTurn(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The JSON lines name no source file, line, thread or process: do not collect them for every record (the
    # logging HOWTO's "Optimization"; a line per call makes it count).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


class JsonLines(JsonFormatter):
    """One JSON object per record: `time`, `level`, `logger`, `message`, then the record's extra fields.

    A record with only a text message and extra fields (a line per call) is built here directly, the time's text
    made once a second; anything else (an exception, a stack, a dict message) as python-json-logger builds it.
    Both give the same object for the same record (tests/test_call_log_lines.py)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
        self._skip = frozenset(self.reserved_attrs | {"asctime", "levelname", "name", "message"})
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info or not isinstance(record.msg, str):
            return super().format(record)
        data = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        skip = self._skip
        for key, value in record.__dict__.items():
            if key not in skip and not key.startswith("_"):
                data[key] = value
        return self.serialize_log_record(data)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return f"{self._second_text},{int(record.msecs):03d}"  # logging's default_msec_format


class LinesPerLoopTurn(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes the lines logged on an event loop in one write at the end of the loop's turn, not one write (a system
    call, and the GIL let go and taken again) per line: the service logs a line per call. Lines logged off the
    loop, and warnings and errors, are written at once, after the lines still waiting, so the order holds. A line
    waits at most until the loop's next turn; what is left at exit is written by `flush` (logging.shutdown)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            if record.levelno < logging.WARNING:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                if loop is not None:
                    if not self._waiting:
                        loop.call_soon(self.flush)
                    self._waiting.append(line)
                    return
            self._waiting.append(line)
            self._write_waiting()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock if self.lock is not None else contextlib.nullcontext():
            self._write_waiting()
            super().flush()

    def _write_waiting(self) -> None:
        if self._waiting:
            text = "".join(self._waiting)
            self._waiting.clear()
            self.stream.write(text)
            self.stream.flush()
