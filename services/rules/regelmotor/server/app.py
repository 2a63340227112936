"""Assemble and run the gRPC server.

One front process holds the gRPC server and a pool of engine worker processes (default: one per
core). Calls on one channel are spread over every worker, so a hospital integration engine that
opens a single channel still uses every core. Health turns SERVING once the rulesets are loaded and
the workers are ready; on SIGTERM it turns NOT_SERVING first, then in-flight calls get a grace
period to finish.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import metrics, trace

from regelmotor.core.api import Regelmotor
from regelmotor.core.identity import Pseudonymiser, load_key
from regelmotor.core.repository import RulesetRepository
from regelmotor.store import open_log
from regelmotor.store.base import DecisionLog
from regelmotor.store.group import GroupCommitter
from regelmotor.store.sqlite import SQLiteDecisionLog
from regelmotor.v1 import audit_pb2, audit_pb2_grpc, decision_pb2, ruleset_pb2, ruleset_pb2_grpc

from .audit import AuditServicer
from .config import Settings
from .recording import Recorder
from .servicers import DECISION_SERVICE, RULESET_SERVICE, DecisionServicer, Engine, InlineEngine, RulesetServicer
from .telemetry import Telemetry, meter_provider, tracer_provider
from .workers import WorkerPool

log = logging.getLogger("regelmotor.server")
SERVICES = (DECISION_SERVICE, RULESET_SERVICE)
AUDIT_SERVICE = "regelmotor.v1.AuditService"


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    settings: Settings
    pool: WorkerPool | None = None
    log: DecisionLog | None = None
    committer: GroupCommitter | None = None
    stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        """Drain: health NOT_SERVING first, then let in-flight calls finish within the grace period."""
        if self.stopped.is_set():
            return
        self.health.enter_graceful_shutdown()
        done = self.server.stop(self.settings.grace_seconds if grace is None else grace)
        done.wait()
        if self.pool is not None:
            self.pool.close()
        if self.committer is not None:
            self.committer.close()
        if self.log is not None:
            self.log.close()
        self.stopped.set()
        log.info("stopped", extra={"address": self.address})


def start(settings: Settings, *, tracers: trace.TracerProvider | None = None,
          meters: metrics.MeterProvider | None = None) -> RunningServer:
    """Load the rulesets, start the workers and the server; return once it is SERVING."""
    telemetry = Telemetry.create(tracers or tracer_provider(), meters or meter_provider())
    repository = RulesetRepository.load(settings.rulesets, include_drafts=settings.allow_drafts)
    motor = Regelmotor(repository)
    key = load_key(settings.pseudonym_key, settings.data_dir / "pseudonym.key")
    pseudonymiser = Pseudonymiser(key, allow_synthetic=settings.allow_synthetic_ids)
    decision_log = open_decision_log(settings)  # created and migrated here, before any worker opens it
    # Who appends (see regelmotor.server.handler): a SQLite log is appended to by the engine workers, each
    # on its own connection, before they reply; a PostgreSQL log by the front's group committer.
    engine_records = isinstance(decision_log, SQLiteDecisionLog)
    committer = GroupCommitter(decision_log) if decision_log is not None and not engine_records else None
    pool: WorkerPool | None = None
    engine: Engine
    if settings.workers > 0:
        pool = WorkerPool(settings.workers, {
            "rulesets": str(settings.rulesets), "allow_drafts": settings.allow_drafts, "pseudonym_key": key,
            "allow_synthetic_ids": settings.allow_synthetic_ids,
            "log_level": settings.log_level, "records": committer is not None,
            "decision_log": str(decision_log.path) if isinstance(decision_log, SQLiteDecisionLog) else None})
        engine = pool
    else:
        motor.warm_up()
        engine = InlineEngine(motor, telemetry, pseudonymiser, records=committer is not None,
                              log=decision_log if engine_records else None)
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_response_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="regelmotor-rpc"),
                         options=options, maximum_concurrent_rpcs=settings.max_concurrent_rpcs)
    decisions = DecisionServicer(engine, telemetry, settings.max_evaluation_seconds, settings.stream_batch,
                                 max(1, settings.workers), Recorder(committer) if committer else None)
    server.add_generic_rpc_handlers((decisions.handler(),))
    ruleset_pb2_grpc.add_RulesetServiceServicer_to_server(  # type: ignore[no-untyped-call]
        RulesetServicer(motor, engine, telemetry, settings.max_evaluation_seconds), server)
    services: tuple[str, ...] = SERVICES
    if decision_log is not None:
        audit_pb2_grpc.add_AuditServiceServicer_to_server(  # type: ignore[no-untyped-call]
            AuditServicer(decision_log, engine, pseudonymiser, telemetry, settings.max_evaluation_seconds), server)
        services = (*SERVICES, AUDIT_SERVICE)
    health_servicer = health.HealthServicer(experimental_non_blocking=True,
                                            experimental_thread_pool=ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*services, health.SERVICE_NAME]
    if settings.reflection:
        # Importing the generated modules registers their descriptors for reflection.
        assert decision_pb2.DESCRIPTOR and ruleset_pb2.DESCRIPTOR and audit_pb2.DESCRIPTOR
        names.append(reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    for service in (*services, ""):
        health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise RuntimeError(f"cannot listen on {settings.host}:{settings.port}")
    server.start()
    for service in (*services, ""):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    running = RunningServer(server, port, health_servicer, settings, pool, log=decision_log, committer=committer)
    versions = sum(len(v) for v in repository.versions.values())
    log.info("serving", extra={"address": running.address, "workers": settings.workers, "rulesets": versions,
                               "allow_drafts": settings.allow_drafts})
    return running


def open_decision_log(settings: Settings) -> DecisionLog | None:
    """The decision log the settings name: SQLite in data_dir by default, PostgreSQL by DSN, or none."""
    if settings.decision_log == "off":
        return None
    if settings.decision_log == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return open_log(str(settings.data_dir / "decisions.db"))
    return open_log(settings.decision_log)


def serve(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT, then drain."""
    running = start(settings)
    print(f"Regelmotor is serving gRPC on {running.address} "
          f"({settings.workers} engine worker(s), rulesets from {settings.rulesets})", flush=True)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("draining", extra={"signal": signal.Signals(signum).name, "grace_seconds": settings.grace_seconds})
        threading.Thread(target=running.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running.stopped.wait()
    return 0
