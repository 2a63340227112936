"""Pruning benchmark: what `regelmotor db prune` costs on SQLite and PostgreSQL (docs/retention.md).

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/prune.py [--records N] [--months M] [--backends ...]
        [--steps all,5000]

For each backend a fresh store (SQLite: a file in a temporary directory; PostgreSQL: a schema of its own in
REGELMOTOR_TEST_POSTGRES_DSN's database, dropped after) gets N records (default 100 000) spread evenly over M months
(default 12) from January 2025, appended 1 000 per transaction, and a signed checkpoint. Each record is shaped like
one the service writes for rett-til-helsehjelp (facts, outcome, explanation and a compressed answer of about the
same sizes; 1.0 kB of JSON and 0.6 kB of answer). Then, timed:

1. a dry run (`prune(..., dry_run=True)`): the full check against the checkpoint, and finding the cut;
2. the prune of the first half of the months (N/2 records), split into the full check before it, the
   transactions that write the cuts and delete the records (the rest of the time; one, or one per `--steps`
   records), and the checkpoint after it;
   meanwhile another log instance on the same store appends one record every 10 ms, as the service would go on
   recording, and the slowest of those appends is reported (on SQLite they wait for the deleting transaction);
3. the full check of what is left (what VerifyLog and the next prune do).

Sizes: the SQLite file once its WAL is written back (it does not shrink without VACUUM: freed pages are reused by
later records) and PostgreSQL's decisions table with its indexes (pg_total_relation_size; space is reused after
autovacuum, likewise).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from regelmotor.store import (  # noqa: E402  (needs the paths above)
    Checkpointer,
    CheckResult,
    DecisionLog,
    DecisionRecord,
    FileWitness,
    load_or_create_key,
    open_log,
    prune,
)

DSN = os.environ.get("REGELMOTOR_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
START = datetime(2025, 1, 1, tzinfo=UTC)
BATCH = 1000


def record(n: int, at: datetime) -> DecisionRecord:
    """A record of the service's size for one rett-til-helsehjelp decision."""
    return DecisionRecord(
        decision_id=str(uuid.uuid4()), recorded_at=at, caller="dips", request_id=f"bench-{n}",
        request_fingerprint=uuid.uuid4().hex * 2, ruleset="rett-til-helsehjelp", version="2024.07",
        ruleset_sha256="a" * 64, engine_version="0.1.0", as_of="2025-01-31", subject=uuid.uuid4().hex * 2,
        facts={"alder": 40 + n % 50, "diagnose": "K35", "henvisning_mottatt": "2025-01-20", "vurdert": True,
               "alvorlighet": "moderat", "nytte": "god", "kostnad_rimelig": True, "merknad": "Ærlig, på Åsen"},
        outcome={"utfall": "rett", "frist": "2025-02-28", "veiledende_frist_uker": 4, "poeng": n % 7},
        decision={"decision_id": "x", "explanation": {"rules": [
            {"id": f"r{i}", "fired": i % 2 == 0, "reads": ["alder", "diagnose", "alvorlighet"],
             "text": "Pasienten har rett til nødvendig spesialisthelsetjeneste"} for i in range(4)]}},
        response=os.urandom(600), trace_id=uuid.uuid4().hex)


def fill(log: DecisionLog, records: int, months: int) -> None:
    step = timedelta(days=30.4375 * months) / records
    for first in range(0, records, BATCH):
        log.append([record(n, START + step * n) for n in range(first, min(first + BATCH, records))])


class TimedCheckpointer(Checkpointer):
    """A checkpointer that notes how long its checks and checkpoints took."""

    times: dict[str, float]

    def check(self, *, full: bool = True) -> CheckResult:
        started = time.perf_counter()
        try:
            return super().check(full=full)
        finally:
            self.times[f"check_{'full' if full else 'since'}"] = time.perf_counter() - started

    def checkpoint(self) -> CheckResult:
        started = time.perf_counter()
        try:
            return super().checkpoint()
        finally:
            self.times["checkpoint"] = time.perf_counter() - started - self.times.pop("check_since", 0.0)


