"""The PostgreSQL decision log (psycopg 3), chosen by a DSN such as
``postgresql://regelmotor@db.example:5432/regelmotor``. The tables live in the DSN's schema (its
``search_path``, e.g. ``?options=-csearch_path%3Daudit``).

* Appenders serialise on the chain head: every append locks the single ``chain_head`` row with ``SELECT …
  FOR UPDATE`` before it reads the head, checks idempotency and inserts, and moves the head in the same
  transaction. Appenders in other threads, other log instances and other processes therefore queue on that
  row lock: seq stays gap-free and the chain linear. (A rolled-back append leaves no gap: seq is not a
  database sequence.)
* A commit in PostgreSQL is durable when it returns (with the server's default ``synchronous_commit``).
* A small pool of connections (autocommit, explicit transactions) makes the log safe to share between
  threads. `iterate` and `verify` read one REPEATABLE READ snapshot through a server-side cursor, holding a
  pool connection until the iterator is exhausted or closed.
"""

from __future__ import annotations

import builtins
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

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
from .chain import ChainHead, Item, Unreadable, VerifyResult, canonical_json, verify
from .day_counts import DAY_ZONE, MAX_GROUPS, DayCount, TooManyGroups, day_counts
from .migrations import POSTGRES_MIGRATIONS, Migration, apply_postgres
from .record import DecisionRecord, ReplayInput, StoredRecord
from .retention import RetentionStore, verify_after_cut
from .versions import RulesetStore

Connection = psycopg.Connection[tuple[Any, ...]]

