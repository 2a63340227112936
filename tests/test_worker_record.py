"""What an engine worker hands the decision log along with each decision: the record's large fields
already in their canonical text, equal to what the log would make itself, and the compressed answer."""

from __future__ import annotations

import json

from regelmotor.core.api import Regelmotor
from regelmotor.core.repository import RulesetRepository
from regelmotor.server.handler import EvaluationHandler
from regelmotor.server.packing import unpack_response
from regelmotor.store.chain import canonical_json, large_parts
from tests.conftest import BUNDLED_RULESETS
from tests.grpc_support import request

MOTOR = Regelmotor(RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True))


def test_the_worker_hands_over_the_canonical_text_the_log_would_make() -> None:
    reply = EvaluationHandler(MOTOR, records=True).evaluate(request().SerializeToString())
    assert reply.record is not None and reply.stored is not None and reply.encoded is not None
    assert reply.encoded == large_parts(reply.record["facts"], reply.record["outcome"], reply.record,
                                        reply.stored)
    assert json.loads(reply.encoded["decision"]) == reply.record
    assert reply.encoded["facts"] == canonical_json(reply.record["facts"])
    assert unpack_response(reply.stored) == reply.decision


def test_without_a_log_the_worker_makes_no_record() -> None:
    reply = EvaluationHandler(MOTOR, records=False).evaluate(request().SerializeToString())
    assert reply.decision and reply.record is None and reply.encoded is None and reply.stored is None
