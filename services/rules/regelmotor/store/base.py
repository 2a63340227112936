"""The decision log's interface, shared by the SQLite and PostgreSQL backends.

Guarantees of every backend:

* `append` stores its records in one transaction, in order, each at the next seq (gap-free, even with
  concurrent appenders in other threads or processes), linked into the hash chain (`regelmotor.store.chain`).
  When `append` returns, the records are committed durably.
* Idempotency: a record whose request_id is not empty and whose (caller, request_id) is already stored is
  not stored again. When both carry the same `request_fingerprint` (the same request, retried) the stored
  record is returned in its place; otherwise the record is refused with `RequestIdConflict`, which names
  nothing of the stored record - a request_id never returns one request's decision for another. A stored
  record without a fingerprint (written before schema 2) cannot show that it answers the same request, so
  a record reusing its key is refused too, as is a record without a fingerprint. All of this holds within
  one `append` call as well.
* The decisions table and the access log are append-only: the schema refuses UPDATE and DELETE (a guard
  against mistakes; someone with DDL rights can still tamper, which `verify` then reports). The one exception:
  records past their retention period are deleted under a signed retention cut recorded first
  (regelmotor.store.retention; docs/retention.md), and `verify` walks the chain from the newest cut.
* Reads are not logged by the library itself: the caller of a read (the AuditService) knows who reads and
  calls `log_access` before answering.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any

from .access_chain import AccessHead
from .access_query import AccessFilter
from .chain import ChainHead, VerifyResult, canonical_json, content_parts, link
from .day_counts import DayCount
from .record import DecisionRecord, ReplayInput, StoredRecord
from .retention import RetentionStore
from .versions import RulesetStore

MAX_PAGE = 1000


class RecordRejected(ValueError):
    """A record that cannot be stored whatever the state of the database: not plain JSON, a decision_id
    that is already taken, or a request_id already used for another request. The other records of a group
    commit are not affected by it."""


class RequestIdConflict(RecordRejected):
    """The caller's request_id is already stored for a different request (another fingerprint, or a stored
    record without one). Says which key, and nothing of the record stored under it."""

    def __init__(self, caller: str, request_id: str) -> None:
        super().__init__(f"caller {caller!r} already used request_id {request_id!r} for a different request")
        self.caller = caller
        self.request_id = request_id


@dataclass(frozen=True)
class ListFilter:
    """Which records to list. Unset (None) fields do not filter; set ones must all match.

    recorded_from is inclusive, recorded_to exclusive (both timezone-aware). outcome_field names a top-level
    key of the outcome; the record matches when outcome[outcome_field] equals outcome_value as JSON values
    (numbers compare by value, so 3 matches 3.0; true does not match 1). An outcome_value of None matches
    null or a missing key. subjects matches a record whose subject is any of them: one person's pseudonyms under
    the current key and the retired ones (regelmotor.core.identity.Pseudonymiser.pseudonyms)."""

    recorded_from: datetime | None = None
    recorded_to: datetime | None = None
    ruleset: str | None = None
    version: str | None = None
    outcome_field: str | None = None
    outcome_value: Any = None
    subjects: tuple[str, ...] | None = None
    caller: str | None = None
    as_of_from: str | None = None  # the decisions' date (as_of, YYYY-MM-DD), from this day, inclusive
    as_of_to: str | None = None  # ... to this day, inclusive
    seq_from: int | None = None  # the records from this seq, inclusive (an impact worker's part of a window)
    seq_to: int | None = None  # ... to this seq, inclusive
    # False: leave out the lookups "as known at" a moment (decisions asked with known_at); None: every record.
    lookups: bool | None = None

    def __post_init__(self) -> None:
        for name in ("recorded_from", "recorded_to"):
            moment = getattr(self, name)
            if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
                raise ValueError(f"ListFilter.{name} must be timezone-aware")
        if self.subjects is not None and not self.subjects:
            raise ValueError("ListFilter.subjects must name at least one subject (None: any subject)")
        for name in ("as_of_from", "as_of_to"):
            day = getattr(self, name)
            if day is not None and not _is_day(day):
                raise ValueError(f"ListFilter.{name} must be a date YYYY-MM-DD, not {day[:40]!r}")
        if self.outcome_field is not None:
            if not self.outcome_field or '"' in self.outcome_field or "\\" in self.outcome_field:
                raise ValueError(f"ListFilter.outcome_field {self.outcome_field!r} is not a usable key")
            value = self.outcome_value
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("ListFilter.outcome_value must be finite")
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"ListFilter.outcome_value is not JSON: {exc}") from None


def _is_day(text: str) -> bool:
    try:
        return len(text) == 10 and date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def check_count_request(filters: ListFilter, outcome_field: str) -> tuple[datetime, datetime]:
    """The period of a count_per_day call; ValueError when it is open-ended or the outcome field is no usable key."""
    if filters.recorded_from is None or filters.recorded_to is None:
        raise ValueError("count_per_day needs recorded_from and recorded_to")
    if not outcome_field or '"' in outcome_field or "\\" in outcome_field:
        raise ValueError(f"outcome field {outcome_field[:40]!r} is not a usable key")
    return filters.recorded_from, filters.recorded_to


def range_conditions(filters: ListFilter) -> list[tuple[str, str, Any]]:
    """The filter's plain range conditions as (column, operator, value), for each backend's placeholders. The
    as_of column holds YYYY-MM-DD text, so its order as text is its order as dates."""
    conditions = [("as_of", ">=", filters.as_of_from), ("as_of", "<=", filters.as_of_to),
                  ("seq", ">=", filters.seq_from), ("seq", "<=", filters.seq_to)]
    return [condition for condition in conditions if condition[2] is not None]


def seq_of_row(row: tuple[Any, ...]) -> int:
    return int(row[0])


def encode_cursor(before_seq: int) -> str:
    """An opaque page token: the next page holds the records before this seq (newest first)."""
    text = json.dumps({"v": 1, "before": before_seq}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The seq a page token stands for; ValueError when it is not a token made by `encode_cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        before = data["before"]
        if data.get("v") != 1 or not isinstance(before, int) or isinstance(before, bool) or before < 1:
            raise ValueError
        return before
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error, AttributeError):
        raise ValueError("not a page token of this decision log") from None


def check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")


def page(rows: builtins.list[StoredRecord], limit: int) -> tuple[builtins.list[StoredRecord], str | None]:
    """A page from up to limit + 1 rows read newest first: the rows, and the token for the next page."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].seq)
    return rows, None


