"""The messages between the gRPC front and its worker processes.

Every request a worker can get, and every answer it gives, is a dataclass here. Each side dispatches on the type
in one place: the worker in `regelmotor.server.worker.Worker.handle`, which answers an unknown message with
`Failed`, never treating it as some default kind; the front in `regelmotor.server.servicers.ask`, which takes
an answer only when `answers` says it is the kind its request asks for, and a `Failed` in its place otherwise.
A new kind of request is a dataclass in `Request`, a case in `Worker.handle` and a case in `answers`.
Messages cross a multiprocessing pipe, so they hold only plain data (bytes, str, tuples, dataclasses of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regelmotor.core.impact import ImpactTally
    from regelmotor.core.repository import RulesetSnapshot
    from regelmotor.store import DecisionRecord, ListFilter


@dataclass(frozen=True)
class Evaluate:
    """One EvaluateRequest (wire bytes). `caller` is given when the decision is to be recorded; `replay`: a recorded
    decision evaluated again (AuditService), on its pinned version even if that was retired since."""

    request: bytes
    traceparent: str | None = None
    caller: str | None = None
    replay: bool = False


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
class PrepareImpact:
    """A candidate version's source for an impact analysis: parse and compile it (in the impact sandbox)."""

    source: str


@dataclass(frozen=True)
class AnalyseChunk:
    """A part of an impact analysis's window: the logged decisions matching `filters` from `first_seq` to
    `last_seq` (inclusive), read from the log by the impact worker itself and evaluated again under the candidate
    `source`; examples wanted: `max_examples` per outcome field, none for the fields in `filled` (found already
    in earlier chunks)."""

    source: str
    filters: ListFilter
    first_seq: int
    last_seq: int
    max_examples: int
    filled: frozenset[str] = frozenset()
    known_at: str | None = None  # "before" is what the versions known then decide, not the outcome logged


@dataclass(frozen=True)
class ProposeSource:
    """A ProposeRulesetRequest (wire bytes): check a proposed version - its source, its status and its cases - and
    read what the store keeps of it. The front stores it only when the answer says it is accepted."""

    request: bytes


@dataclass(frozen=True)
class Reload:
    """Serve `snapshot` from the next message on (hot reload, regelmotor.server.reload): an engine worker loads and
    compiles every version of it, and switches only when all did; else it goes on with the versions it served.
    A worker handles one message at a time, so a call it was working on finishes on the versions it began with."""

    snapshot: RulesetSnapshot


@dataclass(frozen=True)
class Stop:
    """Finish and exit."""


Request = (Evaluate | EvaluateBatch | EvaluateCalls | ValidateSource | TestSource | DiffSources | PrepareImpact
           | AnalyseChunk | ProposeSource | Reload | Stop)


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


@dataclass(frozen=True)
class ImpactPrepared:
    """The answer to PrepareImpact: the candidate's name, version and sha256, or the problems of its source
    (line, column, message)."""

    name: str = ""
    version: str = ""
    sha256: str = ""
    diagnostics: tuple[tuple[int, int, str], ...] = ()


@dataclass(frozen=True)
class ImpactPart:
    """The answer to AnalyseChunk: the tally of its decisions."""

    tally: ImpactTally


@dataclass(frozen=True)
class Reloaded:
    """The answer to Reload: the number of versions now served, or, when `problem` is given, why the snapshot
    was not taken (the worker serves what it served before). `problem` names files and lines, never source text."""

    versions: int = 0
    problem: str = ""


@dataclass(frozen=True)
class Summary:
    """What the front may log and measure about an evaluation: ids and codes, never facts."""

    code: int
    ruleset: str = ""
    version: str = ""
    # The ruleset's declared headline outcome (`headline:` in its file) and its value as text; "" for none.
    headline_outcome: str = ""
    headline: str = ""
    decision_id: str = ""
    request_id: str = ""
    trace_id: str = ""
    log_failed: bool = False  # the decision log could not store the decision (so it was not answered)

    def headline_attributes(self) -> list[tuple[str, str]]:
        """The span attributes of the headline: its value, and the outcome it is the value of."""
        if not self.headline:
            return []
        return [("regelmotor.headline", self.headline), ("regelmotor.headline_outcome", self.headline_outcome)]


@dataclass(frozen=True)
class Reply:
    """The answer to an Evaluate (and to each item of EvaluateBatch and EvaluateCalls): a decision or an error."""

    summary: Summary
    decision: bytes | None = None  # a serialised Decision (the one stored first, when a request_id is retried)
    error: bytes | None = None  # a serialised ErrorResult
    # Only when the front stores the decision (`EngineRecording.hands_back`): the record to store, its large
    # fields' canonical text already made here (`DecisionRecord.encoded`), in parallel rather than by the
    # front's single log writer.
    record: DecisionRecord | None = None


def answers(request: Request, answer: object) -> bool:
    """Whether `answer` is the kind of answer `request` asks for: a Reply to an Evaluate, one Reply per item of an
    EvaluateBatch (in order), a SourceReply to a caller's source. False for any other pair, and for a request the
    front never sends to wait for one answer (EvaluateCalls, whose items the pool answers one by one, and Stop)."""
    match request:
        case Evaluate():
            return isinstance(answer, Reply)
        case EvaluateBatch(items=items):
            return (isinstance(answer, list) and len(answer) == len(items)
                    and all(isinstance(reply, Reply) for reply in answer))
        case ValidateSource() | TestSource() | DiffSources() | ProposeSource():
            return isinstance(answer, SourceReply)
        case PrepareImpact():
            return isinstance(answer, ImpactPrepared)
        case AnalyseChunk():
            return isinstance(answer, ImpactPart)
        case Reload():
            return isinstance(answer, Reloaded)
        case _:
            return False
