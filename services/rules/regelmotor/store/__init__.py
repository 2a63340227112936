"""The decision log: a durable, tamper-evident, append-only store of every answered decision.

    from regelmotor.store import open_log, GroupCommitter, answered_record
    log = open_log("var/decisions.db")              # or "sqlite:///abs/path.db", or "postgresql://…"
    committer = GroupCommitter(log)
    stored = committer.submit(answered_record(...)) # returns once committed

What this package offers is what it exports here (`__all__`); the service (regelmotor.server) imports
nothing else of it, so the storage format of a record - the compressed answer, the canonical text the
hash chain covers - stays the store's own (an import rule in pyproject.toml checks it).

Modules: `record` (DecisionRecord, StoredRecord), `packing` (the answer compressed, a record made ready
for the log), `chain` (hashing and verification), `base` (the DecisionLog interface and ListFilter),
`sqlite` and `postgres` (the backends), `migrations` (versioned schemas), `group` (group commit),
`access_chain` (the hash chain over the access log), `access_query` (searching it), `day_counts` (decisions
counted per day and outcome value), `checkpoint` (signed checkpoints in a witness outside
the database), `retention` and `pruning` (records past their retention deleted under a signed cut),
`lifecycle` and `versions` (ruleset versions kept in the store, their states and chained lifecycle events;
`version_tables`: each backend's part).
PostgreSQL needs psycopg 3, imported only when a DSN is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .access_query import AccessFilter
from .base import DecisionLog, ListFilter, RecordRejected, RequestIdConflict, append_each
from .chain import Problem, VerifyResult, canonical_json
from .checkpoint import (
    Checkpoint,
    Checkpointer,
    CheckpointError,
    CheckResult,
    FileWitness,
    SignedCheckpoint,
    Witness,
    load_or_create_key,
    load_public_keys,
)
from .day_counts import DAY_ZONE, MAX_DAYS, DayCount, TooManyGroups
from .group import GroupCommitter
from .lifecycle import Event, EventHead, State, VersionMeta, VersionState, VersionText
from .migrations import SchemaTooNew
from .packing import answer_for, answered_record, pack_response, unpack_response
from .pruning import PruneInterrupted, PruneRefused, PruneResult, prune
from .record import DecisionRecord, ReplayInput, StoredRecord
from .retention import RetentionCut, RetentionError
from .versions import MAX_REASON, RulesetStore, StoredText

__all__ = [
    "DAY_ZONE",
    "MAX_DAYS",
    "MAX_REASON",
    "AccessFilter",
    "CheckResult",
    "Checkpoint",
    "CheckpointError",
    "Checkpointer",
    "DayCount",
    "DecisionLog",
    "DecisionRecord",
    "Event",
    "EventHead",
    "FileWitness",
    "GroupCommitter",
    "ListFilter",
    "Problem",
    "PruneInterrupted",
    "PruneRefused",
    "PruneResult",
    "RecordRejected",
    "ReplayInput",
    "RequestIdConflict",
    "RetentionCut",
    "RetentionError",
    "RulesetStore",
    "SchemaTooNew",
    "SignedCheckpoint",
    "State",
    "StoredRecord",
    "StoredText",
    "TooManyGroups",
    "VerifyResult",
    "VersionMeta",
    "VersionState",
    "VersionText",
    "Witness",
    "answer_for",
    "answered_record",
    "append_each",
    "canonical_json",
    "load_or_create_key",
    "load_public_keys",
    "open_log",
    "pack_response",
    "prune",
    "sqlite_path",
    "unpack_response",
]

DEFAULT_FILE = "decisions.db"


def sqlite_path(url_or_path: str | os.PathLike[str]) -> Path:
    """The file a SQLite location names: ``sqlite:///abs/file.db`` (like file:/// URLs, three slashes
    and an absolute path), ``sqlite:relative/file.db``, or a plain path; a directory means
    ``decisions.db`` inside it."""
    text = os.fspath(url_or_path)
    if text.startswith("sqlite:"):
        text = text[len("sqlite:"):]
        if text.startswith("//"):
            text = text[2:]
    if not text or text == ":memory:":
        raise ValueError(f"the SQLite decision log needs a file, not {os.fspath(url_or_path)!r}")
    path = Path(text)
    return path / DEFAULT_FILE if path.is_dir() else path


def open_log(url_or_path: str | os.PathLike[str], **options: Any) -> DecisionLog:
    """Open (creating and migrating as needed) the decision log at a location: ``postgresql://…`` or
    ``postgres://…`` for PostgreSQL, ``sqlite:…`` or a plain path for SQLite (see `sqlite_path`).
    `options` go to the backend (SQLite: busy_timeout; PostgreSQL: pool_size, connect_timeout; both: migrate=False
    refuses a store that lacks migrations with SchemaBehind instead of applying them)."""
    text = os.fspath(url_or_path)
    if text.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresDecisionLog

        return PostgresDecisionLog(text, **options)
    if "://" in text and not text.startswith("sqlite:"):
        raise ValueError(f"unsupported decision log location {text.split('://', 1)[0]}://…: "
                         "use a path, sqlite:///path or postgresql://…")
    from .sqlite import SQLiteDecisionLog

    return SQLiteDecisionLog(sqlite_path(text), **options)
