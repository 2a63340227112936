"""The worker process: what runs on the other side of the pool's pipes.

Two roles share this entry point:
- an *engine* worker evaluates requests on the instance's ruleset snapshot (replaced, between two messages, by
  a `Reload` when a version is published or retired: regelmotor.server.reload) and records decisions as the
  service's `RecordingPlan` says (with a SQLite decision log, it stores each before it answers);
- a *sources* worker parses, validates, compiles and tests ruleset sources sent by callers, under an
  address-space limit, and is recycled after a number of sources (durable_rules never frees a ruleset);
- an *impact* worker is a sources worker that also evaluates logged decisions again under a caller's candidate
  version (impact analysis), at a lower CPU priority (`nice`) than the engine workers.

A request the worker cannot handle (an unknown kind, or a fault of ours) is answered with `Failed`; the
worker goes on. Only a crash of the C engine, a hang or the memory limit ends it, and the pool replaces it.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, TypeVar

from regelmotor.core.repository import RulesetSnapshot

from .frames import write_message
from .moments import DEFAULT_SETTLE_SECONDS
from .protocol import (
    AnalyseChunk,
    CallItem,
    DiffSources,
    Evaluate,
    EvaluateBatch,
    EvaluateCalls,
    Failed,
    PrepareImpact,
    ProposeSource,
    Ready,
    Reload,
    Request,
    Skipped,
    Stop,
    TestSource,
    ValidateSource,
)
from .recording import EngineRecording, RecordingPlan

if TYPE_CHECKING:
    from regelmotor.core.identity import Pseudonymiser

    from .handler import Decided

log = logging.getLogger("regelmotor.worker")
T = TypeVar("T")


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs to start: plain data, sent to the spawned process."""

    role: str  # "engine" or "sources"
    snapshot: RulesetSnapshot | None = None  # the engine's rulesets
    allow_drafts: bool = False
    # The front's: new decisions get the current key; a retry after a key rotation is known by the retired ones.
    pseudonymiser: Pseudonymiser | None = None
    log_level: str = "INFO"
    recording: RecordingPlan = field(default_factory=RecordingPlan)  # who writes the decision log
    memory_limit_bytes: int | None = None  # RLIMIT_AS of the process
    nice: int = 0  # added to the process's nice value: >0 yields the CPU to the engine workers
    idle: bool = False  # SCHED_IDLE (Linux): any runnable normal process preempts this one at once
    log_location: str | None = None  # an impact worker: where it reads logged decisions (DecisionLog.reader_location)
    known_at_settle: float = DEFAULT_SETTLE_SECONDS  # how long ago a request's known_at must be


def worker_main(conn: Connection) -> None:
    """Entry point of a worker process: take the WorkerConfig (the first message), prepare, say Ready, then answer
    requests until Stop or EOF."""
    from .telemetry import setup_logging

    # The front decides when a worker ends (Stop, or a kill): a SIGTERM or Ctrl-C sent to the whole process
    # group must not end the calls it is draining.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        config = conn.recv()
    except (EOFError, KeyboardInterrupt):
        return
    setup_logging(config.log_level)
    if config.nice:
        os.nice(config.nice)
    if config.idle and hasattr(os, "sched_setscheduler"):
        # A nice value only weights the shares: a woken engine worker may still wait for a nice one's slice.
        # An idle-policy process is preempted on every wakeup of a normal one (measured: BENCHMARKS.md).
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    if config.memory_limit_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (config.memory_limit_bytes, config.memory_limit_bytes))
    try:
        worker = Worker(config)
    except Exception as exc:  # the pool logs the reason and retries with backoff
        log.exception("engine worker could not start")
        conn.send(Failed(f"could not start: {type(exc).__name__}: {exc}"[:500]))
        return
    conn.send(Ready(os.getpid()))
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, KeyboardInterrupt):
                return
            if isinstance(message, Stop):
                return
            for answer in worker.answers(message):
                write_message(conn.fileno(), answer)
    finally:
        worker.close()


