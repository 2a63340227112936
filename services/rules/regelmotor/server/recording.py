"""Recording decisions in the decision log before they are answered."""

from __future__ import annotations

import asyncio

from regelmotor.store import GroupCommitter, answer_for

from .handler import Reply
from .telemetry import CallContext
from .wire import STREAM_DECISION_TAG as _DECISION_FIELD
from .wire import STREAM_ERROR_TAG as _ERROR_FIELD
from .wire import length_delimited

CALLER_METADATA = "regelmotor-caller"


def caller_of(context: CallContext) -> str:
    """The calling system, as it names itself in the `regelmotor-caller` metadata."""
    for key, value in context.invocation_metadata() or ():
        if key == CALLER_METADATA and isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return "anonymous"


class Recorder:
    def __init__(self, committer: GroupCommitter) -> None:
        self.committer = committer

    async def record(self, reply: Reply) -> bytes:
        """Store the decision and return the bytes to answer with: the stored ones when the caller has
        sent this request before under this request_id (a retry gets the same decision, and no second
        record). Raises what the log raised - RequestIdConflict when the request_id was used for a different
        request; `errors.recording_failure` says what to answer."""
        assert reply.record is not None and reply.decision is not None
        stored = await asyncio.wrap_future(self.committer.submit_future(reply.record))
        return answer_for(reply.record.decision_id, reply.decision, stored.decision_id, stored.response)


def stream_item(index: int, request_id: str, decision: bytes | None = None, error: bytes | None = None) -> bytes:
    """An EvaluateStreamResponse built from already serialised parts: protobuf messages concatenate,
    so the decision bytes need not be parsed and serialised again."""
    from regelmotor_api.v1 import decision_pb2 as pb

    head = pb.EvaluateStreamResponse(index=index, request_id=request_id).SerializeToString()
    body = decision if decision is not None else error
    assert body is not None
    return head + length_delimited(_DECISION_FIELD if decision is not None else _ERROR_FIELD, body)
