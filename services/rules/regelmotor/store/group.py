"""Group commit: many threads submit one record each; one background thread stores everything pending in
one transaction and then wakes each submitter with its stored record.

While one transaction commits (and fsyncs), new submissions queue up and go into the next one, so the
number of commits per second stays bounded by the disk while throughput grows with concurrency. `submit`
returns only after the transaction holding its record has committed: a caller that answers with the
returned record never answers before its decision is stored.

Failures: when the transaction fails, every submitter of that group gets the exception. When it failed
because of one record (`RecordRejected`: not plain JSON, a decision_id already stored, or a request_id
already stored for a different request), the group is retried one record per transaction, so only the
offending submitter sees the error.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from concurrent.futures import Future
from types import TracebackType

from .base import DecisionLog, append_each
from .record import DecisionRecord, StoredRecord


class _Pending:
    """One submission. Its lock is taken at creation and released once it is answered: a bare lock wakes
    the one waiting submitter for a fraction of what an Event (a Condition over a lock) costs, and the
    committer wakes every submitter of every group."""

    __slots__ = ("_answered", "error", "future", "record", "result")

    def __init__(self, record: DecisionRecord, future: Future[StoredRecord] | None = None) -> None:
        self.record = record
        self._answered = threading.Lock()
        self._answered.acquire()
        self.result: StoredRecord | None = None
        self.error: BaseException | None = None
        self.future = future  # answered too, for a submitter that does not block (an asyncio front)

    @property
    def is_answered(self) -> bool:
        return self.result is not None or self.error is not None

    def finish(self, result: StoredRecord) -> None:
        self.result = result
        self._answered.release()
        if self.future is not None and not self.future.done():  # a submitter that stopped waiting cancelled it
            self.future.set_result(result)

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._answered.release()
        if self.future is not None and not self.future.done():
            self.future.set_exception(error)

    def wait(self, timeout: float | None) -> bool:
        """True once answered; False if `timeout` (seconds) passed first."""
        return self._answered.acquire(timeout=-1 if timeout is None else max(0.0, timeout))


class GroupCommitter:
    """Appends submitted records to `log` in groups (see the module docstring).

    max_batch bounds the records per transaction. linger (seconds, default 0) lets the committer wait
    that long for more submissions before it commits a group that is not full; with 0 it commits at once,
    and groups form naturally while the previous commit is under way."""

    def __init__(self, log: DecisionLog, *, max_batch: int = 256, linger: float = 0.0) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if linger < 0:
            raise ValueError("linger must not be negative")
        self.log = log
        self.max_batch = max_batch
        self.linger = linger
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._closed = False
        self._transactions = 0
        self._records = 0
        self._thread = threading.Thread(target=self._run, name="decision-log-group-commit", daemon=True)
        self._thread.start()

    @property
    def transactions(self) -> int:
        """Groups committed so far (a group whose records had to be appended one by one counts once)."""
        with self._cond:
            return self._transactions

    @property
    def records(self) -> int:
        """Submissions answered from committed transactions so far."""
        with self._cond:
            return self._records

    def submit(self, record: DecisionRecord, timeout: float | None = None) -> StoredRecord:
        """Store `record` and return it as stored (or the record already stored for its caller and
        request_id). Blocks until committed. On timeout raises TimeoutError - the record may still be
        committed later, so the caller must not assume it was not."""
        pending = _Pending(record)
        with self._cond:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            self._queue.append(pending)
            self._cond.notify_all()
        if not pending.wait(timeout):
            raise TimeoutError(f"decision {record.decision_id} was not committed within {timeout} s")
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def submit_future(self, record: DecisionRecord) -> Future[StoredRecord]:
        """Like `submit`, without blocking: the future is answered once the record's transaction has committed
        (`asyncio.wrap_future` awaits it from an event loop)."""
        future: Future[StoredRecord] = Future()
        # Running: a submitter that stops waiting cannot cancel it; the record is stored all the same.
        future.set_running_or_notify_cancel()
        pending = _Pending(record, future)
        with self._cond:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            self._queue.append(pending)
            self._cond.notify_all()
        assert pending.future is not None
        return pending.future

    def close(self, timeout: float | None = None) -> None:
        """Stop taking submissions, commit those already taken, and stop the background thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def __enter__(self) -> GroupCommitter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _take(self) -> list[_Pending] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None  # closed and drained
            if self.linger > 0:
                deadline = time.monotonic() + self.linger
                while len(self._queue) < self.max_batch and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            return [self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))]

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._commit(batch)
            except BaseException as exc:  # never leave a submitter waiting, and never end this thread
                for pending in batch:
                    if not pending.is_answered:
                        with contextlib.suppress(Exception):
                            pending.fail(exc)

    def _commit(self, batch: list[_Pending]) -> None:
        results = append_each(self.log, [pending.record for pending in batch])
        stored = sum(1 for result in results if isinstance(result, StoredRecord))
        with self._cond:
            self._transactions += 1 if stored else 0
            self._records += stored
        for pending, result in zip(batch, results, strict=True):
            if isinstance(result, StoredRecord):
                pending.finish(result)
            else:
                pending.fail(result)
