"""`regelmotor db backup`: a consistent copy of a SQLite decision log while the service runs, with the witness of its
checkpoints copied first (regelmotor.store.backup).

A PostgreSQL store is backed up with pg_dump, which takes a consistent snapshot of its own; the command says how
rather than wrapping it: pg_dump must be of the server's major version or newer (the service's image has none),
and a DSN's password would be on its command line (docs/operations.md, "Backup and restore").
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

POSTGRES_STEPS = ("a PostgreSQL store is backed up with pg_dump, which takes its own consistent snapshot while the "
                  "service runs: first copy each instance's witness file (REGELMOTOR_WITNESS_FILE), then run "
                  "`pg_dump --format=custom --file FILE` against the database (docs/operations.md, "
                  "\"Backup and restore\")")


def add_backup(db: Any) -> None:
    p = db.add_parser("backup", help="copy a SQLite decision log consistently while the service runs, its checkpoint "
                                     "witness first")
    p.add_argument("--to", required=True, help="the backup file to write (it must not exist); the witness is copied "
                                               "to <to>.checkpoints.jsonl")
    p.add_argument("--decision-log", help="the SQLite decision log: a path, or 'sqlite' for decisions.db in "
                                          "REGELMOTOR_DATA_DIR (default: REGELMOTOR_DECISION_LOG, else 'sqlite')")
    witness = p.add_mutually_exclusive_group()
    witness.add_argument("--witness", help="the service's checkpoint witness file (default: REGELMOTOR_WITNESS_FILE, "
                                           "else checkpoints.jsonl in REGELMOTOR_DATA_DIR)")
    witness.add_argument("--no-witness", action="store_true", help="copy no witness (a service restored from the "
                                                                   "backup then has no checkpoint to verify it by)")
    p.set_defaults(func=cmd_backup)


def cmd_backup(args: argparse.Namespace) -> int:
    from regelmotor.store import sqlite_path

    location = args.decision_log or os.environ.get("REGELMOTOR_DECISION_LOG") or "sqlite"
    if location == "off":
        return _refused("decision_log", "is 'off': there is no decision log to back up")
    if location.startswith(("postgresql://", "postgres://")):
        return _refused("decision_log", POSTGRES_STEPS)
    data_dir = Path(os.environ.get("REGELMOTOR_DATA_DIR") or "var")
    target = Path(args.to)
    witness = None if args.no_witness else Path(
        args.witness or os.environ.get("REGELMOTOR_WITNESS_FILE") or data_dir / "checkpoints.jsonl")
    witness_copy = None if witness is None else Path(f"{target}.checkpoints.jsonl")
    for made in (target, witness_copy):
        if made is not None and made.exists():
            return _refused("to", f"{made} exists: a backup never overwrites a file")
    try:
        source = data_dir / "decisions.db" if location == "sqlite" else sqlite_path(location)
    except ValueError as exc:
        return _refused("decision_log", str(exc))
    if not source.is_file():  # said before a witness is copied for nothing
        return _refused("decision_log", f"there is no SQLite decision log at {source}")
    if witness is not None and witness_copy is not None:
        failed = _copy_witness(witness, witness_copy)
        if failed:
            return failed
    return _snapshot(source, target, witness_copy)


def _copy_witness(witness: Path, copy: Path) -> int:
    """Copy the witness first (0), else say why (the exit status)."""
    from regelmotor.store import CheckpointError
    from regelmotor.store.backup import copy_witness

    try:
        latest = copy_witness(witness, copy)
    except ValueError as exc:
        return _refused("witness", f"{exc} (give --witness, or --no-witness to copy none)")
    except CheckpointError as exc:
        return _refused("witness", str(exc))
    except OSError as exc:
        print(f"regelmotor: db backup: cannot copy {witness}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"witness {witness} copied first to {copy}: latest checkpoint at seq {latest}")
    return 0


def _snapshot(source: Path, target: Path, witness_copy: Path | None) -> int:
    from regelmotor.store.backup import backup_sqlite

    try:
        summary = backup_sqlite(source, target)
    except ValueError as exc:
        status = _refused("decision_log", str(exc))
    except (sqlite3.Error, OSError) as exc:  # a full disk, an unreadable file: worth another try
        print(f"regelmotor: db backup: cannot copy {source}: {type(exc).__name__}: {exc}", file=sys.stderr)
        status = 1
    else:
        print(f"decision log {source} backed up to {target}: chain head at seq {summary.seq}, schema version "
              f"{summary.schema_version}, {summary.size} bytes")
        return 0
    if witness_copy is not None:  # a witness copy without its snapshot is no backup
        witness_copy.unlink(missing_ok=True)
    return status


def _refused(field: str, reason: str) -> int:
    print(f"regelmotor: db backup: {field}: {reason}", file=sys.stderr)
    return 2
