"""The engine keeps one durable_rules session per engine ruleset and retracts each fact once its firings are read
(regelmotor.core.engine): a fact fires exactly what it fires in a session of its own, and a firing that fails
part way leaves nothing behind for the next fact."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import durable_rules_engine
import pytest
from hypothesis import HealthCheck, given, settings

from regelmotor.core import engine
from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import load_cases
from regelmotor.core.errors import EngineFailure, InvalidFacts, ParameterValueMissing
from regelmotor.core.model import Ruleset
from regelmotor.core.repository import CASES_SUFFIX
from tests.strategies import facts_in_period, period_dates
from tests.test_properties import VERSIONS


class FreshSessions:
    """The version's engine rulesets registered again under names of their own, fired the way durable_rules is
    documented to be used: each fact in a new session, deleted afterwards."""

    def __init__(self, motor: Regelmotor, ruleset: Ruleset) -> None:
        compiled = motor.evaluator(ruleset).compiled
        self.handles: dict[str, int] = {}
        for round_ in [compiled.constraints, *compiled.rounds]:
            for partition in round_.partitions:
                copy = f"fresh-{uuid.uuid4().hex}"
                self.handles[partition.engine_name] = durable_rules_engine.create_ruleset(
                    copy, json.dumps(partition.definition))

    def fire(self, names: list[str], fact: dict[str, Any]) -> set[str]:
        fired: set[str] = set()
        for name in names:
            handle, sid = self.handles[name], uuid.uuid4().hex
            _, state = durable_rules_engine.assert_fact(handle, json.dumps({**fact, "sid": sid}))
            result = durable_rules_engine.start_action_for_state(handle, state)
            message = result[1] if result else None
            while message:
                fired.add(next(iter(json.loads(message))))
                message = durable_rules_engine.complete_and_start_action(handle, state)
            durable_rules_engine.delete_state(handle, sid)
        return fired


def compare_with_fresh_sessions(monkeypatch: pytest.MonkeyPatch, fresh: FreshSessions) -> list[str]:
    """Make every engine.fire of the evaluations that follow also fire in fresh sessions; the differences
    found are added to the list returned."""
    differences: list[str] = []
    reused = engine.fire

    def both(names: list[str], fact: dict[str, Any]) -> set[str]:
        fired = reused(names, fact)
        if fired != fresh.fire(names, fact):
            differences.append(f"{names}: {sorted(fired)} != {sorted(fresh.fire(names, fact))} for {fact}")
        return fired

    monkeypatch.setattr(engine, "fire", both)
    return differences


def run(motor: Regelmotor, ruleset: Ruleset, facts: Any, as_of: date) -> None:
    # Refused facts went through the engine too (the constraints), up to the refusal.
    with contextlib.suppress(InvalidFacts, ParameterValueMissing):
        motor.run(ruleset.meta.name, facts, as_of=as_of, version=ruleset.meta.version)


@pytest.mark.parametrize(("motor", "ruleset"), VERSIONS, ids=[r.key for _, r in VERSIONS])
def test_a_fact_fires_in_the_kept_session_what_it_fires_in_a_session_of_its_own(
        monkeypatch: pytest.MonkeyPatch, motor: Regelmotor, ruleset: Ruleset) -> None:
    differences = compare_with_fresh_sessions(monkeypatch, FreshSessions(motor, ruleset))
    path = Path(ruleset.source_path[: -len(".yaml")] + CASES_SUFFIX)
    for case in load_cases(path, ruleset) if path.exists() else []:
        run(motor, ruleset, case.facts, case.as_of)
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(facts=facts_in_period(ruleset), as_of=period_dates(ruleset))
    def check(facts: dict[str, Any], as_of: date) -> None:
        run(motor, ruleset, facts, as_of)

    check()
    assert differences == []


def test_a_firing_that_fails_part_way_leaves_nothing_for_the_next_fact(monkeypatch: pytest.MonkeyPatch) -> None:
    motor, ruleset = next((m, r) for m, r in VERSIONS if r.key == "rett-til-helsehjelp@2024.07")
    path = Path(ruleset.source_path[: -len(".yaml")] + CASES_SUFFIX)
    case = next(c for c in load_cases(path, ruleset) if c.expect_error is None and len(c.fired or ()) > 2)
    name, version = ruleset.meta.name, ruleset.meta.version
    expected = motor.evaluate(name, case.facts, as_of=case.as_of, version=version).content_sha256
    sessions = engine.live_sessions()
    real = durable_rules_engine.complete_and_start_action
    calls = [0]

    def fails_once(handle: int, state: int) -> Any:
        calls[0] += 1
        if calls[0] == 2:  # a firing read, more waiting in the session
            raise durable_rules_engine.error("injected failure")
        return real(handle, state)

    monkeypatch.setattr(durable_rules_engine, "complete_and_start_action", fails_once)
    with pytest.raises(EngineFailure, match="injected failure"):
        motor.evaluate(name, case.facts, as_of=case.as_of, version=version)
    monkeypatch.setattr(durable_rules_engine, "complete_and_start_action", real)
    for _ in range(3):
        assert motor.evaluate(name, case.facts, as_of=case.as_of, version=version).content_sha256 == expected
    assert engine.live_sessions() == sessions