class DecisionLog(ABC):
    """A durable, tamper-evident, append-only log of decisions (see the module docstring)."""

    migrated: builtins.list[int]  # the schema migrations that opening this log applied (usually none)

    @abstractmethod
    def append(self, records: builtins.list[DecisionRecord]) -> builtins.list[StoredRecord]:
        """Store the records in one transaction and return them as stored, in the same order. A record whose
        (caller, request_id) is already stored (request_id not empty) with the same request_fingerprint comes
        back as the stored one instead. Raises RecordRejected when a record cannot be stored - among them
        RequestIdConflict for a key stored with another fingerprint or none (then nothing of the call is
        stored)."""

    @abstractmethod
    def find_by_request(self, caller: str, request_id: str) -> StoredRecord | None:
        """The record stored for this caller's request_id (None for an empty request_id)."""

    @abstractmethod
    def get(self, decision_id: str) -> StoredRecord | None:
        """The record of a decision, or None."""

    @abstractmethod
    def list(self, filters: ListFilter, cursor: str | None, limit: int) -> tuple[
            builtins.list[StoredRecord], str | None]:
        """One page of matching records, newest (highest seq) first, and the token for the next page (None on
        the last page). Raises ValueError for a token not made by this log or a limit outside 1..1000."""

    @abstractmethod
    def iterate(self, filters: ListFilter) -> Iterator[StoredRecord]:
        """Every matching record, oldest (lowest seq) first, from one consistent snapshot (for exports).
        Close the iterator (or exhaust it) to release its connection."""

    @abstractmethod
    def count(self, filters: ListFilter, at_most: int) -> int:
        """How many records match, counted up to `at_most` (a window too large is found without counting it all)."""

    @abstractmethod
    def replay_inputs(self, filters: ListFilter) -> Iterator[ReplayInput]:
        """What evaluating each matching record again needs, oldest first, from one consistent snapshot (impact
        analysis). Close the iterator (or exhaust it) to release its connection."""

    @abstractmethod
    def replay_seqs(self, filters: ListFilter) -> Iterator[int]:
        """The seq of each matching record, oldest first, from one consistent snapshot: an impact analysis cuts a
        window into seq ranges that its workers read themselves (`reader_location`). Close it or exhaust it."""

    @abstractmethod
    def reader_location(self) -> str:
        """Where another process opens this same log (`open_log`) to read it: the file, or the DSN (never
        printed or logged: it may hold a password)."""

    @abstractmethod
    def verify(self) -> VerifyResult:
        """Verify the whole chain against the chain head, from one consistent snapshot."""

    @abstractmethod
    def verify_since(self, start: ChainHead) -> VerifyResult:
        """Verify the records after start.seq, the first linking to start.hash, against the chain head (one
        snapshot): the incremental check from a trusted checkpoint. `checked` counts those records."""

    @abstractmethod
    def heads(self) -> tuple[ChainHead, AccessHead]:
        """The chain head and the head of the access-log chain, from one snapshot (what a checkpoint signs)."""

    @abstractmethod
    def hash_at(self, seq: int) -> str | None:
        """The stored hash of the record at `seq`, or None when there is none."""

    @abstractmethod
    def probe(self) -> None:
        """Raise when the log cannot take a record now: a decision row is inserted and rolled back, so locks,
        triggers, constraints and a read-only store are all met as a real append would meet them."""

    @abstractmethod
    def log_access(self, who: str, action: str, detail: dict[str, Any]) -> None:
        """Append to the access log: who read, what (action and detail), and when (now, UTC)."""

    @abstractmethod
    def access_log(self, from_id: int = 0) -> builtins.list[dict[str, Any]]:
        """The access log from row `from_id` on, oldest first: dicts with id, at (aware datetime, UTC), who,
        action, detail, and the chain columns prev_hash and hash (None on rows logged before schema 3; see
        access_chain). Raises ValueError for a row that cannot be read (edited outside the library)."""

    @abstractmethod
    def list_access(self, filters: AccessFilter, cursor: str | None, limit: int) -> tuple[
            builtins.list[dict[str, Any]], str | None]:
        """One page of the matching access-log rows (dicts as `access_log` gives them), newest (highest id) first,
        and the token for the next page (None on the last page). Raises ValueError for a token not made by this
        log's `list_access` or a limit outside 1..1000."""

    @abstractmethod
    def count_per_day(self, filters: ListFilter, outcome_field: str) -> builtins.list[DayCount]:
        """How many matching records there are per calendar day in day_counts.DAY_ZONE and value of
        outcome[outcome_field] (a missing one counts as null), grouped by the database, by day and value. The
        filter must bound the period (recorded_from and recorded_to); ValueError when it does not or when the
        outcome field is no usable key, day_counts.TooManyGroups when there are more than MAX_GROUPS rows."""

    @abstractmethod
    def schema_versions(self) -> builtins.list[int]:
        """The schema migrations applied to this store, in order."""

    @abstractmethod
    def close(self) -> None:
        """Release the store's connections. Further calls fail."""

    def rulesets(self) -> RulesetStore:
        """The ruleset versions kept in this store, and their lifecycle (regelmotor.store.versions)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no ruleset versions")

    def retention(self) -> RetentionStore:
        """The log's retention cuts, and the deletion of records under a new one (regelmotor.store.retention)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no retention cuts")

    def shared_location(self) -> str | None:
        """Where other processes open this same log (`open_log`) to append to it themselves, each on its own
        connection, when that is how it is best appended to; None when concurrent appends are best grouped
        into few transactions by one committer (`GroupCommitter`), as for a database server, which charges
        per transaction. Measured: BENCHMARKS.md, 2026-12-02, evening."""
        return None

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def append_each(log: DecisionLog, records: builtins.list[DecisionRecord]) -> builtins.list[StoredRecord | Exception]:
    """Append `records` in one transaction and return, for each, the record as stored or the error that kept it
    out. When the transaction fails because of one record (`RecordRejected`), they are appended one per
    transaction, so only the offending ones fail; any other failure fails them all."""
    try:
        stored = log.append(records)
    except RecordRejected as exc:
        if len(records) == 1:
            return [exc]
        return [result for record in records for result in append_each(log, [record])]
    except Exception as exc:
        return [exc] * len(records)
    if len(stored) != len(records):
        return [RuntimeError(f"the decision log returned {len(stored)} records for {len(records)}")] * len(records)
    return builtins.list(stored)


