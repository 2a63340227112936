"""Any facts that satisfy a ruleset's schema evaluate without crashing, and the same again gives the
same outcome, explanation and hashes. Run over every ruleset version shipped and every fixture."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings

from regelmotor.core.api import Regelmotor
from regelmotor.core.decision import Decision
from regelmotor.core.errors import InvalidFacts, ParameterValueMissing
from regelmotor.core.model import Ruleset
from regelmotor.core.repository import RulesetRepository
from tests.conftest import BUNDLED_RULESETS, FIXTURES
from tests.strategies import facts_in_period, period_dates


def _versions() -> list[tuple[Regelmotor, Ruleset]]:
    found: list[tuple[Regelmotor, Ruleset]] = []
    for root in (BUNDLED_RULESETS, FIXTURES / "rulesets"):
        if not any(Path(root).glob("*/*.yaml")):
            continue
        motor = Regelmotor(RulesetRepository.load(root, include_drafts=True))
        for name in motor.repository.names():
            found.extend((motor, ruleset) for ruleset in motor.repository.all_versions(name))
    return found


VERSIONS = _versions()


def evaluated(motor: Regelmotor, ruleset: Ruleset, facts: dict[str, Any], as_of: date) -> Decision:
    """The decision on schema-valid facts. Only the documented refusals may stop it - a declared
    cross-field constraint, a parameter without a value on the day - and such an example is discarded
    (hypothesis.reject() is assume(False))."""
    try:
        return motor.evaluate(ruleset.meta.name, facts, as_of=as_of, version=ruleset.meta.version)
    except InvalidFacts as refused:
        declared = [(c.field, message_pattern(c.message)) for c in ruleset.constraints]
        for violation in refused.violations:
            assert any(field == violation.field and pattern.fullmatch(violation.reason)
                       for field, pattern in declared), refused
    except ParameterValueMissing:
        pass
    reject()


def message_pattern(message: str) -> re.Pattern[str]:
    """A constraint's message as its refusals read: each {name} in it shows some value."""
    return re.compile(".+".join(re.escape(part) for part in re.split(r"\{\w+\}", message)), re.S)


@pytest.mark.parametrize(("motor", "ruleset"), VERSIONS, ids=[r.key for _, r in VERSIONS])
def test_schema_valid_facts_evaluate_and_repeat_identically(motor: Regelmotor, ruleset: Ruleset) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(facts=facts_in_period(ruleset), as_of=period_dates(ruleset))
    def check(facts: dict[str, Any], as_of: date) -> None:
        first = evaluated(motor, ruleset, facts, as_of)
        second = motor.evaluate(ruleset.meta.name, facts, as_of=as_of, version=ruleset.meta.version)
        assert first.outcome == second.outcome
        assert first.ruleset_sha256 == second.ruleset_sha256 == ruleset.sha256
        assert first.content_sha256 == second.content_sha256
        assert first.decision_id != second.decision_id
        assert {r.id for r in first.explanation.rules} == {r.id for r in ruleset.rules}

    check()
