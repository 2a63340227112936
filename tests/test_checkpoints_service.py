"""The service checkpoints its decision log: VerifyLog checks against the latest witnessed checkpoint, and a
start on a log tampered with since is refused (regelmotor.server.witnessing)."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from regelmotor.server.startup import StartupError
from regelmotor.store import ListFilter
from regelmotor.store.chain import canonical_json, record_hash
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import request, server_in_process


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="regelmotor-checkpoints-") as directory:
        yield Path(directory)


def _evaluate(port: int, count: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        for i in range(count):
            stub.Evaluate(request(None, request_id=f"cp-{i}"), metadata=[("regelmotor-caller", "dips")], timeout=30)


def _sql(database: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    with closing(sqlite3.connect(database, isolation_level=None)) as db:
        db.execute("DROP TRIGGER IF EXISTS decisions_no_update")
        db.execute("DROP TRIGGER IF EXISTS decisions_no_delete")
        for statement, params in statements:
            db.execute(statement, params)


def test_verify_log_names_a_truncation_the_chain_alone_cannot_see(data_dir: Path) -> None:
    with server_in_process(workers=0, data_dir=data_dir) as (server, _, _):
        _evaluate(server.port, 3)
        checkpointer = server.service.checkpointer
        assert checkpointer is not None and checkpointer.checkpoint().result.ok
        assert server.log is not None
        kept = server.log.hash_at(2)
        _sql(data_dir / "decisions.db", ("DELETE FROM decisions WHERE seq = 3", ()),
             ("UPDATE chain_head SET seq = 2, hash = ? WHERE id = 1", (kept,)))
        assert server.log.verify().ok
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            verified = apb_grpc.AuditServiceStub(channel).VerifyLog(
                apb.VerifyLogRequest(formaal="kontroll av loggen"), timeout=30)
    assert not verified.ok and (verified.first_problem.kind, verified.first_problem.seq) == ("truncated", 3)
    assert verified.checkpoint.seq == 3 and verified.checkpoint.at


def test_a_clean_log_verifies_and_a_rehashed_one_refuses_the_next_start(data_dir: Path) -> None:
    with server_in_process(workers=0, data_dir=data_dir) as (server, _, _):
        _evaluate(server.port, 3)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            verified = apb_grpc.AuditServiceStub(channel).VerifyLog(
                apb.VerifyLogRequest(formaal="kontroll av loggen"), timeout=30)
        assert server.log is not None
        records = list(server.log.iterate(ListFilter()))
        lifecycle = server.log.rulesets().head()  # the seeding's import events
    assert verified.ok and verified.checked == 3
    assert lifecycle.id > 0
    assert (verified.checkpoint.lifecycle_id, verified.checkpoint.lifecycle_hash) == (lifecycle.id, lifecycle.hash)
    # Stopped: the shutdown checkpoint signed seq 3. A clean restart is fine.
    with server_in_process(workers=0, data_dir=data_dir) as (server, _, _):
        assert server.service.checkpointer is not None
        latest = server.service.checkpointer.latest()
        assert latest is not None and latest.seq == 3
    records[1] = replace(records[1], outcome={"utfall": "ikke_rett"})
    statements: list[tuple[str, tuple[object, ...]]] = [
        ("UPDATE decisions SET outcome = ? WHERE seq = 2", (canonical_json(records[1].outcome),))]
    prev_hash = records[0].hash
    for record in records[1:]:
        digest = record_hash(prev_hash, record, record.seq)
        statements.append(("UPDATE decisions SET prev_hash = ?, hash = ? WHERE seq = ?",
                           (prev_hash, digest, record.seq)))
        prev_hash = digest
    statements.append(("UPDATE chain_head SET hash = ? WHERE id = 1", (prev_hash,)))
    _sql(data_dir / "decisions.db", *statements)
    refused = r"^REGELMOTOR_WITNESS_FILE: the decision log was tampered with: rehashed at 3: "
    with pytest.raises(StartupError, match=refused), server_in_process(workers=0, data_dir=data_dir):
        pass
