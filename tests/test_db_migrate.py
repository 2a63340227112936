"""`regelmotor db migrate` (the Kubernetes migration Job, deploy/k8s): applies the missing schema migrations to
a real PostgreSQL, applies nothing the second time, and refuses a schema newer than the code."""

from __future__ import annotations

import pytest

from regelmotor.cli.main import main
from regelmotor.store.migrations import POSTGRES_MIGRATIONS
from tests.postgres_support import postgres_schema, psycopg


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
