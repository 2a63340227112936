"""Worker processes, started, watched, reaped and replaced from the front's asyncio event loop.

After gunicorn's arbiter: every worker that exits or is killed is reaped and replaced; a replacement that fails to
start is retried with exponential backoff, so the pool never stays at zero for good. `on_capacity` hears of every
change in the number of ready workers (health turns NOT_SERVING at zero). Workers are started with `spawn`, never
`fork`. What the workers are sent, and how their answers reach the callers, is the pool's (pool.py), which builds
on this.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from .frames import FrameReader
from .protocol import Failed, Ready, Stop
from .worker import WorkerConfig, worker_main

log = logging.getLogger("regelmotor.pool")

MAX_BACKOFF_SECONDS = 30.0
FIRST_BACKOFF_SECONDS = 0.5


@dataclass(eq=False)
class WorkerProcess:
    """A worker process as the front sees it: its pipe, its state, and the work it has been sent."""

    number: int
    process: BaseProcess
    conn: Connection
    config: WorkerConfig  # what it serves: the config it started with, or the one it was reloaded to since
    state: str = "starting"  # starting → idle ⇄ busy → gone
    answer: asyncio.Future[object] | None = None  # the answer of a call that has the whole worker
    abandoned: bool = False  # its caller stopped waiting; the answer is dropped
    batch: deque[Any] | None = None  # or: the Evaluate calls it is working on, each answered alone, in order
    calls: int = 0
    timer: asyncio.TimerHandle | None = None
    progress: float = 0.0  # when it was sent its message, or last answered a call of its batch (loop time)
    clock_from: float = 0.0  # when its time limit started to count
    # Started by a restart task that has not finished yet: that task is what counts it (see _schedule_restart).
    replacing: bool = False
    reader: FrameReader = field(init=False)

    def __post_init__(self) -> None:
        self.reader = FrameReader(self.conn.fileno())


@dataclass
class PoolStats:
    restarts: int = 0
    killed_for_time: int = 0
    calls_by_worker: dict[int, int] = field(default_factory=dict)  # calls answered (each of a batch counts)
    batches: int = 0  # messages that carried more than one Evaluate call


class Supervisor:
    def __init__(self, name: str, size: int, config: WorkerConfig, *, start_timeout: float = 120.0,
                 lazy: bool = False, on_capacity: Callable[[int], None] | None = None) -> None:
        self.name = name
        self.lazy = lazy  # start workers on first use, not in start()
        self.size = size
        self.config = config
        self.start_timeout = start_timeout
        self.on_capacity = on_capacity
        self.stats = PoolStats()
        self._context = multiprocessing.get_context("spawn")
        self._numbers = itertools.count(1)
        self._workers: set[WorkerProcess] = set()
        self._idle: deque[WorkerProcess] = deque()
        self._failures = 0  # consecutive failed starts: the backoff grows with them
        self._spawning = 0  # restarts past their backoff, starting a process now
        self._backing_off = 0  # restarts waiting out their backoff
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._started: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_failure: str | None = None  # why the last start failed (for NoWorker and start-up errors)

    # -- what the pool that calls the workers does (pool.py) -------------------------------------------

    def _release(self, worker: WorkerProcess) -> None:
        """`worker` is ready for work (it started, or finished its message)."""
        raise NotImplementedError

    def _on_answer(self, worker: WorkerProcess, message: object) -> None:
        """`worker`, busy, sent `message`."""
        raise NotImplementedError

    def _work_lost(self, worker: WorkerProcess) -> None:
        """`worker` is gone: the calls it was sent are to be told so."""
        raise NotImplementedError

    def _nobody_coming(self) -> None:
        """No worker will be ready before a backoff ends: the calls waiting are to be told so."""
        raise NotImplementedError

    # -- state ---------------------------------------------------------------------------------------

    @property
    def ready(self) -> int:
        """Workers that can take calls now or after their current one."""
        return sum(1 for w in self._workers if w.state in ("idle", "busy"))

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None and w.state != "gone"]

    # -- starting and supervising --------------------------------------------------------------------

    async def start(self, *, wait: bool = True) -> None:
        """Start the workers; with `wait`, return once all are ready (RuntimeError naming the reason when
        none could start)."""
        self._loop = asyncio.get_running_loop()
        self._started = asyncio.Event()
        if self.lazy:
            return
        for _ in range(self.size):
            await self._spawn()
        if wait and self.size:
            await self._started.wait()
            if not self.ready:
                raise RuntimeError(self._last_failure or f"no {self.name} worker could start")

    def fill(self) -> None:
        """Start now every worker the pool lacks (a lazy pool starts one on its first call; a caller that will
        use them all, such as an impact analysis, wants the rest too). Call from the event loop."""
        self._loop = asyncio.get_running_loop()
        for _ in range(self.size):
            self._schedule_restart()

    async def _spawn(self, *, replacing: bool = False) -> bool:
        """Start one worker process; False when it died before it could be watched (the caller retries).
        `replacing`: a restart task starts it, and counts it until this returns."""
        loop = asyncio.get_running_loop()
        parent, child = self._context.Pipe()
        # Only the pipe goes with the spawn. CPython writes a spawned child's preparation data while still holding
        # the child's end of that pipe, so a child that dies while reading it would block start() for good once the
        # data outgrows the pipe buffer (the ruleset snapshot does); the configuration follows on our own pipe.
        process = self._context.Process(target=worker_main, args=(child,), daemon=True,
                                        name=f"regelmotor-{self.name}")
        started = loop.run_in_executor(None, process.start)
        try:
            await asyncio.shield(started)
        except asyncio.CancelledError:
            # The pool is closing and cancelled this restart: the start goes on in its thread all the same, so
            # end the process it starts (close waits for this) rather than leave it behind, unwatched.
            with contextlib.suppress(Exception):
                await started
                await loop.run_in_executor(None, _kill, process)
            child.close()
            parent.close()
            raise
        child.close()
        worker = WorkerProcess(next(self._numbers), process, parent, self.config, replacing=replacing)
        self._workers.add(worker)
        worker.timer = loop.call_later(self.start_timeout, self._start_overran, worker)
        try:
            await loop.run_in_executor(None, parent.send, worker.config)
        except (OSError, ValueError):
            self._lost(worker, "exited while starting")
            return False
        if worker.state != "starting":
            return False
        loop.add_reader(parent.fileno(), self._on_readable, worker)
        worker.replacing = False  # from here the pool counts it: its task ends without another await
        return True

    def _pending_restarts(self) -> int:
        # A finished task still sits in the set until its done-callback runs: count only those still working.
        return sum(1 for task in self._tasks if not task.done())

    def _backoff(self) -> float:
        return 0.0 if self._failures == 0 else min(FIRST_BACKOFF_SECONDS * 2 ** (self._failures - 1),
                                                   MAX_BACKOFF_SECONDS)

    def _schedule_restart(self) -> None:
        """Start a task that brings the pool back to its size, unless one is already doing so. A worker a pending
        task is still starting is that task's: counted once, or a loss meanwhile would go unreplaced."""
        placed = sum(1 for worker in self._workers if not worker.replacing)
        if self._closing or placed + self._pending_restarts() >= self.size:
            return
        delay = self._backoff()
        task = asyncio.get_running_loop().create_task(self._restart_after(delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if delay and not self._workers and not self._spawning:
            # Nothing will be ready before the backoff ends: the callers waiting now are told at once.
            self._nobody_coming()

    async def _restart_after(self, delay: float) -> None:
        """Start one worker, after `delay`; a start that fails is retried here, with a growing backoff, until a
        process is running (its later death is the reader's to report)."""
        while not self._closing:
            if delay:
                log.warning("restarting a worker after backoff", extra={"pool": self.name, "seconds": delay,
                                                                        "failed_starts": self._failures})
                self._backing_off += 1
                try:
                    await asyncio.sleep(delay)
                finally:
                    self._backing_off -= 1
                if self._closing:
                    return
            self.stats.restarts += 1
            self._spawning += 1
            try:
                if await self._spawn(replacing=True):
                    return
            except Exception as exc:  # e.g. no processes left: try again later
                log.error("could not spawn a worker", extra={"pool": self.name, "error": repr(exc)})
                self._failures += 1
                self._last_failure = f"could not start a {self.name} worker: {type(exc).__name__}"
            finally:
                self._spawning -= 1
            delay = self._backoff()

    def _start_overran(self, worker: WorkerProcess) -> None:
        if worker.state == "starting":
            self._lost(worker, f"did not start within {self.start_timeout:g} s")

    def _on_readable(self, worker: WorkerProcess) -> None:
        try:
            messages = worker.reader.read()
        except (EOFError, OSError):
            self._lost(worker, f"exited (code {worker.process.exitcode})" if worker.state != "starting"
                       else "exited while starting")
            return
        except Exception as exc:  # a message that cannot be read: the pipe is out of step, so the worker goes
            self._lost(worker, f"sent an unreadable message ({type(exc).__name__})")
            return
        for message in messages:
            if worker.state == "starting":
                self._on_start(worker, message)
            elif worker.state == "busy":
                self._on_answer(worker, message)
            else:  # an answer nobody asked for: the pipe is out of step
                self._lost(worker, f"sent {type(message).__name__} unasked")
                return

    def _on_start(self, worker: WorkerProcess, message: object) -> None:
        if isinstance(message, Ready):
            self._cancel_timer(worker)
            self._failures = 0
            worker.state = "idle"
            self._release(worker)
            self._capacity_changed()
            if self._started is not None and not any(w.state == "starting" for w in self._workers):
                self._started.set()
        else:
            self._lost(worker, message.reason if isinstance(message, Failed) else repr(message)[:200])

    def _lost(self, worker: WorkerProcess, reason: str) -> None:
        """A worker is gone (exited, killed, or failed to start): fail its call, reap it, replace it."""
        if worker.state == "gone":
            return
        was_ready = worker.state in ("idle", "busy")
        if worker.state == "starting":
            self._failures += 1
            self._last_failure = f"a {self.name} worker {reason}"
        worker.state = "gone"
        self._cancel_timer(worker)
        self._forget(worker)
        self._work_lost(worker)
        if self._closing:
            return  # stopped on purpose
        log.warning("worker lost", extra={"pool": self.name, "worker": worker.number, "reason": reason})
        if was_ready:
            self._capacity_changed()
        self._schedule_restart()
        if self._started is not None and not any(w.state == "starting" for w in self._workers):
            self._started.set()

    def _retire(self, worker: WorkerProcess) -> None:
        """Stop a worker that has done its share (the sources worker) and start a fresh one."""
        worker.state = "gone"
        with contextlib.suppress(OSError, ValueError):
            worker.conn.send(Stop())
        self._forget(worker, kill=False)
        self._capacity_changed()
        self._schedule_restart()

    def _forget(self, worker: WorkerProcess, *, kill: bool = True) -> None:
        loop = self._loop or asyncio.get_running_loop()
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(worker.conn.fileno())
        self._workers.discard(worker)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        if kill and worker.process.is_alive():
            worker.process.kill()
        worker.conn.close()
        # Reap it (no zombie), off the loop.
        loop.run_in_executor(None, _reap, worker.process)

    def _cancel_timer(self, worker: WorkerProcess) -> None:
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None

    def _capacity_changed(self) -> None:
        if self.on_capacity is not None:
            self.on_capacity(self.ready)

    async def _stop_workers(self, end: float) -> None:
        """Send every worker Stop, wait until `end` (loop time) for them to exit, kill the rest, reap them all."""
        loop = asyncio.get_running_loop()
        for worker in list(self._workers):
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(Stop())
        processes = [w.process for w in self._workers]
        await asyncio.to_thread(_join_all, processes, max(0.5, end - loop.time()))
        for worker in list(self._workers):
            self._cancel_timer(worker)
            worker.state = "gone"
            self._forget(worker)


def _reap(process: BaseProcess) -> None:
    process.join(10)
    if process.is_alive():
        process.kill()
        process.join(2)


def _kill(process: BaseProcess) -> None:
    process.kill()
    process.join(2)


def _join_all(processes: list[BaseProcess], timeout: float) -> None:
    import time

    end = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, end - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(2)
