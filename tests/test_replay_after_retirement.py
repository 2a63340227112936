"""A recorded decision is replayed on its version even when that version was retired since it decided (a decision
logged between a retirement and the instance's reload is one such): replays are history, retirement governs only
new decisions."""

from __future__ import annotations

import shutil
from pathlib import Path

from regelmotor.core.api import Regelmotor
from regelmotor.core.repository import RETIRED_FILE, RulesetRepository
from regelmotor.server.handler import EvaluationHandler
from regelmotor.server.protocol import Evaluate
from regelmotor.server.worker import Worker, WorkerConfig
from regelmotor_api.v1 import decision_pb2 as pb
from tests.conftest import BUNDLED_RULESETS
from tests.grpc_support import request

PINNED = request(version="2024.07", request_id="").SerializeToString()  # rett-til-helsehjelp, as_of 2026-04-20


def _retired_handler(tmp_path: Path) -> EvaluationHandler:
    root = tmp_path / "rulesets"
    shutil.copytree(BUNDLED_RULESETS, root)
    # Its correction 2024.07.1 goes with it: a correction of a version no longer in force would be refused at load.
    (root / RETIRED_FILE).write_text("rett-til-helsehjelp@2024.07 from 2026-01-01\n"
                                     "rett-til-helsehjelp@2024.07.1 from 2026-01-01\n", encoding="utf-8")
    return EvaluationHandler(Regelmotor(RulesetRepository.load(root, include_drafts=True)))


def test_a_pinned_request_to_a_retired_version_is_refused_but_its_replay_is_answered(tmp_path: Path) -> None:
    handler = _retired_handler(tmp_path)
    refused = handler.evaluate(PINNED)
    assert refused.decision is None and refused.error is not None
    assert pb.ErrorResult.FromString(refused.error).code == 9  # FAILED_PRECONDITION: retired from 2026-01-01
    assert b"retired" in refused.error
    replayed = handler.evaluate(PINNED, replay=True)
    assert replayed.error is None and replayed.decision is not None
    assert pb.Decision.FromString(replayed.decision).version == "2024.07"


def test_the_worker_passes_a_replay_on_to_its_engine(tmp_path: Path) -> None:
    worker = Worker(WorkerConfig(role="engine"), engine=_retired_handler(tmp_path))
    answer = worker.handle(Evaluate(PINNED, replay=True))
    assert getattr(answer, "decision", None), answer
    refused = worker.handle(Evaluate(PINNED))
    assert getattr(refused, "decision", "") is None and b"retired" in getattr(refused, "error", b"")
