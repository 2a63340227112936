"""Versioned schema migrations for both backends, applied when a log is opened.

Each backend has its own list of migrations numbered 1, 2, 3, …; the table ``schema_version`` records
which have been applied (version, description, applied_at). Opening a log applies the missing ones in
order, each in the same transaction as its ``schema_version`` row, under a lock (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock per schema), so two processes starting at
once apply each migration exactly once. A store whose schema is newer than this code is refused.

Migrations are never edited once released: a change to the schema is a new migration at the end. The SQL
lives here (not in .sql files) so that it ships inside the Python package without package-data settings.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .chain import GENESIS

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


class SchemaError(RuntimeError):
    """The store's schema cannot be used by this code (for instance: it is newer)."""


class SchemaVersionMismatch(SchemaError):
    """The store's schema version is not this code's: `found` in the store, `known` to this code."""

    def __init__(self, found: int, known: int, message: str) -> None:
        self.found = found
        self.known = known
        super().__init__(message)


class SchemaTooNew(SchemaVersionMismatch):
    """The store was migrated by a newer release: this code does not know all of its schema."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(found, known, f"the store's schema is version {found}, newer than this code knows "
                                       f"({known}): upgrade regelmotor")


class SchemaBehind(SchemaVersionMismatch):
    """The store lacks migrations this code has, and the caller asked not to apply them (`regelmotor db prune`)."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(found, known, f"the store's schema is version {found}, older than this regelmotor's "
                                       f"({known}): run `regelmotor db migrate` first")


SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "decisions, chain head and access log", (
        """CREATE TABLE decisions (
            seq INTEGER PRIMARY KEY,
            decision_id TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            caller TEXT NOT NULL,
            request_id TEXT NOT NULL,
            ruleset TEXT NOT NULL,
            version TEXT NOT NULL,
            ruleset_sha256 TEXT NOT NULL,
            engine_version TEXT NOT NULL,
            as_of TEXT NOT NULL,
            subject TEXT,
            facts TEXT NOT NULL,
            outcome TEXT NOT NULL,
            decision TEXT NOT NULL,
            response BLOB NOT NULL,
            trace_id TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        "CREATE UNIQUE INDEX decisions_request ON decisions (caller, request_id) WHERE request_id <> ''",
        "CREATE UNIQUE INDEX decisions_decision_id ON decisions (decision_id)",
        "CREATE INDEX decisions_recorded_at ON decisions (recorded_at)",
        "CREATE INDEX decisions_ruleset_version ON decisions (ruleset, version)",
        "CREATE INDEX decisions_subject ON decisions (subject) WHERE subject IS NOT NULL",
        "CREATE INDEX decisions_caller ON decisions (caller, seq)",
        "CREATE TABLE chain_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL)",
        f"INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '{GENESIS}')",
        """CREATE TABLE access_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            who TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL
        )""",
        """CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
           BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END""",
        """CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
           BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END""",
        """CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
           BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END""",
        """CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
           BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END""",
    )),
    # Nullable: the records stored before it have no fingerprint (see regelmotor.store.base on retries).
    Migration(2, "the fingerprint of the request stored with its request_id", (
        "ALTER TABLE decisions ADD COLUMN request_fingerprint TEXT",
    )),
    # Nullable: rows logged before it have no chain; the chain starts at the first row after it
    # (regelmotor.store.access_chain).
    Migration(3, "a hash chain over the access log", (
        "ALTER TABLE access_log ADD COLUMN prev_hash TEXT",
        "ALTER TABLE access_log ADD COLUMN hash TEXT",
    )),
    # Ruleset versions kept in the store (regelmotor.store.versions): sources never change, and the state of a
    # version is what its chained lifecycle events say (regelmotor.store.lifecycle).
    Migration(4, "ruleset versions and their chained lifecycle events", (
        """CREATE TABLE ruleset_versions (
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            source TEXT NOT NULL,
            cases TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            meta TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (name, version)
        )""",
        """CREATE TABLE ruleset_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            who TEXT NOT NULL,
            action TEXT NOT NULL,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        "CREATE INDEX ruleset_events_name ON ruleset_events (name, id)",
        """CREATE TRIGGER ruleset_versions_no_update BEFORE UPDATE ON ruleset_versions
           BEGIN SELECT RAISE(ABORT, 'ruleset sources never change'); END""",
        """CREATE TRIGGER ruleset_versions_no_delete BEFORE DELETE ON ruleset_versions
           BEGIN SELECT RAISE(ABORT, 'ruleset sources never change'); END""",
        """CREATE TRIGGER ruleset_events_no_update BEFORE UPDATE ON ruleset_events
           BEGIN SELECT RAISE(ABORT, 'ruleset events are append-only'); END""",
        """CREATE TRIGGER ruleset_events_no_delete BEFORE DELETE ON ruleset_events
           BEGIN SELECT RAISE(ABORT, 'ruleset events are append-only'); END""",
    )),
    # Retention (docs/retention.md): records past their retention period are deleted only under a signed cut
    # (regelmotor.store.retention) recorded first; a cut never moves back, and the rest stays append-only.
    Migration(5, "retention cuts: records deleted only under a cut that covers them", (
        """CREATE TABLE retention_cuts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL,
            cutoff TEXT NOT NULL,
            at TEXT NOT NULL,
            key_id TEXT NOT NULL,
            signature TEXT NOT NULL
        )""",
        """CREATE TRIGGER retention_cuts_forward BEFORE INSERT ON retention_cuts
           WHEN NEW.seq <= coalesce((SELECT max(seq) FROM retention_cuts), 0)
             OR NEW.seq > (SELECT seq FROM chain_head WHERE id = 1)
           BEGIN SELECT RAISE(ABORT, 'a retention cut moves forward, and not past the chain head'); END""",
        """CREATE TRIGGER retention_cuts_no_update BEFORE UPDATE ON retention_cuts
           BEGIN SELECT RAISE(ABORT, 'retention cuts are append-only'); END""",
        """CREATE TRIGGER retention_cuts_no_delete BEFORE DELETE ON retention_cuts
           BEGIN SELECT RAISE(ABORT, 'retention cuts are append-only'); END""",
        "DROP TRIGGER decisions_no_delete",
        """CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
           WHEN OLD.seq > coalesce((SELECT max(seq) FROM retention_cuts), 0)
           BEGIN SELECT RAISE(ABORT, 'decisions are append-only: a record is deleted only under a retention cut');
           END""",
    )),
    # The delete guard above looks up max(seq) of the cuts once per deleted row: without an index that is a scan of
    # every cut per row (one DELETE of 8 649 rows under 3 650 cuts, on this machine: 1.86 s; with the index 0.016 s).
    Migration(6, "an index on the retention cuts' seq for the delete guard", (
        "CREATE INDEX retention_cuts_seq ON retention_cuts (seq)",
    )),
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "decisions, chain head and access log", (
        """CREATE TABLE decisions (
            seq bigint PRIMARY KEY,
            decision_id text NOT NULL,
            recorded_at timestamptz NOT NULL,
            caller text NOT NULL,
            request_id text NOT NULL,
            ruleset text NOT NULL,
            version text NOT NULL,
            ruleset_sha256 text NOT NULL,
            engine_version text NOT NULL,
            as_of text NOT NULL,
            subject text,
            facts json NOT NULL,
            outcome json NOT NULL,
            decision json NOT NULL,
            response bytea NOT NULL,
            trace_id text NOT NULL,
            prev_hash text NOT NULL,
            hash text NOT NULL
        )""",
        # json (not jsonb) keeps the stored text exactly as hashed.
        "CREATE UNIQUE INDEX decisions_request ON decisions (caller, request_id) WHERE request_id <> ''",
        "CREATE UNIQUE INDEX decisions_decision_id ON decisions (decision_id)",
        "CREATE INDEX decisions_recorded_at ON decisions (recorded_at)",
        "CREATE INDEX decisions_ruleset_version ON decisions (ruleset, version)",
        "CREATE INDEX decisions_subject ON decisions (subject) WHERE subject IS NOT NULL",
        "CREATE INDEX decisions_caller ON decisions (caller, seq)",
        "CREATE TABLE chain_head (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL, hash text NOT NULL)",
        f"INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '{GENESIS}')",
        """CREATE TABLE access_log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            who text NOT NULL,
            action text NOT NULL,
            detail json NOT NULL
        )""",
        """CREATE FUNCTION regelmotor_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'the table % is append-only', TG_TABLE_NAME; END $$""",
        """CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
           FOR EACH ROW EXECUTE FUNCTION regelmotor_append_only()""",
        """CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
           FOR EACH STATEMENT EXECUTE FUNCTION regelmotor_append_only()""",
        """CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
           FOR EACH ROW EXECUTE FUNCTION regelmotor_append_only()""",
        """CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
           FOR EACH STATEMENT EXECUTE FUNCTION regelmotor_append_only()""",
    )),
    # Nullable and without a default, so no row is rewritten (nor any UPDATE trigger fired).
    Migration(2, "the fingerprint of the request stored with its request_id", (
        "ALTER TABLE decisions ADD COLUMN request_fingerprint text",
    )),
    # Nullable and without a default, as in 2; the chain starts at the first row after it.
    Migration(3, "a hash chain over the access log", (
        "ALTER TABLE access_log ADD COLUMN prev_hash text",
        "ALTER TABLE access_log ADD COLUMN hash text",
    )),
    # As SQLite's 4. Text columns for the JSON (meta, detail): the hashed text is kept exactly.
    Migration(4, "ruleset versions and their chained lifecycle events", (
        """CREATE TABLE ruleset_versions (
            name text NOT NULL,
            version text NOT NULL,
            source text NOT NULL,
            cases text NOT NULL,
            sha256 text NOT NULL,
            meta text NOT NULL,
            created_at timestamptz NOT NULL,
            PRIMARY KEY (name, version)
        )""",
        """CREATE TABLE ruleset_events (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL,
            who text NOT NULL,
            action text NOT NULL,
            name text NOT NULL,
            version text NOT NULL,
            sha256 text NOT NULL,
            detail text NOT NULL,
            prev_hash text NOT NULL,
            hash text NOT NULL
        )""",
        "CREATE INDEX ruleset_events_name ON ruleset_events (name, id)",
        """CREATE TRIGGER ruleset_versions_append_only BEFORE UPDATE OR DELETE ON ruleset_versions
           FOR EACH ROW EXECUTE FUNCTION regelmotor_append_only()""",
        """CREATE TRIGGER ruleset_versions_no_truncate BEFORE TRUNCATE ON ruleset_versions
           FOR EACH STATEMENT EXECUTE FUNCTION regelmotor_append_only()""",
        """CREATE TRIGGER ruleset_events_append_only BEFORE UPDATE OR DELETE ON ruleset_events
           FOR EACH ROW EXECUTE FUNCTION regelmotor_append_only()""",
        """CREATE TRIGGER ruleset_events_no_truncate BEFORE TRUNCATE ON ruleset_events
           FOR EACH STATEMENT EXECUTE FUNCTION regelmotor_append_only()""",
    )),
    # As SQLite's 5. The delete check is a statement trigger over the deleted rows (one look at the cuts per
    # DELETE, not per row); TRUNCATE stays refused.
    Migration(5, "retention cuts: records deleted only under a cut that covers them", (
        """CREATE TABLE retention_cuts (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            seq bigint NOT NULL,
            hash text NOT NULL,
            cutoff timestamptz NOT NULL,
            at timestamptz NOT NULL,
            key_id text NOT NULL,
            signature text NOT NULL
        )""",
        """CREATE FUNCTION regelmotor_cut_forward() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF NEW.seq <= coalesce((SELECT max(seq) FROM retention_cuts), 0)
                OR NEW.seq > (SELECT seq FROM chain_head WHERE id = 1) THEN
               RAISE EXCEPTION 'a retention cut moves forward, and not past the chain head (seq %)', NEW.seq;
             END IF;
             RETURN NEW;
           END $$""",
        """CREATE TRIGGER retention_cuts_forward BEFORE INSERT ON retention_cuts
           FOR EACH ROW EXECUTE FUNCTION regelmotor_cut_forward()""",
        """CREATE TRIGGER retention_cuts_append_only BEFORE UPDATE OR DELETE ON retention_cuts
           FOR EACH ROW EXECUTE FUNCTION regelmotor_append_only()""",
        """CREATE TRIGGER retention_cuts_no_truncate BEFORE TRUNCATE ON retention_cuts
           FOR EACH STATEMENT EXECUTE FUNCTION regelmotor_append_only()""",
        """CREATE FUNCTION regelmotor_delete_under_cut() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF (SELECT max(seq) FROM gone) > coalesce((SELECT max(seq) FROM retention_cuts), 0) THEN
               RAISE EXCEPTION 'the table decisions is append-only: a record is deleted only under a retention cut';
             END IF;
             RETURN NULL;
           END $$""",
        "DROP TRIGGER decisions_append_only ON decisions",
        """CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
           FOR EACH ROW EXECUTE FUNCTION regelmotor_append_only()""",
        """CREATE TRIGGER decisions_no_delete AFTER DELETE ON decisions REFERENCING OLD TABLE AS gone
           FOR EACH STATEMENT EXECUTE FUNCTION regelmotor_delete_under_cut()""",
    )),
    # As SQLite's 6: max(seq) of the cuts, read by both guards, from the index.
    Migration(6, "an index on the retention cuts' seq for the delete guard", (
        "CREATE INDEX retention_cuts_seq ON retention_cuts (seq)",
    )),
)