class Worker:
    """Handles requests in this process. `engine`: an EvaluationHandler made elsewhere (the inline engine of a
    server without engine workers); else an engine worker makes its own from the config."""

    def __init__(self, config: WorkerConfig, engine: Any = None) -> None:
        self.config = config
        self._engine: Any = engine
        self._recording: EngineRecording | None = None  # what this worker opened for recording, to close
        if config.role == "engine" and engine is None:
            self._engine, self._recording = _engine_handler(config)
        self._impact: Any = None  # an impact worker's candidates (made on its first request)

    def answers(self, message: Request) -> list[object]:
        """The answers to `message`: one per item of EvaluateCalls, else the one answer."""
        if isinstance(message, EvaluateCalls):
            answers = self._guarded(message, lambda: self._evaluate_calls(message.items))
            return [answers] * len(message.items) if isinstance(answers, Failed) else answers
        return [self.handle(message)]

    def _evaluate_calls(self, items: tuple[CallItem, ...]) -> list[object] | Failed:
        """Each call decided as if it had come alone (`Skipped` when its caller's deadline passed before its
        turn), and those to be recorded here stored in one transaction, before any is answered: a commit per
        call cost more than the decisions of a whole batch."""
        if not self._engine:
            return Failed(f"a {self.config.role} worker does not handle EvaluateCalls")
        decided: list[Decided | None] = []
        for request, traceparent, caller, deadline in items:
            skip = deadline is not None and time.monotonic() >= deadline
            decided.append(None if skip else self._engine.decide(request, traceparent, caller))
        replies = iter(self._engine.store([reply for reply in decided if reply is not None]))
        return [Skipped() if reply is None else next(replies) for reply in decided]

    def handle(self, message: Request) -> object:
        """The answer to one request; never raises for a request the worker can survive."""
        return self._guarded(message, lambda: self._handle(message))

    def _handle(self, message: Request) -> object:
        match message:
            case Evaluate(request=request, traceparent=traceparent, caller=caller, replay=replay) if self._engine:
                return self._engine.evaluate(request, traceparent, caller, replay)
            case EvaluateBatch(items=items, traceparent=traceparent, caller=caller) if self._engine:
                return self._engine.evaluate_batch(list(items), traceparent, caller)
            case ValidateSource(request=request):
                from .sources import validate_source

                return validate_source(request)
            case TestSource(request=request):
                from .sources import run_source_cases

                return run_source_cases(request)
            case DiffSources(request=request):
                from .sources import diff_sources

                return diff_sources(request)
            case PrepareImpact() | AnalyseChunk() if self.config.role == "impact":
                return self._impact_work().handle(message)
            case ProposeSource(request=request):
                from .sources import check_proposal

                return check_proposal(request)
            case Reload(snapshot=snapshot) if self._engine:
                from .reload import switch_engine

                return switch_engine(self._engine.motor, snapshot, include_drafts=self.config.allow_drafts)
            case Reload(snapshot=snapshot) if self.config.role == "impact":
                return self._impact_work().follow(snapshot)
            case _:
                return Failed(f"a {self.config.role} worker does not handle {type(message).__name__}")

    def _impact_work(self) -> Any:
        if self._impact is None:
            from .impact_worker import ImpactWork

            self._impact = ImpactWork(self.config.snapshot, self.config.log_location)
        return self._impact

    def _guarded(self, message: Request, work: Callable[[], T]) -> T | Failed:
        """`work`'s result, or `Failed` for a fault the worker survives."""
        try:
            return work()
        except MemoryError:
            # The address-space limit was reached: answer, then end this process (it may be in a bad state);
            # the pool starts a fresh one.
            log.error("worker reached its memory limit", extra={"request": type(message).__name__})
            raise SystemExit(1) from None
        except Exception as exc:
            log.exception("worker could not handle a request", extra={"request": type(message).__name__})
            return Failed(f"{type(exc).__name__} while handling {type(message).__name__}")

    def close(self) -> None:
        if self._recording is not None:
            self._recording.close()
        if self._impact is not None:
            self._impact.close()


def _engine_handler(config: WorkerConfig) -> tuple[Any, EngineRecording]:
    from regelmotor.core.api import Regelmotor
    from regelmotor.core.repository import RulesetRepository

    from .handler import EvaluationHandler
    from .telemetry import tracer_provider

    assert config.snapshot is not None, "an engine worker needs the ruleset snapshot"
    tracer = tracer_provider().get_tracer("regelmotor.engine")
    motor = Regelmotor(RulesetRepository.from_snapshot(config.snapshot, include_drafts=config.allow_drafts))
    motor.warm_up()
    recording = config.recording.engine_side()  # opens the log when this worker writes it
    return EvaluationHandler(motor, tracer, config.pseudonymiser, recording, config.known_at_settle), recording
