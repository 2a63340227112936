"""A consistent copy of a SQLite decision log taken while the service writes to it (`regelmotor db backup`).

SQLite's online backup API copies every page in one step, inside one read transaction: in WAL mode that is one
snapshot of the file, taken without stopping the writers (they go on appending to the WAL meanwhile). The copy is
written beside its target, fsynced and then renamed into place, so a file at the target is always a whole backup.

The witness of the signed checkpoints (regelmotor.store.checkpoint) is copied *before* the snapshot: the log only
grows, so every checkpoint in that copy signs a state the snapshot holds, and a service started on the restored
copy with it verifies. A witness copied after the snapshot may hold a checkpoint of records the snapshot lacks, and
the restored log would be reported truncated.

PostgreSQL has its own tool for the snapshot, pg_dump (docs/operations.md, "Backup and restore").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import FileWitness


@dataclass(frozen=True)
class BackupSummary:
    """What a backup holds: its chain head (seq 0: no decision yet), its schema version and its size."""

    seq: int
    hash: str
    schema_version: int
    size: int


def backup_sqlite(source: Path, target: Path) -> BackupSummary:
    """Copy the SQLite decision log `source` to `target` (a new file, mode 0600) as one consistent snapshot.
    ValueError when `source` is not a decision log or `target` exists (a backup never overwrites a file)."""
    if target.exists():
        raise ValueError(f"{target} exists: a backup never overwrites a file")
    if not source.is_file():
        raise ValueError(f"there is no SQLite decision log at {source}")
    partial = target.with_name(f".{target.name}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600))
    try:
        # mode=ro: the backup never writes to the service's file (nor migrates it, as opening a log would).
        with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as origin, \
                closing(sqlite3.connect(partial, isolation_level=None)) as copy:
            _check_is_log(origin, source)
            origin.backup(copy)  # pages=-1: every page in one step, one snapshot
            summary = _summary(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupSummary(summary.seq, summary.hash, summary.schema_version, target.stat().st_size)


def _check_is_log(origin: sqlite3.Connection, source: Path) -> None:
    try:
        origin.execute("SELECT seq FROM chain_head WHERE id = 1").fetchone()
    except sqlite3.OperationalError as exc:  # a lock or a full disk is worth another try; a missing table is not
        if "no such table" not in str(exc):
            raise
        raise ValueError(f"{source} is not a regelmotor decision log ({exc})") from None
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise ValueError(f"{source} is not a regelmotor decision log ({exc})") from None


def _summary(copy: sqlite3.Connection) -> BackupSummary:
    seq, head = copy.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
    (version,) = copy.execute("SELECT max(version) FROM schema_version").fetchone()
    return BackupSummary(int(seq), str(head), int(version), 0)


def copy_witness(source: Path, target: Path) -> int:
    """Copy the witness file `source` to `target` (a new file, mode 0600); the seq of its latest checkpoint."""
    if target.exists():
        raise ValueError(f"{target} exists: a backup never overwrites a file")
    if not source.is_file():
        raise ValueError(f"there is no witness file at {source}")
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    try:
        shutil.copyfile(source, target)
        _fsync(target)
        latest = FileWitness(target).latest()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return 0 if latest is None else latest.checkpoint.seq


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
