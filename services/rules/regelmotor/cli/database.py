"""`regelmotor db migrate`: apply the decision log's schema migrations before a new version of the service
starts (a Kubernetes Job, deploy/k8s). Opening a log applies the missing migrations under a lock, so this is
the same step the server takes at start, run once and on its own; running it again applies nothing.

`regelmotor db prune`: delete the records past their retention period under a signed retention cut
(docs/retention.md). Exit codes: 0 done (or nothing to do), 1 the store is unreachable, the log does not verify
(nothing was deleted) or a step after a cut failed (the cuts made stand, and it says what they deleted), 2 bad input
(a date, a missing key, a missing or foreign store, a store whose schema `regelmotor db migrate` must bring up first:
prune never creates nor migrates a store).

`regelmotor db backup`: cli/backup.py."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .backup import add_backup

if TYPE_CHECKING:
    from regelmotor.store import Checkpointer, CheckResult, DecisionLog, PruneResult, SignedCheckpoint, Witness


class _BadInput(ValueError):
    """An argument or setting prune cannot use: exit code 2."""


def add_database(sub: Any) -> None:
    db = sub.add_parser("db", help="decision log and ruleset store operations").add_subparsers(dest="action",
                                                                                               required=True)
    p = db.add_parser("migrate", help="apply the schema migrations the store lacks (idempotent)")
    p.add_argument("--decision-log", help="the store: a postgresql:// DSN or a SQLite path "
                                          "(default: REGELMOTOR_DECISION_LOG)")
    p.set_defaults(func=cmd_migrate)
    p = db.add_parser("prune", help="delete the records recorded before a day under a signed retention cut "
                                    "(docs/retention.md)")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--before", help="delete what was recorded before this day (YYYY-MM-DD, midnight Europe/Oslo)")
    when.add_argument("--keep-days", type=int, help="keep this many whole days before today (Europe/Oslo); delete "
                                                    "what is older")
    p.add_argument("--decision-log", help="the store: a postgresql:// DSN, a SQLite path or 'sqlite' (in the data "
                                          "directory) (default: REGELMOTOR_DECISION_LOG, else 'sqlite')")
    p.add_argument("--checkpoint-key", type=Path, help="the service's checkpoint key (PEM), which signs the cut; "
                                                       "never made here (default: REGELMOTOR_CHECKPOINT_KEY_FILE, "
                                                       "else checkpoint.key in REGELMOTOR_DATA_DIR)")
    p.add_argument("--previous-keys", type=Path, help="public keys of earlier checkpoint keys (PEM) (default: "
                                                      "REGELMOTOR_CHECKPOINT_PREVIOUS_KEYS_FILE)")
    witness = p.add_mutually_exclusive_group()
    witness.add_argument("--witness", type=Path, help="the witness of the checkpoints (default: "
                                                      "REGELMOTOR_WITNESS_FILE, else checkpoints.jsonl in "
                                                      "REGELMOTOR_DATA_DIR)")
    witness.add_argument("--no-witness", action="store_true", help="no witness here (a Kubernetes Job's): verify "
                                                                   "the chains and the signed cuts alone, and sign "
                                                                   "no checkpoint after")
    p.add_argument("--step", type=int, help="at most this many records per cut, each cut its own transaction (on "
                                            "SQLite appends wait for one transaction at a time)")
    p.add_argument("--dry-run", action="store_true", help="verify and say what would be deleted; change nothing")
    p.set_defaults(func=cmd_prune)
    add_backup(db)


def cmd_migrate(args: argparse.Namespace) -> int:
    import psycopg

    from regelmotor.store import open_log
    from regelmotor.store.migrations import SchemaError

    location = args.decision_log or os.environ.get("REGELMOTOR_DECISION_LOG", "")
    if not location or location == "off":
        print("regelmotor: db migrate: decision_log: give --decision-log or REGELMOTOR_DECISION_LOG "
              "(a postgresql:// DSN or a SQLite path)", file=sys.stderr)
        return 2
    try:
        log = open_log(location)
    except (ValueError, SchemaError) as exc:
        print(f"regelmotor: db migrate: decision_log: {exc}", file=sys.stderr)
        return 2
    except (psycopg.Error, OSError) as exc:  # unreachable or refusing: the Job fails and is retried
        print(f"regelmotor: db migrate: decision_log: cannot open the store ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 1
    try:
        applied = log.migrated
        versions = log.schema_versions()
    finally:
        log.close()
    done = ", ".join(map(str, applied)) if applied else "none (already current)"
    print(f"migrations applied: {done}; schema version {versions[-1] if versions else 0}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    import sqlite3

    import psycopg

    from regelmotor.store import CheckpointError, PruneInterrupted, RetentionError
    from regelmotor.store.migrations import SchemaError

    try:
        before = _cutoff(args, datetime.now(UTC))
        checkpointer = _checkpointer(args)
    except (_BadInput, CheckpointError, SchemaError) as exc:
        print(f"regelmotor: db prune: {exc}", file=sys.stderr)
        return 2
    except (psycopg.Error, sqlite3.OperationalError, OSError) as exc:
        print(f"regelmotor: db prune: decision_log: cannot open the store ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 1
    try:
        return _prune(checkpointer, before, args, witnessed=not args.no_witness)
    except PruneInterrupted as exc:
        cut = exc.cut
        print(f"regelmotor: db prune: deleted {exc.removed} records under {exc.cuts} "
              f"{'cut' if exc.cuts == 1 else 'cuts'} (the newest at seq {cut.seq}, hash {cut.hash}, cutoff "
              f"{cut.cutoff}), which stand and verify; then it failed: {exc}; run it again to go on", file=sys.stderr)
        return 1
    except (psycopg.Error, sqlite3.Error, OSError, CheckpointError, RetentionError) as exc:
        print(f"regelmotor: db prune: nothing was deleted: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        checkpointer.log.close()


def _cutoff(args: argparse.Namespace, now: datetime) -> datetime:
    from regelmotor.store import DAY_ZONE

    zone = ZoneInfo(DAY_ZONE)
    field = "--keep-days" if args.keep_days is not None else "--before"
    try:
        if args.keep_days is not None:
            if args.keep_days < 0:
                raise _BadInput(f"--keep-days: {args.keep_days} is negative")
            day = now.astimezone(zone).date() - timedelta(days=args.keep_days)
        else:
            try:
                day = date.fromisoformat(args.before)
            except ValueError:
                raise _BadInput(f"--before: {args.before[:40]!r} is not a day YYYY-MM-DD") from None
        return datetime.combine(day, time(), zone).astimezone(UTC)
    except OverflowError:  # before the year 1 (in UTC too): no record was recorded then
        given = args.keep_days if args.keep_days is not None else repr(args.before[:40])
        raise _BadInput(f"{field}: {given} reaches back beyond the calendar (before the year 1)") from None


class _NoWitness:
    """No checkpoint to check against, and none kept (--no-witness)."""

    def append(self, signed: SignedCheckpoint) -> None:
        pass

    def latest(self) -> SignedCheckpoint | None:
        return None


def _setting(given: Path | None, variable: str, default: str | None) -> Path | None:
    if given is not None:
        return given
    if os.environ.get(variable):
        return Path(os.environ[variable])
    return None if default is None else Path(os.environ.get("REGELMOTOR_DATA_DIR") or "var") / default


def _checkpointer(args: argparse.Namespace) -> Checkpointer:
    from regelmotor.store import Checkpointer, FileWitness, load_or_create_key, load_public_keys

    key_file = _setting(args.checkpoint_key, "REGELMOTOR_CHECKPOINT_KEY_FILE", "checkpoint.key")
    assert key_file is not None
    if not key_file.is_file():  # a key made here would sign a cut the service's key does not verify
        raise _BadInput(f"checkpoint_key_file: {key_file} does not exist: give the service's checkpoint key "
                        "(--checkpoint-key or REGELMOTOR_CHECKPOINT_KEY_FILE)")
    key = load_or_create_key(key_file)
    previous_file = _setting(args.previous_keys, "REGELMOTOR_CHECKPOINT_PREVIOUS_KEYS_FILE", None)
    previous = load_public_keys(previous_file) if previous_file is not None else []
    witness_file = _setting(args.witness, "REGELMOTOR_WITNESS_FILE", "checkpoints.jsonl")
    assert witness_file is not None
    witness: Witness = _NoWitness() if args.no_witness else FileWitness(witness_file)
    location = args.decision_log or os.environ.get("REGELMOTOR_DECISION_LOG") or "sqlite"
    if location == "off":
        raise _BadInput("decision_log: the decision log is off: there is nothing to prune")
    if location == "sqlite":
        location = str(Path(os.environ.get("REGELMOTOR_DATA_DIR") or "var") / "decisions.db")
    return Checkpointer(_existing_log(location), key, witness, previous)


def _existing_log(location: str) -> DecisionLog:
    """The store at `location`, opened without creating or migrating it (a mistyped path, a store the service has not
    migrated yet: _BadInput, or SchemaBehind naming `regelmotor db migrate`)."""
    import sqlite3

    from regelmotor.store import open_log, sqlite_path
    from regelmotor.store.migrations import SchemaError

    try:
        if not location.startswith(("postgresql://", "postgres://")) and not sqlite_path(location).is_file():
            raise _BadInput(f"decision_log: there is no SQLite decision log at {sqlite_path(location)}")
        return open_log(location, migrate=False)
    except (ValueError, SchemaError) as exc:
        raise _BadInput(f"decision_log: {exc}") from None
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):  # locked, unreadable: worth another try
            raise
        raise _BadInput(f"decision_log: {location} is not a regelmotor decision log ({exc})") from None


def _prune(checkpointer: Checkpointer, before: datetime, args: argparse.Namespace, *, witnessed: bool) -> int:
    from regelmotor.store import PruneRefused, prune

    try:
        result = prune(checkpointer, before, now=lambda: datetime.now(UTC), dry_run=args.dry_run, step=args.step)
    except PruneRefused as exc:
        print(f"regelmotor: db prune: {exc}", file=sys.stderr)
        return 2
    for line in _report(result, before, args.dry_run, witnessed):
        print(line)
    if not result.check.result.ok:
        print(f"regelmotor: db prune: the decision log does not verify ({_problem(result.check)}); nothing was "
              "deleted", file=sys.stderr)
        return 1
    if result.after is not None and not result.after.result.ok:
        print(f"regelmotor: db prune: the cut was made, but the check after it failed ({_problem(result.after)}); "
              "no checkpoint was signed", file=sys.stderr)
        return 1
    return 0


def _problem(checked: CheckResult) -> str:
    problem = checked.result.first_problem
    return "not ok" if problem is None else f"{problem.kind} at {problem.seq}: {problem.message}"


def _report(result: PruneResult, before: datetime, dry_run: bool, witnessed: bool) -> list[str]:
    """What was verified and cut, in counts, seqs and hashes (never a record's content)."""
    checked = result.check
    if checked.checkpoint is not None:
        against = f"against the checkpoint of {checked.checkpoint.at} (seq {checked.checkpoint.seq})"
    else:
        against = f"({'no witnessed checkpoint yet' if witnessed else 'no witness'}: the chains and signed cuts alone)"
    lines = [f"verified: {checked.result.checked} records {against}"]
    if result.previous is not None:
        lines.append(f"newest cut before: seq {result.previous.seq}, recorded before {result.previous.cutoff}")
    if not checked.result.ok:
        return lines
    cutoff = before.isoformat()
    if result.through is None:
        return [*lines, f"nothing to prune: no record left was recorded before {cutoff}"]
    first = 1 if result.previous is None else result.previous.seq + 1
    span = f"{result.removed} records (seq {first}–{result.through.seq}) recorded before {cutoff}"
    if dry_run:
        return [*lines, f"dry run: would delete {span}; nothing was changed"]
    cut = result.cut
    assert cut is not None
    lines += [f"deleted: {span}" + (f" under {result.cuts} cuts" if result.cuts > 1 else ""),
              f"cut: seq {cut.seq}, hash {cut.hash}, cutoff {cut.cutoff}, at {cut.at}, key {cut.key_id}"]
    after = result.after
    if not witnessed:
        lines.append("checkpoint: none kept (no witness)")
    elif after is not None and after.checkpoint is not None:
        lines.append(f"checkpoint: seq {after.checkpoint.seq}, signed at {after.checkpoint.at}")
    return lines