_READ_COLUMNS = ", ".join(f"{c}::text" if c in ("facts", "outcome", "decision") else c for c in COLUMNS)
_SELECT = f"SELECT {_READ_COLUMNS} FROM decisions"
_INSERT = (f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES ("
           + ", ".join("%s::json" if c in ("facts", "outcome", "decision") else "%s" for c in COLUMNS) + ")")
_FETCH = 500
_Row = TypeVar("_Row")
_INPUTS = ("SELECT " + ", ".join(f"{c}::text" if c in ("facts", "outcome") else c for c in INPUT_COLUMNS)
           + " FROM decisions")


class _Pool:
    """A few connections, handed out one caller at a time; a broken connection is dropped, not reused."""

    def __init__(self, dsn: str, size: int, connect_timeout: float) -> None:
        self.dsn = dsn
        self.size = size
        self.options: dict[str, Any] = {}
        given = conninfo_to_dict(dsn)
        if "connect_timeout" not in given:
            self.options["connect_timeout"] = max(1, round(connect_timeout))
        if "application_name" not in given:
            self.options["application_name"] = "regelmotor-decision-log"
        self.idle: builtins.list[Connection] = []
        self.count = 0
        self.closed = False
        self.cond = threading.Condition()

    def _open(self) -> Connection:
        return psycopg.connect(self.dsn, autocommit=True, **self.options)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with self.cond:
            while True:
                if self.closed:
                    raise RuntimeError("the decision log is closed")
                if self.idle:
                    conn: Connection | None = self.idle.pop()
                    break
                if self.count < self.size:
                    conn = None
                    self.count += 1
                    break
                self.cond.wait()
        if conn is None:
            try:
                conn = self._open()
            except BaseException:
                with self.cond:
                    self.count -= 1
                    self.cond.notify()
                raise
        try:
            yield conn
        finally:
            reusable = (not conn.closed and not conn.broken
                        and conn.info.transaction_status == TransactionStatus.IDLE)
            with self.cond:
                keep = reusable and not self.closed
                if keep:
                    self.idle.append(conn)
                else:
                    self.count -= 1
                self.cond.notify()
            if not keep:
                conn.close()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            idle, self.idle = self.idle, []
            self.count -= len(idle)
            self.cond.notify_all()
        for conn in idle:
            conn.close()


class PostgresDecisionLog(DecisionLog):
    def __init__(self, dsn: str, *, migrations: Sequence[Migration] = POSTGRES_MIGRATIONS, pool_size: int = 8,
                 connect_timeout: float = 10.0, migrate: bool = True) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self._pool = _Pool(dsn, pool_size, connect_timeout)
        try:
            with self._pool.connection() as conn:
                self.migrated = apply_postgres(conn, migrations, apply=migrate)
        except BaseException:
            self._pool.close()
            raise

    # -- writing -------------------------------------------------------------------------------------

    def append(self, records: builtins.list[DecisionRecord]) -> builtins.list[StoredRecord]:
        records = builtins.list(records)
        if not records:
            return []
        parts = prepare(records)
        keys = request_keys(records)
        try:
            with self._pool.connection() as conn, conn.transaction():
                row = conn.execute("SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE").fetchone()
                assert row is not None, "the chain head row is missing"
                assigned = assign(records, parts, ChainHead(int(row[0]), str(row[1])), self._existing(conn, keys))
                self._insert(conn, assigned)
        except pg_errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "decisions_decision_id":
                raise RecordRejected(f"a decision_id of this batch is already stored ({exc})") from exc
            raise
        return assigned.results

    @staticmethod
    def _existing(conn: Connection, keys: builtins.list[RequestKey]) -> dict[RequestKey, StoredRecord]:
        if not keys:
            return {}
        rows = conn.execute(
            f"{_SELECT} WHERE request_id <> '' AND (caller, request_id) IN "
            "(SELECT * FROM unnest(%s::text[], %s::text[]))",
            ([caller for caller, _ in keys], [request_id for _, request_id in keys])).fetchall()
        found = [record_from_row(row) for row in rows]
        return {(r.caller, r.request_id): r for r in found}

    @staticmethod
    def _insert(conn: Connection, assigned: Assigned) -> None:
        if not assigned.inserts:
            return
        with conn.cursor() as cursor:
            cursor.executemany(_INSERT, [
                (s.seq, s.decision_id, s.recorded_at, s.caller, s.request_id, s.request_fingerprint, s.ruleset,
                 s.version, s.ruleset_sha256, s.engine_version, s.as_of, s.subject, p["facts"], p["outcome"],
                 p["decision"], s.response, s.trace_id, s.prev_hash, s.hash)
                for s, p in assigned.inserts])
        conn.execute("UPDATE chain_head SET seq = %s, hash = %s WHERE id = 1", (assigned.head.seq, assigned.head.hash))

    def probe(self) -> None:
        with self._pool.connection() as conn:
            conn.execute("BEGIN")
            try:
                conn.execute("SET LOCAL lock_timeout = '5s'")
                conn.execute("SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE")
                conn.execute(_INSERT, PROBE_ROW)
            finally:
                conn.execute("ROLLBACK")

    def log_access(self, who: str, action: str, detail: dict[str, Any]) -> None:
        text = json.dumps(detail, sort_keys=True, ensure_ascii=False, default=str)
        # Microseconds, as timestamptz keeps them, so the hash made here is the one verify remakes.
        at = datetime.now(UTC)
        with self._pool.connection() as conn, conn.transaction():
            # One chained append at a time (per schema): the head read here is still the head at commit.
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(coalesce(current_schema(), '')))",
                         (_ACCESS_LOCK_CLASS,))
            prev_hash = _access_head(conn).hash
            digest = access_hash(prev_hash, at, who, action, json.loads(text))
            conn.execute("INSERT INTO access_log (at, who, action, detail, prev_hash, hash) "
                         "VALUES (%s, %s, %s, %s::json, %s, %s)", (at, who, action, text, prev_hash, digest))

    # -- reading -------------------------------------------------------------------------------------

    def _one(self, where: str, params: tuple[Any, ...]) -> StoredRecord | None:
        with self._pool.connection() as conn:
            row = conn.execute(f"{_SELECT} WHERE {where}", params).fetchone()
        return None if row is None else record_from_row(row)

    def find_by_request(self, caller: str, request_id: str) -> StoredRecord | None:
        if not request_id:
            return None
        return self._one("caller = %s AND request_id = %s AND request_id <> ''", (caller, request_id))

    def get(self, decision_id: str) -> StoredRecord | None:
        return self._one("decision_id = %s", (decision_id,))

    def list(self, filters: ListFilter, cursor: str | None, limit: int) -> tuple[
            builtins.list[StoredRecord], str | None]:
        check_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        where, params = _where(filters, before)
        with self._pool.connection() as conn:
            rows = conn.execute(f"{_SELECT}{where} ORDER BY seq DESC LIMIT %s", (*params, limit + 1)).fetchall()
        return page([record_from_row(row) for row in rows], limit)

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    def iterate(self, filters: ListFilter) -> Iterator[StoredRecord]:
        where, params = _where(filters, None)
        if self._pool.closed:
            raise RuntimeError("the decision log is closed")
        return self._rows(f"{_SELECT}{where} ORDER BY seq", params, record_from_row)

    def count(self, filters: ListFilter, at_most: int) -> int:
        where, params = _where(filters, None)
        with self._pool.connection() as conn:
            row = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM decisions{where} LIMIT %s) AS matching",
                               (*params, at_most)).fetchone()
        assert row is not None
        return int(row[0])

    def replay_inputs(self, filters: ListFilter) -> Iterator[ReplayInput]:
        where, params = _where(filters, None)
        if self._pool.closed:
            raise RuntimeError("the decision log is closed")
        return self._rows(f"{_INPUTS}{where} ORDER BY seq", params, input_from_row)

    def reader_location(self) -> str:
        return self._pool.dsn

    def replay_seqs(self, filters: ListFilter) -> Iterator[int]:
        where, params = _where(filters, None)
        return self._rows(f"SELECT seq FROM decisions{where} ORDER BY seq", params, seq_of_row)

    def _rows(self, query: str, params: builtins.list[Any],
              make: Callable[[tuple[Any, ...]], _Row]) -> Iterator[_Row]:
        """Each row of `query`, made into a value by `make`, read from one snapshot."""
        with self._snapshot() as conn, conn.cursor(name="regelmotor_rows") as cursor:
            cursor.itersize = _FETCH
            cursor.execute(query, params)
            for row in cursor:
                yield make(row)

    def verify(self) -> VerifyResult:
        return self._verify(None)

    def verify_since(self, start: ChainHead) -> VerifyResult:
        return self._verify(start)

    def _verify(self, start: ChainHead | None) -> VerifyResult:
        with self._snapshot() as conn:
            row = conn.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
            assert row is not None, "the chain head row is missing"
            head = ChainHead(int(row[0]), str(row[1]))

            def walk(after: int, begin: ChainHead | None) -> VerifyResult:
                with conn.cursor(name="regelmotor_verify") as cursor:
                    cursor.itersize = _FETCH
                    cursor.execute(f"{_SELECT} WHERE seq > %s ORDER BY seq", (after,))
                    return verify(_items(cursor), head, start=begin)

            return verify_after_cut(lambda sql: conn.execute(sql).fetchone(), walk, head, start)

    def heads(self) -> tuple[ChainHead, AccessHead]:
        with self._snapshot() as conn:
            row = conn.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
            assert row is not None, "the chain head row is missing"
            return ChainHead(int(row[0]), str(row[1])), _access_head(conn)

    def hash_at(self, seq: int) -> str | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT hash FROM decisions WHERE seq = %s", (seq,)).fetchone()
        return None if row is None else str(row[0])

    def access_log(self, from_id: int = 0) -> builtins.list[dict[str, Any]]:
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT id, at, who, action, detail::text, prev_hash, hash FROM access_log "
                                "WHERE id >= %s ORDER BY id", (from_id,)).fetchall()
        return [_access_row(row) for row in rows]

    def list_access(self, filters: AccessFilter, cursor: str | None, limit: int) -> tuple[
            builtins.list[dict[str, Any]], str | None]:
        check_limit(limit)
        before = decode_access_cursor(cursor) if cursor else None
        where, params = _access_where(filters, before)
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT id, at, who, action, detail::text, prev_hash, hash FROM access_log"
                                f"{where} ORDER BY id DESC LIMIT %s", (*params, limit + 1)).fetchall()
        return access_page([_access_row(row) for row in rows], limit)

    def count_per_day(self, filters: ListFilter, outcome_field: str) -> builtins.list[DayCount]:
        check_count_request(filters, outcome_field)
        where, params = _where(filters, None)
        query = ("SELECT to_char((recorded_at AT TIME ZONE %s)::date, 'YYYY-MM-DD'), "
                 f"(outcome::jsonb -> %s::text)::text, count(*) FROM decisions{where} GROUP BY 1, 2 LIMIT %s")
        with self._pool.connection() as conn:
            rows = conn.execute(query, (DAY_ZONE, outcome_field, *params, MAX_GROUPS + 1)).fetchall()
        if len(rows) > MAX_GROUPS:
            raise TooManyGroups(f"more than {MAX_GROUPS} days and values")
        return day_counts(rows)

    def schema_versions(self) -> builtins.list[int]:
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        return [int(row[0]) for row in rows]

    def retention(self) -> RetentionStore:
        from .version_tables import RETENTION_LOCK, PostgresTables

        return RetentionStore(PostgresTables(self._pool.connection, RETENTION_LOCK))

    def rulesets(self) -> RulesetStore:
        from .version_tables import PostgresTables

        return RulesetStore(PostgresTables(self._pool.connection))

    def close(self) -> None:
        self._pool.close()


