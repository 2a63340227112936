"""The floor under a durable decision log's latency on this machine: what one commit costs before anything of
Regelmotor runs (issue 13, point 4: "p99 ≤ 5 ms at half the maximum rate with the log on").

Not a test: it prints figures. Run from the repository root:

    python bench/commit_floor.py [--commits N] [--dir DIR] [--json FILE]

A decision is stored before it is answered, so every answered unary call waits for at least one commit. Two
floors, each timed `--commits` times in a fresh directory on the same file system as the service's data
directory (`--dir`, default ./var):
1. `fsync`: write a record of a typical stored size (8 KiB: a decision with its compressed answer), then
   `os.fsync` the file;
2. `sqlite`: insert such a record into a WAL-mode SQLite table with `synchronous=FULL` (the decision log's
   settings) and commit, one transaction per record, as a lone call is stored; SQLite checkpoints the WAL
   into the database file inside the commit that crosses its 1 000 pages (its default);
3. `sqlite, checkpoints in a thread`: the same, with the commits leaving checkpoints to another thread
   (PASSIVE, every 0.25 s; the commits checkpoint themselves only past WAL_SAFETY_PAGES): what that would take
   off the commit's tail. Tried for the service on 2026-12-07 and not kept (BENCHMARKS.md, that day's issue 13
   section): the commits' tail did not shrink.
It prints p50, p99 and the worst of each. When the floor's own p99 is near or above the goal, no service that
answers only what it has stored can meet the goal on this disk, whatever its CPU does.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.grpc_load import percentile_ms, report_head  # noqa: E402  (needs the path above)

# WAL pages a commit lets grow before it checkpoints itself, when a thread checkpoints instead (a safety net).
WAL_SAFETY_PAGES = 16384
RECORD = os.urandom(8192)  # incompressible, like the compressed answer a record holds


def timed(commit: Callable[[], None], count: int) -> list[float]:
    """Seconds of each of `count` commits, in order of size."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        commit()
        times.append(time.perf_counter() - start)
    return sorted(times)


def fsync_floor(directory: Path, count: int) -> list[float]:
    fd = os.open(directory / "fsync.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        def commit() -> None:
            os.write(fd, RECORD)
            os.fsync(fd)

        return timed(commit, count)
    finally:
        os.close(fd)


def sqlite_floor(directory: Path, count: int, *, checkpoint_thread: bool = False) -> list[float]:
    path = directory / f"floor-{checkpoint_thread}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    stop = threading.Event()
    checkpointer = threading.Thread(target=_checkpoints, args=(path, stop), daemon=True)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        if checkpoint_thread:
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_SAFETY_PAGES}")
            checkpointer.start()

        def commit() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO records (body) VALUES (?)", (RECORD,))
            conn.execute("COMMIT")

        return timed(commit, count)
    finally:
        stop.set()
        if checkpointer.is_alive():
            checkpointer.join()
        conn.close()


def _checkpoints(path: Path, stop: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        while not stop.wait(0.25):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        conn.close()


def summary(times: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": percentile_ms(times, 50), "p99_ms": percentile_ms(times, 99),
            "max_ms": round(times[-1] * 1000, 2)}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("a positive number of commits")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--commits", type=_positive, default=2000, metavar="N", help="commits per floor (default 2000)")
    parser.add_argument("--dir", type=Path, default=Path("var"), help="a directory on the data directory's file "
                                                                     "system (default ./var, made if missing)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    count = args.commits
    args.dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="commit-floor-") as scratch:
        floors: list[tuple[str, Callable[[Path, int], list[float]]]] = [
            ("fsync", fsync_floor), ("sqlite", sqlite_floor),
            ("sqlite, checkpoints in a thread", lambda where, n: sqlite_floor(where, n, checkpoint_thread=True))]
        for name, floor in floors:
            results[name] = summary(floor(Path(scratch), count))
            figures = results[name]
            print(f"{name:<31} {count} commits of 8 KiB: p50 {figures['p50_ms']:.2f} ms  p99 {figures['p99_ms']:.2f} ms"
                  f"  worst {figures['max_ms']:.2f} ms", flush=True)
    if args.json:
        args.json.write_text(json.dumps({**report_head(args, None), "floors": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
