"""The messages between the gRPC front and its worker processes.

Every request a worker can get is a dataclass here, and each side dispatches on the type in one place
(`regelmotor.server.worker.Worker.handle` and the pool's callers); an unknown message is answered with
`Failed`, never treated as some default kind. Messages cross a multiprocessing pipe, so they hold only
plain data (bytes, str, tuples).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Evaluate:
    """One EvaluateRequest (wire bytes). `caller` is given when the decision is to be recorded."""

    request: bytes
    traceparent: str | None = None
    caller: str | None = None


@dataclass(frozen=True)
class EvaluateBatch:
    """Several EvaluateRequests of one stream, answered in order (and recorded in one transaction)."""

    items: tuple[tuple[int, bytes], ...]
    traceparent: str | None = None
    caller: str | None = None


# An item of EvaluateCalls: request bytes, traceparent, caller, deadline.
CallItem = tuple[bytes, str | None, str | None, float | None]


@dataclass(frozen=True)
class EvaluateCalls:
    """Concurrent unary Evaluate calls that the pool sends to one worker together. Each item: the request's wire
    bytes, its traceparent, its caller, and the caller's deadline (`time.monotonic()`, which all processes of the
    machine share; None: none). The worker answers every item, in order: a Reply, or `Skipped` when the item's
    deadline passed before its turn. Each item is decided as if it had come alone; those it records, it stores in
    one transaction before it answers any."""

    items: tuple[CallItem, ...]


@dataclass(frozen=True)
class ValidateSource:
    """A ValidateRulesetRequest (wire bytes): parse, check and compile a caller's ruleset source."""

    request: bytes


@dataclass(frozen=True)
class TestSource:
    """A TestRulesetRequest (wire bytes): a caller's ruleset source and its cases."""

    request: bytes


@dataclass(frozen=True)
class DiffSources:
    """A DiffRulesetsRequest (wire bytes) that carries two sources."""

    request: bytes


@dataclass(frozen=True)
class Stop:
    """Finish and exit."""


Request = Evaluate | EvaluateBatch | EvaluateCalls | ValidateSource | TestSource | DiffSources | Stop


@dataclass(frozen=True)
class Ready:
    """Sent once by a worker when it can take requests."""

    pid: int


@dataclass(frozen=True)
class Skipped:
    """The answer to an item of EvaluateCalls whose caller's deadline had passed when its turn came: not
    evaluated, and nobody waits for it."""


@dataclass(frozen=True)
class Failed:
    """A request the worker could not handle: an unknown kind, or a fault of ours (never the caller's input,
    which gets its own error answer). `reason` is safe to log: it holds no facts."""

    reason: str


@dataclass(frozen=True)
class SourceReply:
    """The answer to a sources request: the response message's bytes, or an ErrorResult's."""

    response: bytes = b""
    error: bytes = b""