RequestKey = tuple[str, str]


def request_keys(records: builtins.list[DecisionRecord]) -> builtins.list[RequestKey]:
    """The distinct (caller, request_id) keys of a batch that take part in idempotency, in order."""
    keys: dict[RequestKey, None] = {}
    for record in records:
        if record.request_id:
            keys[(record.caller, record.request_id)] = None
    return builtins.list(keys)


def prepare(records: builtins.list[DecisionRecord]) -> builtins.list[dict[str, str]]:
    """The canonical JSON parts of each record, made before any transaction starts; RecordRejected when a
    record cannot be represented."""
    prepared = []
    for record in records:
        if not isinstance(record, DecisionRecord):
            raise RecordRejected(f"not a DecisionRecord: {type(record).__name__}")
        try:
            prepared.append(content_parts(record))
        except (TypeError, ValueError) as exc:
            raise RecordRejected(f"decision {record.decision_id}: not plain JSON ({exc})") from exc
    return prepared


@dataclass
class Assigned:
    """The outcome of chaining a batch: rows to insert, what to return for each record, the new head."""

    inserts: builtins.list[tuple[StoredRecord, dict[str, str]]]
    results: builtins.list[StoredRecord]
    head: ChainHead


def assign(records: builtins.list[DecisionRecord], parts: builtins.list[dict[str, str]], head: ChainHead,
           existing: dict[RequestKey, StoredRecord]) -> Assigned:
    """Give each new record the next seq after `head` and link it; a record whose request key is in
    `existing` (stored before, or earlier in this batch) gets the stored record instead when it is the same
    request (`same_request`), and raises RequestIdConflict when it is not."""
    inserts: builtins.list[tuple[StoredRecord, dict[str, str]]] = []
    results: builtins.list[StoredRecord] = []
    seq, prev_hash = head.seq, head.hash
    for record, record_parts in zip(records, parts, strict=True):
        key = (record.caller, record.request_id)
        if record.request_id and key in existing:
            stored = existing[key]
            if not same_request(stored, record):
                raise RequestIdConflict(record.caller, record.request_id)
            results.append(stored)
            continue
        seq += 1
        stored, record_parts = link(record, seq, prev_hash, record_parts)
        prev_hash = stored.hash
        inserts.append((stored, record_parts))
        results.append(stored)
        if record.request_id:
            existing[key] = stored
    return Assigned(inserts, results, ChainHead(seq, prev_hash))


