"""Supervised engine worker processes.

durable_rules is single-threaded per process and its C code can crash or hang, so evaluations run
in worker processes: the gRPC front hands each call (as wire bytes) to an idle worker and waits.
A worker that dies costs the call it was running (answered UNAVAILABLE, safe to retry) and is
replaced; one that overruns its time is killed and replaced. Workers are started with `spawn`,
never `fork`, so a replacement can be started while gRPC threads are running.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("regelmotor.workers")


class WorkerCrashed(Exception):
    """The worker died while handling the call."""


class WorkerTimeout(Exception):
    """The worker did not answer in time and was replaced."""


class NoWorker(Exception):
    """No worker became free in time."""


def worker_main(conn: Connection, settings: dict[str, Any]) -> None:
    """Entry point of a worker process: load rulesets, then answer requests until told to stop.

    With `settings["decision_log"]` (the location of a SQLite log) the worker opens the log itself and
    records each decision before answering it."""
    from regelmotor.core.api import Regelmotor
    from regelmotor.core.identity import Pseudonymiser
    from regelmotor.core.repository import RulesetRepository
    from regelmotor.store import open_log

    from .handler import EvaluationHandler
    from .telemetry import setup_logging, tracer_provider

    setup_logging(settings.get("log_level", "INFO"))
    tracer = tracer_provider().get_tracer("regelmotor.engine")
    motor = Regelmotor(RulesetRepository.load(settings["rulesets"], include_drafts=settings["allow_drafts"]))
    motor.warm_up()
    key = settings.get("pseudonym_key")
    location = settings.get("decision_log")
    decision_log = open_log(location) if location else None
    pseudonymiser = Pseudonymiser(key, allow_synthetic=bool(settings.get("allow_synthetic_ids"))) if key else None
    handler = EvaluationHandler(motor, tracer, pseudonymiser, bool(settings.get("records")), decision_log)
    conn.send(("ready",))
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, KeyboardInterrupt):
                return
            kind = message[0]
            if kind == "stop":
                return
            if kind == "evaluate":  # ("evaluate", request bytes, traceparent, caller or None)
                conn.send(handler.evaluate(*message[1:]))
            elif kind == "batch":  # ("batch", [(index, request bytes)], traceparent, caller or None)
                conn.send(handler.evaluate_batch(*message[1:]))
            elif kind == "test":
                conn.send(handler.test_ruleset(message[1]))
    finally:
        if decision_log is not None:
            decision_log.close()


@dataclass
class _Worker:
    number: int
    process: multiprocessing.process.BaseProcess
    conn: Connection


class WorkerPool:
    def __init__(self, size: int, settings: dict[str, Any], start_timeout: float = 120.0) -> None:
        self.size = size
        self.settings = settings
        self.start_timeout = start_timeout
        self._context = multiprocessing.get_context("spawn")
        # SimpleQueue is implemented in C: taking and returning a worker costs the GIL less than queue.Queue.
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._numbers = iter(range(1, 1_000_000))
        self._lock = threading.Lock()
        self._closed = False
        self.restarts = 0
        self.calls_by_worker: Counter[int] = Counter()  # worker number -> calls answered
        starting = [self._spawn() for _ in range(size)]
        for worker in starting:
            self._await_ready(worker)
            self._idle.put(worker)

    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=worker_main, args=(child, self.settings), daemon=True,
                                        name="regelmotor-engine")
        process.start()
        child.close()
        return _Worker(next(self._numbers), process, parent)

    def _await_ready(self, worker: _Worker) -> None:
        if not worker.conn.poll(self.start_timeout):
            worker.process.kill()
            raise RuntimeError("an engine worker did not start in time")
        message = worker.conn.recv()
        if message != ("ready",):
            raise RuntimeError(f"an engine worker failed to start: {message!r}")

    def _replace(self, worker: _Worker, reason: str) -> None:
        log.warning("replacing engine worker", extra={"worker": worker.number, "reason": reason})
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        worker.conn.close()
        self.restarts += 1
        if self._closed:
            return

        def start() -> None:
            try:
                fresh = self._spawn()
                self._await_ready(fresh)
            except Exception:
                log.exception("could not start a replacement engine worker")
                return
            self._idle.put(fresh)

        threading.Thread(target=start, name="regelmotor-worker-restart", daemon=True).start()

    def call(self, message: tuple[Any, ...], timeout: float | None) -> Any:
        """Send `message` to a free worker and return its answer."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                worker = self._idle.get(timeout=timeout)
            except queue.Empty:
                raise NoWorker("no engine worker became free in time") from None
            if worker.process.is_alive():
                break
            # It died while idle: no call is lost; replace it and take the next one.
            self._replace(worker, "died while idle")
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            worker.conn.send(message)
            if not worker.conn.poll(remaining):
                self._replace(worker, "timeout")
                raise WorkerTimeout("the engine did not answer in time")
            answer = worker.conn.recv()
        except (EOFError, OSError) as exc:
            self._replace(worker, f"crashed: {type(exc).__name__}")
            raise WorkerCrashed("the engine worker stopped while evaluating; the call is safe to retry") from None
        self.calls_by_worker[worker.number] += 1
        self._idle.put(worker)
        return answer

    def alive(self) -> int:
        return self._idle.qsize()

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(OSError):
                worker.conn.send(("stop",))
            worker.process.join(5)
            if worker.process.is_alive():
                worker.process.kill()
