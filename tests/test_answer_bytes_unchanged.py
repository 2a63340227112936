"""The full answer stays byte for byte what it was: the sha256 of every bundled case's answer, as an engine
worker writes it (`EvaluationHandler.evaluate`, request bytes in, Decision bytes out), is recorded in
tests/data/answer_digests_full.json and recomputed here.

The digests were recorded from the code before the explanation levels and the cheaper writer (issue 13), so
any change to how a FULL answer is written - a field reordered, a value encoded another way - fails here, even
one the reference encoder would change the same way (tests/test_wire.py compares two writers with each other;
this compares the writer with its own past). Two fields of an answer are new in every call: the decision id
(a uuid4) and the trace id (the span's); each is put back to a fixed text of the same length before hashing,
at its one place in the bytes, so everything else is hashed exactly as answered.

When an answer is meant to change (a ruleset or the Decision message changes), write the file again and say
why in the commit:

    PYTHONPATH=... python -m tests.test_answer_bytes_unchanged --write
"""

from __future__ import annotations

import hashlib
import json
import sys

import pytest

from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import load_cases
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository
from regelmotor.server.handler import EvaluationHandler
from regelmotor_api.v1 import decision_pb2 as pb
from tests.conftest import BUNDLED_RULESETS, ROOT

DIGESTS = ROOT / "tests" / "data" / "answer_digests_full.json"
FIXED_DECISION_ID = "00000000-0000-4000-8000-000000000000"
FIXED_TRACE_ID = "0" * 32

MOTOR = Regelmotor(RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True))


def requests_by_version() -> dict[str, list[tuple[str, bytes]]]:
    """Every bundled case that expects a decision, as request bytes (as bench/worker_steps.py makes them, with
    a request_id so that its echo is covered too), by version key."""
    found: dict[str, list[tuple[str, bytes]]] = {}
    for name in MOTOR.repository.names():
        for ruleset in MOTOR.repository.all_versions(name):
            version = ruleset.meta.version
            cases = load_cases(BUNDLED_RULESETS / name / f"{version}{CASES_SUFFIX}", ruleset)
            found[ruleset.key] = [
                (case.name, pb.EvaluateRequest(ruleset=name, version=version, as_of=case.as_of.isoformat(),
                                               facts=case.facts, request_id=f"case-{index}").SerializeToString())
                for index, case in enumerate(cases) if case.expect_error is None]
    return found


def _fixed(answer: bytes, field: str, value: str, fixed: str) -> bytes:
    """`answer` with the text field `field` (holding `value`) holding `fixed` instead, at the same place."""
    number = pb.Decision.DESCRIPTOR.fields_by_name[field].number
    assert len(value) == len(fixed) < 128
    encoded = bytes([number << 3 | 2, len(value)])
    assert answer.count(encoded + value.encode()) == 1, f"{field} is not where a Decision puts it"
    return answer.replace(encoded + value.encode(), encoded + fixed.encode())


def answer_digest(answer: bytes) -> str:
    """The sha256 of an answer, with its decision id and trace id put back to fixed texts."""
    decision = pb.Decision.FromString(answer)
    answer = _fixed(answer, "decision_id", decision.decision_id, FIXED_DECISION_ID)
    answer = _fixed(answer, "trace_id", decision.trace_id, FIXED_TRACE_ID)
    return hashlib.sha256(answer).hexdigest()


def digests_of(handler: EvaluationHandler, requests: list[tuple[str, bytes]]) -> dict[str, str]:
    digests = {}
    for case, request in requests:
        reply = handler.evaluate(request)
        assert reply.decision is not None, f"{case}: {reply.error!r}"
        digests[case] = answer_digest(reply.decision)
    return digests


REQUESTS = requests_by_version()
RECORDED: dict[str, dict[str, str]] = (json.loads(DIGESTS.read_text(encoding="utf-8"))
                                       if DIGESTS.exists() else {})


def test_every_version_with_cases_has_its_digests_recorded() -> None:
    assert sorted(RECORDED) == sorted(key for key, requests in REQUESTS.items() if requests)


@pytest.mark.parametrize("key", sorted(RECORDED))
def test_the_full_answer_of_every_bundled_case_is_byte_identical(key: str) -> None:
    handler = EvaluationHandler(MOTOR)
    requests = REQUESTS[key]
    assert digests_of(handler, requests) == RECORDED[key]
    # Again: now every cache of the version's answer (its plan, encoded values) is warm.
    assert digests_of(handler, requests) == RECORDED[key]


def _write() -> None:
    handler = EvaluationHandler(MOTOR)
    recorded = {key: digests_of(handler, requests) for key, requests in REQUESTS.items() if requests}
    DIGESTS.parent.mkdir(exist_ok=True)
    DIGESTS.write_text(json.dumps(recorded, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {sum(map(len, recorded.values()))} digests of {len(recorded)} versions to {DIGESTS}")


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    _write()
