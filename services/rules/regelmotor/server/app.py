"""Assemble and run the gRPC server (grpc.aio).

One front process holds the server and two pools of worker processes: the engine workers (default one
per core), which evaluate on one snapshot of the rulesets (read at start, replaced when a version is published or
retired in the store: reload.py), and a sandbox that handles ruleset sources sent by callers. Calls on one
channel are spread over every engine worker.

Life cycle:
- start: every setting is checked first (`startup`); a bad one stops the server with one line naming it;
  health turns SERVING once the workers are ready;
- SIGTERM: health turns NOT_SERVING at once while calls are still taken for `drain_delay_seconds` (so load
  balancers and Kubernetes endpoints stop sending), then new calls are refused, in-flight ones get up to
  `grace_seconds`, the workers are stopped and reaped, the log closed, and the process exits;
- SIGINT (Ctrl-C at a terminal): the same without the drain delay.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import metrics, trace

from regelmotor.core.api import Regelmotor
from regelmotor.core.repository import RulesetSnapshot
from regelmotor.store import Checkpointer, DecisionLog
from regelmotor_api.v1 import audit_pb2, audit_pb2_grpc, decision_pb2, ruleset_pb2, ruleset_pb2_grpc

from . import guard, seeding, startup, tls, witnessing
from .audit import AuditServicer
from .config import Settings
from .handler import EvaluationHandler
from .health import ServiceHealth
from .health_port import health_only_server
from .impact import ImpactAnalyst
from .lifecycle import RulesetLifecycleServicer
from .limits import CallerLimiter
from .pool import WorkerPool
from .recording import FrontRecording, RecordingPlan
from .reload import RulesetReloader
from .servicers import DECISION_SERVICE, RULESET_SERVICE, DecisionServicer, Engine, InlineEngine
from .telemetry import Telemetry, meter_provider, tracer_provider
from .worker import Worker, WorkerConfig

log = logging.getLogger("regelmotor.server")
# Messages (chunks of logged decisions) an impact worker handles before a fresh process replaces it: durable_rules
# never frees the candidates it compiled.
IMPACT_MESSAGES = 2000
AUDIT_SERVICE = "regelmotor.v1.AuditService"


@dataclass
class Service:
    """One running instance: its settings, rulesets, log, pools, server and health."""

    settings: Settings
    telemetry: Telemetry
    motor: Regelmotor
    log: DecisionLog | None
    recording: FrontRecording
    pool: WorkerPool | None
    inline: InlineEngine | None
    sources: WorkerPool
    server: grpc.aio.Server
    health: ServiceHealth
    port: int = 0
    posture: str = ""  # how the server can be reached (startup.exposure), said at every start
    checkpointer: Checkpointer | None = None
    checkpointing: asyncio.Task[None] | None = None
    impact: WorkerPool | None = None  # the impact analysis sandbox (server/impact.py)
    reloader: RulesetReloader | None = None  # hot reload from the store (server/reload.py); None without a log
    reloading: asyncio.Task[None] | None = None
    health_server: grpc.aio.Server | None = None  # the plaintext health-only port (server/health_port.py)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    def start_checkpointing(self) -> None:
        """Sign a checkpoint of the log every checkpoint_seconds (when there is a log)."""
        if self.checkpointer is not None:
            self.checkpointing = asyncio.create_task(
                witnessing.keep_checkpointing(self.checkpointer, self.settings.checkpoint_seconds))

    def start_reloading(self) -> None:
        """Serve the versions published and retired in the store from now on (when there is a store)."""
        if self.reloader is not None:
            self.reloading = asyncio.create_task(self.reloader.run())

    async def stop(self, *, drain_delay: float, grace: float) -> None:
        """NOT_SERVING at once; still serving for `drain_delay`; then refuse new calls, let in-flight ones finish
        within `grace`, stop the workers, close the log."""
        if self.health.shutting_down:
            await self.stopped.wait()
            return
        await self.health.shut_down()
        if self.reloading is not None:
            self.reloading.cancel()
        log.info("draining", extra={"drain_delay_seconds": drain_delay, "grace_seconds": grace})
        if drain_delay:
            await asyncio.sleep(drain_delay)
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(0)
        pools = [self.sources] + [p for p in (self.pool, self.impact) if p is not None]
        await asyncio.gather(*(p.close(timeout=2.0) for p in pools))
        if self.inline is not None:
            await asyncio.to_thread(self.inline.close)
        await asyncio.to_thread(self.recording.close, 5.0)  # commits what it took; a hung database gets 5 s
        if self.checkpointing is not None:
            self.checkpointing.cancel()
        if self.checkpointer is not None:  # the last records are witnessed too
            await witnessing.checkpoint_now(self.checkpointer)
        if self.log is not None:
            self.log.close()
        self.stopped.set()
        log.info("stopped", extra={"address": self.address})


async def build(settings: Settings, telemetry: Telemetry) -> Service:
    """Check every setting, load the rulesets, start the workers and listen; health is SERVING on return.
    Raises StartupError naming the setting that keeps it from starting."""
    credentials = tls.server_credentials(settings)  # None: plaintext
    access = guard.interceptor(settings)  # None: no JWKS configured, no tokens asked for
    posture = startup.exposure(settings.host, tls=credentials is not None, authentication=access is not None,
                               insecure=settings.insecure)
    data_dir = startup.data_dir(settings.data_dir)
    # The current key, and the retired ones that only find what was recorded under them (startup.py).
    pseudonymiser = startup.pseudonymiser(settings, data_dir, authentication=access is not None)
    decision_log = startup.decision_log(settings.decision_log, data_dir)  # created and migrated before any worker
    try:
        # The store's change counter, read before its versions: a change between the two is seen at the first look.
        seen = _change_counter(decision_log)
        # From the store beside the log, seeded from settings.rulesets at the first start (seeding.py).
        snapshot, repository = seeding.served_rulesets(settings.rulesets, decision_log,
                                                       include_drafts=settings.allow_drafts)
    except BaseException:
        if decision_log is not None:
            decision_log.close()
        raise
    motor = Regelmotor(repository)
    checkpointer = _checkpointer(settings, decision_log, data_dir)
    # Who appends, chosen once here (recording.py): the engine workers for SQLite, the front's group committer
    # for PostgreSQL; the workers, the inline engine and the servicer each get their part of this one plan.
    plan = RecordingPlan.for_log(decision_log)
    recording = plan.front_side(decision_log)
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_response_bytes),
        ("grpc.so_reuseport", 0),
    ], maximum_concurrent_rpcs=settings.max_concurrent_rpcs, interceptors=[access] if access is not None else None)
    health_servicer = health.aio.HealthServicer()
    services = (DECISION_SERVICE, RULESET_SERVICE) + ((AUDIT_SERVICE,) if decision_log is not None else ())
    service_health = ServiceHealth(health_servicer, DECISION_SERVICE, services[1:],
                                   probe=decision_log.probe if decision_log is not None else None,
                                   on_change=lambda condition, ok: telemetry.health_changes.add(
                                       1, {"condition": condition, "ok": str(ok).lower()}))
    sources = WorkerPool("sources", 1, WorkerConfig(role="sources", log_level=settings.log_level,
                                                   memory_limit_bytes=settings.source_memory_mb * 1024 * 1024),
                         time_limit=settings.source_seconds, max_wait=settings.max_queue_seconds,
                         max_calls=settings.source_calls, lazy=True)
    # The impact sandbox: the sources worker's limits, one process per core, at a lower priority (impact.py).
    impact = WorkerPool("impact", settings.impact_workers,
                        WorkerConfig(role="impact", snapshot=snapshot, log_level=settings.log_level,
                                     memory_limit_bytes=settings.impact_memory_mb * 1024 * 1024,
                                     nice=settings.impact_nice, idle=settings.impact_idle,
                                     log_location=decision_log.reader_location() if decision_log else None),
                        time_limit=settings.source_seconds, max_wait=settings.max_queue_seconds,
                        max_calls=IMPACT_MESSAGES, lazy=True)
    pool: WorkerPool | None = None
    inline: InlineEngine | None = None
    engine: Engine
    try:
        if settings.workers > 0:
            config = WorkerConfig(
                role="engine", snapshot=snapshot, allow_drafts=settings.allow_drafts, pseudonymiser=pseudonymiser,
                log_level=settings.log_level, recording=plan, known_at_settle=settings.known_at_settle_seconds)
            def capacity(ready: int) -> None:
                telemetry.engine_workers.set(ready)
                service_health.workers(ready)

            pool = WorkerPool("engine", settings.workers, config, time_limit=settings.max_evaluation_seconds,
                              max_wait=settings.max_queue_seconds, on_capacity=capacity,
                              batch_items=settings.stream_batch)
            try:
                await pool.start()
            except RuntimeError as exc:
                raise startup.StartupError("workers", str(exc), "see the log lines above for the worker's reason") \
                    from None
            engine = pool
        else:
            motor.warm_up()
            handler = EvaluationHandler(motor, telemetry.tracer, pseudonymiser, plan.engine_side(decision_log),
                                        settings.known_at_settle_seconds)
            inline = engine = InlineEngine(Worker(WorkerConfig(role="engine"), engine=handler))
            service_health.workers_ready = 1
        await sources.start()
        await impact.start()
        # A stream keeps one batch more in flight than there are workers: it waits in the pool's queue, so a worker
        # that finishes a batch finds the next at once instead of idling while the front sends the answers.
        calls = CallerLimiter("max_calls_per_caller", settings.max_calls_per_caller)
        exports = CallerLimiter("max_exports_per_caller", settings.max_exports_per_caller)
        telemetry.in_progress += [(calls.setting, calls.in_progress)]
        decisions = DecisionServicer(engine, telemetry, batch=settings.stream_batch, parallel=settings.workers + 1,
                                     recording=recording, health=service_health,
                                     idle_seconds=settings.stream_idle_seconds,
                                     limiter=calls,
                                     log=decision_log)
        server.add_generic_rpc_handlers((decisions.handler(),))
        ruleset_pb2_grpc.add_RulesetServiceServicer_to_server(  # type: ignore[no-untyped-call]
            RulesetLifecycleServicer(motor, sources, telemetry,
                                     decision_log.rulesets() if decision_log is not None else None,
                                     ImpactAnalyst(decision_log, impact, motor, pseudonymiser,
                                                   settings.impact_max_decisions, settings.known_at_settle_seconds),
                                     lambda: service_health.reload_problem), server)
        if decision_log is not None:
            telemetry.in_progress += [(exports.setting, exports.in_progress)]
            audit_pb2_grpc.add_AuditServiceServicer_to_server(  # type: ignore[no-untyped-call]
                AuditServicer(decision_log, engine, pseudonymiser, telemetry, settings.max_evaluation_seconds,
                              checkpointer, exports),
                server)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        if settings.reflection:
            # Importing the generated modules registers their descriptors for reflection.
            assert decision_pb2.DESCRIPTOR and ruleset_pb2.DESCRIPTOR and audit_pb2.DESCRIPTOR
            reflection.enable_server_reflection([*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        port = _listen(server, settings, credentials)
        health_server = health_only_server(health_servicer, settings)
        await server.start()
        if health_server is not None:
            await health_server.start()
    except BaseException:
        if pool is not None:
            await pool.close(timeout=1.0)
        await sources.close(timeout=1.0)
        await impact.close(timeout=1.0)
        recording.close()
        if decision_log is not None:
            decision_log.close()
        raise
    service = Service(settings, telemetry, motor, decision_log, recording, pool, inline, sources, server,
                      service_health, port, posture, checkpointer, impact=impact, health_server=health_server)
    service.reloader = _reloader(service, snapshot, seen)
    service.start_checkpointing()
    service.start_reloading()
    await service_health.publish()
    versions = sum(len(v) for v in repository.versions.values())
    log.info("serving", extra={"address": service.address, "workers": settings.workers, "rulesets": versions,
                               "allow_drafts": settings.allow_drafts, "tls": tls.mode(settings),
                               "auth": "bearer" if access is not None else "off"})
    return service


def _change_counter(decision_log: DecisionLog | None) -> int:
    """The newest lifecycle event id of the store beside the log (0: no log)."""
    return decision_log.rulesets().head().id if decision_log is not None else 0


def _reloader(service: Service, snapshot: RulesetSnapshot, seen: int) -> RulesetReloader | None:
    """What brings the instance to the versions published and retired later (None: no store, nothing to watch)."""
    serving = service.pool if service.pool is not None else service.inline
    if service.log is None or serving is None:
        return None
    settings = service.settings
    return RulesetReloader(service.log.rulesets(), service.motor, serving, served=snapshot, seen=seen,
                           include_drafts=settings.allow_drafts, health=service.health, telemetry=service.telemetry,
                           interval=settings.reload_seconds,
                           followers=(service.impact,) if service.impact is not None else ())


def _checkpointer(settings: Settings, decision_log: DecisionLog | None, data_dir: Path) -> Checkpointer | None:
    """The log's checkpointer, after the log verified against its latest checkpoint (else StartupError)."""
    if decision_log is None:
        return None
    try:
        return witnessing.open_checkpointer(decision_log, settings.checkpoint_key_file or data_dir / "checkpoint.key",
                                            settings.witness_file or data_dir / "checkpoints.jsonl",
                                            settings.checkpoint_previous_keys_file)
    except BaseException:
        decision_log.close()
        raise


