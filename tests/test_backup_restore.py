"""Backup and restore of the decision log (docs/operations.md, "Backup and restore"), with real servers.

A store filled through a real `regelmotor serve` (decisions, and lifecycle events from RulesetService) is backed up
while the service runs - PostgreSQL with pg_dump (custom format), SQLite with `regelmotor db backup` - the witness
of the signed checkpoints copied first. The backup is restored (PostgreSQL: pg_restore into a new database; SQLite:
the copy in a new data directory) and a new server on it, with a copy of the checkpoint key and the witness copy,
verifies it (VerifyLog against the checkpoint taken with the backup) and reads back a decision made before the
backup exactly as it was answered, replays it, and has the same lifecycle history. The live witness, which signed
the decisions made after the backup, refuses that start and says the log was truncated, naming the lost seqs.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
import pytest

from regelmotor.cli.main import main
from regelmotor.store import FileWitness
from regelmotor.store.migrations import SQLITE_MIGRATIONS
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.grpc_support import request, struct
from tests.lifecycle_support import cases, seed_directory, source
from tests.postgres_support import fresh_database, postgres_tools, psycopg
from tests.server_process import ServerProcess, running_server, serve_once

CALLER = (("regelmotor-caller", "dips"),)
PURPOSE = "kontroll av gjenoppretting"
BEFORE, AFTER = 3, 2  # decisions made before the backup, and after it (lost with a restore of it)
LAST_IDS = ("SELECT (SELECT coalesce(max(id), 0) FROM ruleset_events), "
            "(SELECT coalesce(max(id), 0) FROM access_log WHERE hash IS NOT NULL)")


@dataclass
class Live:
    """The service whose store is backed up: its settings and where its key and witness are."""

    env: dict[str, str]
    key: Path
    witness: Path
    last_ids: Callable[[], tuple[int, int]]  # the newest lifecycle event id and chained access-log row id


@dataclass
class Restored:
    env: dict[str, str]  # a server's settings for the restored store, without its key and witness


class Backend(Protocol):
    """How one backend's store is made, backed up while the service runs, and restored."""

    def live(self, folder: Path) -> Live: ...

    def backup(self, live: Live, folder: Path) -> Path:
        """Back the store up into `folder`; returns the witness copy."""

    def restore(self, folder: Path) -> Restored: ...


class Postgres:
    def __init__(self, source_dsn: str, restored_dsn: str) -> None:
        self.tools = postgres_tools()
        self.source_dsn, self.restored_dsn = source_dsn, restored_dsn

    def live(self, folder: Path) -> Live:
        def last_ids() -> tuple[int, int]:
            with psycopg.connect(self.source_dsn) as conn:
                row = conn.execute(LAST_IDS).fetchone()
                assert row is not None
                return int(row[0]), int(row[1])

        return Live({"REGELMOTOR_DECISION_LOG": self.source_dsn, "REGELMOTOR_CHECKPOINT_KEY_FILE":
                     str(folder / "checkpoint.key"), "REGELMOTOR_WITNESS_FILE": str(folder / "checkpoints.jsonl")},
                    folder / "checkpoint.key", folder / "checkpoints.jsonl", last_ids)

    def backup(self, live: Live, folder: Path) -> Path:
        shutil.copy2(live.witness, folder / "checkpoints.jsonl")  # first: it signs nothing the dump lacks
        subprocess.run([self.tools["pg_dump"], "--format=custom", "--file", str(folder / "decisions.dump"),
                        "--dbname", self.source_dsn], check=True, capture_output=True, timeout=120)
        return folder / "checkpoints.jsonl"

    def restore(self, folder: Path) -> Restored:
        subprocess.run([self.tools["pg_restore"], "--exit-on-error", "--no-owner", "--dbname", self.restored_dsn,
                        str(folder / "decisions.dump")], check=True, capture_output=True, timeout=120)
        return Restored({"REGELMOTOR_DECISION_LOG": self.restored_dsn})


class SQLite:
    def live(self, folder: Path) -> Live:
        database = folder / "decisions.db"

        def last_ids() -> tuple[int, int]:
            with closing(sqlite3.connect(database)) as conn:
                event, access = conn.execute(LAST_IDS).fetchone()
                return int(event), int(access)

        return Live({"REGELMOTOR_DATA_DIR": str(folder)}, folder / "checkpoint.key", folder / "checkpoints.jsonl",
                    last_ids)

    def backup(self, live: Live, folder: Path) -> Path:
        command = ["db", "backup", "--decision-log", str(Path(live.env["REGELMOTOR_DATA_DIR"]) / "decisions.db"),
                   "--witness", str(live.witness), "--to", str(folder / "decisions.db")]
        assert main(command) == 0
        return folder / "decisions.db.checkpoints.jsonl"  # `db backup` puts the witness copy beside the copy

    def restore(self, folder: Path) -> Restored:
        data = folder.parent / "restored-data"
        data.mkdir()
        shutil.copy2(folder / "decisions.db", data / "decisions.db")  # restoring is copying the file back
        return Restored({"REGELMOTOR_DATA_DIR": str(data)})


