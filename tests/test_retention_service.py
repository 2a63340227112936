"""Retention from the outside: `regelmotor db prune` (exit codes and what it prints) and the service on a pruned
store (VerifyLog over gRPC passes from the cut and shows it; a start on a store with a forged cut is refused), on
SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import grpc
import pytest

from regelmotor.cli.audit import as_json
from regelmotor.cli.audit_output import verify_text
from regelmotor.cli.main import main
from regelmotor.console.app import create_app
from regelmotor.console.settings import ConsoleSettings
from regelmotor.server.startup import StartupError
from regelmotor.store import Checkpointer, DecisionLog, FileWitness, load_or_create_key, prune
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from tests import test_checkpoints, test_checkpoints_service
from tests.grpc_support import server_in_process
from tests.postgres_support import postgres_schema, psycopg
from tests.test_chain_tampering import fresh_store
from tests.test_decision_log import Backend
from tests.test_retention import day, forge_cut, now, seqs, stock_months

# A fresh store of each kind, and a data directory (the fixtures of the checkpoint tests, bound here).
backend = test_checkpoints.backend
data_dir = test_checkpoints_service.data_dir


def _stocked(backend: Backend) -> list[str]:
    log = backend.open()
    try:
        return stock_months(log)
    finally:
        log.close()


def _service_checkpointer(log: DecisionLog, data_dir: Path) -> Checkpointer:
    """The checkpointer the service makes with its defaults in data_dir."""
    return Checkpointer(log, load_or_create_key(data_dir / "checkpoint.key"),
                        FileWitness(data_dir / "checkpoints.jsonl"))


def _verify_log(port: int) -> apb.VerifyLogResponse:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer: apb.VerifyLogResponse = apb_grpc.AuditServiceStub(channel).VerifyLog(
            apb.VerifyLogRequest(formaal="kontroll av loggen etter sletting"), timeout=60)
    return answer


def test_verify_log_over_grpc_passes_on_a_pruned_store_and_shows_the_cut(backend: Backend, data_dir: Path) -> None:
    log = backend.open()
    try:
        ids = stock_months(log)
        checkpointer = _service_checkpointer(log, data_dir)
        assert checkpointer.checkpoint().result.ok
        cut = prune(checkpointer, day(4), now=now).cut
        assert cut is not None
        public_key = checkpointer.key.public_key()
    finally:
        log.close()
    with server_in_process(workers=0, data_dir=data_dir, decision_log=backend.url) as (server, _, _):
        verified = _verify_log(server.port)
        page = _console_page(server.port, "/revisjon/logg")
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            audit = apb_grpc.AuditServiceStub(channel)
            with pytest.raises(grpc.RpcError, match="no recorded decision") as gone:  # as if never recorded
                audit.GetDecision(apb.GetDecisionRequest(decision_id=ids[0], formaal="kontroll"), timeout=30)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert verified.ok and verified.checked == 9 and not verified.HasField("first_problem")
    assert verified.checkpoint.seq == 18
    assert (verified.retention_cut.seq, verified.retention_cut.hash, verified.retention_cut.cutoff,
            verified.retention_cut.at, verified.retention_cut.key_id) == (cut.seq, cut.hash, cut.cutoff, cut.at,
                                                                          cut.key_id)
    # An auditor checks the signature with the public key alone, over the text the proto documents.
    signed = (f'{{"at":"{cut.at}","cutoff":"{cut.cutoff}","hash":"{cut.hash}","purpose":"regelmotor retention cut",'
              f'"seq":{cut.seq}}}').encode()
    public_key.verify(base64.b64decode(verified.retention_cut.signature), signed)
    # What an auditor reads: `regelmotor audit verify`'s text, and the console's page.
    text = verify_text(as_json(verified))
    assert text.startswith("Kjeden er hel: 9 poster kontrollert")
    assert (f"kontrollert fra oppbevaringskuttet {cut.at}: poster til og med plass 9, registrert før {cut.cutoff}, "
            f"er slettet etter endt oppbevaringstid (signert med nøkkel {cut.key_id})") in text
    assert "Loggen er i orden." in page and "Slettet etter endt oppbevaringstid" in page
    assert "Beslutningene til og med post nr. 9 er slettet" in page and cut.hash in page


def _console_page(port: int, path: str) -> str:
    """A page of the console (no login) beside the service, with a purpose given."""
    app = create_app(ConsoleSettings(api_address=f"127.0.0.1:{port}"), base_url="http://127.0.0.1")
    client = app.test_client()
    with client.session_transaction() as kept:
        kept["formaal"] = "Sak 2026/1234, kontroll av loggen"
    answer = client.get(path)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_a_start_on_a_store_with_a_cut_written_by_hand_is_refused(data_dir: Path) -> None:
    with fresh_store("sqlite") as backend:
        log = backend.open()
        try:
            stock_months(log)
            assert _service_checkpointer(log, data_dir).checkpoint().result.ok
            forge_cut(backend, log, 7, b"\1" * 64)
        finally:
            log.close()
        refused = r"^REGELMOTOR_WITNESS_FILE: the decision log was tampered with: cut invalid at 7: "
        with pytest.raises(StartupError, match=refused), \
                server_in_process(workers=0, data_dir=data_dir, decision_log=backend.url):
            pass


# -- regelmotor db prune -----------------------------------------------------------------------------------------


@pytest.fixture
def prune_env(backend: Backend, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """The settings a prune takes from the environment, as the service's: the log, and data_dir with the key."""
    monkeypatch.setenv("REGELMOTOR_DECISION_LOG", backend.url)
    monkeypatch.setenv("REGELMOTOR_DATA_DIR", str(data_dir))
    for name in ("REGELMOTOR_CHECKPOINT_KEY_FILE", "REGELMOTOR_WITNESS_FILE",
                 "REGELMOTOR_CHECKPOINT_PREVIOUS_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    load_or_create_key(data_dir / "checkpoint.key")
    return backend


def test_prune_deletes_says_what_and_prints_no_record_content(prune_env: Backend, data_dir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    ids = _stocked(prune_env)
    assert main(["db", "prune", "--before", "2025-03-01", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "verified: 18 records (no witnessed checkpoint yet" in out
    assert "dry run: would delete 6 records (seq 1–6) recorded before 2025-02-28T23:00:00+00:00" in out
    assert seqs(prune_env) == list(range(1, 19))

    assert main(["db", "prune", "--before", "2025-03-01"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1] == "deleted: 6 records (seq 1–6) recorded before 2025-02-28T23:00:00+00:00"
    assert lines[2].startswith("cut: seq 6, hash ") and "cutoff 2025-02-28T23:00:00.000000+00:00" in lines[2]
    assert lines[3].startswith("checkpoint: seq 18, signed at ")
    assert not any(decision_id in out for decision_id in ids)  # counts, seqs and hashes only
    assert seqs(prune_env) == list(range(7, 19))
    assert (data_dir / "checkpoints.jsonl").read_text().count("\n") == 1

    assert main(["db", "prune", "--before", "2025-03-01"]) == 0  # again: nothing left to do
    out = capsys.readouterr().out
    assert "verified: 12 records against the checkpoint of " in out and "newest cut before: seq 6" in out
    assert out.splitlines()[-1] == "nothing to prune: no record left was recorded before 2025-02-28T23:00:00+00:00"


def test_prune_refuses_bad_input_with_exit_code_2(prune_env: Backend, data_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _stocked(prune_env)
    cases = {("--before", "1. mars"): "--before: '1. mars' is not a day YYYY-MM-DD",
             ("--before", "2999-01-01"): "is in the future",
             ("--keep-days", "-1"): "--keep-days: -1 is negative",
             ("--keep-days", "1000000"): "--keep-days: 1000000 reaches back beyond the calendar (before the year 1)",
             ("--before", "0001-01-01"): "--before: '0001-01-01' reaches back beyond the calendar",
             ("--before", "2025-03-01", "--checkpoint-key", str(data_dir / "missing.key")):
                 "checkpoint_key_file: " + str(data_dir / "missing.key") + " does not exist"}
    for argv, message in cases.items():
        assert main(["db", "prune", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("regelmotor: db prune: ") and message in err and "Traceback" not in err, err
    assert main(["db", "prune", "--before", "2025-03-01"]) == 0
    assert main(["db", "prune", "--before", "2025-02-01"]) == 2
    assert "a cut never moves back" in capsys.readouterr().err
    os.chmod(data_dir / "checkpoint.key", 0o644)
    assert main(["db", "prune", "--before", "2025-04-01"]) == 2
    assert "lets others read or write it" in capsys.readouterr().err
    assert seqs(prune_env) == list(range(7, 19))


def test_prune_of_a_log_that_does_not_verify_fails_with_exit_code_1_and_deletes_nothing(
        prune_env: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    _stocked(prune_env)
    prune_env.unguard()
    prune_env.sql("DELETE FROM decisions WHERE seq = 2")
    assert main(["db", "prune", "--keep-days", "0", "--no-witness"]) == 1
    captured = capsys.readouterr()
    assert "verified: 1 records (no witness: the chains and signed cuts alone)" in captured.out
    assert ("regelmotor: db prune: the decision log does not verify (removed at 2: seq 2 is missing" in captured.err
            and captured.err.rstrip().endswith("nothing was deleted"))
    assert seqs(prune_env) == [1, *range(3, 19)]


def test_prune_in_steps_says_how_many_cuts(prune_env: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    _stocked(prune_env)
    assert main(["db", "prune", "--before", "2025-04-01", "--step", "4"]) == 0
    out = capsys.readouterr().out
    assert "deleted: 9 records (seq 1–9) recorded before 2025-03-31T22:00:00+00:00 under 3 cuts" in out
    assert "cut: seq 9, " in out and seqs(prune_env) == list(range(10, 19))
    assert main(["db", "prune", "--before", "2025-05-01", "--step", "0"]) == 2
    assert "step: 0 is not a positive number of records" in capsys.readouterr().err


def test_prune_without_a_witness_keeps_no_checkpoint(prune_env: Backend, data_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _stocked(prune_env)
    assert main(["db", "prune", "--keep-days", "0", "--no-witness"]) == 0
    out = capsys.readouterr().out
    assert "deleted: 18 records (seq 1–18)" in out and out.splitlines()[-1] == "checkpoint: none kept (no witness)"
    assert not (data_dir / "checkpoints.jsonl").exists() and seqs(prune_env) == []


def test_prune_that_fails_after_cutting_says_what_it_deleted(prune_env: Backend, data_dir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    _stocked(prune_env)
    # A witness that reads as empty but cannot be written: the check finds no checkpoint, the cut is made, and the
    # checkpoint after it fails (as on a full disk).
    witness = data_dir / "witness.jsonl"
    witness.symlink_to(data_dir / "no-such-folder" / "witness.jsonl")
    assert main(["db", "prune", "--before", "2025-03-01", "--witness", str(witness)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("regelmotor: db prune: deleted 6 records under 1 cut (the newest at seq 6, hash "), err
    assert "which stand and verify; then it failed: FileNotFoundError: " in err
    assert "nothing was deleted" not in err and "Traceback" not in err
    assert seqs(prune_env) == list(range(7, 19))


def test_prune_never_creates_nor_migrates_a_store(backend: Backend, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    load_or_create_key(data_dir / "checkpoint.key")
    monkeypatch.setenv("REGELMOTOR_DATA_DIR", str(data_dir))

    def refused(location: str) -> str:
        assert main(["db", "prune", "--before", "2025-03-01", "--decision-log", location]) == 2
        err = capsys.readouterr().err
        assert err.startswith("regelmotor: db prune: decision_log: ") and "Traceback" not in err, err
        return err

    mistyped = data_dir / "typo" / "decisons.db"
    assert f"there is no SQLite decision log at {mistyped}" in refused(str(mistyped))
    assert not mistyped.parent.exists()
    (data_dir / "notes.txt").write_bytes(b"not a database at all" * 100)
    assert "is not a regelmotor decision log (file is not a database)" in refused(str(data_dir / "notes.txt"))

    older = backend.open(migrations=backend.migrations[:5])  # as a release before schema 6 left it
    older.close()
    assert ("the store's schema is version 5, older than this regelmotor's (6): run `regelmotor db migrate` first"
            in refused(backend.url))
    assert backend.sql("SELECT max(version) FROM schema_version") == [(5,)]
    if backend.kind == "postgres":  # an empty database (schema) is not made into a store either
        with postgres_schema() as empty:
            assert "the store's schema is version 0, older" in refused(empty)
            with psycopg.connect(empty) as conn:
                assert conn.execute("SELECT count(*) FROM information_schema.tables "
                                    "WHERE table_schema = current_schema()").fetchone() == (0,)


def test_prune_of_an_unreachable_store_fails_with_exit_code_1(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    load_or_create_key(data_dir / "checkpoint.key")
    monkeypatch.setenv("REGELMOTOR_DATA_DIR", str(data_dir))
    assert main(["db", "prune", "--before", "2025-03-01", "--decision-log",
                 "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("regelmotor: db prune: decision_log: cannot open the store (") and "Traceback" not in err


def test_a_sqlite_store_in_the_data_dir_is_the_default(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    backend = Backend("sqlite", str(data_dir / "decisions.db"), data_dir / "decisions.db")
    _stocked(backend)
    load_or_create_key(data_dir / "checkpoint.key")
    monkeypatch.setenv("REGELMOTOR_DATA_DIR", str(data_dir))
    monkeypatch.delenv("REGELMOTOR_DECISION_LOG", raising=False)
    assert main(["db", "prune", "--before", "2025-02-01"]) == 0
    assert "deleted: 3 records (seq 1–3)" in capsys.readouterr().out
    with closing(sqlite3.connect(data_dir / "decisions.db")) as db:
        assert db.execute("SELECT min(seq), count(*) FROM decisions").fetchone() == (4, 15)
