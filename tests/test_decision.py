"""A decision as plain JSON: it round-trips, and its content hash ignores only the decision id; a new decision id is
a random UUID."""

from __future__ import annotations

import json
import uuid
from datetime import date

from regelmotor.core.api import Regelmotor
from regelmotor.core.decision import decision_from_dict, new_decision_id
from tests.conftest import FIXTURES

FACTS = {"ansiennitetsdato": "2020-03-02", "fodselsdato": "2000-01-01", "fagomrade": "tsb",
         "forventet_nytte": True, "kostnad_rimelig": True, "klinisk_frist_uker": 20}


def test_decision_round_trips_through_json() -> None:
    motor = Regelmotor.from_directory(FIXTURES / "rulesets")
    decision = motor.evaluate("vurderingsfrist", FACTS, as_of=date(2020, 4, 1))
    text = json.dumps(decision.to_dict(), ensure_ascii=False)
    again = decision_from_dict(json.loads(text))
    assert again == decision and again.content_sha256 == decision.content_sha256


def test_content_hash_ignores_the_decision_id_and_nothing_else() -> None:
    motor = Regelmotor.from_directory(FIXTURES / "rulesets")
    first = motor.evaluate("vurderingsfrist", FACTS, as_of=date(2020, 4, 1))
    second = motor.evaluate("vurderingsfrist", FACTS, as_of=date(2020, 4, 1))
    later = motor.evaluate("vurderingsfrist", FACTS, as_of=date(2020, 4, 2))
    assert first.decision_id != second.decision_id and first.content_sha256 == second.content_sha256
    assert later.content_sha256 != first.content_sha256


def test_a_new_decision_id_is_a_random_version_4_uuid_as_uuid4_writes_it() -> None:
    ids = [new_decision_id() for _ in range(200)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
