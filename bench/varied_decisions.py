"""Realistic requests for a ruleset, made from its bundled test cases with random variation.

The bundled cases are written by policy staff to be plausible: each varied request starts from one of them (cases
that expect an error are left out) and moves it as a stream of real requests would differ. All dates and times of
the case move together by one random number of days (up to a year either way, so the intervals that decide — a
frist, a payment period, an age — stay as written), and so does its as_of; each whole number moves a little
within the bounds its schema declares; a yes/no fact flips, a choice takes another of its allowed values, a list of
choices gains or loses one, and an ICD-10 code is swapped for another code the ruleset's cases use, each now and
then. A variation the service would refuse (a constraint, no version in force on the moved date) is dropped and
another one drawn, so every request made decides.

`varied_requests` is deterministic for a seed: the same rulesets and seed give the same requests, so a report made
from them can be made again. Used by bench/corrections.py; tested in tests/test_varied_decisions.py.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import Case, load_cases
from regelmotor.core.errors import RegelmotorError
from regelmotor.core.json_schema import input_schema
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository

MAX_DAYS_MOVED = 365
CHANGE = 0.15  # how often a yes/no, choice, list or code fact is varied
_ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?$")
_TRIES_PER_REQUEST = 50


@dataclass(frozen=True)
class VariedRequest:
    ruleset: str
    as_of: str  # YYYY-MM-DD
    facts: dict[str, Any]  # JSON: dates and times as text
    case: str  # the bundled case it was varied from


def _cases(repository: RulesetRepository, rulesets: Path, name: str) -> list[Case]:
    found: list[Case] = []
    for ruleset in repository.all_versions(name):
        path = rulesets / name / f"{ruleset.meta.version}{CASES_SUFFIX}"
        if path.exists():
            found += [c for c in load_cases(path, ruleset) if c.expect_error is None]
    if not found:
        raise ValueError(f"no bundled cases of {name!r} under {rulesets} to vary")
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class _Variation:
    def __init__(self, schema: dict[str, Any], codes: list[str], rng: random.Random) -> None:
        self.properties: dict[str, Any] = schema.get("properties", {})
        self.codes = codes
        self.rng = rng

    def facts(self, facts: dict[str, Any], days: int) -> dict[str, Any]:
        varied: dict[str, Any] = {}
        for name, value in facts.items():
            varied[name] = self.value(self.properties.get(name, {}), copy.deepcopy(value), days)
        return varied

    def value(self, spec: dict[str, Any], value: Any, days: int) -> Any:
        rng = self.rng
        if isinstance(value, datetime):
            return (value + timedelta(days=days)).isoformat()
        if isinstance(value, date):
            return (value + timedelta(days=days)).isoformat()
        if isinstance(value, str) and spec.get("format") in ("date", "date-time"):
            moved = datetime.fromisoformat(value.replace("Z", "+00:00"))
            shifted = moved + timedelta(days=days)
            return shifted.date().isoformat() if spec["format"] == "date" else shifted.isoformat()
        if isinstance(value, bool):
            return (not value) if rng.random() < CHANGE else value
        if isinstance(value, int) and spec.get("type") == "integer":
            low, high = spec.get("minimum", value - 5), spec.get("maximum", value + 5)
            return min(high, max(low, value + rng.randint(-5, 5))) if rng.random() < 0.5 else value
        if isinstance(value, str) and "enum" in spec:
            return rng.choice(spec["enum"]) if rng.random() < CHANGE else value
        if isinstance(value, str) and _ICD10.match(value) and self.codes:
            return rng.choice(self.codes) if rng.random() < CHANGE else value
        if isinstance(value, list):
            return self.listed(spec.get("items", {}), value, days)
        return _plain(value)

    def listed(self, items: dict[str, Any], values: list[Any], days: int) -> list[Any]:
        rng = self.rng
        varied = [self.value(items, v, days) for v in values]
        choices = items.get("enum") or (self.codes if items.get("pattern") else None)
        if choices and rng.random() < CHANGE:
            if varied and rng.random() < 0.5:
                varied.pop(rng.randrange(len(varied)))
            else:
                extra = rng.choice(choices)
                if extra not in varied:
                    varied.append(extra)
        return varied


def _codes(cases: list[Case]) -> list[str]:
    found: set[str] = set()
    for case in cases:
        for value in case.facts.values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and _ICD10.match(item):
                    found.add(item)
    return sorted(found)


def varied_requests(rulesets: Path, name: str, count: int, seed: int = 2026) -> Iterator[VariedRequest]:
    """`count` requests for ruleset `name`, each one the service decides (see the module docstring)."""
    repository = RulesetRepository.load(rulesets)
    motor = Regelmotor(repository)
    cases = _cases(repository, rulesets, name)
    rng = random.Random(f"{seed}:{name}")
    newest = repository.all_versions(name)[-1]
    variation = _Variation(input_schema(newest), _codes(cases), rng)
    made = 0
    while made < count:
        for _ in range(_TRIES_PER_REQUEST):
            case = rng.choice(cases)
            days = rng.randint(-MAX_DAYS_MOVED, MAX_DAYS_MOVED)
            facts = variation.facts(case.facts, days)
            as_of = (case.as_of + timedelta(days=days)).isoformat()
            try:
                motor.evaluate(name, facts, as_of=as_of)
            except RegelmotorError:
                continue
            made += 1
            yield VariedRequest(name, as_of, facts, case.name)
            break
        else:
            raise RuntimeError(f"{_TRIES_PER_REQUEST} variations in a row of {name!r}'s cases were refused: "
                               "the variation is too wide for this ruleset")
