"""The decision log's growth: bytes per decision on SQLite and PostgreSQL, and per million decisions (extrapolated).

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/log_growth.py [--decisions 3000] [--json FILE]

For each backend, one service (`regelmotor serve --workers 1`, tests/server_process.py) on a fresh store: SQLite in
its temporary data directory, PostgreSQL in a new database of `--postgres` (dropped afterwards). For each bundled
ruleset's current version and for the explanation levels FULL (the default) and NONE, `--decisions` decisions go
through one EvaluateStream: the version's test cases that expect a decision, in turn, each with a request_id and a
national_id of its own (synthetic test numbers, month + 80, distinct; the service runs with allow_synthetic_ids),
as a hospital system sends them. The store is measured before and after each batch:

- SQLite: the bytes the database holds (page_count × page_size less free pages; what the file is once the WAL is
  checkpointed), split into the decisions table and its indexes with SQLite's dbstat table;
- PostgreSQL: pg_total_relation_size of every table of the store (heap, TOAST, indexes), the decisions table's
  heap with TOAST (pg_table_size) and its indexes (pg_indexes_size) apart.

Printed per decision, and × 1 000 000: a linear extrapolation (records are appended and never updated; B-tree
indexes grow with the number of rows), not a measurement of a million.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.decision_log_load import postgres_database  # noqa: E402  (needs the paths above)
from bench.engine_memory import VERSIONS  # noqa: E402

LEVELS = ("FULL", "NONE")


@dataclass
class Size:
    """A store's bytes: all of it, the decisions table (with TOAST / overflow pages) and the decisions' indexes."""

    store: int
    table: int
    indexes: int


@dataclass
class Growth:
    backend: str
    ruleset: str
    level: str
    decisions: int
    errors: int
    store_per_decision: float
    table_per_decision: float
    indexes_per_decision: float
    seconds: float


def synthetic_numbers() -> Iterator[str]:
    """Distinct synthetic identity numbers (Test Norge's kind: month + 80, born 1950–1999, individual numbers below
    500), with valid check digits; those whose check digit would be 10 do not exist and are left out."""
    from stdnum.no import fodselsnummer

    for individual in range(500):
        for year in range(50, 100):
            for month in range(81, 93):
                for day in range(1, 29):
                    stem = f"{day:02d}{month:02d}{year:02d}{individual:03d}"
                    first = fodselsnummer.calc_check_digit1(stem)
                    second = fodselsnummer.calc_check_digit2(stem + first) if len(first) == 1 else "10"
                    if len(first) == 1 and len(second) == 1:
                        yield stem + first + second


def requests_of(name: str, version: str, level: str, count: int, numbers: Iterator[str]) -> list[bytes]:
    """`count` EvaluateRequests from the version's cases that expect a decision, in turn."""
    from regelmotor.core.cases import load_cases
    from regelmotor.core.loader import load_ruleset_file
    from regelmotor_api.v1 import decision_pb2

    path = ROOT / "rulesets" / name / f"{version}.yaml"
    cases = [c for c in load_cases(path.with_name(f"{version}.cases.yaml"), load_ruleset_file(path))
             if c.expect_error is None]
    explanation = f"EXPLANATION_LEVEL_{level}"
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    return [decision_pb2.EvaluateRequest(
        ruleset=name, version=version, as_of=_iso(cases[i % len(cases)].as_of), facts=cases[i % len(cases)].facts,
        request_id=f"growth-{tag}-{i}", national_id=next(numbers), explanation=explanation).SerializeToString()
        for i in range(count)]


def _iso(value: date) -> str:
    return value.isoformat()


def stream(address: str, payloads: list[bytes]) -> tuple[int, int]:
    """Send the requests over one EvaluateStream; (decisions, errors)."""
    import grpc

    from regelmotor_api.v1 import decision_pb2

    decisions = errors = 0
    with grpc.insecure_channel(address) as channel:
        call: grpc.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(
            "/regelmotor.v1.DecisionService/EvaluateStream")
        for raw in call(iter(payloads), timeout=1800, metadata=(("regelmotor-caller", "dips"),)):
            if decision_pb2.EvaluateStreamResponse.FromString(raw).HasField("decision"):
                decisions += 1
            else:
                errors += 1
    return decisions, errors


def sqlite_size(database: Path) -> Size:
    with closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as db:
        page_size, pages, free = (db.execute(f"PRAGMA {p}").fetchone()[0]
                                  for p in ("page_size", "page_count", "freelist_count"))
        parts = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    indexes = sum(size for name, size in parts.items() if name.startswith("decisions_"))
    return Size((pages - free) * page_size, parts.get("decisions", 0), indexes)


def postgres_size(dsn: str) -> Size:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        (store,) = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                                "AND c.relkind = 'r'").fetchone() or (0,)
        table, indexes = conn.execute("SELECT pg_table_size('decisions'), pg_indexes_size('decisions')").fetchone() \
            or (0, 0)
    return Size(int(store), int(table), int(indexes))


def measure(backend: str, location: str, address: str, decisions: int) -> list[Growth]:
    numbers = synthetic_numbers()
    size = (lambda: postgres_size(location)) if backend == "postgresql" else (lambda: sqlite_size(Path(location)))
    found: list[Growth] = []
    for name, version in VERSIONS:
        for level in LEVELS:
            payloads = requests_of(name, version, level, decisions, numbers)
            before, began = size(), time.perf_counter()
            answered, errors = stream(address, payloads)
            seconds, after = time.perf_counter() - began, size()
            grown = Growth(backend, f"{name}@{version}", level, answered, errors,
                           (after.store - before.store) / answered, (after.table - before.table) / answered,
                           (after.indexes - before.indexes) / answered, round(seconds, 1))
            found.append(grown)
            print(f"  {backend} {grown.ruleset} {level}: {answered} decisions, {errors} errors, "
                  f"{grown.store_per_decision:.0f} bytes per decision ({seconds:.0f} s)", flush=True)
    return found


def table(rows: list[Growth]) -> list[str]:
    lines = ["| store | ruleset | explanation | decisions | bytes per decision: store | decisions table | "
             "its indexes | per 1 000 000 decisions (extrapolated) |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.backend} | {row.ruleset} | {row.level.lower()} | {row.decisions} | "
                     f"{row.store_per_decision:,.0f} | {row.table_per_decision:,.0f} | {row.indexes_per_decision:,.0f} "
                     f"| {row.store_per_decision * 1e6 / 1e9:.2f} GB |".replace(",", " "))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=3000, help="decisions per ruleset and level (default 3000)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="which stores (default both)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432",
                        help="the PostgreSQL server (a DSN without a database); a database is made and dropped")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    from tests.server_process import running_server

    rows: list[Growth] = []
    for backend in args.backends.split(","):
        with ExitStack() as stack:
            setting = "sqlite" if backend == "sqlite" else stack.enter_context(
                postgres_database(args.postgres, f"regelmotor_growth_{os.getpid()}"))
            server = stack.enter_context(running_server(workers=1, env={
                "REGELMOTOR_DECISION_LOG": setting, "REGELMOTOR_ALLOW_SYNTHETIC_IDS": "true"}))
            location = str(server.data_dir / "decisions.db") if backend == "sqlite" else setting
            rows += measure(backend, location, server.address, args.decisions)
    print("\n".join(table(rows)))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