def _listen(server: grpc.aio.Server, settings: Settings, credentials: grpc.ServerCredentials | None) -> int:
    """Add the port: TLS with credentials, else plaintext. StartupError when it cannot be had."""
    address = f"{settings.host}:{settings.port}"
    try:
        if credentials is not None:
            return server.add_secure_port(address, credentials)
        return server.add_insecure_port(address)
    except RuntimeError:
        raise startup.port_in_use(settings.host, settings.port) from None


class RunningServer:
    """A server running on its own event loop in a background thread (tests, embedding). `stop` drains it."""

    def __init__(self, settings: Settings, telemetry: Telemetry) -> None:
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._loop.set_default_executor(ThreadPoolExecutor(settings.threads, thread_name_prefix="regelmotor-io"))
        self._thread = threading.Thread(target=self._loop.run_forever, name="regelmotor-server", daemon=True)
        self._thread.start()
        try:
            self.service: Service = self.run(build(settings, telemetry))
        except BaseException:
            self._close_loop()
            raise

    def run(self, work: Any, timeout: float | None = None) -> Any:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    @property
    def port(self) -> int:
        return self.service.port

    @property
    def address(self) -> str:
        return self.service.address

    @property
    def pool(self) -> WorkerPool | None:
        return self.service.pool

    @property
    def log(self) -> DecisionLog | None:
        return self.service.log

    def stop(self, grace: float | None = None, drain_delay: float = 0.0) -> None:
        if self._loop.is_closed():
            return
        self.run(self.service.stop(drain_delay=drain_delay,
                                   grace=self.settings.grace_seconds if grace is None else grace))
        self._close_loop()

    def _close_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def start(settings: Settings, *, tracers: trace.TracerProvider | None = None,
          meters: metrics.MeterProvider | None = None) -> RunningServer:
    """Start a server in the background; return once it is SERVING."""
    return RunningServer(settings, Telemetry.create(tracers or tracer_provider(), meters or meter_provider()))


