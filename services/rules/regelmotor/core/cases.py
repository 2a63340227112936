"""Test cases written by policy staff, kept beside each ruleset version.

``<version>.cases.yaml`` holds a list of cases: facts, as_of, the expected outcome fields and,
optionally, the exact set of rules expected to fire (so a right answer for the wrong reason fails),
the version the facts should select, or the error expected instead of a decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .api import Regelmotor
from .decision import Decision
from .errors import Diagnostic, RegelmotorError, RulesetInvalid
from .model import Ruleset
from .types import to_json_value
from .yamlsource import YamlProblem, load_located

_CASE_KEYS = {"name", "as_of", "facts", "expect", "fired", "expect_version", "expect_error"}


@dataclass(frozen=True)
class Case:
    name: str
    line: int
    as_of: date
    facts: dict[str, Any]
    expect: dict[str, Any]
    fired: frozenset[str] | None = None
    expect_version: str | None = None
    expect_error: dict[str, str] | None = None


@dataclass
class CaseResult:
    case: Case
    failures: list[str] = field(default_factory=list)
    decision: Decision | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


def load_cases(path: str | Path, ruleset: Ruleset | None = None) -> list[Case]:
    file = Path(path)
    return parse_cases(file.read_text(encoding="utf-8"), str(file), ruleset)


def parse_cases(text: str, file: str = "<cases>", ruleset: Ruleset | None = None) -> list[Case]:
    """Cases from YAML text; problems are reported with `file`, line and column."""
    try:
        located = load_located(text)
    except YamlProblem as exc:
        raise RulesetInvalid([Diagnostic(file, exc.line, exc.column, str(exc))]) from None
    data = located.data
    problems: list[Diagnostic] = []

    def problem(where: tuple[str | int, ...], message: str) -> None:
        line, col = located.where(where)
        problems.append(Diagnostic(file, line, col, message))

    raw_cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(raw_cases, list):
        raise RulesetInvalid([Diagnostic(file, 1, 1, "a cases file needs `cases`: a list")])
    cases: list[Case] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_cases):
        where: tuple[str | int, ...] = ("cases", index)
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            problem(where, "each case needs a `name`")
            continue
        unknown = set(raw) - _CASE_KEYS
        if unknown:
            problem(where, f"unknown keys {sorted(unknown)}; allowed: {sorted(_CASE_KEYS)}")
        if raw["name"] in names:
            problem(where, f"duplicate case name {raw['name']!r}")
        names.add(raw["name"])
        as_of = raw.get("as_of")
        if not isinstance(as_of, date):
            problem(where, "each case needs `as_of: YYYY-MM-DD`")
            continue
        expect = raw.get("expect") or {}
        if ruleset is not None:
            for key in expect:
                if key not in ruleset.outcomes:
                    problem((*where, "expect", key), f"{key!r} is not an outcome of {ruleset.key}")
        fired = raw.get("fired")
        if fired is not None and ruleset is not None:
            for rule_id in fired:
                if not any(r.id == rule_id for r in ruleset.rules):
                    problem((*where, "fired"), f"no rule {rule_id!r} in {ruleset.key}")
        if not expect and raw.get("expect_error") is None:
            problem(where, "a case needs `expect` (outcome fields) or `expect_error`")
        facts = raw.get("facts") or {}
        cases.append(Case(raw["name"], located.where(where)[0], as_of, _as_json(facts), expect,
                          frozenset(fired) if fired is not None else None,
                          str(raw["expect_version"]) if raw.get("expect_version") else None,
                          _expect_error(raw.get("expect_error"))))
    if problems:
        raise RulesetInvalid(problems)
    return cases


def _expect_error(raw: Any) -> dict[str, str] | None:
    # An unquoted date or number in `contains` is meant as text.
    return None if raw is None else {str(k): str(to_json_value(v)) for k, v in raw.items()}


def _as_json(facts: Any) -> Any:
    """Facts as a hospital system would send them: dates as ISO text, as in JSON."""
    return to_json_value(facts)


def run_case(motor: Regelmotor, ruleset: Ruleset, case: Case) -> CaseResult:
    result = CaseResult(case)
    name = ruleset.meta.name
    try:
        if case.expect_version is not None:
            chosen, _, _ = motor.choose(name, case.facts, as_of=case.as_of)
            if chosen.meta.version != case.expect_version:
                result.failures.append(
                    f"version: expected {case.expect_version}, the facts select {chosen.meta.version}")
        decision = motor.evaluate(name, case.facts, as_of=case.as_of, version=ruleset.meta.version)
    except RegelmotorError as exc:
        if case.expect_error is None:
            result.failures.append(f"error: {type(exc).__name__}: {exc}")
        else:
            _check_error(result, case.expect_error, exc)
        return result
    result.decision = decision
    if case.expect_error is not None:
        result.failures.append(f"expected error {case.expect_error}, got a decision")
    for key, expected in case.expect.items():
        actual = decision.outcome.get(key)
        if not _same(to_json_value(expected), actual):
            result.failures.append(f"{key}: expected {_show(expected)}, actual {_show(actual)}")
    if case.fired is not None:
        fired = set(decision.fired_rules)
        if fired != case.fired:
            missing = sorted(case.fired - fired)
            extra = sorted(fired - case.fired)
            result.failures.append(
                f"fired rules differ: expected but not fired {missing}, fired but not expected {extra}")
    return result


def _check_error(result: CaseResult, expected: dict[str, str], exc: Exception) -> None:
    kind = expected.get("type")
    if kind and type(exc).__name__ != kind:
        result.failures.append(f"error type: expected {kind}, actual {type(exc).__name__}: {exc}")
    contains = expected.get("contains")
    if contains and contains not in str(exc):
        result.failures.append(f"error message: expected to contain {contains!r}, actual {str(exc)!r}")


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(_same(e, a) for e, a in zip(expected, actual, strict=True))
    numbers = (int, float, str)
    if (isinstance(expected, numbers) and isinstance(actual, numbers) and not isinstance(expected, bool)
            and not isinstance(actual, bool) and not (isinstance(expected, str) and isinstance(actual, str))):
        try:
            return Decimal(str(expected)) == Decimal(str(actual))
        except InvalidOperation:
            return False
    return bool(expected == actual)


def _show(value: Any) -> str:
    return "null" if value is None else repr(to_json_value(value))
