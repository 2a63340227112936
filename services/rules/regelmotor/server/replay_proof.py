"""What a replay proves about a recorded decision: that evaluating the recorded facts again on the recorded
ruleset version rebuilds exactly the bytes that were answered, whatever explanation level they were answered at.

The decision log keeps, for each decision, the facts as used, as_of, the version and its sha256, the exact answer
(compressed) and - since the explanation levels - that answer's level and sha256 in the record's decision JSON
(`handler._record`). A replay evaluates the facts again at the FULL level, puts the recorded ids back on that
answer (`answer_levels.with_ids`): that is the full explanation tree of the recorded decision. Cut down to the
recorded level (`answer_levels.at_level`) it must hash to the recorded sha256: then the tree is the one behind
the very answer given, even when that answer carried no explanation at all. A record from before the levels has
no sha256 of its own; its answer is FULL and stored whole, so the sha256 of the stored answer stands in.

A replay can fail to prove it without anything being wrong with the record: after an upgrade the answer names
another engine_version, and a version whose sha256 changed is no longer the one that decided. The field-by-field
differences (server/audit.py) say which.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from regelmotor.store import StoredRecord, unpack_response

from .answer_levels import at_level, level_of, with_ids


@dataclass(frozen=True)
class ReplayProof:
    answered: bytes  # the answer as stored
    level: int  # the level it was answered at
    answer_sha256: str  # as recorded (or, for a record from before the levels, of the stored answer)
    full: bytes  # the replayed decision with its full explanation, under the recorded ids
    rederived: bytes  # that, at the recorded level: what must be byte for byte the answer given
    rederived_sha256: str

    @property
    def matches(self) -> bool:
        return self.rederived_sha256 == self.answer_sha256


def recorded_answer_sha256(record: StoredRecord) -> str:
    """The sha256 of the exact bytes answered, as the record holds it (or of the stored answer, for a record
    from before the levels)."""
    recorded = record.decision.get("answer_sha256")
    if isinstance(recorded, str):
        return recorded
    return hashlib.sha256(unpack_response(record.response)).hexdigest()


def recorded_known_at(record: StoredRecord) -> str:
    """The known_at the recorded decision was asked for ("" for none)."""
    known_at = record.decision.get("known_at")
    return known_at if isinstance(known_at, str) else ""


def prove(record: StoredRecord, replayed_full: bytes) -> ReplayProof:
    """What the FULL answer of a replay of `record` (any ids) proves about the answer the record holds."""
    answered = unpack_response(record.response)
    level = level_of(answered)
    full = with_ids(replayed_full, record.decision_id, record.request_id, record.trace_id)
    rederived = at_level(full, level)
    return ReplayProof(answered, level, recorded_answer_sha256(record), full, rederived,
                       hashlib.sha256(rederived).hexdigest())