@contextmanager
def _backend(kind: str) -> Iterator[Backend]:
    if kind == "sqlite":
        yield SQLite()
        return
    with fresh_database() as source_dsn, fresh_database() as restored_dsn:
        yield Postgres(source_dsn, restored_dsn)


def _decide(server: ServerProcess, prefix: str, count: int) -> list[pb.Decision]:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        return [stub.Evaluate(pb.EvaluateRequest(ruleset="sats", as_of="2024-06-01", facts=struct({"alder": 30 + i}),
                                                 request_id=f"{prefix}-{i}"), metadata=CALLER, timeout=60)
                for i in range(count)]


def _propose_and_reject(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = rpb_grpc.RulesetServiceStub(channel)
        proposed = stub.ProposeRuleset(rpb.ProposeRulesetRequest(source=source("2025.1", "2025-01-01", grense=21),
                                                                  cases=cases("2025-01-01")),
                                       metadata=(("regelmotor-caller", "forfatter"),), timeout=60)
        assert proposed.accepted, proposed
        stub.RejectRuleset(rpb.RejectRulesetRequest(name="sats", version="2025.1", reason="grensen er feil"),
                           metadata=(("regelmotor-caller", "godkjenner"),), timeout=30)


def _reads(server: ServerProcess, decision_id: str) -> tuple[apb.GetDecisionResponse, rpb.GetRulesetHistoryResponse]:
    with grpc.insecure_channel(server.address) as channel:
        got = apb_grpc.AuditServiceStub(channel).GetDecision(
            apb.GetDecisionRequest(decision_id=decision_id, formaal=PURPOSE), timeout=30)
        history = rpb_grpc.RulesetServiceStub(channel).GetRulesetHistory(
            rpb.GetRulesetHistoryRequest(name="sats"), timeout=30)
    return got, history


def _await_checkpoint(live: Live, seq: int) -> None:
    """Until the service has signed the decisions, the lifecycle events and the access log so far (every second)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        latest = FileWitness(live.witness).latest()
        if latest is not None and (latest.checkpoint.seq, latest.checkpoint.lifecycle_id,
                                   latest.checkpoint.access_id) == (seq, *live.last_ids()):
            return
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of seq {seq} with the newest lifecycle event was signed")


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_backup_restored_into_a_new_store_verifies_and_reads_back_what_it_held(kind: str, tmp_path: Path) -> None:
    rulesets = seed_directory(tmp_path / "rulesets")
    live_folder, backup, keys = tmp_path / "live", tmp_path / "backup", tmp_path / "keys"
    for folder in (live_folder, backup, keys):
        folder.mkdir()
    secrets = {"REGELMOTOR_PSEUDONYM_KEY_FILE": str(keys / "pseudonym.key"), "REGELMOTOR_CHECKPOINT_SECONDS": "1"}
    with _backend(kind) as store:
        live = store.live(live_folder)
        with running_server(workers=1, rulesets=rulesets, env={**live.env, **secrets}) as server:
            before = _decide(server, "før", BEFORE)
            _propose_and_reject(server)
            original = _reads(server, before[0].decision_id)
            _await_checkpoint(live, BEFORE)
            witness_copy = store.backup(live, backup)  # online: the service is running
            _decide(server, "etter", AFTER)
        assert FileWitness(live.witness).latest().checkpoint.seq == BEFORE + AFTER  # type: ignore[union-attr]
        restored = store.restore(backup)
        # The restored store's own key and witness (copies: the restored server appends to its witness).
        shutil.copy2(live.key, backup / "checkpoint.key")
        with_backup = {**restored.env, **secrets, "REGELMOTOR_CHECKPOINT_KEY_FILE": str(backup / "checkpoint.key")}

        refused = serve_once({**with_backup, "REGELMOTOR_WITNESS_FILE": str(live.witness)}, "--rulesets",
                                str(rulesets))
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        message = refused.stderr.strip().splitlines()[-1]
        assert message.startswith("regelmotor: cannot start: REGELMOTOR_WITNESS_FILE: the decision log ends before "
                                  "its latest checkpoint (restored from an older backup, or records removed): "
                                  f"truncated at {BEFORE + 1}: the chain head is at seq {BEFORE}, below the "
                                  "checkpoint of "), message
        assert f"seq {BEFORE + 1}–{BEFORE + AFTER} were removed" in message
        assert "restore a newer backup if there is one, else start with the witness copied with the backup" in message

        assert witness_copy.is_file()
        copied = FileWitness(witness_copy).latest()
        assert copied is not None and copied.checkpoint.seq == BEFORE
        env = {**with_backup, "REGELMOTOR_WITNESS_FILE": str(witness_copy)}
        with running_server(workers=1, rulesets=rulesets, env=env) as server, \
                grpc.insecure_channel(server.address) as channel:
            audit = apb_grpc.AuditServiceStub(channel)
            verified = audit.VerifyLog(apb.VerifyLogRequest(formaal=PURPOSE), timeout=60)
            replayed = audit.ReplayDecision(apb.ReplayDecisionRequest(decision_id=before[0].decision_id,
                                                                      formaal=PURPOSE), timeout=60)
            got, history = _reads(server, before[0].decision_id)
            listed = audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, page_size=50), timeout=30)
    assert verified.ok and verified.checked == BEFORE, verified
    assert (verified.checkpoint.seq, verified.checkpoint.lifecycle_id) == (BEFORE, history.events[-1].id)
    # Checked against the checkpoint the backup took along, not one the restored server signed for itself.
    assert (verified.checkpoint.at, verified.checkpoint.hash, verified.checkpoint.access_id) == (
        copied.checkpoint.at, copied.checkpoint.hash, copied.checkpoint.access_id)
    assert got == original[0] and got.decision == before[0]
    assert history == original[1] and [e.action for e in history.events][-2:] == ["proposed", "rejected"]
    assert replayed.identical and replayed.answer_matches, replayed
    assert sorted(d.request_id for d in listed.decisions) == sorted(f"før-{i}" for i in range(BEFORE))


def test_db_backup_writes_a_private_whole_file_and_names_what_it_cannot_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("REGELMOTOR_DECISION_LOG", raising=False)
    monkeypatch.setenv("REGELMOTOR_DATA_DIR", str(tmp_path / "data"))
    target = tmp_path / "backup.db"

    def refused(*args: str) -> str:
        assert main(["db", "backup", "--to", str(target), *args]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and not target.exists()
        return err

    database, witness = tmp_path / "data" / "decisions.db", tmp_path / "data" / "checkpoints.jsonl"
    assert f"decision_log: there is no SQLite decision log at {database}" in refused()  # 'sqlite' in the data dir
    assert "decision_log: is 'off': there is no decision log to back up" in refused("--decision-log", "off")
    advice = refused("--decision-log", "postgresql://regelmotor:secret@db/regelmotor")
    assert "decision_log: a PostgreSQL store is backed up with pg_dump" in advice and "secret" not in advice
    (tmp_path / "other.db").write_bytes(b"not a database at all" * 100)
    assert "is not a regelmotor decision log" in refused("--decision-log", str(tmp_path / "other.db"), "--no-witness")

    with running_server(workers=1, env={"REGELMOTOR_DATA_DIR": str(tmp_path / "data")}) as server:
        _decide_bundled(server)
    assert ("witness: there is no witness file at /nowhere.jsonl (give --witness, or --no-witness to copy none)"
            in refused("--witness", "/nowhere.jsonl"))
    assert not Path(f"{target}.checkpoints.jsonl").exists()
    assert main(["db", "backup", "--to", str(target)]) == 0  # the service's settings: its data directory
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"witness {witness} copied first to {target}.checkpoints.jsonl: latest checkpoint at "
                             "seq 1")
    assert out[1].startswith(f"decision log {database} backed up to {target}: chain head at seq 1, schema version "
                             f"{len(SQLITE_MIGRATIONS)}, ")
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir() if p.name.startswith("backup")} == {
        "backup.db": 0o600, "backup.db.checkpoints.jsonl": 0o600}
    with closing(sqlite3.connect(target)) as copy:
        assert copy.execute("SELECT count(*), max(seq) FROM decisions").fetchone() == (1, 1)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert main(["db", "backup", "--to", str(target)]) == 2
    assert f"to: {target} exists: a backup never overwrites a file" in capsys.readouterr().err
    alone = tmp_path / "alone.db"
    assert main(["db", "backup", "--to", str(alone), "--no-witness"]) == 0
    assert alone.is_file() and not Path(f"{alone}.checkpoints.jsonl").exists()


def _decide_bundled(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        pb_grpc.DecisionServiceStub(channel).Evaluate(request(None, request_id="b-1"), metadata=CALLER, timeout=60)
