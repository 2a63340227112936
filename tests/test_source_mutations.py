"""Mutated versions of the shipped rulesets and cases files are accepted, or refused with located
errors, within a time bound: never a hang, never another exception. Their diffs against the
original are empty exactly when the sha256 is the same."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings

from regelmotor.cli.main import main
from regelmotor.core.cases import parse_cases
from regelmotor.core.diff import diff_rulesets
from regelmotor.core.errors import RulesetInvalid
from regelmotor.core.loader import load_ruleset_file, load_ruleset_text
from regelmotor.core.model import Ruleset
from tests.source_mutations import CASES, RULESETS, mutated_sources, time_bound

# Seconds one mutant may take: a hang fails the test instead of stalling CI. Loading the largest
# shipped file takes about 0.1 s.
BOUND = 10


@cache
def _original(path: Path) -> Ruleset:
    return load_ruleset_file(path)


def _loaded_or_none(text: str) -> Ruleset | None:
    try:
        return load_ruleset_text(text, "mutant.yaml")
    except RulesetInvalid:
        return None


def _assert_located(exc: RulesetInvalid, file: str) -> None:
    assert exc.diagnostics
    for diagnostic in exc.diagnostics:
        assert diagnostic.file == file and diagnostic.line >= 1 and diagnostic.column >= 1, diagnostic
        assert diagnostic.message.strip()
        assert "bug in regelmotor" not in diagnostic.message, diagnostic


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sources(RULESETS))
def test_a_mutated_ruleset_is_accepted_or_refused_with_located_errors(source: tuple[Path, str]) -> None:
    _, text = source
    with time_bound(BOUND):
        try:
            ruleset = load_ruleset_text(text, "mutant.yaml")
        except RulesetInvalid as exc:
            _assert_located(exc, "mutant.yaml")
            valid = False
        else:
            assert len(ruleset.sha256) == 64 and ruleset.rules
            valid = True
        # `regelmotor ruleset validate` runs the same loader and answers with its exit code.
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / "mutant.yaml"
            file.write_text(text, encoding="utf-8")
            assert main(["ruleset", "validate", str(file)]) == (0 if valid else 1)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sources(CASES))
def test_a_mutated_cases_file_is_read_or_refused_with_located_errors(source: tuple[Path, str]) -> None:
    path, text = source
    ruleset = _original(path.with_name(path.name.removesuffix(".cases.yaml") + ".yaml"))
    with time_bound(BOUND):
        try:
            cases = parse_cases(text, "mutant.cases.yaml", ruleset)
        except RulesetInvalid as exc:
            _assert_located(exc, "mutant.cases.yaml")
        else:
            assert all(case.line >= 1 for case in cases)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(mutated_sources(RULESETS, valid_leaning=True, least=0, most=2))
def test_the_diff_is_empty_exactly_when_the_sha256_is_the_same(source: tuple[Path, str]) -> None:
    path, text = source
    original = _original(path)
    mutant = _loaded_or_none(text)
    assume(mutant is not None)
    assert mutant is not None
    forward, backward = diff_rulesets(original, mutant), diff_rulesets(mutant, original)
    if mutant.sha256 == original.sha256:
        assert forward.empty and backward.empty, forward.lines()
        assert "no differences in meaning" in forward.lines()[-1]
    else:
        assert not forward.empty and not backward.empty