# pg_advisory_xact_lock(int, int): this class id ("REGE") and a hash of the schema.
_PG_LOCK_CLASS = 0x52454745


def pending(applied: Sequence[int], migrations: Sequence[Migration]) -> list[Migration]:
    """The migrations still to apply, given the versions already applied (in order)."""
    known = [m.version for m in migrations]
    if known != list(range(1, len(known) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3, …; got {known}")
    if list(applied) != list(range(1, len(applied) + 1)):
        raise SchemaError(f"the store's schema_version table is damaged: versions {list(applied)}")
    if len(applied) > len(known):
        raise SchemaTooNew(len(applied), len(known))
    return list(migrations[len(applied):])


def apply_sqlite(conn: sqlite3.Connection, migrations: Sequence[Migration] = SQLITE_MIGRATIONS, *,
                 apply: bool = True) -> list[int]:
    """Apply the missing migrations (conn must be in autocommit mode: isolation_level None). Returns the
    versions applied now. With apply=False a missing one raises SchemaBehind and nothing is written."""
    # Inside BEGIN IMMEDIATE, so concurrent first opens wait for each other (busy timeout) instead of
    # one of them failing on a lock upgrade.
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                     "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)")
        applied = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        todo = pending(applied, migrations)
        if todo and not apply:
            raise SchemaBehind(len(applied), len(migrations))
        for migration in todo:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                         (migration.version, migration.description, datetime.now(UTC).isoformat()))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return [m.version for m in todo]


def apply_postgres(conn: psycopg.Connection[Any], migrations: Sequence[Migration] = POSTGRES_MIGRATIONS, *,
                   apply: bool = True) -> list[int]:
    """Apply the missing migrations (conn in autocommit mode). Returns the versions applied now. With apply=False
    a missing one raises SchemaBehind, and the transaction (schema_version too) is rolled back."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(coalesce(current_schema(), '')))",
                     (_PG_LOCK_CLASS,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                     "(version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL)")
        applied = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        todo = pending(applied, migrations)
        if todo and not apply:
            raise SchemaBehind(len(applied), len(migrations))
        for migration in todo:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (%s, %s, now())",
                         (migration.version, migration.description))
    return [m.version for m in todo]