# pg_advisory_xact_lock(int, int) class for access-log appends ("RGAL"); the migrations use another.
_ACCESS_LOCK_CLASS = 0x5247414C


def _access_head(conn: Connection) -> AccessHead:
    row = conn.execute("SELECT id, hash FROM access_log WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
    return NO_ACCESS if row is None else AccessHead(int(row[0]), str(row[1]))


def _access_row(row: tuple[Any, ...]) -> dict[str, Any]:
    id_, at, who, action, detail, prev_hash, digest = row
    return {"id": id_, "at": at.astimezone(UTC), "who": who, "action": action, "detail": json.loads(detail),
            "prev_hash": prev_hash, "hash": digest}


def _access_where(filters: AccessFilter, before: int | None) -> tuple[str, builtins.list[Any]]:
    conditions: builtins.list[tuple[str, Any]] = [
        ("id < %s", before), ("at >= %s", filters.at_from), ("at < %s", filters.at_to),
        ("who = %s", filters.who), ("action = %s", filters.action),
        ("(detail ->> 'decision_id') = %s", filters.decision_id),
        ("strpos(lower(detail ->> 'formaal'), %s) > 0", folded(filters.formaal_contains))]
    used = [(clause, value) for clause, value in conditions if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(clause for clause, _ in used), [value for _, value in used]


def _items(cursor: psycopg.ServerCursor[tuple[Any, ...]]) -> Iterator[Item]:
    for row in cursor:
        try:
            yield record_from_row(row)
        except CorruptRecord as exc:
            yield Unreadable(int(row[0]), exc.decision_id, exc.reason)


def _where(filters: ListFilter, before: int | None) -> tuple[str, builtins.list[Any]]:
    clauses: builtins.list[str] = []
    params: builtins.list[Any] = []
    if before is not None:
        clauses.append("seq < %s")
        params.append(before)
    if filters.recorded_from is not None:
        clauses.append("recorded_at >= %s")
        params.append(filters.recorded_from)
    if filters.recorded_to is not None:
        clauses.append("recorded_at < %s")
        params.append(filters.recorded_to)
    for name in ("ruleset", "version", "caller"):
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"{name} = %s")
            params.append(value)
    if filters.subjects is not None:  # a list of values, not one array: the partial subject index stays usable
        clauses.append(f"subject IN ({', '.join('%s' for _ in filters.subjects)})")
        params += filters.subjects
    for column, operator, bound in range_conditions(filters):
        clauses.append(f"{column} {operator} %s")
        params.append(bound)
    if filters.outcome_field is not None:
        if filters.outcome_value is None:
            clauses.append("((outcome::jsonb -> %s::text) IS NULL OR (outcome::jsonb -> %s::text) = 'null'::jsonb)")
            params += [filters.outcome_field, filters.outcome_field]
        else:
            # jsonb equality: numbers by value, true is not 1, objects regardless of key order.
            clauses.append("(outcome::jsonb -> %s::text) = %s::jsonb")
            params += [filters.outcome_field, canonical_json(filters.outcome_value)]
    if filters.lookups is not None:
        clauses.append("strpos(decision::text, %s) > 0" if filters.lookups else "strpos(decision::text, %s) = 0")
        params.append(LOOKUP_MARK)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