class Appender(threading.Thread):
    """Appends one record every 10 ms to its own log instance until stopped; notes each append's seconds."""

    def __init__(self, location: str) -> None:
        super().__init__(daemon=True)
        self.log = open_log(location)
        self.took: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.wait(0.01):
            started = time.perf_counter()
            self.log.append([record(10**9 + n, datetime.now(UTC))])
            self.took.append(time.perf_counter() - started)
            n += 1
        self.log.close()


@contextmanager
def store(backend: str) -> Iterator[tuple[str, Any]]:
    """The location of a fresh store, and a function giving its size in bytes."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="regelmotor-bench-prune-") as directory:
            path = Path(directory) / "decisions.db"
            yield str(path), lambda: _sqlite_size(path)
        return
    import psycopg

    schema = f"bench_prune_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in DSN else "?"
        try:
            yield f"{DSN}{separator}options=-csearch_path%3D{schema}", lambda: _pg_size(admin, schema)
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def _pg_size(admin: Any, schema: str) -> int:
    row = admin.execute(f"SELECT pg_total_relation_size('{schema}.decisions')").fetchone()
    return int(row[0])


def _sqlite_size(path: Path) -> int:
    """The file's size once the WAL is written back into it (as SQLite's automatic checkpoints do, later)."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def measure(backend: str, records: int, months: int, step: int | None) -> dict[str, Any]:
    with store(backend) as (location, size), tempfile.TemporaryDirectory(prefix="regelmotor-bench-keys-") as keys:
        log = open_log(location)
        try:
            started = time.perf_counter()
            fill(log, records, months)
            figures: dict[str, Any] = {"fill": time.perf_counter() - started, "size_before": size()}
            checkpointer = TimedCheckpointer(log, load_or_create_key(Path(keys) / "checkpoint.key"),
                                             FileWitness(Path(keys) / "witness.jsonl"))
            checkpointer.times = {}
            assert checkpointer.checkpoint().result.ok
            half = START + timedelta(days=30.4375 * months / 2)

            def now() -> datetime:
                return datetime.now(UTC)

            started = time.perf_counter()
            dry = prune(checkpointer, half, now=now, dry_run=True)
            figures["dry_run"] = time.perf_counter() - started

            appender = Appender(location)
            checkpointer.times = {}
            appender.start()
            time.sleep(0.2)
            started = time.perf_counter()
            done = prune(checkpointer, half, now=now, step=step)
            figures["prune"] = time.perf_counter() - started
            time.sleep(0.2)
            appender.stop.set()
            appender.join()
            assert done.cut is not None and done.removed == dry.removed, (done, dry)
            figures |= {"removed": done.removed, "cuts": done.cuts, "check_before": checkpointer.times["check_full"],
                        "checkpoint_after": checkpointer.times["checkpoint"],
                        "appends": len(appender.took), "append_max": max(appender.took),
                        "append_median": statistics.median(appender.took)}
            figures["cut_transaction"] = figures["prune"] - figures["check_before"] - figures["checkpoint_after"]
            started = time.perf_counter()
            after = checkpointer.check()
            figures["check_after"] = time.perf_counter() - started
            assert after.result.ok and after.result.cut == done.cut
            figures |= {"left": after.result.checked, "size_after": size()}
            return figures
        finally:
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--steps", default="all", help="comma-separated: 'all' (one cut) or records per cut")
    args = parser.parse_args()
    print(f"{args.records} records over {args.months} months; pruning the first half")
    print("| backend | step | fill | dry run | prune | of it: check before | cut transactions | checkpoint after "
          "| check after | appends meanwhile: median / slowest | size before → after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for backend in args.backends.split(","):
        for step_text in args.steps.split(","):
            step = None if step_text == "all" else int(step_text)
            f = measure(backend, args.records, args.months, step)
            print(f"| {backend} | {step_text} ({f['cuts']} cuts) | {f['fill']:.1f} s | {f['dry_run']:.2f} s "
                  f"| {f['prune']:.2f} s ({f['removed']} records) "
                  f"| {f['check_before']:.2f} s | {f['cut_transaction']:.2f} s | {f['checkpoint_after']:.3f} s "
                  f"| {f['check_after']:.2f} s ({f['left']} records) "
                  f"| {f['append_median'] * 1000:.1f} / {f['append_max'] * 1000:.0f} ms ({f['appends']}) "
                  f"| {f['size_before'] / 2**20:.0f} → {f['size_after'] / 2**20:.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
