"""Every answer stays byte for byte what it was: on each bundled case of every ruleset version, and on the random
facts kept in tests/data/answer_digests.json, the serialised Decision (as the worker writes it), the canonical JSON
of the full Decision, and every refusal hash to the recorded digests (tests/answer_digests.py made them from the
code before the evaluation was made cheaper; issue 13)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from tests.answer_digests import DIGESTS, answer_digest, bundled_motor, case_inputs, versions

RECORDED: dict[str, Any] = json.loads(DIGESTS.read_text(encoding="utf-8"))
MOTOR = bundled_motor()
VERSIONS = versions(MOTOR)


def test_every_version_and_case_has_a_recorded_digest() -> None:
    current = {ruleset.key: sorted(key for key, _, _ in case_inputs(ruleset)) for ruleset in VERSIONS}
    assert current == {key: sorted(entry["cases"]) for key, entry in RECORDED.items()}
    assert all(entry["random"] for entry in RECORDED.values())


@pytest.mark.parametrize("ruleset", VERSIONS, ids=[r.key for r in VERSIONS])
def test_answers_to_bundled_cases_are_unchanged(ruleset: Any) -> None:
    recorded = RECORDED[ruleset.key]["cases"]
    changed = [key for key, facts, as_of in case_inputs(ruleset)
               if answer_digest(MOTOR, ruleset, facts, as_of) != recorded[key]]
    assert changed == []


@pytest.mark.parametrize("ruleset", VERSIONS, ids=[r.key for r in VERSIONS])
def test_answers_to_random_facts_are_unchanged(ruleset: Any) -> None:
    changed = []
    for item in RECORDED[ruleset.key]["random"]:
        digest = answer_digest(MOTOR, ruleset, item["facts"], date.fromisoformat(item["as_of"]))
        if digest != {key: item[key] for key in ("wire", "decision", "error") if key in item}:
            changed.append(item["facts"])
    assert changed == []
