"""Calls to the engine (and sources) worker processes, from the front's asyncio event loop.

durable_rules is single-threaded per process and its C code can crash or hang, so evaluations run in worker
processes (started and replaced by `supervision.Supervisor`); the front hands each call (as wire bytes) to a free
worker and awaits the answer on the worker's pipe, holding no thread while it waits.

Coalescing: unary Evaluate calls that find every worker busy wait in the pool's queue, and the next worker that
frees takes those at the head together, in one `EvaluateCalls` message: its share of the queue split over the ready
workers, at most `batch_items` (and about `batch_bytes`), and none it is not expected to reach before that call's
deadline. k calls waiting cost one message to a worker instead of k, and, with a log the workers write, one
commit instead of k: the worker decides them all, stores those it records in one transaction, then answers each,
skipping a call whose deadline passed before its turn. Each caller gets its own reply, its own deadline and its own
error. A call that finds a worker idle is sent at once: nothing waits to fill a batch. Calls that need a whole
worker (a stream's batch, a ruleset source) wait in the same queue, in order.

Time: the wait for a free worker and the evaluation are kept apart. A call waits for a worker until its own
deadline (or the pool's `max_wait`); a worker is killed only when *it* has worked longer than the pool's time
limit on one message (a batch of calls is one message), never because a caller's budget ran out. A caller whose deadline
passes while the worker is busy gets DEADLINE_EXCEEDED, and the worker finishes (that answer is dropped) and goes
on. A worker lost (or killed for time) fails each call it had not answered, with the same safe-to-retry error as a
lone call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .frames import write_message
from .protocol import Evaluate, EvaluateCalls, Request, Skipped
from .supervision import Supervisor, WorkerProcess
from .worker import WorkerConfig

log = logging.getLogger("regelmotor.pool")


class PoolError(Exception):
    """A call the pool could not complete. Subclasses say why; none was caused by the request's content."""


class WorkerCrashed(PoolError):
    """The worker died while handling the call."""


class EvaluationTimeLimit(PoolError):
    """The worker ran longer than the pool's time limit and was killed."""


class DeadlineExpired(PoolError):
    """The caller's deadline passed while it waited for a worker or for the answer."""


class Busy(PoolError):
    """No worker became free within the pool's longest wait (the caller set a longer deadline, or none)."""


class NoWorker(PoolError):
    """No worker is running or starting (every start failed; the pool keeps retrying)."""


class PoolClosed(PoolError):
    """The pool is shutting down."""


@dataclass(eq=False)
class _Call:
    """One unary Evaluate call, queued for a worker or sent with others; its answer and its errors are its own."""

    message: Evaluate
    answer: asyncio.Future[object]
    deadline: float | None  # the caller's (loop time)
    busy: bool  # its wait for a worker ends at max_wait, before its deadline: Busy, not DeadlineExpired
    sent: bool = False
    timer: asyncio.TimerHandle | None = None  # at the end of its wait while queued, at its deadline once sent
    timer_at: float = 0.0

    def answered(self, answer: object) -> None:
        if not self.answer.done():
            self.answer.set_result(answer)

    def fail(self, error: PoolError) -> None:
        if not self.answer.done():
            self.answer.set_exception(error)


