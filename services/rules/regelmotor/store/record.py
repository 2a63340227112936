"""What the decision log stores: one record per answered decision, and the record as stored (with its
place in the hash chain).

The JSON fields (facts, outcome, decision) must hold plain JSON (dicts with string keys, lists, strings,
numbers, booleans, null), as the decisions of `regelmotor.core` do: they are stored as canonical JSON and
read back with `json.loads`, so for plain JSON the record `append` returns equals the one `get` returns
later (a tuple would come back as a list). Values JSON cannot hold (dates, NaN) are refused at append.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any

_AS_OF = re.compile(r"\d{4}-\d{2}-\d{2}")
_TEXT_FIELDS = ("decision_id", "caller", "request_id", "ruleset", "version", "ruleset_sha256", "engine_version",
                "as_of", "trace_id")
# The fields whose canonical text is large enough to be worth making outside the log's writer.
LARGE_FIELDS = ("facts", "outcome", "decision", "response")
MAX_FINGERPRINT = 128  # a sha256 hex digest is 64


@dataclass(frozen=True)
class DecisionRecord:
    decision_id: str
    recorded_at: datetime  # timezone-aware; normalised to UTC
    caller: str  # the calling system, as it identified itself
    request_id: str  # "" when the caller sent none (then no idempotency)
    ruleset: str
    version: str
    ruleset_sha256: str
    engine_version: str
    as_of: str  # YYYY-MM-DD
    subject: str | None  # HMAC pseudonym of the patient's identity number, made by the caller of the library
    facts: dict[str, Any]
    outcome: dict[str, Any]
    # The decision without its explanation (a replay on the recorded version rebuilds that): as the service
    # writes it, the head of the decision (ids, provenance, facts, outcome, manuell_vurdering, applied_rules) with
    # `explanation_level` ("full", "fired", "none") and `answer_sha256` (of the exact answer bytes); records
    # written before the explanation levels have neither (their answer is full, and `response` is its evidence).
    decision: dict[str, Any]
    response: bytes  # the serialised gRPC Decision, returned again on an idempotent retry
    trace_id: str
    # What was asked, as a digest (the service makes it: sha256 of the ruleset, version pin, as_of, facts and
    # subject asked for; regelmotor.server.fingerprint). A record whose (caller, request_id) is stored already
    # is a retry only when it carries the same fingerprint (regelmotor.store.base). None: unknown (records
    # written before schema 2, or by a producer that makes none); such a record never counts as a retry.
    request_fingerprint: str | None = field(default=None, kw_only=True)
    # The same request's fingerprints with the subject under each retired pseudonym key: a retry of a request first
    # recorded before a key rotation is the same request. Only compared, never stored or hashed.
    earlier_fingerprints: tuple[str, ...] = field(default=(), compare=False, repr=False, kw_only=True)
    # The canonical text of facts, outcome, decision and response (`chain.large_parts`), when the producer
    # has already made it from these very values; None lets the log make it. Not part of the record's
    # identity: it is how the record is written, not what it says.
    encoded: Mapping[str, str] | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        for name in _TEXT_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"DecisionRecord.{name} must be a str, not {type(getattr(self, name)).__name__}")
        if not self.decision_id:
            raise ValueError("DecisionRecord.decision_id must not be empty")
        if not isinstance(self.recorded_at, datetime):
            raise TypeError("DecisionRecord.recorded_at must be a datetime")
        if self.recorded_at.tzinfo is None or self.recorded_at.utcoffset() is None:
            raise ValueError("DecisionRecord.recorded_at must be timezone-aware")
        if self.recorded_at.tzinfo is not UTC:
            object.__setattr__(self, "recorded_at", self.recorded_at.astimezone(UTC))
        _check_as_of(self.as_of)
        if self.subject is not None and not isinstance(self.subject, str):
            raise TypeError("DecisionRecord.subject must be a str or None")
        _check_fingerprint(self.request_fingerprint)
        if not isinstance(self.earlier_fingerprints, tuple):
            raise TypeError("DecisionRecord.earlier_fingerprints must be a tuple")
        for earlier in self.earlier_fingerprints:
            _check_fingerprint(earlier)
        for name in ("facts", "outcome", "decision"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"DecisionRecord.{name} must be a dict")
        if self.encoded is not None and (sorted(self.encoded) != sorted(LARGE_FIELDS)
                                         or not all(isinstance(v, str) for v in self.encoded.values())):
            raise ValueError(f"DecisionRecord.encoded must map {', '.join(LARGE_FIELDS)} to their text")
        if isinstance(self.response, (bytearray, memoryview)):
            object.__setattr__(self, "response", bytes(self.response))
        elif not isinstance(self.response, bytes):
            raise TypeError("DecisionRecord.response must be bytes")

    def field_values(self) -> dict[str, Any]:
        """The record's own fields (not the chain fields of a StoredRecord, nor `encoded` and
        `earlier_fingerprints`, which are not kept), by name."""
        return {f.name: getattr(self, f.name) for f in fields(DecisionRecord)
                if f.name not in ("encoded", "earlier_fingerprints")}


def _check_as_of(as_of: str) -> None:
    if not _AS_OF.fullmatch(as_of):
        raise ValueError(f"DecisionRecord.as_of must be YYYY-MM-DD, not {as_of!r}")
    try:
        date.fromisoformat(as_of)
    except ValueError:
        raise ValueError(f"DecisionRecord.as_of is not a date: {as_of!r}") from None


def _check_fingerprint(fingerprint: object) -> None:
    if fingerprint is None:
        return
    if not isinstance(fingerprint, str):
        raise TypeError("DecisionRecord.request_fingerprint must be a str or None")
    if not 1 <= len(fingerprint) <= MAX_FINGERPRINT:
        raise ValueError(f"DecisionRecord.request_fingerprint must be 1 to {MAX_FINGERPRINT} characters")


@dataclass(frozen=True)
class StoredRecord(DecisionRecord):
    """A record as stored: with its position in the log and its links in the hash chain."""

    seq: int  # 1, 2, 3, … without gaps
    prev_hash: str  # the hash of record seq - 1 (64 zeros for seq 1)
    hash: str  # sha256 over prev_hash and the canonical JSON of this record (see regelmotor.store.chain)

    @classmethod
    def of(cls, record: DecisionRecord, seq: int, prev_hash: str, hash: str) -> StoredRecord:
        return cls(**record.field_values(), seq=seq, prev_hash=prev_hash, hash=hash)

    @property
    def record(self) -> DecisionRecord:
        """The plain record, without the chain fields."""
        return DecisionRecord(**self.field_values())


@dataclass(frozen=True)
class ReplayInput:
    """What evaluating a logged decision again needs, and what it is compared with: its facts and outcome as
    their stored JSON text (parsed by whoever evaluates, not by the reader of the log)."""

    seq: int
    decision_id: str
    version: str
    ruleset_sha256: str
    as_of: str
    facts_json: str
    outcome_json: str
