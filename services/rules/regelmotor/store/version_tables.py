"""How each backend reaches the ruleset tables for regelmotor.store.versions (and the retention cuts for
regelmotor.store.pruning): its transactions and its lock.

The lifecycle lock serialises every lifecycle step of a store (and the appends to its event chain) across
threads, processes and instances: SQLite takes the log's writer (its thread lock and the file's flock) and
``BEGIN IMMEDIATE``; PostgreSQL a transaction-scoped advisory lock per schema (pruning takes one of its own,
`RETENTION_LOCK`: appends go on beside it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    PgConnection = psycopg.Connection[tuple[Any, ...]]

# pg_advisory_xact_lock(int, int) class for lifecycle steps ("RGLC"); the migrations and the access log use others.
_LIFECYCLE_LOCK_CLASS = 0x52474C43
RETENTION_LOCK = 0x52475243  # "RGRC": one prune at a time per schema


class _SQLiteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    def changed(self, sql: str, params: Sequence[Any] = ()) -> int:
        """How many rows the statement changed."""
        return self.conn.execute(sql, tuple(params)).rowcount


class SQLiteTables:
    selection_date = "coalesce(json_extract(decision, '$.selection_date'), as_of)"

    def __init__(self, writer: Callable[[], AbstractContextManager[sqlite3.Connection]],
                 reader: Callable[[], AbstractContextManager[sqlite3.Connection]]) -> None:
        self.writer = writer  # the log's writer connection, held by this thread and this log alone: the lock
        self.reader = reader

    @contextmanager
    def writing(self) -> Iterator[_SQLiteTx]:
        with self.writer() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def reading(self) -> Iterator[_SQLiteTx]:
        with self.reader() as conn:
            conn.execute("BEGIN")
            yield _SQLiteTx(conn)


class _PostgresTx:
    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(sql.replace("?", "%s"), tuple(params))
        return cursor.fetchall() if cursor.description is not None else []

    def changed(self, sql: str, params: Sequence[Any] = ()) -> int:
        """How many rows the statement changed."""
        return self.conn.execute(sql.replace("?", "%s"), tuple(params)).rowcount


class PostgresTables:
    selection_date = "coalesce(decision::jsonb ->> 'selection_date', as_of)"

    def __init__(self, connection: Callable[[], AbstractContextManager[PgConnection]],
                 lock: int = _LIFECYCLE_LOCK_CLASS) -> None:
        self.connection = connection  # one of the log's pooled connections
        self.lock = lock

    @contextmanager
    def writing(self) -> Iterator[_PostgresTx]:
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(coalesce(current_schema(), '')))",
                         (self.lock,))
            yield _PostgresTx(conn)

    @contextmanager
    def reading(self) -> Iterator[_PostgresTx]:
        with self.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield _PostgresTx(conn)
