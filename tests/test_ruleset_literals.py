"""A ruleset's literals are read as facts of their type are (regelmotor.core.values): a default, a bound,
a table cell, a parameter value or a `date('…')` in a condition is accepted exactly when a fact could carry
it, with the same value, and refused with its line otherwise."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
import yaml

from regelmotor.core.errors import InvalidFacts, RulesetInvalid
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.schema import FactValidator
from tests.conftest import ruleset_text

RULE = """\
rules:
  - {id: r, title: r, hjemmel: h1, when: 'true', then: {ok: true}}
outcomes:
  ok: {type: bool, default: false, combine: any}
"""

# (type declaration, the literal as the file writes it): the first ones were read differently before.
LITERALS: list[tuple[str, str]] = [
    ("{type: int}", "9007199254740992"),  # 2**53: beyond what a JSON number holds exactly
    ("{type: int}", "-9007199254740992"),
    ("{type: int}", "9007199254740991"),
    ("{type: int}", "5.0"),  # a whole number, as JSON may send it
    ("{type: int}", "5.5"),
    ("{type: int}", "'5'"),
    ("{type: int}", "true"),
    ("{type: decimal}", "1.0e-30"),  # more than 24 decimal places
    ("{type: decimal}", "1.0e+300"),
    ("{type: decimal}", "12.25"),
    ("{type: decimal}", "7"),
    ("{type: date}", "1799-12-31"),  # before the dates the engine accepts
    ("{type: date}", "2200-01-01"),
    ("{type: date}", "'20240105'"),  # ISO 8601, but not YYYY-MM-DD
    ("{type: date}", "'2024-1-5'"),
    ("{type: date}", "'2024-02-30'"),
    ("{type: date}", "'2024-02-29'"),
    ("{type: date}", "2024-02-29"),
    ("{type: date}", "2024-02-29T10:00:00+01:00"),
    ("{type: datetime}", "'2025-03-04T13:05:00+01:00'"),  # as text, the way a request sends it
    ("{type: datetime}", "2025-03-04T13:05:00+01:00"),
    ("{type: datetime}", "2200-01-01T00:00:00Z"),
    ("{type: datetime}", "'2025-03-04 13:05:00+01:00'"),
    ("{type: datetime}", "2025-03-04"),
    ("{type: bool}", "true"),
    ("{type: bool}", "'ja'"),
    ("{type: string}", "'F32.2'"),
    ("{type: string}", "5"),
    ("{type: enum, values: [a, b]}", "a"),
    ("{type: enum, values: [a, b]}", "c"),
    ("{type: list, items: {type: int}}", "[1, 2.0]"),
    ("{type: list, items: {type: int}}", "[1, 9007199254740992]"),
    ("{type: list, items: {type: date}}", "['2024-01-01', 1799-01-01]"),
    ("{type: list, items: {type: string}}", "a"),
]


def _as_fact(declaration: str, literal: str) -> tuple[bool, Any, str]:
    """(accepted, value, reason) when the literal's value is sent as the fact `x`."""
    ruleset = load_ruleset_text(ruleset_text(f"facts:\n  x: {declaration}\n" + RULE), "fakta.yaml")
    value = yaml.safe_load(f"v: {literal}")["v"]
    try:
        return True, FactValidator(ruleset.facts).validate({"x": value})["x"], ""
    except InvalidFacts as exc:
        return False, None, exc.violations[0].reason


@pytest.mark.parametrize(("declaration", "literal"), LITERALS, ids=[f"{d} {v}" for d, v in LITERALS])
def test_a_default_is_accepted_exactly_when_a_fact_could_carry_it(declaration: str, literal: str) -> None:
    accepted, value, reason = _as_fact(declaration, literal)
    text = ruleset_text(f"facts:\n  x: {declaration[:-1]}, default: {literal}}}\n" + RULE)
    if accepted:
        assert load_ruleset_text(text, "regler.yaml").facts["x"].default == value
        return
    with pytest.raises(RulesetInvalid, match=r"^regler\.yaml:9:\d+: ") as caught:
        load_ruleset_text(text, "regler.yaml")
    (problem,) = caught.value.diagnostics
    # Out of bounds or impossible: the fact's own reason. Not of the type at all: the loader's mismatch.
    assert problem.message == reason or "which does not match type" in problem.message


@pytest.mark.parametrize(("section", "reason"), [
    ("tables:\n  t:\n    key: k\n    columns: {n: {type: int}}\n    rows:\n      - {k: a, n: 9007199254740992}\n",
     "a number here must lie within ±9007199254740991 (2**53 - 1)"),
    ("parameters:\n  p:\n    type: decimal\n    unit: kr\n    source: s\n    values:\n"
     "      - {gyldig_fra: 2020-01-01, value: 1.0e-30}\n",
     "a number here has at most 24 decimal places, got 1e-30"),
    ("parameters:\n  p:\n    type: int\n    unit: kr\n    source: s\n    values:\n"
     "      - {gyldig_fra: 1799-12-31, value: 1}\n",
     "1799-12-31 is outside the dates the engine accepts (1800-01-01 to 2199-12-31)"),
    ("facts:\n  d: {type: date, min: 1700-01-01}\n",
     "1700-01-01 is outside the dates the engine accepts (1800-01-01 to 2199-12-31)"),
], ids=["table cell beyond 2**53", "parameter value with 30 places", "parameter start before 1800",
        "fact bound before 1800"])
def test_other_literals_are_held_to_the_bounds_of_facts(section: str, reason: str) -> None:
    with pytest.raises(RulesetInvalid, match=re.escape(reason)):
        load_ruleset_text(ruleset_text(section + RULE), "regler.yaml")


@pytest.mark.parametrize(("literal", "reason"), [
    ("date('20240105')", "expected a date as text YYYY-MM-DD (ASCII digits), got '20240105'"),
    ("date('1799-12-31')", "1799-12-31 is outside the dates the engine accepts (1800-01-01 to 2199-12-31)"),
    ("date('2025-02-30')", "impossible date '2025-02-30'"),
    ("datetime('2025-03-04T13:05:00')", "expected an ISO 8601 datetime with a UTC offset in ASCII digits"),
    ("datetime('2200-01-01T00:00:00+01:00')", "2200-01-01T00:00:00+01:00 is outside the dates the engine accepts"),
])
def test_a_date_in_a_condition_is_read_as_a_date_fact_is(literal: str, reason: str) -> None:
    body = f"facts:\n  x: {{type: {literal.split('(')[0]}}}\n" + RULE.replace("when: 'true'", f'when: "x > {literal}"')
    with pytest.raises(RulesetInvalid, match=rf"^regler\.yaml:\d+:\d+: .*{re.escape(reason)}"):
        load_ruleset_text(ruleset_text(body), "regler.yaml")


def test_the_dates_a_ruleset_governs_are_dates_the_engine_accepts() -> None:
    text = ruleset_text("facts:\n  x: {type: int}\n" + RULE).replace("gyldig_fra: 2020-01-01", "gyldig_fra: 1799-12-31")
    with pytest.raises(RulesetInvalid, match=r"^regler\.yaml:5:13: 1799-12-31 is outside the dates the engine accepts"):
        load_ruleset_text(text, "regler.yaml")
    earliest = load_ruleset_text(text.replace("1799-12-31", "1800-01-01"), "regler.yaml")
    assert earliest.meta.gyldig_fra == date(1800, 1, 1)
