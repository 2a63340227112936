"""`regelmotor db migrate` (the Kubernetes migration Job, deploy/k8s): applies the missing schema migrations to
a real PostgreSQL, applies nothing the second time, and refuses a schema newer than the code; so does the server
(`regelmotor serve`, a real process) on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from contextlib import ExitStack, closing
from pathlib import Path

import pytest

from regelmotor.cli.main import main
from regelmotor.store import open_log
from regelmotor.store.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from tests.postgres_support import postgres_schema, psycopg
from tests.server_process import serve_once


def test_migrate_applies_once_then_nothing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    every = [m.version for m in POSTGRES_MIGRATIONS]
    with postgres_schema() as dsn:
        monkeypatch.setenv("REGELMOTOR_DECISION_LOG", dsn)
        assert main(["db", "migrate"]) == 0
        assert capsys.readouterr().out == (f"migrations applied: {', '.join(map(str, every))}; "
                                           f"schema version {every[-1]}\n")
        with psycopg.connect(dsn) as conn:
            stored = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        assert stored == every
        assert main(["db", "migrate"]) == 0
        assert capsys.readouterr().out == f"migrations applied: none (already current); schema version {every[-1]}\n"
        with psycopg.connect(dsn) as conn:  # a store migrated by a newer version of the service
            conn.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (%s, 'later', now())",
                         (every[-1] + 1,))
        assert main(["db", "migrate", "--decision-log", dsn]) == 2
        assert "newer than this code knows" in capsys.readouterr().err


def test_migrate_names_the_missing_or_unreachable_store(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("REGELMOTOR_DECISION_LOG", raising=False)
    assert main(["db", "migrate"]) == 2
    assert "decision_log: give --decision-log or REGELMOTOR_DECISION_LOG" in capsys.readouterr().err
    assert main(["db", "migrate", "--decision-log", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("regelmotor: db migrate: decision_log: cannot open the store (") and "Traceback" not in err


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_server_refuses_a_schema_newer_than_it_knows_in_one_line(backend: str, tmp_path: Path) -> None:
    """`regelmotor serve` on a store a newer release migrated: exit 2, one line naming the setting, the versions and
    the fix, no traceback, and nothing written to the store (no ruleset seeded)."""
    assert len(SQLITE_MIGRATIONS) == len(POSTGRES_MIGRATIONS)
    newer = POSTGRES_MIGRATIONS[-1].version + 1
    with ExitStack() as stack:
        location = str(tmp_path / "decisions.db") if backend == "sqlite" else stack.enter_context(postgres_schema())
        open_log(location).close()
        _sql(location, f"INSERT INTO schema_version (version, description, applied_at) VALUES ({newer}, 'later', "
                       "'2027-01-01T00:00:00+00:00')")
        refused = serve_once({"REGELMOTOR_DECISION_LOG": location})
        assert refused.returncode == 2, refused.stderr
        assert "Traceback" not in refused.stderr and "serving gRPC" not in refused.stdout
        message = refused.stderr.strip().splitlines()[-1]
        assert message.startswith("regelmotor: cannot start: REGELMOTOR_DECISION_LOG: the decision log at "), message
        assert (f"has schema version {newer}, newer than this regelmotor knows ({newer - 1}): a newer release "
                "migrated it; run that release or a newer one") in message
        assert _sql(location, "SELECT count(*) FROM ruleset_versions") == [(0,)]
        assert [v for (v,) in _sql(location, "SELECT version FROM schema_version ORDER BY version")] \
            == [*range(1, newer + 1)]


def _sql(location: str, statement: str) -> list[tuple[object, ...]]:
    if location.startswith("postgresql://"):
        with psycopg.connect(location, autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []
    with closing(sqlite3.connect(location, isolation_level=None)) as db:
        return db.execute(statement).fetchall()
