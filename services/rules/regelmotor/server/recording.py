"""Recording decisions in the decision log before they are answered: which process writes, chosen once.

At start the service makes one `RecordingPlan` from its log (`RecordingPlan.for_log`), by what the log says
of itself (`DecisionLog.shared_location`), as measured (BENCHMARKS.md, 2026-12-02, evening):
- `Writer.WORKERS` (SQLite): each engine worker opens the log itself and appends its decisions (a stream's
  batch in one transaction) before it replies, so the front never touches the log on the way;
- `Writer.FRONT` (PostgreSQL, which charges per transaction): the engines hand each decision back with its
  record, large fields already in their canonical text, and the front's group committer puts concurrent
  decisions from every worker into one transaction;
- `Writer.NONE`: no decision log.
The plan is plain data and goes to the engine workers in their `WorkerConfig`. Each side makes its part from
it once - an engine its `EngineRecording` (`plan.engine_side`), the front its `FrontRecording`
(`plan.front_side`) - and asks that part what to do; nothing asks what kind of log it is.

A decision is recorded only when it has a caller: a replay (caller None) never is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

from regelmotor.store import (
    DecisionLog,
    DecisionRecord,
    GroupCommitter,
    StoredRecord,
    answer_for,
    append_each,
    open_log,
)

from .caller import current
from .protowire import length_delimited
from .telemetry import CallContext
from .wire import STREAM_DECISION_TAG as _DECISION_FIELD
from .wire import STREAM_ERROR_TAG as _ERROR_FIELD

CALLER_METADATA = "regelmotor-caller"


def caller_of(context: CallContext) -> str:
    """The calling system: with authentication on, as its verified token names it (its metadata cannot change
    that); with it off, as it names itself in the `regelmotor-caller` metadata."""
    identity = current()
    if identity is not None:
        return identity.caller
    certified = certified_name(context)
    if certified is not None:  # mutual TLS without a token: the certificate proves who calls
        return certified
    for key, value in context.invocation_metadata() or ():
        if key == CALLER_METADATA and isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return "anonymous"


def certified_name(context: CallContext) -> str | None:
    """The client certificate's name under mutual TLS (its DNS name, else its subject's common name), as gRPC
    verified it; None without a client certificate."""
    auth_context = getattr(context, "auth_context", None)
    found = auth_context() if callable(auth_context) else {}
    for key in ("x509_subject_alternative_name", "x509_common_name", "x509_subject"):
        values = found.get(key) or []
        if values:
            value = values[0]
            name = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            return f"cert:{name[:160]}"
    return None


class Writer(StrEnum):
    """The process that appends decisions to the log."""

    NONE = "none"  # no decision log
    WORKERS = "workers"  # each engine worker, before it replies
    FRONT = "front"  # the front's group committer


@dataclass(frozen=True)
class RecordingPlan:
    """Who writes the decision log (see the module docstring). Plain data, sent to the engine workers."""

    writer: Writer = Writer.NONE
    location: str | None = None  # Writer.WORKERS: where each engine worker opens the log

    def __post_init__(self) -> None:
        if (self.writer is Writer.WORKERS) != (self.location is not None):
            raise ValueError("a plan names the log's location exactly when the workers write it")

    @classmethod
    def for_log(cls, log: DecisionLog | None) -> RecordingPlan:
        if log is None:
            return cls(Writer.NONE)
        location = log.shared_location()
        return cls(Writer.FRONT) if location is None else cls(Writer.WORKERS, location)

    def engine_side(self, log: DecisionLog | None = None) -> EngineRecording:
        """An engine's part. `log`: the log already open in this process (the inline engine of a server
        without workers shares the service's, and does not close it); else a worker opens its own."""
        if self.writer is Writer.FRONT:
            return HandedToFront()
        if self.writer is Writer.WORKERS:
            assert self.location is not None
            return AppendedHere(log if log is not None else open_log(self.location), owned=log is None)
        return EngineRecording()

    def front_side(self, log: DecisionLog | None) -> FrontRecording:
        """The front's part: a group committer on `log` when the front writes it."""
        if self.writer is Writer.FRONT:
            if log is None:
                raise ValueError("the front writes the decision log, but there is none")
            return FrontRecording(GroupCommitter(log))
        return FrontRecording(None)


class EngineRecording:
    """What an engine does with a decision it is to record. This one records nothing (no decision log)."""

    records = False  # a decision with a caller gets a record
    hands_back = False  # ... which goes back to the front with the reply, its large fields' text made here

    def append(self, records: list[DecisionRecord]) -> list[StoredRecord | Exception]:
        """Store `records` here, in one transaction, before replying: each as stored, or what kept it out."""
        raise RuntimeError("this engine does not store decisions itself")

    def close(self) -> None:
        """Release what this engine opened for recording."""


class HandedToFront(EngineRecording):
    records = True
    hands_back = True


class AppendedHere(EngineRecording):
    records = True

    def __init__(self, log: DecisionLog, *, owned: bool) -> None:
        self.log = log
        self.owned = owned  # opened for this engine, so closed with it

    def append(self, records: list[DecisionRecord]) -> list[StoredRecord | Exception]:
        return append_each(self.log, records)

    def close(self) -> None:
        if self.owned:
            self.log.close()


class FrontRecording:
    """The front's part: stores the records the engines hand back (`Writer.FRONT`), through a group committer."""

    def __init__(self, committer: GroupCommitter | None) -> None:
        self.committer = committer

    async def record(self, record: DecisionRecord, answer: bytes) -> bytes:
        """Store the decision and return the bytes to answer with: the stored ones when the caller has
        sent this request before under this request_id (a retry gets the same decision, and no second
        record). Raises what the log raised - RequestIdConflict when the request_id was used for a different
        request; `errors.recording_failure` says what to answer."""
        if self.committer is None:
            raise RuntimeError("an engine handed back a record, but the front does not write the decision log")
        # Shielded: a caller that goes away (cancel, deadline, shutdown) must not cancel the store under way.
        stored = await asyncio.shield(asyncio.wrap_future(self.committer.submit_future(record)))
        return answer_for(record.decision_id, answer, stored.decision_id, stored.response)

    def close(self, timeout: float | None = None) -> None:
        """Commit what was submitted, then stop the committer (waiting at most `timeout` seconds)."""
        if self.committer is not None:
            self.committer.close(timeout)


def stream_item(index: int, request_id: str, decision: bytes | None = None, error: bytes | None = None) -> bytes:
    """An EvaluateStreamResponse built from already serialised parts: protobuf messages concatenate,
    so the decision bytes need not be parsed and serialised again."""
    from regelmotor_api.v1 import decision_pb2 as pb

    head = pb.EvaluateStreamResponse(index=index, request_id=request_id).SerializeToString()
    body = decision if decision is not None else error
    assert body is not None
    return head + length_delimited(_DECISION_FIELD if decision is not None else _ERROR_FIELD, body)