def same_request(stored: DecisionRecord, record: DecisionRecord) -> bool:
    """Whether `record` asks what `stored` answered, by their fingerprints. Without a fingerprint on either
    side sameness cannot be shown, and answering another request's decision would be worse than refusing. A record
    made after a pseudonym key rotation also matches by its fingerprints under the retired keys."""
    return stored.request_fingerprint is not None and (stored.request_fingerprint == record.request_fingerprint
                                                       or stored.request_fingerprint in record.earlier_fingerprints)


def outcome_json(value: Any) -> str:
    """The canonical JSON text of an outcome filter value."""
    return canonical_json(value)


# A decision asked "as known at" a moment says so in its decision JSON, as the top-level key known_at: in canonical
# JSON that text appears nowhere else (no name in a decision may be known_at, and inside a JSON string the quotes
# are escaped), so a plain text search finds the lookups without parsing the JSON.
LOOKUP_MARK = '"known_at":'


COLUMNS = ("seq", "decision_id", "recorded_at", "caller", "request_id", "request_fingerprint", "ruleset", "version",
           "ruleset_sha256", "engine_version", "as_of", "subject", "facts", "outcome", "decision", "response",
           "trace_id", "prev_hash", "hash")


INPUT_COLUMNS = ("seq", "decision_id", "version", "ruleset_sha256", "as_of", "facts", "outcome")


