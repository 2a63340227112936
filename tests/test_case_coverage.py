"""`ruleset test --coverage` and TestRuleset's coverage: the rules and exceptions no case fires, and the outcome
values no case expects. The gaps expected here are worked out from the cases themselves (which case fires
which rule, which case expects which value), not from the coverage code."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from regelmotor.cli.main import main
from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import Case, CaseResult, parse_cases, run_case
from regelmotor.core.coverage import Coverage, coverage
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.model import Ruleset
from regelmotor.core.repository import RulesetRepository
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.conftest import BUNDLED_RULESETS
from tests.grpc_support import server_in_process

VERSION = BUNDLED_RULESETS / "utskrivningsklar" / "2019.1.yaml"
CASES = VERSION.with_name("2019.1.cases.yaml")


def _run(ruleset: Ruleset, source: str, cases: list[Case]) -> list[CaseResult]:
    repository = RulesetRepository(include_drafts=True)
    repository.add(ruleset, source)
    motor = Regelmotor(repository)
    return [run_case(motor, ruleset, case) for case in cases]


def _bundled() -> tuple[Ruleset, list[CaseResult]]:
    source = VERSION.read_text(encoding="utf-8")
    ruleset = load_ruleset_text(source, str(VERSION))
    cases = parse_cases(CASES.read_text(encoding="utf-8"), str(CASES), ruleset)
    return ruleset, _run(ruleset, source, cases)


def _rules_in_file() -> dict[str, str | None]:
    """Rule id -> the rule it is an exception to, read from the YAML, not through the loader."""
    return {rule["id"]: rule.get("unntak_fra") for rule in yaml.safe_load(VERSION.read_text(encoding="utf-8"))["rules"]}


def test_small_ruleset_reports_each_gap_by_name(make_ruleset: Callable[..., Ruleset]) -> None:
    ruleset = make_ruleset("""
        facts:
          alder: {type: int, required: true}
        rules:
          - {id: voksen, title: Voksen, hjemmel: h1, when: alder >= 18, then: {utfall: rett, sjekket: true}}
          - {id: barn, title: Barn, hjemmel: h1, when: alder < 18, then: {utfall: ikke_rett}}
          - {id: eldre, title: Eldre, hjemmel: h1, unntak_fra: voksen, when: alder >= 100,
             then: {utfall: manuell}, prioritet: 1}
        outcomes:
          utfall: {type: enum, values: [rett, ikke_rett, manuell], combine: priority}
          sjekket: {type: bool, default: false, combine: any}
          antall: {type: int}
        """)
    cases = parse_cases("""
        cases:
          - {name: voksen, as_of: 2021-01-01, facts: {alder: 40}, expect: {utfall: rett, sjekket: true}}
          - {name: feil input, as_of: 2021-01-01, facts: {alder: x}, expect_error: {type: InvalidFacts}}
        """, "cases", ruleset)
    found = coverage(ruleset, _run(ruleset, "", cases))
    assert found == Coverage(rules_not_fired=("barn",), exceptions_not_fired=("eldre",),
                             values_not_expected={"utfall": ("ikke_rett", "manuell"), "sjekket": ("false",)}, cases=1)
    assert not found.complete


def test_every_bundled_version_is_fully_covered_by_its_cases() -> None:
    repository = RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True)
    motor = Regelmotor(repository)
    for name in repository.names():
        for ruleset in repository.all_versions(name):
            path = Path(ruleset.source_path)
            cases = parse_cases(path.with_name(path.name[:-5] + ".cases.yaml").read_text(encoding="utf-8"),
                                "cases", ruleset)
            found = coverage(ruleset, [run_case(motor, ruleset, case) for case in cases])
            assert found.complete, (ruleset.key, found)


def test_dropping_the_cases_that_fire_a_rule_and_an_exception_reports_exactly_those() -> None:
    ruleset, results = _bundled()
    bases = _rules_in_file()
    firing: dict[str, set[str]] = {rule_id: set() for rule_id in bases}
    for result in results:
        assert result.decision is not None or result.case.expect_error is not None
        for rule_id in result.decision.fired_rules if result.decision else ():
            firing[rule_id].add(result.case.name)
    # The rule and the exception that the fewest cases fire: drop all of those cases.
    rule = min((r for r in bases if bases[r] is None), key=lambda r: (len(firing[r]), r))
    exception = min((r for r in bases if bases[r] is not None), key=lambda r: (len(firing[r]), r))
    dropped = firing[rule] | firing[exception]
    kept = [result for result in results if result.case.name not in dropped]
    silent = [r for r in bases if not firing[r] - dropped]
    assert rule in silent and exception in silent
    found = coverage(ruleset, kept)
    assert found.rules_not_fired == tuple(r for r in silent if bases[r] is None)
    assert found.exceptions_not_fired == tuple(r for r in silent if bases[r] is not None)
    assert found.cases == sum(1 for result in kept if result.decision is not None)


def test_dropping_the_cases_that_expect_a_value_reports_that_value() -> None:
    ruleset, results = _bundled()
    raw = yaml.safe_load(CASES.read_text(encoding="utf-8"))["cases"]
    dropped = {case["name"] for case in raw if case.get("expect", {}).get("utfall") == "manuell_vurdering"}
    dropped |= {case["name"] for case in raw if case.get("expect", {}).get("betalingsplikt") is False}
    kept = [case.get("expect", {}) for case in raw if case["name"] not in dropped]
    declared = yaml.safe_load(VERSION.read_text(encoding="utf-8"))["outcomes"]
    utfall = [v for v in declared["utfall"]["values"] if v not in {expect.get("utfall") for expect in kept}]
    betalingsplikt = [text for text, value in (("true", True), ("false", False))
                      if value not in [expect.get("betalingsplikt") for expect in kept]]
    assert "manuell_vurdering" in utfall and betalingsplikt == ["false"]
    found = coverage(ruleset, [result for result in results if result.case.name not in dropped])
    assert found.values_not_expected["utfall"] == tuple(utfall)
    assert found.values_not_expected["betalingsplikt"] == tuple(betalingsplikt)


def _without(cases_text: str, names: set[str]) -> str:
    data: Any = yaml.safe_load(cases_text)
    data["cases"] = [case for case in data["cases"] if case["name"] not in names]
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def test_cli_lists_each_untested_rule_with_its_line_and_title(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "rulesets"
    shutil.copytree(VERSION.parent, root / "utskrivningsklar")
    shutil.copy(BUNDLED_RULESETS / "published.txt", root)
    ruleset, results = _bundled()
    only = [result.case.name for result in results if result.decision and "apen-periode" in result.decision.fired_rules]
    cases = root / "utskrivningsklar" / CASES.name
    cases.write_text(_without(cases.read_text(encoding="utf-8"), set(only)), encoding="utf-8")
    assert main(["ruleset", "test", "--coverage", str(root / "utskrivningsklar" / VERSION.name)]) == 0
    out = capsys.readouterr().out
    rule = ruleset.rule("apen-periode")
    assert f"    apen-periode (line {rule.line}): {rule.title}" in out
    assert "  rules no case fires (1):" in out
    assert main(["ruleset", "test", str(root / "utskrivningsklar" / VERSION.name)]) == 0
    assert "coverage" not in capsys.readouterr().out


def test_cli_says_so_when_nothing_is_left_untested(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ruleset", "test", "--coverage", str(VERSION)]) == 0
    assert ("coverage utskrivningsklar@2019.1 (35 case(s) with a decision): every rule and exception fires in some "
            "case, and every outcome value is expected") in capsys.readouterr().out


def test_test_ruleset_returns_the_coverage_when_asked() -> None:
    _, results = _bundled()
    manual = {result.case.name for result in results if result.decision
              and result.decision.outcome.get("utfall") == "manuell_vurdering"}
    source = VERSION.read_text(encoding="utf-8")
    cases = _without(CASES.read_text(encoding="utf-8"), manual)
    with server_in_process(workers=0) as (running, _, _), \
            grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = rpb_grpc.RulesetServiceStub(channel)
        plain = stub.TestRuleset(rpb.TestRulesetRequest(source=source, cases=cases), timeout=60)
        asked = stub.TestRuleset(rpb.TestRulesetRequest(source=source, cases=cases, coverage=True), timeout=60)
    assert not plain.HasField("coverage")
    assert asked.failed == 0 and asked.coverage.cases == asked.passed - sum(
        1 for r in results if r.case.expect_error is not None and r.case.name not in manual)
    assert list(asked.coverage.rules_not_fired) == ["apen-periode"]
    assert [(v.outcome, list(v.values)) for v in asked.coverage.values_not_expected] == [
        ("utfall", ["manuell_vurdering"])]
