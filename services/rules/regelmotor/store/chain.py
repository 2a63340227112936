"""The hash chain over the decision log, and its verification.

Hashing
-------
Every stored record carries ``seq`` (1, 2, 3, … without gaps), ``prev_hash`` (the hash of record
``seq - 1``; 64 zeros for seq 1) and ``hash``::

    hash = sha256_hex(utf8(prev_hash + canonical_json(fields)))

where ``fields`` is every field of the record plus ``seq``: ``decision_id, recorded_at, caller, request_id,
ruleset, version, ruleset_sha256, engine_version, as_of, subject, facts, outcome, decision, response,
trace_id, seq`` (and ``request_fingerprint``, see below). Canonical JSON has sorted keys, no whitespace
(``","`` and ``":"``), non-ASCII characters as themselves, and no NaN/Infinity; ``response`` (bytes) is
standard base64; ``recorded_at`` is ISO 8601 in UTC with microseconds (``2025-01-31T12:00:00.000000+00:00``).
Because seq is inside the hash, moving a record to another position changes its hash, and because prev_hash
is, so does changing any predecessor.

``request_fingerprint`` (added in schema 2) is among the fields only when the record has one: a record
without it - every record written before schema 2 - hashes exactly as before, so an upgraded log still
verifies, while setting, changing or removing a fingerprint afterwards changes the hash like any other edit.

The log also keeps a *chain head* (the seq and hash of the last record), updated in the same transaction
as each append. `verify` compares the end of the log with it, which catches removals and additions at the
tail that the links alone cannot show.

Verification
------------
`verify` walks the records in seq order. A record is *good* when (1) its seq is the previous good
record's seq + 1, (2) its prev_hash is the previous good record's hash, and (3) its hash is the hash
recomputed from its content. The first record that is not good - or an end of the log that disagrees with
the chain head - is the first problem, classified by these rules, checked in this order:

1. Its seq is beyond the chain head's seq: **inserted** (a record added outside the library).
2. Its seq equals the previous record's seq (a duplicated seq): **inserted**. Of the two, the reported one
   is the one the chain does not continue from: the previous one when both link correctly, both match their
   content and the next record links to this one; otherwise this one.
3. Its seq is lower than the previous record's: **reordered** (the input is not in seq order).
4. Its seq skips numbers: **removed**, at the first missing seq (decision_id None: it is gone).
5. Its seq is right but its hash does not match its content:

   a. **reordered** when some record x among the next `window` records swaps places with it, i.e. the
      two match each other's positions: either each one's content, with its own prev_hash and hash,
      hashes correctly at the other's seq (whole rows swapped, seq kept), or each one's content hashes
      correctly under the other's prev_hash, seq and hash (contents swapped, chain columns kept);
   b. **inserted** at the previous record when this record's content hashes correctly at seq - 1 and
      its prev_hash is the one the previous record links to (a forged record was put in front of it and
      the later records were renumbered up);
   c. **removed** at this seq when its content hashes correctly at seq + 1 and its link is broken (a
      record was taken out and the later ones renumbered down);
   d. otherwise **altered** at this seq.

6. Its seq is right and its hash matches its content, but its prev_hash is not the previous record's hash:

   a. **altered** at the previous seq when this record does belong to the chain - the next record links
      to it, or it is the last record and is the chain head - so the previous record was rewritten with a
      recomputed hash (its old hash survives only in this record's prev_hash);
   b. otherwise **inserted** at this seq: a record whose prev_hash matches no predecessor.

7. At the end of the log: the chain head's seq is beyond the last record: **removed** at the first missing
   seq (the tail was cut); the head's seq is the last record's but its hash differs: **altered** there.

``checked`` is the number of good records before the first problem (all records when the log verifies).

A walk may begin after a trusted record instead of at the genesis (`verify`'s ``start``): a signed checkpoint's,
or the newest retention cut's once the records before it were deleted (regelmotor.store.retention).

Limits: a hash chain kept next to the data cannot catch an attacker who rewrites a record and then
recomputes every later hash and the chain head; publishing the head's hash elsewhere closes that gap.
Deleting the newest records and moving the chain head back is likewise only visible against an earlier
published head. regelmotor.store.checkpoint does that publishing: signed checkpoints in a witness outside
the database, and the kinds "truncated" and "rehashed" (and "access log altered") found against them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, Literal

from regelmotor.core.moments import moment_text

from .record import DecisionRecord, StoredRecord

if TYPE_CHECKING:
    from .retention import RetentionCut

GENESIS = "0" * 64

# The last four are found only against a signed checkpoint (regelmotor.store.checkpoint); "cut invalid": a
# retention cut no checkpoint key signed (regelmotor.store.retention).
ProblemKind = Literal["altered", "removed", "inserted", "reordered", "truncated", "rehashed", "access log altered",
                      "lifecycle altered", "cut invalid"]


@dataclass(frozen=True)
class Problem:
    seq: int
    decision_id: str | None  # None when the record is gone (removed)
    kind: ProblemKind
    message: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_problem: Problem | None = None
    cut: RetentionCut | None = None  # the newest retention cut, after which the walk began (None: from seq 1)


@dataclass(frozen=True)
class Unreadable:
    """A stored row that does not make a record (edited outside the library): verify reports it as altered
    (or by its seq, when that is out of place) instead of failing."""

    seq: int
    decision_id: str | None
    reason: str
    prev_hash: str | None = None
    hash: str | None = None


Item = StoredRecord | Unreadable


@dataclass(frozen=True)
class ChainHead:
    """The seq and hash of the last record, as the log recorded them at its last append."""

    seq: int
    hash: str


def canonical_json(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, non-ASCII as is, NaN and Infinity refused."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


timestamp_text = moment_text  # the log's name for the one text of a moment (regelmotor.core.moments)


def large_parts(facts: dict[str, Any], outcome: dict[str, Any], decision: dict[str, Any],
                response: bytes) -> dict[str, str]:
    """The canonical text of a record's large fields (the three JSON fields and the response), exactly as
    `content_parts` makes them. A producer that can make them elsewhere (the engine workers do, in
    parallel) hands them over in `DecisionRecord.encoded`, so the log's single writer need not.

    Raises TypeError or ValueError when a JSON field holds something JSON cannot represent."""
    return {
        "facts": canonical_json(facts),
        "outcome": canonical_json(outcome),
        "decision": canonical_json(decision),
        "response": encode_basestring(base64.b64encode(response).decode("ascii")),
    }


def content_parts(record: DecisionRecord) -> dict[str, str]:
    """The canonical JSON text of each field of the record (what is hashed, and what is stored as JSON).

    Raises TypeError or ValueError when a JSON field holds something JSON cannot represent."""
    large = record.encoded or large_parts(record.facts, record.outcome, record.decision, record.response)
    # encode_basestring is what json.dumps(text, ensure_ascii=False) uses for a str, without its overhead.
    parts = {
        "decision_id": encode_basestring(record.decision_id),
        "recorded_at": encode_basestring(timestamp_text(record.recorded_at)),
        "caller": encode_basestring(record.caller),
        "request_id": encode_basestring(record.request_id),
        "ruleset": encode_basestring(record.ruleset),
        "version": encode_basestring(record.version),
        "ruleset_sha256": encode_basestring(record.ruleset_sha256),
        "engine_version": encode_basestring(record.engine_version),
        "as_of": encode_basestring(record.as_of),
        "subject": "null" if record.subject is None else encode_basestring(record.subject),
        "trace_id": encode_basestring(record.trace_id),
        **large,
    }
    if record.request_fingerprint is not None:  # absent, not null: older records keep their hashes
        parts["request_fingerprint"] = encode_basestring(record.request_fingerprint)
    return parts


def _hash_of_parts(prev_hash: str, parts: dict[str, str], seq: int) -> str:
    # The same text as canonical_json({**fields, "seq": seq}), assembled from the parts already made.
    items = {**parts, "seq": str(int(seq))}
    body = "{" + ",".join(f'"{key}":{items[key]}' for key in sorted(items)) + "}"
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def record_hash(prev_hash: str, record: DecisionRecord, seq: int) -> str:
    """The hash of `record` at position `seq` after a record whose hash is `prev_hash`."""
    return _hash_of_parts(prev_hash, content_parts(record), seq)


def link(record: DecisionRecord, seq: int, prev_hash: str,
         parts: dict[str, str] | None = None) -> tuple[StoredRecord, dict[str, str]]:
    """The record as stored at `seq` after `prev_hash`, and the canonical JSON of its fields (`parts`, when
    already made by `content_parts`).

    The returned record shares the JSON fields of `record` (parsing the stored text again would double the
    cost of an append); for plain JSON they equal what the store returns later."""
    if parts is None:
        parts = content_parts(record)
    digest = _hash_of_parts(prev_hash, parts, seq)
    return StoredRecord(**record.field_values(), seq=seq, prev_hash=prev_hash, hash=digest), parts


class _Verifier:
    def __init__(self, records: Iterable[Item], head: ChainHead | None, window: int,
                 start: ChainHead | None = None) -> None:
        self.source: Iterator[Item] = iter(records)
        self.ahead: deque[Item] = deque()
        self.head = head
        self.window = window
        self.parts: dict[int, dict[str, str]] = {}
        # The last good record (seq 0 and GENESIS before the first), and the hash it links to.
        self.prev: StoredRecord | None = None
        self.prev_seq = 0 if start is None else start.seq
        self.prev_hash = GENESIS if start is None else start.hash
        self.before_prev_hash: str | None = None
        self.checked = 0

    # -- reading ahead -------------------------------------------------------------------------------

    def _fill(self, count: int) -> None:
        while len(self.ahead) < count:
            record = next(self.source, None)
            if record is None:
                return
            self.ahead.append(record)

    def _peek(self) -> Item | None:
        self._fill(1)
        return self.ahead[0] if self.ahead else None

    def _next(self) -> Item | None:
        self._fill(1)
        return self.ahead.popleft() if self.ahead else None

    # -- hashing -------------------------------------------------------------------------------------

    def _parts(self, record: StoredRecord) -> dict[str, str]:
        key = id(record)
        found = self.parts.get(key)
        if found is None:
            found = self.parts[key] = content_parts(record)
        return found

    def _hash(self, prev_hash: str, content: StoredRecord, seq: int) -> str:
        return _hash_of_parts(prev_hash, self._parts(content), seq)

    def _valid(self, record: StoredRecord) -> bool:
        return self._hash(record.prev_hash, record, record.seq) == record.hash

    # -- the walk ------------------------------------------------------------------------------------

    def run(self) -> VerifyResult:
        while True:
            record = self._next()
            if record is None:
                break
            self.parts.clear()
            problem = self._check(record)
            if problem is not None:
                return VerifyResult(ok=False, checked=self.checked, first_problem=problem)
        problem = self._check_end()
        if problem is not None:
            return VerifyResult(ok=False, checked=self.checked, first_problem=problem)
        return VerifyResult(ok=True, checked=self.checked)

    def _accept(self, record: StoredRecord) -> None:
        self.before_prev_hash = self.prev_hash
        self.prev = record
        self.prev_seq = record.seq
        self.prev_hash = record.hash
        self.checked += 1

    def _blame_previous(self, kind: ProblemKind, message: str) -> Problem:
        assert self.prev is not None
        self.checked -= 1
        return Problem(self.prev.seq, self.prev.decision_id, kind, message)

    def _check(self, r: Item) -> Problem | None:
        expected = self.prev_seq + 1
        if self.head is not None and r.seq > self.head.seq:
            return Problem(r.seq, r.decision_id, "inserted",
                           f"seq {r.seq} (decision {r.decision_id}) is beyond the chain head (seq {self.head.seq}): "
                           "it was not added by the log")
        if r.seq == self.prev_seq and self.prev is not None:
            return self._duplicate(r)
        if r.seq < expected:
            return Problem(r.seq, r.decision_id, "reordered",
                           f"seq {r.seq} (decision {r.decision_id}) comes after seq {self.prev_seq}")
        if r.seq > expected:
            missing = f"seq {expected}" if r.seq == expected + 1 else f"seq {expected}–{r.seq - 1}"
            return Problem(expected, None, "removed",
                           f"{missing} is missing: after seq {self.prev_seq} comes seq {r.seq} "
                           f"(decision {r.decision_id})")
        if isinstance(r, Unreadable):
            return Problem(r.seq, r.decision_id, "altered", f"seq {r.seq} cannot be read as a record: {r.reason}")
        valid = self._valid(r)
        linked = r.prev_hash == self.prev_hash
        if valid and linked:
            self._accept(r)
            return None
        if not valid:
            return self._invalid(r, linked)
        return self._unlinked(r)

    def _duplicate(self, r: Item) -> Problem:
        prev = self.prev
        assert prev is not None
        following = self._peek()
        if (isinstance(r, StoredRecord) and following is not None and self._valid(r)
                and r.prev_hash == self.before_prev_hash
                and following.prev_hash == r.hash and following.prev_hash != prev.hash):
            return self._blame_previous(
                "inserted", f"seq {prev.seq} appears twice; decision {prev.decision_id} is the one the chain does "
                            f"not continue from (the next record links to decision {r.decision_id})")
        return Problem(r.seq, r.decision_id, "inserted",
                       f"seq {r.seq} appears twice; decision {r.decision_id} is an extra record "
                       f"(the chain continues from decision {prev.decision_id})")

    def _invalid(self, r: StoredRecord, linked: bool) -> Problem:
        swapped = self._swap_partner(r, linked)
        if swapped is not None:
            return Problem(r.seq, r.decision_id, "reordered",
                           f"the records at seq {r.seq} (decision {r.decision_id}) and seq {swapped.seq} "
                           f"(decision {swapped.decision_id}) have been swapped: each matches the other's position")
        if (self.prev is not None and r.prev_hash == self.before_prev_hash
                and self._hash(r.prev_hash, r, r.seq - 1) == r.hash):
            prev = self.prev
            return self._blame_previous(
                "inserted", f"seq {prev.seq} (decision {prev.decision_id}) was inserted: the next record "
                            f"(decision {r.decision_id}) links past it and was renumbered from seq {r.seq - 1}")
        if not linked and self._hash(r.prev_hash, r, r.seq + 1) == r.hash:
            return Problem(r.seq, None, "removed",
                           f"the record at seq {r.seq} was removed: decision {r.decision_id} was renumbered "
                           f"from seq {r.seq + 1} to {r.seq}")
        link_note = "" if linked else f", and its prev_hash does not link to seq {self.prev_seq}"
        return Problem(r.seq, r.decision_id, "altered",
                       f"the content of seq {r.seq} (decision {r.decision_id}) no longer matches its hash{link_note}")

    def _swap_partner(self, r: StoredRecord, linked: bool) -> StoredRecord | None:
        self._fill(self.window)
        for x in self.ahead:
            if isinstance(x, Unreadable) or x.seq == r.seq:
                continue
            # Whole rows swapped (seq kept): x carries its own old link, to the record before r's position.
            if (x.prev_hash == self.prev_hash and self._hash(x.prev_hash, x, r.seq) == x.hash
                    and self._hash(r.prev_hash, r, x.seq) == r.hash):
                return x
            # Contents swapped (chain columns kept): r's chain columns are intact, its content is x's.
            if (linked and self._hash(x.prev_hash, r, x.seq) == x.hash
                    and self._hash(r.prev_hash, x, r.seq) == r.hash):
                return x
        return None

    def _unlinked(self, r: StoredRecord) -> Problem:
        following = self._peek()
        belongs = (following.prev_hash == r.hash) if following is not None else (
            self.head is not None and self.head.seq == r.seq and self.head.hash == r.hash)
        if belongs and self.prev is not None:
            prev = self.prev
            return self._blame_previous(
                "altered", f"seq {prev.seq} (decision {prev.decision_id}) was rewritten: its hash is not the one "
                           f"seq {r.seq} links to")
        return Problem(r.seq, r.decision_id, "inserted",
                       f"seq {r.seq} (decision {r.decision_id}) does not link to seq {self.prev_seq}: "
                       "its prev_hash matches no predecessor")

    def _check_end(self) -> Problem | None:
        head = self.head
        if head is None:
            return None
        if head.seq > self.prev_seq:
            return Problem(self.prev_seq + 1, None, "removed",
                           f"the log ends at seq {self.prev_seq} but the chain head is seq {head.seq}: "
                           "the newest records were removed")
        if self.prev is not None and head.seq == self.prev_seq and head.hash != self.prev_hash:
            prev = self.prev
            return self._blame_previous(
                "altered", f"seq {prev.seq} (decision {prev.decision_id}) was rewritten: its hash is not the "
                           "chain head's")
        return None


def verify(records: Iterable[Item], head: ChainHead | None = None, *, window: int = 1000,
           start: ChainHead | None = None) -> VerifyResult:
    """Verify records given in seq order (see the module docstring for the rules). Rows that could not be
    read as records are passed as `Unreadable`.

    `head` is the log's chain head, when known. `window` bounds how far ahead a swapped partner is looked
    for; records are read lazily, so memory stays bounded by it. `start` (a record already trusted, e.g. a
    checkpoint's) makes the walk begin after it: `records` are then those after start.seq."""
    return _Verifier(records, head, window, start).run()
