"""A prune beside the service: two instances on one PostgreSQL and a prune (deploy/README.md, "Several instances on
one PostgreSQL"): with one checkpoint key for both, a cut signed by `regelmotor db prune` verifies on both; with a key
of its own, the other instance reports the cut as `cut invalid` and refuses its next start - why every instance must
share the key. And a prune that commits while an instance checks the log against its checkpoint is not reported as
truncation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from regelmotor.cli.main import main
from regelmotor.server.startup import StartupError
from regelmotor.store import Checkpointer, DecisionLog, FileWitness, load_or_create_key, open_log, prune
from regelmotor.store.chain import ChainHead, VerifyResult
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from tests import test_checkpoints
from tests.grpc_support import server_in_process
from tests.postgres_support import postgres_schema
from tests.test_decision_log import Backend
from tests.test_retention import day, now, stock_months

backend = test_checkpoints.backend  # a fresh store of each kind


@pytest.fixture
def stocked_dsn() -> Iterator[str]:
    """A fresh PostgreSQL schema holding six months of records (18, three a month from January 2025)."""
    with postgres_schema() as dsn:
        log = open_log(dsn)
        try:
            stock_months(log)
        finally:
            log.close()
        yield dsn


def _verify_log(port: int) -> apb.VerifyLogResponse:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer: apb.VerifyLogResponse = apb_grpc.AuditServiceStub(channel).VerifyLog(
            apb.VerifyLogRequest(formaal="kontroll av loggen etter sletting"), timeout=60)
    return answer


def _prune_and_verify_on_the_other(dsn: str, tmp_path: Path, *, shared: bool) -> apb.VerifyLogResponse:
    """Instances one and two on `dsn`, each with its own data directory (witness); two has the prune's key when
    `shared`, else one of its own. `db prune` signs with one's key; VerifyLog is then asked of two."""
    key_one, key_two = tmp_path / "one.key", tmp_path / ("one.key" if shared else "two.key")
    load_or_create_key(key_one), load_or_create_key(key_two)
    with server_in_process(workers=0, decision_log=dsn, data_dir=tmp_path / "one", checkpoint_key_file=key_one), \
            server_in_process(workers=0, decision_log=dsn, data_dir=tmp_path / "two",
                              checkpoint_key_file=key_two) as (two, _, _):
        assert _verify_log(two.port).ok  # both started on the log and checkpointed it
        assert main(["db", "prune", "--before", "2025-04-01", "--decision-log", dsn, "--checkpoint-key",
                     str(key_one), "--witness", str(tmp_path / "one" / "checkpoints.jsonl")]) == 0
        return _verify_log(two.port)


def test_a_prune_verifies_on_every_instance_that_shares_the_checkpoint_key(stocked_dsn: str, tmp_path: Path) -> None:
    verified = _prune_and_verify_on_the_other(stocked_dsn, tmp_path, shared=True)
    assert verified.ok and not verified.HasField("first_problem")
    assert verified.retention_cut.seq == 9 and verified.checked == 9
    # And the other instance starts again on the pruned log.
    with server_in_process(workers=0, decision_log=stocked_dsn, data_dir=tmp_path / "two",
                           checkpoint_key_file=tmp_path / "one.key") as (again, _, _):
        assert _verify_log(again.port).ok


def test_with_a_key_of_its_own_the_other_instance_reports_the_cut_invalid_and_refuses_to_start(
        stocked_dsn: str, tmp_path: Path) -> None:
    verified = _prune_and_verify_on_the_other(stocked_dsn, tmp_path, shared=False)
    assert not verified.ok
    assert (verified.first_problem.kind, verified.first_problem.seq) == ("cut invalid", 9)
    assert "is not among the checkpoint keys" in verified.first_problem.message
    with pytest.raises(StartupError, match=r"cut invalid at 9"), \
            server_in_process(workers=0, decision_log=stocked_dsn, data_dir=tmp_path / "two",
                              checkpoint_key_file=tmp_path / "two.key"):
        pass


class _PrunedAfterVerifying:
    """The log, with `meanwhile` run right after a verification's snapshot is read and closed: the moment at which
    a prune by another process can commit before the check reads the chain head and the checkpoint's record."""

    def __init__(self, log: DecisionLog, meanwhile: Callable[[], Any]) -> None:
        self._log, self._meanwhile = log, meanwhile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    def verify(self) -> VerifyResult:
        result = self._log.verify()
        self._meanwhile()
        return result

    def verify_since(self, start: ChainHead) -> VerifyResult:
        result = self._log.verify_since(start)
        self._meanwhile()
        return result


@pytest.mark.parametrize("full", [False, True])
def test_a_prune_committing_during_a_check_is_not_truncation(backend: Backend, tmp_path: Path, full: bool) -> None:
    log = backend.open()
    try:
        stock_months(log)
        key = load_or_create_key(tmp_path / "checkpoint.key")
        assert Checkpointer(log, key, FileWitness(tmp_path / "service.jsonl")).checkpoint().result.ok  # at seq 18
        pruned: list[int] = []
        pruner = Checkpointer(log, key, FileWitness(tmp_path / "pruner.jsonl"))
        racing = _PrunedAfterVerifying(log, lambda: pruned.append(prune(pruner, day(12), now=now).removed)
                                       if not pruned else None)
        service = Checkpointer(racing, key, FileWitness(tmp_path / "service.jsonl"))  # type: ignore[arg-type]
        checked = service.check(full=full)
    finally:
        log.close()
    assert pruned == [18]  # every record, the checkpoint's too, went while the check ran
    assert checked.result.ok, checked.result.first_problem
