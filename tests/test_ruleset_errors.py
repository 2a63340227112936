"""Every problem in a ruleset file is reported with file, line and a message an author understands."""

from __future__ import annotations

import pytest

from regelmotor.core.errors import Diagnostic, RulesetInvalid
from regelmotor.core.loader import load_ruleset_text
from tests.conftest import ruleset_text

BASE_FACTS = """\
facts:
  mottatt: {type: date, required: true}
  alder: {type: int}
  fag: {type: enum, values: [somatikk, tsb]}
"""
OUTCOMES = """\
outcomes:
  ok: {type: bool, default: false, combine: any}
"""


def diagnostics(body: str) -> list[Diagnostic]:
    # Each diagnostic is placed: file, line and column, then the message (which the callers check).
    with pytest.raises(RulesetInvalid, match=r"^regler\.yaml:\d+:\d+: \S") as caught:
        load_ruleset_text(ruleset_text(body), "regler.yaml")
    return caught.value.diagnostics


def line_of(body: str, needle: str) -> int:
    """1-based line of `needle` in the full file the test builds."""
    for number, line in enumerate(ruleset_text(body).splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in ruleset")


def single(body: str) -> Diagnostic:
    found = diagnostics(body)
    assert len(found) == 1, found
    assert found[0].file == "regler.yaml"
    return found[0]


def test_unknown_fact_in_condition_names_fact_and_line() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: alderr > 5
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "unknown fact or value 'alderr'" in d.message
    assert d.line == line_of(body, "alderr > 5")


def test_type_mismatch_date_compared_with_text_suggests_date_literal() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: mottatt > '2024-07-01'
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "type mismatch" in d.message and "mottatt is date" in d.message
    assert "date('YYYY-MM-DD')" in d.message
    assert d.line == line_of(body, "mottatt > '2024")


def test_enum_compared_with_unknown_value_lists_the_values() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: fag == 'tsbb'
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "'tsbb' is not a value of fag" in d.message and "somatikk, tsb" in d.message


def test_unknown_function_lists_the_vocabulary() -> None:
    body = BASE_FACTS + """\
derived:
  frist: add_workdays(mottatt, 10)
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: "true"
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "unknown function 'add_workdays'" in d.message and "add_working_days" in d.message
    assert d.line == line_of(body, "add_workdays")


def test_function_argument_of_wrong_type() -> None:
    body = BASE_FACTS + """\
derived:
  frist: add_working_days(fag, 10)
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: "true"
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "add_working_days: argument 1 (fag)" in d.message and "expected date" in d.message


def test_derived_value_cycle_names_the_cycle() -> None:
    body = BASE_FACTS + """\
derived:
  a: add_days(b, 1)
  b: add_days(a, 1)
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: "true"
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "derived-value cycle: a → b → a" in d.message
    assert d.line == line_of(body, "a: add_days")


def test_impossible_date_in_metadata() -> None:
    text = ruleset_text(BASE_FACTS + OUTCOMES).replace("gyldig_fra: 2020-01-01", "gyldig_fra: 2025-02-30")
    with pytest.raises(RulesetInvalid, match=r"^regler\.yaml:5:13: impossible date '2025-02-30'$") as caught:
        load_ruleset_text(text, "regler.yaml")
    (d,) = caught.value.diagnostics
    assert d.message == "impossible date '2025-02-30'" and d.line == 5


def test_impossible_date_literal_in_condition() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: mottatt > date('2025-02-30')
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "impossible date '2025-02-30'" in d.message
    assert d.line == line_of(body, "date('2025-02-30')")


def test_duplicate_rule_id() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: "true"
    then: {ok: true}
  - id: r1
    title: t2
    hjemmel: h1
    when: "true"
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "duplicate rule id 'r1'" in d.message
    assert d.line == line_of(body, "title: t2") - 1


def test_exception_naming_a_missing_rule() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: "true"
    then: {ok: true}
  - id: r2
    title: t
    hjemmel: h1
    unntak_fra: r9
    when: "true"
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "unntak_fra names a missing rule 'r9'" in d.message
    assert d.line == line_of(body, "unntak_fra: r9")


def test_duplicate_yaml_key_is_refused() -> None:
    body = BASE_FACTS + "  alder: {type: int}\n" + OUTCOMES
    d = single(body)
    assert "duplicate key 'alder'" in d.message


def test_unknown_hjemmel_and_unknown_outcome() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h9
    when: "true"
    then: {okk: true}
""" + OUTCOMES
    messages = [d.message for d in diagnostics(body)]
    assert any("unknown hjemmel 'h9'" in m for m in messages)
    assert any("unknown outcome 'okk'" in m for m in messages)


def test_function_call_in_condition_is_refused_with_advice() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: add_days(mottatt, 1) > mottatt
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "function calls are not allowed in a condition" in d.message and "derived value" in d.message


def test_effect_value_of_wrong_type() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: "true"
    then: {ok: 'ja'}
""" + OUTCOMES
    d = single(body)
    assert "does not match type bool" in d.message


def test_conflicting_combine_policy_for_type() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: "true"
    then: {n: 1}
outcomes:
  n: {type: int, combine: any}
"""
    d = single(body)
    assert "combine any needs a bool outcome" in d.message


def test_syntax_error_in_condition() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: alder > > 5
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "cannot read expression" in d.message


def test_unsupported_syntax_is_refused() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: alder + 1 > 5
    then: {ok: true}
""" + OUTCOMES
    d = single(body)
    assert "unsupported syntax" in d.message


def test_hjemmel_must_state_verified_and_use_lovdata_ids() -> None:
    text = ruleset_text(BASE_FACTS + OUTCOMES).replace(
        "h1: {kilde: LOV-1999-07-02-63, paragraf: \"2-2\", verified: true}",
        "h1: {kilde: LOV-1999-7-2-63, paragraf: \"2-2\"}",
    )
    with pytest.raises(RulesetInvalid, match=r"(?s)'LOV-1999-7-2-63' is not a Lovdata id.*hjemmel 'h1' must say"
                       ) as caught:
        load_ruleset_text(text + "rules: [{id: r, title: t, hjemmel: h1, when: 'true', then: {ok: true}}]\n",
                          "regler.yaml")
    messages = [d.message for d in caught.value.diagnostics]
    assert any("not a Lovdata id" in m for m in messages)
    assert any("verified: true` or `verified: false" in m for m in messages)


def test_many_problems_are_reported_together() -> None:
    body = BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: nope > 1
    then: {ok: true}
  - id: r2
    title: t
    hjemmel: h1
    when: alder > 'x'
    then: {ok: true}
""" + OUTCOMES
    assert len(diagnostics(body)) == 2