def serve(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT, then drain; 0 after a clean stop, 2 when a setting keeps it from starting."""
    try:
        return asyncio.run(_serve(settings))
    except startup.StartupError as exc:
        print(f"regelmotor: cannot start: {exc}", file=sys.stderr, flush=True)
        return 2


async def _serve(settings: Settings) -> int:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(settings.threads, thread_name_prefix="regelmotor-io"))
    service = await build(settings, Telemetry.create(tracer_provider(), meter_provider()))
    # With a decision log the versions served are the store's (seeded from the folder at the first start).
    source = (f"the store beside the decision log (first seeded from {settings.rulesets})" if service.log is not None
              else str(settings.rulesets))
    print(f"Regelmotor is serving gRPC on {service.address} "
          f"({settings.workers} engine worker(s), rulesets from {source})", flush=True)
    print(f"Security: {service.posture}", flush=True)
    if service.posture.startswith("WARNING"):
        log.warning("insecure", extra={"posture": service.posture})
    stopping: list[asyncio.Task[None]] = []

    def on_signal(signum: int) -> None:
        if stopping:  # a second signal: stop now (stored decisions are safe; in-flight calls are lost)
            log.warning("second signal: exiting at once", extra={"signal": signal.Signals(signum).name})
            os.kill(os.getpid(), signal.SIGKILL)
        delay = settings.drain_delay_seconds if signum == signal.SIGTERM else 0.0
        log.info("signal", extra={"signal": signal.Signals(signum).name})
        stopping.append(loop.create_task(service.stop(drain_delay=delay, grace=settings.grace_seconds)))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await service.stopped.wait()
    return 0
