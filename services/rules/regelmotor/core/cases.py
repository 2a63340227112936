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

from . import shapes
from .api import Regelmotor
from .decision import Decision
from .errors import Diagnostic, RegelmotorError, RulesetInvalid, SourceProblem
from .literals import read_date
from .model import Ruleset
from .types import to_json_value
from .yamlsource import Located, load_located, read_source
from .yamlsource import Path as YPath


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
    # The exact set of parameters read whose value rests on a secondary source (empty: none); None: not checked.
    expect_sekundaerkilde: frozenset[str] | None = None


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
    try:
        text = read_source(file)
    except SourceProblem as exc:
        raise RulesetInvalid([Diagnostic(str(file), exc.line, exc.column, str(exc))]) from None
    return parse_cases(text, str(file), ruleset)


def parse_cases(text: str, file: str = "<cases>", ruleset: Ruleset | None = None) -> list[Case]:
    """Cases from YAML text; problems are reported with `file`, line and column, and nothing but
    RulesetInvalid is raised, whatever the text.

    Cases may share facts through YAML anchors and merge keys (`<<: *base`); top-level keys other
    than `cases` are left alone, so they can hold the anchored values."""
    reader: _CasesReader | None = None
    try:
        reader = _CasesReader(file, load_located(text, allow_aliases=True), ruleset)
        return reader.read()
    except RulesetInvalid:
        raise
    except SourceProblem as exc:
        raise RulesetInvalid([Diagnostic(file, exc.line, exc.column, str(exc))]) from None
    except Exception as exc:
        # A bug of ours: still a located answer, so a caller's TestRuleset is refused, not failed.
        line, column = reader.located.where(reader.current) if reader else (1, 1)
        raise RulesetInvalid([Diagnostic(file, line, column, (
            f"regelmotor could not check this case ({type(exc).__name__}); "
            "this is a bug in regelmotor, please report it"))]) from exc


class _CasesReader:
    def __init__(self, file: str, located: Located, ruleset: Ruleset | None) -> None:
        self.file = file
        self.located = located
        self.ruleset = ruleset
        self.problems: list[Diagnostic] = []
        self.current: YPath = ()

    def problem(self, where: YPath, message: str) -> None:
        line, col = self.located.where(where)
        self.problems.append(Diagnostic(self.file, line, col, message))

    def read(self) -> list[Case]:
        data = self.located.data
        raw_cases = data.get("cases") if isinstance(data, dict) else None
        if not isinstance(raw_cases, list):
            raise RulesetInvalid([Diagnostic(self.file, *self.located.where(("cases",)),
                                             "a cases file needs `cases`: a list")])
        cases: list[Case] = []
        names: set[str] = set()
        for index, raw in enumerate(raw_cases):
            self.current = ("cases", index)
            case = self._case(self.current, raw, names)
            if case is not None:
                cases.append(case)
            if len(self.problems) >= 100:
                break
        if self.problems:
            raise RulesetInvalid(self.problems)
        return cases

    def _case(self, where: YPath, raw: Any, names: set[str]) -> Case | None:
        spec = shapes.check(raw, shapes.CASE, where, "", self.problem)
        if spec is None or "name" not in spec or "as_of" not in spec:
            return None
        if spec["name"] in names:
            self.problem(where, f"duplicate case name {spec['name']!r}")
        names.add(spec["name"])
        as_of = read_date(self.problem, (*where, "as_of"), spec["as_of"])
        expect = spec.get("expect", {})
        fired = spec.get("fired")
        secondary = spec.get("expect_sekundaerkilde")
        expect_error = self._expect_error((*where, "expect_error"), spec.get("expect_error"))
        if self.ruleset is not None:
            for key in expect:
                if key not in self.ruleset.outcomes:
                    self.problem((*where, "expect", key), f"{key!r} is not an outcome of {self.ruleset.key}")
            rule_ids = {r.id for r in self.ruleset.rules}
            for rule_id in fired or ():
                if rule_id not in rule_ids:
                    self.problem((*where, "fired"), f"no rule {rule_id!r} in {self.ruleset.key}")
            for parameter in secondary or ():
                if parameter not in self.ruleset.parameters:
                    self.problem((*where, "expect_sekundaerkilde"), f"no parameter {parameter!r} in {self.ruleset.key}")
        if not expect and "expect_error" not in spec:
            self.problem(where, "a case needs `expect` (outcome fields) or `expect_error`")
        if as_of is None:
            return None
        return Case(spec["name"], self.located.where(where)[0], as_of, _as_json(spec.get("facts", {})), expect,
                    frozenset(fired) if fired is not None else None, spec.get("expect_version"), expect_error,
                    frozenset(secondary) if secondary is not None else None)

    def _expect_error(self, where: YPath, raw: dict[str, Any] | None) -> dict[str, str] | None:
        if raw is None:
            return None
        spec = shapes.check(raw, shapes.EXPECTED_ERROR, where, "", self.problem)
        # An unquoted date or number in `contains` is meant as text.
        return {key: str(to_json_value(value)) for key, value in (spec or {}).items()}


def _as_json(facts: Any) -> Any:
    """Facts as a hospital system would send them: dates as ISO text, as in JSON."""
    return to_json_value(facts)


def run_case(motor: Regelmotor, ruleset: Ruleset, case: Case) -> CaseResult:
    result = CaseResult(case)
    name = ruleset.meta.name
    try:
        if case.expect_version is not None:
            chosen, _, _ = motor.choose(name, case.facts, as_of=case.as_of)
            if case.expect_version not in _corrected_versions(motor, chosen):
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
    if case.expect_sekundaerkilde is not None:
        _check_secondary(result, case.expect_sekundaerkilde, decision)
    return result


def _check_secondary(result: CaseResult, expected: frozenset[str], decision: Decision) -> None:
    marked = {p.name for p in decision.explanation.parameters if p.sekundaerkilde}
    if marked != expected:
        result.failures.append(
            f"parameters resting on a secondary source differ: expected {sorted(expected)}, read {sorted(marked)}")


def _corrected_versions(motor: Regelmotor, chosen: Ruleset) -> list[str]:
    """The version chosen and each version it corrects, in turn: a correction decides in place of the version it
    supersedes, so facts that select the correction still select the version on the timeline that it corrects."""
    versions = [chosen.meta.version]
    current: Ruleset | None = chosen
    while current is not None and current.meta.supersedes is not None and current.meta.supersedes not in versions:
        versions.append(current.meta.supersedes)
        # A correction tested alone (a proposal) has no corrected version beside it: the chain ends there.
        current = motor.repository.versions.get(chosen.meta.name, {}).get(current.meta.supersedes)
    return versions


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
