"""Shared pieces of the gRPC tests: requests, a server started in this process, error details."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from regelmotor.server.app import RunningServer, start
from regelmotor.server.config import Settings
from regelmotor_api.v1 import decision_pb2 as pb
from tests.conftest import BUNDLED_RULESETS

VALID_FACTS: dict[str, Any] = {
    "ansiennitetsdato": "2026-03-30", "fodselsdato": "2004-05-02", "fagomrade": "tsb", "tilstand": "tsb_alkohol",
    "forventet_nytte": True, "kostnad_rimelig": True,
}


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def request(facts: dict[str, Any] | None = None, **fields: str) -> pb.EvaluateRequest:
    values = {"ruleset": "rett-til-helsehjelp", "as_of": "2026-04-20", "request_id": "req-1", **fields}
    return pb.EvaluateRequest(facts=struct(VALID_FACTS if facts is None else facts), **values)


def details(error: grpc.RpcError) -> dict[str, Any]:
    """The rich error details of a failed call, unpacked by type name."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status"
    found: dict[str, Any] = {}
    for detail in status.details:
        for kind in (error_details_pb2.BadRequest, error_details_pb2.ErrorInfo, error_details_pb2.ResourceInfo,
                     error_details_pb2.PreconditionFailure, error_details_pb2.RetryInfo):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind.DESCRIPTOR.name] = message
    return found


@contextmanager
def server_in_process(workers: int = 0, **overrides: Any) -> Iterator[tuple[RunningServer, InMemorySpanExporter,
                                                                          InMemoryMetricReader]]:
    spans = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    with tempfile.TemporaryDirectory(prefix="regelmotor-test-") as data_dir, \
            tempfile.TemporaryDirectory(prefix="regelmotor-keys-") as key_dir:
        # The pseudonym key apart from the log, as a deployment with authentication must keep it.
        values: dict[str, Any] = {"data_dir": Path(data_dir), "rulesets": BUNDLED_RULESETS, "allow_drafts": True,
                                  "grace_seconds": 1, "pseudonym_key_file": Path(key_dir) / "pseudonym.key",
                                  **overrides}
        settings = Settings(port=0, workers=workers, **values)
        running = start(settings, tracers=tracers, meters=MeterProvider(metric_readers=[reader]))
        try:
            yield running, spans, reader
        finally:
            running.stop(grace=1)


def metric_points(reader: InMemoryMetricReader, name: str) -> list[dict[str, object]]:
    """The data points of metric `name` so far, each as its attributes and its value."""
    data = reader.get_metrics_data()
    points: list[dict[str, object]] = []
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    points += [{**dict(p.attributes or {}), "value": getattr(p, "value", getattr(p, "count", None))}
                               for p in metric.data.data_points]
    return points
