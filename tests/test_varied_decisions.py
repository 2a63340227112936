"""The generated log's requests (bench/varied_decisions.py): varied from the bundled cases, every one decided by
the service's rules, and the same for the same seed, so a report made from them can be made again."""

from __future__ import annotations

from collections import Counter

import pytest
from bench.varied_decisions import varied_requests

from regelmotor.core.api import Regelmotor
from tests.conftest import BUNDLED_RULESETS

RULESETS = ("rett-til-helsehjelp", "prioriterte-pasientgrupper", "utskrivningsklar")
MOTOR = Regelmotor.from_directory(BUNDLED_RULESETS)


@pytest.mark.parametrize("name", RULESETS)
def test_every_varied_request_is_decided_and_the_same_seed_gives_the_same_requests(name: str) -> None:
    made = list(varied_requests(BUNDLED_RULESETS, name, 300, seed=7))
    assert len(made) == 300
    assert made == list(varied_requests(BUNDLED_RULESETS, name, 300, seed=7))
    assert made != list(varied_requests(BUNDLED_RULESETS, name, 300, seed=8))
    for request in made:
        MOTOR.evaluate(name, request.facts, as_of=request.as_of)  # raises if the service would refuse it


@pytest.mark.parametrize("name", RULESETS)
def test_the_requests_vary_their_cases_dates_and_outcomes(name: str) -> None:
    made = list(varied_requests(BUNDLED_RULESETS, name, 400, seed=7))
    assert len({r.case for r in made}) >= 10  # drawn from many of the bundled cases
    assert len({r.as_of for r in made}) >= 200  # dates moved, not copied
    headline = MOTOR.repository.all_versions(name)[-1].meta.headline
    assert headline is not None
    outcomes = Counter(str(MOTOR.evaluate(name, r.facts, as_of=r.as_of).outcome[headline]) for r in made)
    assert len(outcomes) >= 2, outcomes  # not one answer for all
