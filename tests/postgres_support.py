"""PostgreSQL for tests: REGELMOTOR_TEST_POSTGRES_DSN (default postgresql://postgres@127.0.0.1:5432/test).

When the server cannot be reached the PostgreSQL cases are skipped - except when the environment variable CI
is set, where they fail."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from tests.system_tools import debian_programs

try:
    import psycopg
except ImportError:  # pragma: no cover - psycopg is a dependency; without it only SQLite is tested
    psycopg = None  # type: ignore[assignment]

__all__ = ["POSTGRES_DSN", "fresh_database", "postgres_schema", "postgres_tools", "psycopg", "require_postgres"]

POSTGRES_DSN = os.environ.get("REGELMOTOR_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def require_postgres() -> None:
    """Skip the calling test (fail it under CI) when PostgreSQL cannot be reached."""
    reason = ""
    if psycopg is None:
        reason = "psycopg is not installed"
    else:
        try:
            with psycopg.connect(POSTGRES_DSN, connect_timeout=3):
                return
        except psycopg.OperationalError as exc:
            reason = f"PostgreSQL at {POSTGRES_DSN} is unreachable: {exc}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the PostgreSQL backend must be tested)")
    pytest.skip(reason)


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A DSN whose tables live in a fresh schema of their own, dropped afterwards."""
    with _made_and_dropped("SCHEMA", "CASCADE") as schema:
        separator = "&" if "?" in POSTGRES_DSN else "?"
        yield f"{POSTGRES_DSN}{separator}options={quote(f'-csearch_path={schema}', safe='')}"


@contextmanager
def fresh_database() -> Iterator[str]:
    """The DSN of a new database of its own on the test server (a restore's target), dropped afterwards."""
    with _made_and_dropped("DATABASE", "WITH (FORCE)") as name:
        scheme, netloc, _, query, fragment = urlsplit(POSTGRES_DSN)
        yield urlunsplit((scheme, netloc, f"/{name}", query, fragment))


@contextmanager
def _made_and_dropped(kind: str, drop_option: str) -> Iterator[str]:
    """The name of a new SCHEMA or DATABASE on the test server, dropped (with `drop_option`) afterwards."""
    require_postgres()
    name = f"rm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        admin.execute(f"CREATE {kind} {name}")
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
            admin.execute(f"DROP {kind} {name} {drop_option}")


def postgres_tools() -> dict[str, str]:
    """pg_dump and pg_restore (Debian's postgresql-client), installed by the test set-up when missing."""
    return debian_programs("postgresql-client", ("pg_dump", "pg_restore"), "the backup and restore tests")
