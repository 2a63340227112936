"""The SQLite decision log: the embedded default, one file under the data directory.

* WAL mode with ``synchronous=FULL``: a commit is fsynced before `append` returns, so an acknowledged
  decision survives a crash of the process or the machine; readers never block the writer.
* Safe to share between threads: one writer connection guarded by a lock, and reader connections
  handed out one thread at a time, so a slow audit query never delays the recording of decisions.
  Appends run in ``BEGIN IMMEDIATE`` transactions, which also serialises appenders in other processes on
  the same file: seq stays gap-free and the chain linear.
* Writers in several processes (the engine workers each append their own decisions) queue on an
  exclusive `flock` of ``<file>.lock`` around each write transaction. SQLite's own lock would also keep
  them apart, but its busy handler waits by sleeping (1, 2, 5, 10 ms, ...), which under steady load adds
  milliseconds to a commit that takes a fraction of one; the kernel wakes a flock waiter at once, and drops
  the lock of a process that dies.
* `iterate` and `verify` read inside one read transaction (one WAL snapshot), so a long export neither
  blocks appends nor sees half of one.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .access_chain import NO_ACCESS, AccessHead, access_hash
from .access_query import AccessFilter, access_page, decode_access_cursor, folded
from .base import (
    COLUMNS,
    INPUT_COLUMNS,
    LOOKUP_MARK,
    PROBE_ROW,
    Assigned,
    CorruptRecord,
    DecisionLog,
    ListFilter,
    RecordRejected,
    RequestKey,
    assign,
    check_count_request,
    check_limit,
    decode_cursor,
    input_from_row,
    page,
    prepare,
    range_conditions,
    record_from_row,
    request_keys,
    seq_of_row,
)
from .chain import ChainHead, Item, Unreadable, VerifyResult, canonical_json, timestamp_text, verify
from .day_counts import MAX_GROUPS, DayCount, TooManyGroups, day_bounds, day_counts
from .migrations import SQLITE_MIGRATIONS, Migration, SchemaError, apply_sqlite
from .record import DecisionRecord, ReplayInput, StoredRecord
from .retention import RetentionStore, verify_after_cut
from .versions import RulesetStore

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM decisions"
_INSERT = f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
_INPUTS = f"SELECT {', '.join(INPUT_COLUMNS)} FROM decisions"
_FETCH = 500
_Row = TypeVar("_Row")
_INT64 = 2**63
_SYNC_LEVELS = {0: "off", 1: "normal", 2: "full", 3: "extra"}  # PRAGMA synchronous


class SQLiteDecisionLog(DecisionLog):
    def __init__(self, path: str | Path, *, migrations: Sequence[Migration] = SQLITE_MIGRATIONS,
                 busy_timeout: float = 30.0, migrate: bool = True) -> None:
        self.path = Path(path)
        if str(path) in ("", ":memory:") or str(path).startswith("file:"):
            raise ValueError(f"the SQLite decision log needs a file path, not {str(path)!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Health data: only the service's user may read the file (SQLite gives its -wal and -shm files the same
        # mode); SQLite itself would create it with the umask's mode, usually readable by all.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._readers_lock = threading.Lock()
        self._idle_readers: builtins.list[sqlite3.Connection] = []
        self._lock_file = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        conn = self._connect()
        try:
            mode = self._enable_wal(conn)
            if mode.lower() != "wal":
                raise SchemaError(f"SQLite refused WAL mode for {self.path} (journal_mode is {mode})")
            self.migrated = apply_sqlite(conn, migrations, apply=migrate)
        except BaseException:
            conn.close()
            os.close(self._lock_file)
            raise
        self._conn = conn

    # -- connections ---------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA synchronous=FULL")
        # SQLite's lower() folds ASCII only; the access log's purposes are Norwegian (Æ, Ø, Å).
        conn.create_function("regelmotor_lower", 1, folded, deterministic=True)
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> str:
        """Switch to WAL and return the journal mode now in force. Switching takes an exclusive lock and
        SQLite answers "database is locked" at once, without the busy timeout, while another connection
        opens the same new file; so retry here, within the same timeout."""
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    def _writer(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the decision log is closed")
        return self._conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """The writer connection, held by this thread and, across processes, by this log alone."""
        with self._lock:
            conn = self._writer()
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)  # releases the GIL while it waits
            try:
                yield conn
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A connection for reading, used by one thread at a time and kept for the next read."""
        with self._readers_lock:
            self._writer()  # fails when closed
            conn = self._idle_readers.pop() if self._idle_readers else None
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            with self._readers_lock:
                keep = self._conn is not None
                if keep:
                    self._idle_readers.append(conn)
            if not keep:
                conn.close()

    # -- writing -------------------------------------------------------------------------------------

    def append(self, records: builtins.list[DecisionRecord]) -> builtins.list[StoredRecord]:
        records = builtins.list(records)
        if not records:
            return []
        parts = prepare(records)
        keys = request_keys(records)
        with self._writing() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                head = ChainHead(*conn.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone())
                assigned = assign(records, parts, head, self._existing(conn, keys))
                self._insert(conn, assigned)
                conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self._rollback(conn)
                if "decision_id" in str(exc):
                    raise RecordRejected(f"a decision_id of this batch is already stored ({exc})") from exc
                raise
            except BaseException:
                self._rollback(conn)
                raise
        return assigned.results

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    @staticmethod
    def _existing(conn: sqlite3.Connection, keys: builtins.list[RequestKey]) -> dict[RequestKey, StoredRecord]:
        found: dict[RequestKey, StoredRecord] = {}
        for caller, request_id in keys:
            row = conn.execute(f"{_SELECT} WHERE caller = ? AND request_id = ? AND request_id <> ''",
                               (caller, request_id)).fetchone()
            if row is not None:
                found[(caller, request_id)] = record_from_row(row)
        return found

    @staticmethod
    def _insert(conn: sqlite3.Connection, assigned: Assigned) -> None:
        if not assigned.inserts:
            return
        conn.executemany(_INSERT, [
            (s.seq, s.decision_id, timestamp_text(s.recorded_at), s.caller, s.request_id, s.request_fingerprint,
             s.ruleset, s.version, s.ruleset_sha256, s.engine_version, s.as_of, s.subject, p["facts"], p["outcome"],
             p["decision"], s.response, s.trace_id, s.prev_hash, s.hash)
            for s, p in assigned.inserts])
        conn.execute("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (assigned.head.seq, assigned.head.hash))

    def probe(self) -> None:
        with self._writing() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(_INSERT, PROBE_ROW)
            finally:
                conn.execute("ROLLBACK")

    def log_access(self, who: str, action: str, detail: dict[str, Any]) -> None:
        text = json.dumps(detail, sort_keys=True, ensure_ascii=False, default=str)
        at = datetime.now(UTC)
        with self._writing() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                prev_hash = _access_head(conn).hash
                digest = access_hash(prev_hash, at, who, action, json.loads(text))
                conn.execute("INSERT INTO access_log (at, who, action, detail, prev_hash, hash) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (timestamp_text(at), who, action, text, prev_hash, digest))
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise

    # -- reading -------------------------------------------------------------------------------------

    def _one(self, where: str, params: tuple[Any, ...]) -> StoredRecord | None:
        with self._reader() as conn:
            row = conn.execute(f"{_SELECT} WHERE {where}", params).fetchone()
        return None if row is None else record_from_row(row)

    def find_by_request(self, caller: str, request_id: str) -> StoredRecord | None:
        if not request_id:
            return None
        return self._one("caller = ? AND request_id = ? AND request_id <> ''", (caller, request_id))

    def get(self, decision_id: str) -> StoredRecord | None:
        return self._one("decision_id = ?", (decision_id,))

    def list(self, filters: ListFilter, cursor: str | None, limit: int) -> tuple[
            builtins.list[StoredRecord], str | None]:
        check_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        where, params = _where(filters, before)
        with self._reader() as conn:
            rows = conn.execute(f"{_SELECT}{where} ORDER BY seq DESC LIMIT ?", (*params, limit + 1)).fetchall()
        return page([record_from_row(row) for row in rows], limit)

    def iterate(self, filters: ListFilter) -> Iterator[StoredRecord]:
        where, params = _where(filters, None)
        self._writer()  # fails now (not at the first next()) when the log is closed
        return self._rows(f"{_SELECT}{where} ORDER BY seq", params, record_from_row)

    def count(self, filters: ListFilter, at_most: int) -> int:
        where, params = _where(filters, None)
        with self._reader() as conn:
            row = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM decisions{where} LIMIT ?)",
                               (*params, at_most)).fetchone()
        return int(row[0])

    def replay_inputs(self, filters: ListFilter) -> Iterator[ReplayInput]:
        where, params = _where(filters, None)
        self._writer()  # fails now when the log is closed
        return self._rows(f"{_INPUTS}{where} ORDER BY seq", params, input_from_row)

    def replay_seqs(self, filters: ListFilter) -> Iterator[int]:
        where, params = _where(filters, None)
        return self._rows(f"SELECT seq FROM decisions{where} ORDER BY seq", params, seq_of_row)

    def _rows(self, query: str, params: builtins.list[Any],
              make: Callable[[tuple[Any, ...]], _Row]) -> Iterator[_Row]:
        """Each row of `query`, made into a value by `make`, read from one snapshot."""
        with self._reader() as conn:
            conn.execute("BEGIN")
            cursor = conn.execute(query, params)
            try:
                while rows := cursor.fetchmany(_FETCH):
                    for row in rows:
                        yield make(row)
            finally:
                cursor.close()

    def verify(self) -> VerifyResult:
        return self._verify(None)

    def verify_since(self, start: ChainHead) -> VerifyResult:
        return self._verify(start)

    def _verify(self, start: ChainHead | None) -> VerifyResult:
        with self._reader() as conn:
            conn.execute("BEGIN")
            head = ChainHead(*conn.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone())

            def walk(after: int, begin: ChainHead | None) -> VerifyResult:
                cursor = conn.execute(f"{_SELECT} WHERE seq > ? ORDER BY seq", (after,))
                try:
                    return verify(_items(cursor), head, start=begin)
                finally:
                    cursor.close()

            return verify_after_cut(lambda sql: conn.execute(sql).fetchone(), walk, head, start)

    def heads(self) -> tuple[ChainHead, AccessHead]:
        with self._reader() as conn:
            conn.execute("BEGIN")
            head = ChainHead(*conn.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone())
            return head, _access_head(conn)

    def hash_at(self, seq: int) -> str | None:
        with self._reader() as conn:
            row = conn.execute("SELECT hash FROM decisions WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else str(row[0])

    def access_log(self, from_id: int = 0) -> builtins.list[dict[str, Any]]:
        with self._reader() as conn:
            rows = conn.execute("SELECT id, at, who, action, detail, prev_hash, hash FROM access_log "
                                "WHERE id >= ? ORDER BY id", (from_id,)).fetchall()
        return [_access_row(row) for row in rows]

    def list_access(self, filters: AccessFilter, cursor: str | None, limit: int) -> tuple[
            builtins.list[dict[str, Any]], str | None]:
        check_limit(limit)
        before = decode_access_cursor(cursor) if cursor else None
        where, params = _access_where(filters, before)
        with self._reader() as conn:
            rows = conn.execute(f"SELECT id, at, who, action, detail, prev_hash, hash FROM access_log{where} "
                                "ORDER BY id DESC LIMIT ?", (*params, limit + 1)).fetchall()
        return access_page([_access_row(row) for row in rows], limit)

    def count_per_day(self, filters: ListFilter, outcome_field: str) -> builtins.list[DayCount]:
        recorded_from, recorded_to = check_count_request(filters, outcome_field)
        bounds = day_bounds(recorded_from, recorded_to)
        where, params = _where(filters, None)
        # No time zones in SQLite: each record joins the day whose bounds (in UTC, as stored) hold it.
        days = ", ".join("(?, ?, ?)" for _ in bounds)
        query = (f"WITH days(day, start, stop) AS (VALUES {days}) "
                 "SELECT days.day, outcome -> ?, count(*) FROM decisions "
                 f"JOIN days ON recorded_at >= days.start AND recorded_at < days.stop{where} "
                 "GROUP BY 1, 2 LIMIT ?")
        with self._reader() as conn:
            rows = conn.execute(query, (*[part for bound in bounds for part in bound], f'$."{outcome_field}"',
                                        *params, MAX_GROUPS + 1)).fetchall()
        if len(rows) > MAX_GROUPS:
            raise TooManyGroups(f"more than {MAX_GROUPS} days and values")
        return day_counts(rows)

    def schema_versions(self) -> builtins.list[int]:
        with self._reader() as conn:
            rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        return [int(row[0]) for row in rows]

    def durability(self) -> dict[str, str]:
        """How the writer commits: {"journal_mode": "wal", "synchronous": "full"} means each commit is fsynced
        before `append` returns (the module docstring)."""
        with self._lock:
            conn = self._writer()
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
            level = conn.execute("PRAGMA synchronous").fetchone()[0]
        return {"journal_mode": str(journal).lower(), "synchronous": _SYNC_LEVELS.get(level, str(level))}

    def retention(self) -> RetentionStore:
        from .version_tables import SQLiteTables

        return RetentionStore(SQLiteTables(self._writing, self._reader))

    def rulesets(self) -> RulesetStore:
        from .version_tables import SQLiteTables

        return RulesetStore(SQLiteTables(self._writing, self._reader))

    def reader_location(self) -> str:
        return str(self.path)

    def shared_location(self) -> str:
        """The file: each process appends on its own connection, queued on the flock (the module docstring)."""
        return str(self.path)

    def close(self) -> None:
        """Close the writer and the idle readers; a reader in use (an open iterator) closes when done."""
        with self._lock, self._readers_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                os.close(self._lock_file)
            idle, self._idle_readers = self._idle_readers, []
        for conn in idle:
            conn.close()


def _access_head(conn: sqlite3.Connection) -> AccessHead:
    row = conn.execute("SELECT id, hash FROM access_log WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
    return NO_ACCESS if row is None else AccessHead(int(row[0]), str(row[1]))


def _access_row(row: tuple[Any, ...]) -> dict[str, Any]:
    id_, at, who, action, detail, prev_hash, digest = row
    return {"id": id_, "at": datetime.fromisoformat(at), "who": who, "action": action, "detail": json.loads(detail),
            "prev_hash": prev_hash, "hash": digest}


def _access_where(filters: AccessFilter, before: int | None) -> tuple[str, builtins.list[Any]]:
    conditions: builtins.list[tuple[str, Any]] = [
        ("id < ?", before),
        ("at >= ?", None if filters.at_from is None else timestamp_text(filters.at_from)),
        ("at < ?", None if filters.at_to is None else timestamp_text(filters.at_to)),
        ("who = ?", filters.who), ("action = ?", filters.action),
        ("json_extract(detail, '$.decision_id') = ?", filters.decision_id),
        ("instr(regelmotor_lower(json_extract(detail, '$.formaal')), ?) > 0", folded(filters.formaal_contains))]
    used = [(clause, value) for clause, value in conditions if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(clause for clause, _ in used), [value for _, value in used]


def _items(cursor: sqlite3.Cursor) -> Iterator[Item]:
    while rows := cursor.fetchmany(_FETCH):
        for row in rows:
            try:
                yield record_from_row(row)
            except CorruptRecord as exc:
                yield Unreadable(int(row[0]), exc.decision_id, exc.reason)


def _where(filters: ListFilter, before: int | None) -> tuple[str, builtins.list[Any]]:
    clauses: builtins.list[str] = []
    params: builtins.list[Any] = []
    if before is not None:
        clauses.append("seq < ?")
        params.append(before)
    if filters.recorded_from is not None:
        clauses.append("recorded_at >= ?")
        params.append(timestamp_text(filters.recorded_from))
    if filters.recorded_to is not None:
        clauses.append("recorded_at < ?")
        params.append(timestamp_text(filters.recorded_to))
    for name in ("ruleset", "version", "caller"):
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"{name} = ?")
            params.append(value)
    if filters.subjects is not None:  # a list of values, not one array: the partial subject index stays usable
        clauses.append(f"subject IN ({', '.join('?' for _ in filters.subjects)})")
        params += filters.subjects
    for column, operator, bound in range_conditions(filters):
        clauses.append(f"{column} {operator} ?")
        params.append(bound)
    if filters.outcome_field is not None:
        clause, values = _outcome_clause(f'$."{filters.outcome_field}"', filters.outcome_value)
        clauses.append(clause)
        params += values
    if filters.lookups is not None:
        clauses.append("instr(decision, ?) > 0" if filters.lookups else "instr(decision, ?) = 0")
        params.append(LOOKUP_MARK)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _outcome_clause(path: str, value: Any) -> tuple[str, builtins.list[Any]]:
    """outcome[field] = value as JSON values, with SQLite's JSON functions (json_type tells the JSON type,
    so true is not 1 and "1" is not 1; numbers compare by value)."""
    if value is None:
        return "(json_type(outcome, ?) IS NULL OR json_type(outcome, ?) = 'null')", [path, path]
    if isinstance(value, bool):
        return "json_type(outcome, ?) = ?", [path, "true" if value else "false"]
    if isinstance(value, (int, float)):
        number: int | float = value if not isinstance(value, int) or -_INT64 <= value < _INT64 else float(value)
        return "(json_type(outcome, ?) IN ('integer', 'real') AND json_extract(outcome, ?) = ?)", [path, path, number]
    if isinstance(value, str):
        return "(json_type(outcome, ?) = 'text' AND json_extract(outcome, ?) = ?)", [path, path, value]
    # Objects and arrays: the stored text is canonical JSON, and json_extract returns it unchanged.
    return ("(json_type(outcome, ?) IN ('object', 'array') AND json_extract(outcome, ?) = ?)",
            [path, path, canonical_json(value)])