def input_from_row(row: tuple[Any, ...]) -> ReplayInput:
    seq, decision_id, version, sha256, as_of, facts, outcome = row
    return ReplayInput(int(seq), decision_id, version, sha256, as_of, facts, outcome)


# A row that `probe` inserts and rolls back: never committed, and seq 0 is before every record. Columns not
# named here are nullable.
_PROBE_VALUES: dict[str, Any] = {
    "seq": 0, "decision_id": "probe", "recorded_at": "1970-01-01T00:00:00.000000+00:00", "caller": "probe",
    "request_id": "", "ruleset": "probe", "version": "probe", "ruleset_sha256": "", "engine_version": "",
    "as_of": "1970-01-01", "facts": "{}", "outcome": "{}", "decision": "{}", "response": b"", "trace_id": "",
    "prev_hash": "", "hash": ""}
PROBE_ROW = tuple(_PROBE_VALUES.get(column) for column in COLUMNS)


class CorruptRecord(RuntimeError):
    """A stored row that does not make a record (it was edited outside the library)."""

    def __init__(self, seq: Any, decision_id: Any, reason: str) -> None:
        super().__init__(f"the stored row at seq {seq} (decision {decision_id}) is unreadable: {reason}")
        self.seq = seq
        self.decision_id = decision_id if isinstance(decision_id, str) else None
        self.reason = reason


def record_from_row(row: tuple[Any, ...]) -> StoredRecord:
    """A StoredRecord from a row of COLUMNS (JSON columns as text; recorded_at as text or datetime)."""
    values = dict(zip(COLUMNS, row, strict=True))
    try:
        moment = values["recorded_at"]
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        response = values["response"]
        if not isinstance(response, (bytes, bytearray, memoryview)):
            raise TypeError(f"response is {type(response).__name__}, not bytes")
        return StoredRecord(
            decision_id=values["decision_id"], recorded_at=moment, caller=values["caller"],
            request_id=values["request_id"], request_fingerprint=values["request_fingerprint"],
            ruleset=values["ruleset"], version=values["version"],
            ruleset_sha256=values["ruleset_sha256"], engine_version=values["engine_version"],
            as_of=values["as_of"], subject=values["subject"], facts=json.loads(values["facts"]),
            outcome=json.loads(values["outcome"]), decision=json.loads(values["decision"]),
            response=bytes(response), trace_id=values["trace_id"], seq=int(values["seq"]),
            prev_hash=str(values["prev_hash"]), hash=str(values["hash"]))
    except (TypeError, ValueError, AttributeError) as exc:
        raise CorruptRecord(values["seq"], values["decision_id"], str(exc)) from exc
