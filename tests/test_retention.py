"""Retention (docs/retention.md): records past their retention period leave the log under a signed cut, and the
log still verifies from the cut on - on a real SQLite file and a real PostgreSQL.

Tampering is made with SQL, as someone with the database's rights can: a cut row written by hand (the schema lets
its deletions through, the signature gives it away), rows deleted beyond the cut (refused by the schema; found by
the chain when the guard is lifted), rows deleted without a cut, the tail cut after a cut, a record put back under
a cut, the newest cut row removed.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from regelmotor.store import (
    Checkpointer,
    CheckpointError,
    DecisionLog,
    FileWitness,
    PruneRefused,
    RetentionCut,
    RetentionError,
    load_or_create_key,
    load_public_keys,
    prune,
)
from regelmotor.store.chain import ChainHead, timestamp_text
from regelmotor.store.retention import CutKeys, key_id, signed_cut
from tests import test_checkpoints, test_decision_log
from tests.postgres_support import psycopg
from tests.test_decision_log import Backend, make_record

PER_MONTH = 3
MONTHS = 6  # January to June 2025: seq 1-3 in January, 4-6 in February, ...


def day(month: int, day_of_month: int = 1) -> datetime:
    return datetime(2025, month, day_of_month, tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


# The fixtures of the checkpoint tests (a fresh store of each kind, a folder for the key and witness) and the
# decision log's (the store opened), bound here under their names.
backend = test_checkpoints.backend
secrets_dir = test_checkpoints.secrets_dir
log = test_decision_log.log


def stock_months(log: DecisionLog, months: int = MONTHS) -> list[str]:
    """PER_MONTH records on the 10th of each month from January 2025; their decision ids, in seq order."""
    records = [make_record(i, recorded_at=day(1 + i // PER_MONTH, 10) + timedelta(minutes=i))
               for i in range(months * PER_MONTH)]
    return [stored.decision_id for stored in log.append(records)]


def checkpointer_of(log: DecisionLog, directory: Path, key: str = "checkpoint.key",
                    previous: list[Path] | None = None) -> Checkpointer:
    keys = [k for path in previous or [] for k in load_public_keys(path)]
    return Checkpointer(log, load_or_create_key(directory / key), FileWitness(directory / "witness.jsonl"), keys)


def seqs(backend: Backend) -> list[int]:
    return [int(row[0]) for row in backend.sql("SELECT seq FROM decisions ORDER BY seq")]


def refused_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    return (sqlite3.Error,) if psycopg is None else (sqlite3.Error, psycopg.Error)


def unguard_cuts(backend: Backend) -> None:
    if backend.kind == "sqlite":
        for trigger in ("retention_cuts_no_update", "retention_cuts_no_delete", "retention_cuts_forward"):
            backend.sql(f"DROP TRIGGER {trigger}")
    else:
        backend.sql("ALTER TABLE retention_cuts DISABLE TRIGGER USER")


# -- pruning ---------------------------------------------------------------------------------------------------


def test_pruning_removes_the_months_before_the_cutoff_and_the_log_verifies_from_the_cut(
        backend: Backend, log: DecisionLog, secrets_dir: Path) -> None:
    ids = stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    assert checkpointer.checkpoint().result.ok  # witnessed at seq 18
    newest = log.append([make_record(99, recorded_at=now())])[0]  # not witnessed yet

    result = prune(checkpointer, day(4), now=now)

    assert result.check.result.ok and result.check.result.checked == 19 and result.previous is None
    assert result.removed == 9 and result.through is not None and result.through.seq == 9
    assert seqs(backend) == list(range(10, 20))
    assert [log.get(i) for i in ids[:9]] == [None] * 9 and log.get(ids[9]) is not None
    cut = result.cut
    assert cut is not None and (cut.seq, cut.cutoff) == (9, "2025-04-01T00:00:00.000000+00:00")
    assert cut.key_id == key_id(checkpointer.key.public_key()) and CutKeys(checkpointer.key.public_key()).verifies(cut)
    assert log.retention().cuts() == [cut]
    # The chain goes on from the cut: the record at seq 10 links to the hash the cut signed.
    verified = log.verify()
    assert verified.ok and verified.checked == 10 and verified.cut == cut
    for full in (True, False):
        assert checkpointer.check(full=full).result.ok, full
    # A fresh checkpoint after the cut, of the head the old one did not cover.
    assert result.after is not None and result.after.checkpoint is not None
    assert (result.after.checkpoint.seq, result.after.checkpoint.hash) == (newest.seq, newest.hash)
    assert checkpointer.latest() == result.after.checkpoint


def test_a_rerun_prunes_nothing_and_a_later_cutoff_prunes_on(backend: Backend, log: DecisionLog,
                                                             secrets_dir: Path) -> None:
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    first = prune(checkpointer, day(3), now=now)
    assert first.removed == 6 and first.cut is not None
    again = prune(checkpointer, day(3), now=now)
    assert again.check.result.ok and again.through is None and again.cut is None and again.removed == 0
    assert again.previous == first.cut and len(log.retention().cuts()) == 1
    later = prune(checkpointer, day(6), now=now)
    assert later.removed == 9 and later.cut is not None and later.cut.seq == 15 and later.previous == first.cut
    assert seqs(backend) == [16, 17, 18] and [c.seq for c in log.retention().cuts()] == [6, 15]
    assert checkpointer.check().result.ok and checkpointer.check(full=False).result.ok


def test_a_cutoff_in_the_future_before_the_newest_cut_or_without_a_zone_is_refused(
        log: DecisionLog, secrets_dir: Path) -> None:
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    with pytest.raises(PruneRefused, match="in the future"):
        prune(checkpointer, now() + timedelta(days=1), now=now)
    with pytest.raises(PruneRefused, match="timezone-aware"):
        prune(checkpointer, datetime(2025, 3, 1), now=now)
    assert prune(checkpointer, day(4), now=now).removed == 9
    with pytest.raises(PruneRefused, match="a cut never moves back"):
        prune(checkpointer, day(3), now=now)
    assert len(log.retention().cuts()) == 1 and log.verify().ok


def test_pruning_in_steps_makes_a_cut_per_step_each_a_state_that_verifies(backend: Backend, log: DecisionLog,
                                                                          secrets_dir: Path) -> None:
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    result = prune(checkpointer, day(4), now=now, step=4)
    assert (result.removed, result.cuts) == (9, 3) and result.cut is not None and result.cut.seq == 9
    assert [c.seq for c in log.retention().cuts()] == [4, 8, 9]
    assert {c.cutoff for c in log.retention().cuts()} == {"2025-04-01T00:00:00.000000+00:00"}
    assert seqs(backend) == list(range(10, 19)) and checkpointer.check().result.ok
    with pytest.raises(PruneRefused, match="step: 0 is not a positive number"):
        prune(checkpointer, day(5), now=now, step=0)


def test_a_dry_run_says_what_would_go_and_changes_nothing(backend: Backend, log: DecisionLog,
                                                          secrets_dir: Path) -> None:
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    dry = prune(checkpointer, day(5), now=now, dry_run=True)
    assert dry.removed == 12 and dry.through is not None and dry.through.seq == 12 and dry.cut is None
    assert seqs(backend) == list(range(1, 19)) and log.retention().cuts() == []


def test_a_record_recorded_after_a_later_one_stays_until_the_next_cut(backend: Backend, log: DecisionLog,
                                                                      secrets_dir: Path) -> None:
    """seq order and recorded_at can disagree a little (appenders in several processes): nothing recorded from the
    cutoff on is removed, so the cut ends before the first such record."""
    log.append([make_record(0, recorded_at=day(1)), make_record(1, recorded_at=day(3)),
                make_record(2, recorded_at=day(1, 2)), make_record(3, recorded_at=day(1, 3))])
    result = prune(checkpointer_of(log, secrets_dir), day(2), now=now)
    assert result.removed == 1 and seqs(backend) == [2, 3, 4]
    assert log.verify().ok


def test_pruning_everything_leaves_a_log_that_verifies_and_goes_on(backend: Backend, log: DecisionLog,
                                                                   secrets_dir: Path) -> None:
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    assert checkpointer.checkpoint().result.ok  # at seq 18, which the cut will cover
    result = prune(checkpointer, day(12), now=now)
    assert result.removed == 18 and seqs(backend) == []
    empty = log.verify()
    assert empty.ok and empty.checked == 0 and empty.cut is not None and empty.cut.seq == 18
    assert checkpointer.check().result.ok and checkpointer.check(full=False).result.ok
    assert log.append([make_record(50, recorded_at=now())])[0].seq == 19
    assert log.verify().ok and log.verify().checked == 1
    assert checkpointer.checkpoint().result.ok and checkpointer.check().result.ok


def test_a_witnessed_checkpoint_older_than_the_cut_is_not_truncation(log: DecisionLog, secrets_dir: Path) -> None:
    stock_months(log, months=2)
    checkpointer = checkpointer_of(log, secrets_dir)
    assert checkpointer.checkpoint().checkpoint is not None  # seq 6
    stock_months(log, months=4)  # recorded January to April as well: seq 7-18
    result = prune(checkpointer, day(3), now=now)
    assert result.removed == 12  # seq 1-6, and 7-12 of the second batch (January, February)
    assert checkpointer.latest() is not None
    for full in (True, False):
        checked = checkpointer.check(full=full)
        assert checked.result.ok, (full, checked.result.first_problem)


def test_pruning_refuses_a_log_that_does_not_verify(backend: Backend, log: DecisionLog, secrets_dir: Path) -> None:
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    backend.unguard()
    backend.sql("UPDATE decisions SET outcome = ? WHERE seq = 2", ('{"utfall":"ikke_rett"}',))
    result = prune(checkpointer, day(4), now=now)
    problem = result.check.result.first_problem
    assert not result.check.result.ok and problem is not None and (problem.kind, problem.seq) == ("altered", 2)
    assert result.cut is None and seqs(backend) == list(range(1, 19)) and log.retention().cuts() == []


def test_a_cut_is_refused_when_the_log_moved_under_it(log: DecisionLog, secrets_dir: Path) -> None:
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    store = log.retention()
    through = store.prunable(day(3), 0, 18)
    assert through is not None and through.seq == 6

    def seal(head: ChainHead) -> RetentionCut:
        return signed_cut(checkpointer.key, head, day(3), now())

    with pytest.raises(RetentionError, match="changed since it was verified"):
        store.cut(ChainHead(through.seq, "f" * 64), None, seal)
    prune(checkpointer, day(2), now=now)  # another prune in between
    with pytest.raises(RetentionError, match="another cut was made meanwhile"):
        store.cut(through, None, seal)
    assert [c.seq for c in store.cuts()] == [3] and log.verify().ok


# -- the schema's guard ----------------------------------------------------------------------------------------


def test_the_schema_lets_a_delete_through_only_under_a_cut(backend: Backend, log: DecisionLog,
                                                           secrets_dir: Path) -> None:
    stock_months(log)
    with pytest.raises(refused_errors(), match="append-only"):
        backend.sql("DELETE FROM decisions WHERE seq = 1")  # no cut yet
    prune(checkpointer_of(log, secrets_dir), day(2), now=now)  # seq 1-3
    for statement in ("DELETE FROM decisions WHERE seq = 4", "DELETE FROM decisions WHERE seq <= 5",
                      "DELETE FROM decisions", "UPDATE decisions SET caller = 'x' WHERE seq = 4"):
        with pytest.raises(refused_errors(), match="append-only"):
            backend.sql(statement)
    for statement in ("UPDATE retention_cuts SET seq = 10", "DELETE FROM retention_cuts"):
        with pytest.raises(refused_errors(), match="append-only"):
            backend.sql(statement)
    moved_back = ("INSERT INTO retention_cuts (seq, hash, cutoff, at, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)",
                  (2, "0" * 64, "2025-01-01T00:00:00.000000+00:00", "2025-01-01T00:00:00.000000+00:00", "x", ""))
    with pytest.raises(refused_errors(), match="moves forward"):
        backend.sql(*moved_back)
    with pytest.raises(refused_errors(), match="moves forward"):  # past the chain head
        backend.sql(moved_back[0], (19, *moved_back[1][1:]))
    assert seqs(backend) == list(range(4, 19)) and log.verify().ok


# -- tampering -------------------------------------------------------------------------------------------------


def forge_cut(backend: Backend, log: DecisionLog, seq: int, signature: bytes, key: str = "0123456789abcdef") -> None:
    """A cut written by hand to cover a deletion: the schema lets the cut in and the deletion through."""
    stamp = "2025-12-01T00:00:00.000000+00:00"
    backend.sql("INSERT INTO retention_cuts (seq, hash, cutoff, at, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)",
                (seq, log.hash_at(seq), stamp, stamp, key, base64.b64encode(signature).decode("ascii")))
    backend.sql("DELETE FROM decisions WHERE seq <= ?", (seq,))


@pytest.mark.parametrize("full", [True, False])
def test_a_cut_row_written_by_hand_is_named_cut_invalid(backend: Backend, log: DecisionLog, secrets_dir: Path,
                                                        full: bool) -> None:
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    assert checkpointer.checkpoint().result.ok
    forge_cut(backend, log, 5, b"\0" * 64)
    assert log.verify().ok  # the chain alone cannot tell: it goes on from the cut's hash
    result = checkpointer.check(full=full).result
    problem = result.first_problem
    assert not result.ok and problem is not None and (problem.kind, problem.seq) == ("cut invalid", 5)
    assert "does not carry a valid signature" in problem.message and "not among the checkpoint keys" in problem.message
    refused = checkpointer.checkpoint()  # never signed over
    assert not refused.result.ok and checkpointer.latest() == refused.checkpoint


def test_a_cut_signed_with_another_key_is_named_cut_invalid(backend: Backend, log: DecisionLog,
                                                            secrets_dir: Path) -> None:
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    intruder = Ed25519PrivateKey.generate()
    cut = signed_cut(intruder, ChainHead(4, str(log.hash_at(4))), day(2), now())
    forge_cut(backend, log, 4, cut.signature, key_id(checkpointer.key.public_key()))  # our key's id, their signature
    problem = checkpointer.check().result.first_problem
    assert problem is not None and (problem.kind, problem.seq) == ("cut invalid", 4)
    assert "not among the checkpoint keys" not in problem.message


def test_rows_deleted_beyond_the_cut_are_found(backend: Backend, log: DecisionLog, secrets_dir: Path) -> None:
    """By the full check (VerifyLog's, prune's): the incremental one walks only what came after the checkpoint."""
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    prune(checkpointer, day(3), now=now)  # seq 1-6
    assert checkpointer.checkpoint().result.ok
    backend.unguard()
    backend.sql("DELETE FROM decisions WHERE seq IN (7, 8)")
    problem = checkpointer.check().result.first_problem
    assert problem is not None and (problem.kind, problem.seq) == ("removed", 7)


def test_rows_deleted_without_a_cut_are_found(backend: Backend, log: DecisionLog) -> None:
    stock_months(log)
    backend.unguard()
    backend.sql("DELETE FROM decisions WHERE seq <= 3")
    result = log.verify()
    assert result.first_problem is not None and (result.first_problem.kind, result.first_problem.seq) == ("removed", 1)


@pytest.mark.parametrize("full", [True, False])
def test_the_tail_cut_after_a_cut_is_named_truncated(backend: Backend, log: DecisionLog, secrets_dir: Path,
                                                     full: bool) -> None:
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    prune(checkpointer, day(3), now=now)
    assert checkpointer.checkpoint().checkpoint is not None  # seq 18
    backend.unguard()
    kept = log.hash_at(15)
    backend.sql("DELETE FROM decisions WHERE seq > 15")
    backend.sql("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (15, kept))
    assert log.verify().ok
    problem = checkpointer.check(full=full).result.first_problem
    assert problem is not None and (problem.kind, problem.seq) == ("truncated", 16)


def test_a_record_put_back_under_the_cut_is_named_inserted(backend: Backend, log: DecisionLog,
                                                           secrets_dir: Path) -> None:
    ids = stock_months(log)
    prune(checkpointer_of(log, secrets_dir), day(3), now=now)
    cast_ = "" if backend.kind == "sqlite" else "::json"
    backend.sql("INSERT INTO decisions (seq, decision_id, recorded_at, caller, request_id, ruleset, version, "
                "ruleset_sha256, engine_version, as_of, facts, outcome, decision, response, trace_id, prev_hash, "
                f"hash) VALUES (?, ?, ?, 'dips', '', 'r', 'v', '', '', '2025-01-01', ?{cast_}, ?{cast_}, ?{cast_}, "
                "?, '', ?, ?)",
                (3, ids[2], timestamp_text(day(1)), "{}", "{}", "{}", b"", "0" * 64, "0" * 64))
    result = log.verify()
    assert result.first_problem is not None and (result.first_problem.kind, result.first_problem.seq) == ("inserted", 3)


def test_removing_the_newest_cut_row_leaves_a_gap(backend: Backend, log: DecisionLog, secrets_dir: Path) -> None:
    stock_months(log)
    checkpointer = checkpointer_of(log, secrets_dir)
    prune(checkpointer, day(2), now=now)
    prune(checkpointer, day(4), now=now)  # seq 4-9
    unguard_cuts(backend)
    backend.sql("DELETE FROM retention_cuts WHERE seq = 9")
    result = log.verify()
    assert result.first_problem is not None and (result.first_problem.kind, result.first_problem.seq) == ("removed", 4)


# -- keys ------------------------------------------------------------------------------------------------------


def test_cuts_and_checkpoints_of_an_earlier_key_verify_when_its_public_key_is_listed(
        log: DecisionLog, secrets_dir: Path) -> None:
    stock_months(log)
    old = checkpointer_of(log, secrets_dir, key="old.key")
    assert prune(old, day(3), now=now).cut is not None  # signed with the old key, witnessed with it too
    unrelated = Ed25519PrivateKey.generate().public_key()
    pem = b"".join(k.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                   for k in (unrelated, old.key.public_key()))
    (secrets_dir / "previous.pem").write_bytes(pem)

    assert checkpointer_of(log, secrets_dir, key="new.key").cut_keys.keys.keys() == {
        key_id(load_or_create_key(secrets_dir / "new.key").public_key())}
    with pytest.raises(CheckpointError, match="does not carry a valid signature"):
        checkpointer_of(log, secrets_dir, key="new.key").check()  # the witness's line: the old key's

    rotated = checkpointer_of(log, secrets_dir, key="new.key", previous=[secrets_dir / "previous.pem"])
    checked = rotated.check()
    assert checked.result.ok and checked.checkpoint is not None
    assert prune(rotated, day(5), now=now).removed == 6  # the new cut: the new key's
    assert [c.key_id for c in log.retention().cuts()] == [key_id(old.key.public_key()),
                                                         key_id(rotated.key.public_key())]
    assert rotated.check().result.ok and rotated.check(full=False).result.ok


def test_a_previous_keys_file_without_public_keys_is_refused(secrets_dir: Path) -> None:
    (secrets_dir / "none.pem").write_text("not a key\n")
    with pytest.raises(CheckpointError, match="no PUBLIC KEY block"):
        load_public_keys(secrets_dir / "none.pem")


# -- migration -------------------------------------------------------------------------------------------------


def test_the_migration_applies_to_a_populated_store_that_then_prunes(backend: Backend, secrets_dir: Path) -> None:
    before_retention = backend.open(migrations=backend.migrations[:4])  # as the code before schema 5 left it
    try:
        ids = stock_months(before_retention)
        before_retention.log_access("revisor", "GetDecision", {"decision_id": ids[0]})
    finally:
        before_retention.close()
    upgraded = backend.open()
    try:
        assert upgraded.migrated == [5, 6]
        checkpointer = checkpointer_of(upgraded, secrets_dir)
        checkpoint = checkpointer.checkpoint()
        assert checkpoint.result.ok and checkpoint.result.checked == 18 and checkpoint.result.cut is None
        with pytest.raises(refused_errors(), match="append-only"):
            backend.sql("UPDATE decisions SET caller = 'x' WHERE seq = 1")
        assert prune(checkpointer, day(4), now=now).removed == 9
        assert checkpointer.check().result.ok and len(upgraded.access_log()) == 1
    finally:
        upgraded.close()


def test_the_delete_guard_finds_the_newest_cut_by_an_index(backend: Backend, log: DecisionLog) -> None:
    """Schema 6: max(seq) over the cuts, which SQLite's guard reads per deleted row, comes from an index, not a scan
    of every cut (a DELETE of 8 649 rows under 3 650 cuts took 1.86 s without it, 0.016 s with it)."""
    if backend.kind == "sqlite":
        plan = " ".join(str(row[-1]) for row in backend.sql("EXPLAIN QUERY PLAN SELECT max(seq) FROM retention_cuts"))
        assert "INDEX retention_cuts_seq" in plan, plan
    else:
        assert backend.sql("SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                           "AND indexname = 'retention_cuts_seq'") == [
            ("CREATE INDEX retention_cuts_seq ON " + _qualified(backend, "retention_cuts") + " USING btree (seq)",)]
    assert log.schema_versions()[-1] == 6


def _qualified(backend: Backend, table: str) -> str:
    (schema,) = backend.sql("SELECT current_schema()")[0]
    return f"{schema}.{table}"
