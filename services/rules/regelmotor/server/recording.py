"""Recording decisions in the decision log before they are answered."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from regelmotor.store.group import GroupCommitter
from regelmotor.store.record import DecisionRecord

from .handler import Reply
from .packing import unpack_response
from .wire import STREAM_DECISION_TAG as _DECISION_FIELD
from .wire import STREAM_ERROR_TAG as _ERROR_FIELD
from .wire import length_delimited

CALLER_METADATA = "regelmotor-caller"


def caller_of(context: grpc.ServicerContext) -> str:
    """The calling system, as it names itself in the `regelmotor-caller` metadata."""
    for key, value in context.invocation_metadata():
        if key == CALLER_METADATA and isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return "anonymous"


class Recorder:
    def __init__(self, committer: GroupCommitter) -> None:
        self.committer = committer

    def record(self, reply: Reply, caller: str) -> bytes:
        """Store the decision and return the bytes to answer with: the stored ones when the caller has
        sent this request_id before (a retry gets the same decision, and no second record)."""
        decision = reply.record
        assert decision is not None and reply.stored is not None and reply.decision is not None
        record = DecisionRecord(
            decision_id=decision["decision_id"], recorded_at=datetime.now(UTC), caller=caller,
            request_id=reply.summary.request_id, ruleset=decision["ruleset"], version=decision["version"],
            ruleset_sha256=decision["ruleset_sha256"], engine_version=decision["engine_version"],
            as_of=decision["as_of"], subject=reply.subject, facts=decision["facts"], outcome=decision["outcome"],
            decision=decision, response=reply.stored, trace_id=reply.summary.trace_id, encoded=reply.encoded,
        )
        stored = self.committer.submit(record)
        # A retried request_id gets the decision stored the first time, unpacked; a new one its own answer.
        return reply.decision if stored.decision_id == record.decision_id else unpack_response(stored.response)


def stream_item(index: int, request_id: str, decision: bytes | None = None, error: bytes | None = None) -> bytes:
    """An EvaluateStreamResponse built from already serialised parts: protobuf messages concatenate,
    so the decision bytes need not be parsed and serialised again."""
    from regelmotor.v1 import decision_pb2 as pb

    head = pb.EvaluateStreamResponse(index=index, request_id=request_id).SerializeToString()
    body = decision if decision is not None else error
    assert body is not None
    return head + length_delimited(_DECISION_FIELD if decision is not None else _ERROR_FIELD, body)
