"""What the page of one ruleset version shows: its document (regelmotor.core.document, as `regelmotor ruleset
doc` writes it), its cases run by the service with what they leave untested, and its history."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from threading import Lock
from typing import Any

from regelmotor.core.cases import parse_cases
from regelmotor.core.document import RulesetDocument, describe, plain_value
from regelmotor.core.errors import RulesetInvalid
from regelmotor.core.loader import load_ruleset_text
from regelmotor_api.v1 import ruleset_pb2

from ..api import ConsoleApi, Metadata
from ..errors import ApiProblem
from ..formatting import kroner, norsk_tall
from ..money import is_kroner_unit


@dataclass(frozen=True)
class CaseRow:
    """One test case: as written (the document's) and as run by the service."""

    name: str
    as_of: str
    facts: dict[str, Any]
    expected: dict[str, Any]
    passed: bool | None  # None: not run (the cases could not run)
    failures: tuple[str, ...]
    fired: tuple[str, ...]


@dataclass(frozen=True)
class Testing:
    """The version's cases as TestRuleset ran them (with coverage)."""

    rows: tuple[CaseRow, ...]
    passed: int
    failed: int
    problems: tuple[str, ...]  # why the cases could not run, or could not be read
    coverage: dict[str, Any] = field(default_factory=dict)


def parameter_value(value: Any, unit: str) -> str:
    """A parameter's value as a reader expects it: 4 885 kr for an amount in NOK, 4 000 for other numbers."""
    if value is None:
        return "ingen verdi"
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return kroner(value) if is_kroner_unit(unit) else norsk_tall(value)
    return plain_value(value)


def document_of(answer: dict[str, Any]) -> RulesetDocument:
    """The document of a GetRuleset answer, parsed here from its source and cases (the served source is
    checked already; a problem still comes back as an ApiProblem, never as a failed page)."""
    version = answer["version"]
    return _document(f"{answer['ruleset']['name']}/{version['version']}", answer["source"], answer["cases"])


# A version's texts do not change under its name and number (its sha256 is in the store's chain), and reading a
# ruleset costs 30-40 ms: the pages a person goes back and forth between are read once. Keyed by the texts
# themselves, so a new version or changed cases are read anew.
@lru_cache(maxsize=32)
def _document(where: str, source: str, cases_text: str) -> RulesetDocument:
    try:
        ruleset = load_ruleset_text(source, f"{where}.yaml")
        cases = parse_cases(cases_text, f"{where}.cases.yaml", ruleset) if cases_text.strip() else []
    except RulesetInvalid as exc:
        raise ApiProblem("FAILED_PRECONDITION", f"Versjonen kunne ikke leses: {exc.diagnostics[0]}") from None
    return describe(ruleset, cases)


# What the service answered when it ran a version's cases: the same for the same texts (every case has its own
# as_of, and rules are pure), and 130-200 ms of the service's sandbox each time. Kept per texts, so only the
# first person to open a version waits for it; only people who have just been allowed to read the version
# (GetRuleset, the same role as TestRuleset) are shown a kept answer.
_TESTED: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
_TESTED_KEPT = 32
_TESTED_LOCK = Lock()


def _tested(api: ConsoleApi, metadata: Metadata, source: str, cases_text: str) -> dict[str, Any]:
    key = (hashlib.sha256(source.encode()).hexdigest(), hashlib.sha256(cases_text.encode()).hexdigest())
    with _TESTED_LOCK:
        if key in _TESTED:
            _TESTED.move_to_end(key)
            return _TESTED[key]
    tested = api.call(api.rulesets.TestRuleset, ruleset_pb2.TestRulesetRequest(
        source=source, cases=cases_text, coverage=True), metadata)
    with _TESTED_LOCK:
        _TESTED[key] = tested
        while len(_TESTED) > _TESTED_KEPT:
            _TESTED.popitem(last=False)
    return tested


def run_cases(api: ConsoleApi, metadata: Metadata, answer: dict[str, Any], document: RulesetDocument) -> Testing:
    """The version's cases run by the service (TestRuleset, with coverage), lined up with the document's."""
    if not answer["cases"].strip():
        return Testing((), 0, 0, ())
    tested = _tested(api, metadata, answer["source"], answer["cases"])
    problems = tuple(f"Linje {d['line']}: {d['message']}" for d in tested["diagnostics"])
    results = {r["name"]: r for r in tested["results"]}
    rows = tuple(
        CaseRow(case.name, case.as_of.isoformat(), case.facts, case.expected,
                results[case.name]["passed"] if case.name in results else None,
                tuple(results.get(case.name, {}).get("failures", ())),
                tuple(results.get(case.name, {}).get("fired", ())))
        for case in document.cases)
    return Testing(rows, tested["passed"], tested["failed"], problems, tested.get("coverage") or {})


def history_of(api: ConsoleApi, metadata: Metadata, name: str) -> dict[str, Any] | None:
    """The stored versions and lifecycle events of a ruleset; None when the service keeps no store (the
    lifecycle is then the rulesets directory's, and has no history to show)."""
    try:
        return api.call(api.rulesets.GetRulesetHistory, ruleset_pb2.GetRulesetHistoryRequest(name=name), metadata)
    except ApiProblem as problem:
        if problem.code in ("FAILED_PRECONDITION", "NOT_FOUND"):
            return None
        raise
