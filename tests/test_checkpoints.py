"""Signed checkpoints catch the insider attacks the hash chain alone cannot (regelmotor.store.checkpoint).

Each attack is made with SQL on a real log (SQLite, and PostgreSQL when reachable) after lifting the
append-only guard as someone with DDL rights can: (1) delete the newest records and move the chain head
back, (2) rewrite a record and recompute every later hash and the head, (3) edit or delete access-log rows.
The log's own verify() passes for (1) and (2) - which is the point - while the check against the latest
witnessed checkpoint fails and names the kind.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from regelmotor.store import DecisionLog, ListFilter
from regelmotor.store.access_chain import access_hash, verify_access
from regelmotor.store.chain import canonical_json, record_hash
from regelmotor.store.checkpoint import (
    Checkpointer,
    CheckpointError,
    FileWitness,
    load_or_create_key,
)
from tests.test_chain_tampering import fresh_store
from tests.test_decision_log import Backend, make_record

KINDS = ["sqlite", "postgres"]


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    with fresh_store(request.param) as store:
        yield store


@pytest.fixture
def secrets_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="regelmotor-witness-") as directory:
        yield Path(directory)


def _checkpointer(log: DecisionLog, directory: Path) -> Checkpointer:
    return Checkpointer(log, load_or_create_key(directory / "checkpoint.key"), FileWitness(directory / "witness.jsonl"))


def _unguard_access(backend: Backend) -> None:
    if backend.kind == "sqlite":
        for trigger in ("access_log_no_update", "access_log_no_delete"):
            backend.sql(f"DROP TRIGGER {trigger}")
    else:
        backend.sql("ALTER TABLE access_log DISABLE TRIGGER USER")


def _stocked(log: DecisionLog, records: int = 6, reads: int = 3) -> None:
    log.append([make_record(i) for i in range(records)])
    for i in range(reads):
        log.log_access("revisor-kari", "GetDecision", {"decision_id": f"d-{i}"})


def test_a_clean_log_verifies_against_its_checkpoints(backend: Backend, secrets_dir: Path) -> None:
    log = backend.open()
    try:
        checkpointer = _checkpointer(log, secrets_dir)
        assert checkpointer.check().checkpoint is None and checkpointer.check().result.ok  # none yet
        _stocked(log)
        first = checkpointer.checkpoint()
        assert first.result.ok and first.checkpoint is not None
        assert (first.checkpoint.seq, first.checkpoint.access_id) == (6, log.heads()[1].id)
        _stocked(log, records=2, reads=1)  # newer than the checkpoint: the chains vouch for it
        full, incremental = checkpointer.check(), checkpointer.check(full=False)
        assert full.result.ok and full.result.checked == 8 and full.checkpoint == first.checkpoint
        assert incremental.result.ok and incremental.result.checked == 2
        second = checkpointer.checkpoint()
        assert second.checkpoint is not None and second.checkpoint.seq == 8
        assert checkpointer.latest() == second.checkpoint
        assert checkpointer.checkpoint().checkpoint == second.checkpoint  # nothing new: nothing signed
        assert len((secrets_dir / "witness.jsonl").read_text().splitlines()) == 2
    finally:
        log.close()


@pytest.mark.parametrize("full", [True, False])
def test_cutting_the_newest_records_and_moving_the_head_back_is_named_truncated(
        backend: Backend, secrets_dir: Path, full: bool) -> None:
    log = backend.open()
    try:
        _stocked(log)
        checkpointer = _checkpointer(log, secrets_dir)
        assert checkpointer.checkpoint().result.ok
        backend.unguard()
        kept = log.hash_at(4)
        backend.sql("DELETE FROM decisions WHERE seq > 4")
        backend.sql("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (4, kept))
        assert log.verify().ok  # consistent: the chain alone cannot tell
        result = checkpointer.check(full=full).result
        assert not result.ok and result.first_problem is not None
        assert (result.first_problem.kind, result.first_problem.seq) == ("truncated", 5)
        assert "seq 5–6 were removed" in result.first_problem.message
        # The truncated state is never signed: the witness keeps the checkpoint that shows it.
        refused = checkpointer.checkpoint()
        assert not refused.result.ok and checkpointer.latest() == refused.checkpoint
        assert refused.checkpoint is not None and refused.checkpoint.seq == 6
    finally:
        log.close()


@pytest.mark.parametrize("full", [True, False])
def test_rewriting_a_record_and_recomputing_every_later_hash_is_named_rehashed(
        backend: Backend, secrets_dir: Path, full: bool) -> None:
    log = backend.open()
    try:
        _stocked(log)
        checkpointer = _checkpointer(log, secrets_dir)
        assert checkpointer.checkpoint().result.ok
        backend.unguard()
        records = list(log.iterate(ListFilter()))
        records[2] = replace(records[2], outcome={"utfall": "ikke_rett"})
        backend.write_row(3, {"outcome": canonical_json(records[2].outcome)})
        prev_hash = records[1].hash
        for record in records[2:]:
            digest = record_hash(prev_hash, record, record.seq)
            backend.sql("UPDATE decisions SET prev_hash = ?, hash = ? WHERE seq = ?", (prev_hash, digest, record.seq))
            prev_hash = digest
        backend.sql("UPDATE chain_head SET hash = ? WHERE id = 1", (prev_hash,))
        assert log.verify().ok  # consistent: the chain alone cannot tell
        result = checkpointer.check(full=full).result
        assert not result.ok and result.first_problem is not None
        assert (result.first_problem.kind, result.first_problem.seq) == ("rehashed", 6)
        assert "rewritten" in result.first_problem.message
    finally:
        log.close()


# The statement, the row it hits (1-3), and whether the incremental check sees it: it reads the rows from the
# checkpoint's (the newest, 3) on, so older rows are the full check's.
ACCESS_ATTACKS = {
    "edit a row": ("UPDATE access_log SET who = 'noen-andre' WHERE id = ?", 2, False),
    "delete a row": ("DELETE FROM access_log WHERE id = ?", 2, False),
    "edit the newest row": ("UPDATE access_log SET detail = '{}' WHERE id = ?", 3, True),
    "delete the newest row": ("DELETE FROM access_log WHERE id = ?", 3, True),
}


@pytest.mark.parametrize("attack", list(ACCESS_ATTACKS))
def test_editing_or_deleting_access_log_rows_is_named(backend: Backend, secrets_dir: Path, attack: str) -> None:
    log = backend.open()
    try:
        _stocked(log)
        checkpointer = _checkpointer(log, secrets_dir)
        assert checkpointer.checkpoint().result.ok
        ids = [row["id"] for row in log.access_log()]
        _unguard_access(backend)
        statement, index, incremental = ACCESS_ATTACKS[attack]
        backend.sql(statement, (ids[index - 1],))
        for full in (True, False) if incremental else (True,):
            result = checkpointer.check(full=full).result
            assert not result.ok and result.first_problem is not None
            assert result.first_problem.kind == "access log altered", result.first_problem.message
            assert result.first_problem.seq in (ids[index - 1], ids[-1])
    finally:
        log.close()


def test_rewriting_the_access_log_with_recomputed_hashes_is_named(backend: Backend, secrets_dir: Path) -> None:
    log = backend.open()
    try:
        _stocked(log)
        checkpointer = _checkpointer(log, secrets_dir)
        assert checkpointer.checkpoint().result.ok
        _unguard_access(backend)
        rows = log.access_log()
        backend.sql("DELETE FROM access_log WHERE id = ?", (rows[0]["id"],))
        # Re-chain what is left, as the library would have: the chain alone is consistent again.
        prev_hash = "0" * 64
        for row in rows[1:]:
            digest = access_hash(prev_hash, row["at"], row["who"], row["action"], row["detail"])
            backend.sql("UPDATE access_log SET prev_hash = ?, hash = ? WHERE id = ?", (prev_hash, digest, row["id"]))
            prev_hash = digest
        assert verify_access(log.access_log())[1] is None
        result = checkpointer.check().result
        assert not result.ok and result.first_problem is not None
        assert (result.first_problem.kind, result.first_problem.seq) == ("access log altered", rows[-1]["id"])
    finally:
        log.close()


def test_rows_logged_before_the_chain_existed_are_accepted_and_the_chain_starts_after_them(
        backend: Backend) -> None:
    old = backend.open(migrations=backend.migrations[:2])
    old.close()
    backend.sql("INSERT INTO access_log (at, who, action, detail) VALUES (?, 'revisor-ola', 'ListDecisions', '{}')",
                ("2025-01-01T00:00:00.000000+00:00",))
    log = backend.open()
    try:
        log.log_access("revisor-kari", "GetDecision", {"decision_id": "d-1"})
        rows = log.access_log()
        assert [row["hash"] is None for row in rows] == [True, False]
        head, problem = verify_access(rows)
        assert problem is None and head.id == rows[1]["id"]
    finally:
        log.close()


def test_a_forged_witness_line_is_refused(secrets_dir: Path) -> None:
    with fresh_store("sqlite") as backend:
        log = backend.open()
        try:
            _stocked(log)
            checkpointer = _checkpointer(log, secrets_dir)
            assert checkpointer.checkpoint().result.ok
            witness = secrets_dir / "witness.jsonl"
            witness.write_text(witness.read_text().replace('"seq":6', '"seq":4'))
            with pytest.raises(CheckpointError, match="signature"):
                checkpointer.check()
        finally:
            log.close()


def test_the_key_is_made_private_and_a_readable_key_is_refused(secrets_dir: Path) -> None:
    path = secrets_dir / "keys" / "checkpoint.key"
    key = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path).public_key() == key.public_key()
    os.chmod(path, 0o644)
    with pytest.raises(CheckpointError, match="chmod 600"):
        load_or_create_key(path)


def test_an_access_log_row_that_cannot_be_read_is_named_not_raised(secrets_dir: Path) -> None:
    with fresh_store("sqlite") as backend:
        log = backend.open()
        try:
            _stocked(log)
            checkpointer = _checkpointer(log, secrets_dir)
            assert checkpointer.checkpoint().result.ok
            _unguard_access(backend)
            backend.sql("UPDATE access_log SET at = 'i går' WHERE id = (SELECT max(id) FROM access_log)")
            result = checkpointer.check().result
        finally:
            log.close()
    assert not result.ok and result.first_problem is not None
    assert result.first_problem.kind == "access log altered" and "cannot be read" in result.first_problem.message