class WorkerPool(Supervisor):
    def __init__(self, name: str, size: int, config: WorkerConfig, *, time_limit: float,
                 max_wait: float | None = None, start_timeout: float = 120.0, max_calls: int | None = None,
                 lazy: bool = False, on_capacity: Callable[[int], None] | None = None, batch_items: int = 32,
                 batch_bytes: int = 1024 * 1024) -> None:
        super().__init__(name, size, config, start_timeout=start_timeout, lazy=lazy, on_capacity=on_capacity)
        self.time_limit = time_limit
        self.max_wait = max_wait  # longest a call waits for a free worker, whatever its own deadline
        self.max_calls = max_calls  # a worker is retired after this many calls (the sources worker)
        self.batch_items = max(1, batch_items)  # Evaluate calls one message carries to a worker, at most
        self.batch_bytes = batch_bytes  # ... and their request bytes, about at most (one pipe write on the loop)
        # Calls waiting for a worker, in order: Evaluate calls (sent together) and callers that need a whole worker.
        self._queue: deque[_Call | asyncio.Future[WorkerProcess]] = deque()
        self._queued_calls = 0  # the _Calls in _queue (some may have stopped waiting)
        self._evaluation_seconds = 0.0  # recent time a worker took per call of a batch (a moving average)
        # Messages for one worker each, sent when it has finished its current message (`between_messages`).
        self._between: dict[WorkerProcess, tuple[Request, asyncio.Future[object]]] = {}

    def batches_in_flight(self) -> dict[int, int]:
        """Each worker working on a batch of Evaluate calls: its pid, and the calls of the batch not yet answered."""
        return {worker.process.pid: len(worker.batch) for worker in self._workers
                if worker.batch and worker.process.pid is not None}

    # -- the supervisor's hooks ------------------------------------------------------------------------

    def _work_lost(self, worker: WorkerProcess) -> None:
        lost = WorkerCrashed("the worker stopped while handling the call; it is safe to retry")
        if worker.answer is not None and not worker.answer.done() and not worker.abandoned:
            worker.answer.set_exception(lost)
        for call in worker.batch or ():  # every call of its batch not yet answered
            call.fail(lost)
        worker.answer = None
        worker.batch = None
        _, waiting = self._between.pop(worker, (None, None))
        if waiting is not None and not waiting.done():
            waiting.set_exception(WorkerCrashed("the worker stopped before it took the message"))

    def _nobody_coming(self) -> None:
        self._fail_waiters(NoWorker(self._last_failure or f"no {self.name} worker is running"))

    # -- calls ---------------------------------------------------------------------------------------

    def _fail_waiters(self, error: PoolError) -> None:
        while self._queue:
            waiter = self._queue.popleft()
            if isinstance(waiter, _Call):
                waiter.fail(error)
            elif not waiter.done():
                waiter.set_exception(error)
        self._queued_calls = 0

    def _on_answer(self, worker: WorkerProcess, message: object) -> None:
        batch = worker.batch
        if batch:  # the next call of its batch is answered; the worker goes on with the rest
            call = batch.popleft()
            now = self._clock()
            if isinstance(message, Skipped):
                call.fail(DeadlineExpired("the deadline passed before the worker came to the call"))
            else:
                call.answered(message)
                self._evaluation_seconds += (now - worker.progress - self._evaluation_seconds) / 8
            worker.calls += 1
            if batch:
                worker.progress = now  # the time limit counts from here for the next one
                return
            worker.batch = None
        else:
            if worker.answer is not None and not worker.answer.done():
                worker.answer.set_result(message)
            worker.answer = None
            worker.abandoned = False
            worker.calls += 1
        self._cancel_timer(worker)
        self.stats.calls_by_worker[worker.number] = worker.calls
        if self.max_calls is not None and worker.calls >= self.max_calls:
            self._retire(worker)
        else:
            worker.state = "idle"
            self._release(worker)

    def _release(self, worker: WorkerProcess) -> None:
        """Give a free worker to what has waited longest: a run of queued Evaluate calls, sent to it together, or
        a caller that needs a whole worker; else it waits idle. A message meant for this worker goes first."""
        if worker in self._between:
            self._send_between(worker)
            return
        queue = self._queue
        while queue:
            head = queue[0]
            if isinstance(head, _Call):
                calls = self._take_calls()
                if calls:
                    self._send_calls(worker, calls)
                    return
                continue
            queue.popleft()
            if not head.done():
                head.set_result(worker)
                return
        self._idle.append(worker)

    def _take_calls(self) -> list[_Call]:
        """The Evaluate calls at the head of the queue that go to the next free worker: their share of the queue
        split over the ready workers (so one worker does not take all while another frees), at most
        `batch_items`, about `batch_bytes` of requests, and no call the worker is not expected to finish before
        its deadline (at the recent time per evaluation), which may find a worker that frees sooner. Calls that
        stopped waiting are dropped; calls whose deadline has passed are told so."""
        limit = min(self.batch_items, -(-self._queued_calls // max(1, self.ready)))
        now = self._clock()
        calls: list[_Call] = []
        size = 0
        queue = self._queue
        while queue and len(calls) < max(1, limit):
            call = queue[0]
            if not isinstance(call, _Call) or (calls and size + len(call.message.request) > self.batch_bytes):
                break
            if calls and call.deadline is not None and (
                    call.deadline < now + (len(calls) + 1) * self._evaluation_seconds):
                break
            queue.popleft()
            self._queued_calls -= 1
            if call.answer.done():
                continue
            if call.deadline is not None and now >= call.deadline:
                call.fail(DeadlineExpired("the deadline passed before a worker was free"))
                continue
            calls.append(call)
            size += len(call.message.request)
        return calls

    def _send_calls(self, worker: WorkerProcess, calls: list[_Call]) -> None:
        """Send Evaluate calls to `worker` as one message (a lone call as itself); a pipe that is closed fails
        them as a lost worker's calls (safe to retry)."""
        worker.state = "busy"
        worker.batch = deque(calls)
        for call in calls:
            call.sent = True
        message: Request
        if len(calls) == 1:
            message = calls[0].message
        else:
            message = EvaluateCalls(tuple((call.message.request, call.message.traceparent, call.message.caller,
                                           call.deadline) for call in calls))
            self.stats.batches += 1
        try:
            write_message(worker.conn.fileno(), message)
        except (OSError, ValueError):
            self._lost(worker, "its pipe is closed")
            return
        self._start_clock(worker)

    # -- a message for one worker --------------------------------------------------------------------

    def behind(self, config: WorkerConfig) -> tuple[list[WorkerProcess], int]:
        """The ready workers that serve another config than `config`, and how many are starting with another."""
        stale = [w for w in self._workers if w.config is not config]
        return [w for w in stale if w.state in ("idle", "busy")], sum(1 for w in stale if w.state == "starting")

    async def between_messages(self, worker: WorkerProcess, message: Request) -> object:
        """Send `message` to `worker` once it has finished the message it is working on (at once when it is idle),
        before it takes another call, and return its answer. Raises WorkerCrashed when the worker is lost first,
        EvaluationTimeLimit when it works on the message longer than the pool's time limit."""
        answer: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._between[worker] = (message, answer)
        if worker.state == "idle":
            with contextlib.suppress(ValueError):
                self._idle.remove(worker)
            self._send_between(worker)
        elif worker.state not in ("busy", "starting"):
            self._work_lost(worker)
        return await answer

    def _send_between(self, worker: WorkerProcess) -> None:
        self._send_whole(worker, *self._between.pop(worker))

    def _send_whole(self, worker: WorkerProcess, message: Request, answer: asyncio.Future[object]) -> bool:
        """Send `worker` a message that has it whole, its answer to go to `answer`; False when its pipe is closed
        (the worker is then lost, and `answer` told so)."""
        worker.answer = answer
        worker.state = "busy"
        try:
            write_message(worker.conn.fileno(), message)
        except (OSError, ValueError):
            self._lost(worker, "its pipe is closed")
            return False
        self._start_clock(worker)
        return True

    def _start_clock(self, worker: WorkerProcess, start: float | None = None) -> None:
        """Watch the worker's time limit from `start` (now: a message was sent). One timer a message: each answer
        of a batch only notes the time (`progress`), and the timer starts again from there when it goes off."""
        loop = self._timers()
        worker.clock_from = worker.progress = loop.time() if start is None else start
        worker.timer = loop.call_at(worker.clock_from + self.time_limit, self._overran, worker)

    def _idle_worker(self) -> WorkerProcess | None:
        while self._idle:
            worker = self._idle.popleft()
            if worker.state != "idle":
                continue
            if worker.process.is_alive():
                return worker
            self._lost(worker, "died while idle")  # no call is lost: take the next one
        return None

    def _may_wait(self) -> None:
        """Raise when a call that finds no idle worker cannot wait for one (closing, or none will come soon)."""
        if self._closing:
            raise PoolClosed("the service is shutting down")
        if not self._workers and not self._pending_restarts() and self.lazy:
            # A lazy pool (sources) starts its worker on first use, in a task of its own: a caller that goes
            # away meanwhile leaves nothing half started, and concurrent first calls start one process.
            self._loop = asyncio.get_running_loop()
            self._schedule_restart()
        elif not self._workers and self._pending_restarts() <= self._backing_off:
            # None running or starting, only restarts waiting out their backoff: say so now, so the caller can
            # go to another instance, instead of waiting out its deadline.
            raise NoWorker(self._last_failure or f"no {self.name} worker is running")

    async def _acquire(self, deadline: float | None, expiry: PoolError) -> WorkerProcess:
        worker = self._idle_worker()
        if worker is not None:
            return worker
        self._may_wait()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[WorkerProcess] = loop.create_future()
        self._queue.append(waiter)
        timer = None
        if deadline is not None:
            timer = loop.call_at(deadline, _expire, waiter, expiry)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())
            raise
        finally:
            if timer is not None:
                timer.cancel()

    async def call(self, message: Request, timeout: float | None) -> object:
        """Send `message` to a free worker and return its answer (a `Failed` for a request it could not
        handle). An `Evaluate` may share a message with other callers' (see the module docstring); its answer is
        its own all the same. Raises a PoolError when the call could not be completed."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = None if timeout is None else now + max(0.0, timeout)
        wait_until = deadline
        busy = self.max_wait is not None and (deadline is None or now + self.max_wait < deadline)
        if busy:
            assert self.max_wait is not None
            wait_until = now + self.max_wait
        if isinstance(message, Evaluate):
            return await self._evaluate(message, deadline, wait_until, busy)
        expiry: PoolError = (Busy(f"no {self.name} worker became free within {self.max_wait:g} s; retry later") if busy
                             else DeadlineExpired("no worker became free before the deadline"))
        worker = await self._acquire(wait_until, expiry)
        if deadline is not None and loop.time() >= deadline:  # nobody would read the answer: do not send it
            self._release(worker)
            raise DeadlineExpired("the deadline passed before a worker was free")
        answer: asyncio.Future[object] = loop.create_future()
        if not self._send_whole(worker, message, answer):
            raise WorkerCrashed("the worker stopped before it took the call; it is safe to retry")
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            return await asyncio.wait_for(asyncio.shield(answer), remaining)
        except TimeoutError:
            worker.abandoned = True  # it finishes and goes back to work; only this caller gives up
            raise DeadlineExpired("the deadline passed before the answer was ready") from None
        except asyncio.CancelledError:
            worker.abandoned = True
            raise

    async def _evaluate(self, message: Evaluate, deadline: float | None, wait_until: float | None,
                        busy: bool) -> object:
        """One Evaluate call: sent at once to an idle worker, else queued to go with the next free worker's batch.
        One timer per call watches its wait and then its deadline."""
        loop = asyncio.get_running_loop()
        call = _Call(message, loop.create_future(), deadline, busy)
        worker = self._idle_worker()
        if worker is not None:
            self._send_calls(worker, [call])
            timer_at = deadline
        else:
            self._may_wait()
            self._queue.append(call)
            self._queued_calls += 1
            timer_at = wait_until
        if timer_at is not None and not call.answer.done():
            call.timer_at = timer_at
            call.timer = loop.call_at(timer_at, self._call_timer, call)
        try:
            return await call.answer
        finally:  # a call that stopped waiting is dropped from the queue, or its answer from its batch
            if call.timer is not None:
                call.timer.cancel()

    def _call_timer(self, call: _Call) -> None:
        call.timer = None
        if call.answer.done():
            return
        if not call.sent:
            call.fail(Busy(f"no {self.name} worker became free within {self.max_wait:g} s; retry later") if call.busy
                      else DeadlineExpired("no worker became free before the deadline"))
        elif call.deadline is not None and call.timer_at >= call.deadline:
            # Only this caller gives up; the worker finishes the batch, and the others get their answers.
            call.fail(DeadlineExpired("the deadline passed before the answer was ready"))
        elif call.deadline is not None:  # it waited up to max_wait, was sent, and has time left
            call.timer_at = call.deadline
            call.timer = self._timers().call_at(call.deadline, self._call_timer, call)

    def _overran(self, worker: WorkerProcess) -> None:
        if worker.state != "busy":
            return
        if worker.progress > worker.clock_from:  # it answered a call of its batch since: the limit counts from then
            self._start_clock(worker, worker.progress)
            return
        self.stats.killed_for_time += 1
        error = EvaluationTimeLimit(f"the evaluation ran longer than {self.time_limit:g} s and was stopped")
        if worker.answer is not None and not worker.answer.done() and not worker.abandoned:
            worker.answer.set_exception(error)
        if worker.batch:  # the call it was on; the calls behind it were not begun, and are lost with the worker
            worker.batch.popleft().fail(error)
        self._lost(worker, f"ran longer than {self.time_limit:g} s")

    def _timers(self) -> asyncio.AbstractEventLoop:
        return self._loop or asyncio.get_running_loop()

    def _clock(self) -> float:
        return self._timers().time()

    # -- shutting down -------------------------------------------------------------------------------

    async def close(self, timeout: float = 5.0) -> None:
        """Stop taking calls, let busy workers finish within `timeout`, stop every worker and reap it."""
        self._closing = True
        log.info("pool stopping", extra={"pool": self.name, "calls": sum(self.stats.calls_by_worker.values()),
                                         "batches": self.stats.batches, "restarts": self.stats.restarts,
                                         "killed_for_time": self.stats.killed_for_time})
        restarts = list(self._tasks)
        for task in restarts:
            task.cancel()
        await asyncio.gather(*restarts, return_exceptions=True)  # a cancelled start ends what it started
        self._fail_waiters(PoolClosed("the service is shutting down"))
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while any(w.state == "busy" for w in self._workers) and loop.time() < end:
            await asyncio.sleep(0.02)
        await self._stop_workers(end)


def _expire(waiter: asyncio.Future[WorkerProcess], error: PoolError) -> None:
    if not waiter.done():
        waiter.set_exception(error)
