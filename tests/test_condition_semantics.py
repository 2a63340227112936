"""The reference cases of what conditions mean (tests/semantics/*.yaml, described in its README.md), each
decided by the engine: the rule `when: <condition>` fires for every case under `holds` and for none under
`fails`, and its explanation says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from regelmotor.core.evaluator import Evaluator
from regelmotor.core.yamlsource import load_located
from tests.conftest import ROOT

SEMANTICS = ROOT / "tests" / "semantics"
FILES = sorted(SEMANTICS.glob("*.yaml"))
AS_OF = date(2026, 1, 1)
ENTRY_KEYS = {"when", "note", "holds", "fails"}


def _read(path: Path) -> dict[str, Any]:
    """The file's data, read as strictly as a ruleset (a key written twice is an error, not the last one)."""
    data = load_located(path.read_text(encoding="utf-8"), allow_aliases=False).data
    assert isinstance(data, dict) and set(data) == {"facts", "conditions"}, f"{path.name}: facts and conditions"
    return data


def _ruleset(facts: dict[str, Any], condition: str) -> str:
    return yaml.safe_dump({"facts": facts}, sort_keys=False) + f"""\
rules:
  - id: r
    title: r
    hjemmel: h1
    when: {json.dumps(condition)}
    then: {{ok: true}}
outcomes:
  ok: {{type: bool, default: false, combine: any}}
"""


def _shown(facts: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{name}: {value}" for name, value in facts.items()) + "}"


def _cases() -> list[Any]:
    cases = []
    for path in FILES:
        data = _read(path)
        for entry in data["conditions"]:
            for held, key in ((True, "holds"), (False, "fails")):
                for facts in entry.get(key, []):
                    verdict = "holds" if held else "does not hold"
                    cases.append(pytest.param(path.name, data["facts"], entry["when"], facts, held,
                                              id=f"{path.stem}: {entry['when']} {verdict} for {_shown(facts)}"))
    return cases


_evaluators: dict[tuple[str, str], Evaluator] = {}


@pytest.mark.parametrize(("file", "declared", "condition", "facts", "held"), _cases())
def test_a_condition_holds_as_its_reference_case_says(make_evaluator: Callable[..., Evaluator], file: str,
                                                      declared: dict[str, Any], condition: str,
                                                      facts: dict[str, Any], held: bool) -> None:
    evaluator = _evaluators.get((file, condition))
    if evaluator is None:
        evaluator = _evaluators[(file, condition)] = make_evaluator(_ruleset(declared, condition))
    decision = evaluator.evaluate(facts, AS_OF)
    assert decision.outcome["ok"] is held
    (rule,) = decision.explanation.rules
    assert rule.fired is held


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_every_reference_entry_has_cases_and_only_known_keys(path: Path) -> None:
    data = _read(path)
    assert data["conditions"], f"{path.name} has no conditions"
    for entry in data["conditions"]:
        assert set(entry) <= ENTRY_KEYS, f"{path.name}: {entry.get('when')}: unknown keys {set(entry) - ENTRY_KEYS}"
        assert isinstance(entry["when"], str) and (entry.get("holds") or entry.get("fails")), entry
        for facts in [*entry.get("holds", []), *entry.get("fails", [])]:
            assert isinstance(facts, dict) and set(facts) <= set(data["facts"]), (path.name, entry["when"], facts)


def test_the_reference_files_are_the_ones_the_readme_lists() -> None:
    readme = (SEMANTICS / "README.md").read_text(encoding="utf-8")
    assert FILES and all(f"`{path.name}`" in readme for path in FILES)
