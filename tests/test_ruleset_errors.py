"""Every problem in a ruleset file is reported with file, line and a message an author understands.

Each case below is a file with a mistake, the place the report points to (a piece of the file's text
that starts there, or holds `^` where the place is) and the whole message the author reads there.
"""

from __future__ import annotations

import re

import pytest

from regelmotor.core.errors import RulesetInvalid
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.vocabulary import FUNCTIONS
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


def rule(when: str, then: str = "{ok: true}", *, hjemmel: str = "h1", before: str = "",
         outcomes: str = OUTCOMES) -> str:
    """A whole file: the facts above, `before` (derived values), one rule `r1` and the outcomes."""
    return ruleset_text(BASE_FACTS + before + f"""\
rules:
  - id: r1
    title: t
    hjemmel: {hjemmel}
    when: {when}
    then: {then}
""" + outcomes)


def derived(expr: str) -> str:
    return rule('"true"', before=f"derived:\n  {expr}\n")


def place(text: str, at: str) -> tuple[int, int]:
    """1-based line and column of `at` in the first line holding it: of its `^`, or else of its start."""
    needle = at.replace("^", "")
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number, line.index(needle) + (at.index("^") if "^" in at else 0) + 1
    raise AssertionError(f"{needle!r} not in ruleset")


TWO_RULES = ruleset_text(BASE_FACTS + """\
rules:
  - id: r1
    title: t
    hjemmel: h1
    when: "true"
    then: {ok: true}
  - id: r1  # the second
    title: t2
    hjemmel: h1
    when: "true"
    then: {ok: true}
""" + OUTCOMES)

A_MISSING_BASE = ruleset_text(BASE_FACTS + """\
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
""" + OUTCOMES)

ONE_PROBLEM = [
    pytest.param(rule("alderr > 5"), "alderr > 5", "unknown fact or value 'alderr'",
                 id="an unknown name in a condition is named"),
    pytest.param(rule("mottatt > '2024-07-01'"), "mottatt > '2024", "type mismatch in mottatt > '2024-07-01': "
                 "mottatt is date, '2024-07-01' is string; write a date as date('YYYY-MM-DD')",
                 id="a date compared with text suggests a date literal"),
    pytest.param(rule("fag == 'tsbb'"), "fag == 'tsbb'", "'tsbb' is not a value of fag; its values are: somatikk, tsb",
                 id="an enum compared with a value it does not know lists its values"),
    pytest.param(rule("alder + 1 > 5"), "alder + 1 > 5", "unsupported syntax 'alder + 1': use names, literals, "
                 "comparisons, and/or/not, `in`, present(...) and the documented functions",
                 id="arithmetic in a condition is unsupported syntax"),
    pytest.param(rule("alder > > 5"), "alder > > 5", "cannot read expression 'alder > > 5': invalid syntax",
                 id="a condition that is not an expression cannot be read"),
    pytest.param(rule("add_days(mottatt, 1) > mottatt"), "add_days(mottatt, 1) > mottatt",
                 "function calls are not allowed in a condition (add_days(mottatt, 1)); define a derived value "
                 "and compare that", id="a function call in a condition is refused with advice"),
    pytest.param(rule("mottatt > date('2025-02-30')"), "mottatt > date(", "impossible date '2025-02-30'",
                 id="an impossible date literal in a condition"),
    pytest.param(derived("frist: add_workdays(mottatt, 10)"), "add_workdays",
                 f"unknown function 'add_workdays'; the vocabulary is: {', '.join(sorted(FUNCTIONS))}",
                 id="an unknown function lists the vocabulary"),
    pytest.param(derived("frist: add_working_days(fag, 10)"), "add_working_days(fag",
                 "add_working_days: argument 1 (fag) is enum (somatikk, tsb), expected date",
                 id="a function argument of the wrong type names the argument and the type expected"),
    pytest.param(rule('"true"', before="derived:\n  a: add_days(b, 1)\n  b: add_days(a, 1)\n"), "add_days(b, 1)",
                 "derived-value cycle: a → b → a", id="a cycle of derived values is named in order"),
    pytest.param(rule('"true"', "{ok: 'ja'}"), "{ok: ^'ja'}",
                 "value for ok is the text 'ja', which does not match type bool (expected bool)",
                 id="a value a rule sets must have the outcome's type"),
    pytest.param(rule('"true"', "{n: 1}", outcomes="outcomes:\n  n: {type: int, combine: any}\n"), "combine: ^any",
                 "combine any needs a bool outcome, not int", id="a combine policy must suit the outcome's type"),
    pytest.param(TWO_RULES, "r1  # the second", "duplicate rule id 'r1' (first used in rule 1)",
                 id="a rule id used twice points to the second"),
    pytest.param(A_MISSING_BASE, "unntak_fra: ^r9", "unntak_fra names a missing rule 'r9'",
                 id="an exception to a rule that does not exist"),
    pytest.param(ruleset_text(BASE_FACTS + "  alder: {type: int}  # again\n" + OUTCOMES), "alder: {type: int}  # again",
                 "duplicate key 'alder'", id="a key written twice in a mapping"),
    pytest.param(ruleset_text(BASE_FACTS + OUTCOMES).replace("gyldig_fra: 2020-01-01", "gyldig_fra: 2025-02-30"),
                 "gyldig_fra: ^2025-02-30", "impossible date '2025-02-30'", id="an impossible date in the metadata"),
]


@pytest.mark.parametrize(("text", "at", "message"), ONE_PROBLEM)
def test_a_mistake_is_reported_at_its_place_in_words_for_the_author(text: str, at: str, message: str) -> None:
    line, column = place(text, at)
    with pytest.raises(RulesetInvalid, match=rf"^regler\.yaml:{line}:{column}: {re.escape(message)}$") as caught:
        load_ruleset_text(text, "regler.yaml")
    (problem,) = caught.value.diagnostics
    assert (problem.file, problem.line, problem.column, problem.message) == ("regler.yaml", line, column, message)


UNVERIFIED_HJEMMEL = ruleset_text(BASE_FACTS + OUTCOMES).replace(
    "h1: {kilde: LOV-1999-07-02-63, paragraf: \"2-2\", verified: true}",
    "h1: {kilde: LOV-1999-7-2-63, paragraf: \"2-2\"}",
) + "rules: [{id: r, title: t, hjemmel: h1, when: 'true', then: {ok: true}}]\n"

MANY_PROBLEMS = [
    pytest.param(UNVERIFIED_HJEMMEL, [
        ("kilde: ^LOV-1999-7-2-63", "'LOV-1999-7-2-63' is not a Lovdata id like LOV-1999-07-02-63"),
        ("{kilde: LOV-1999-7-2-63", "hjemmel 'h1' must say `verified: true` or `verified: false`"),
    ], id="a hjemmel must state verified and cite a Lovdata id"),
    pytest.param(rule('"true"', "{okk: true}", hjemmel="h9"), [
        ("hjemmel: ^h9", "unknown hjemmel 'h9'; declared: h1"),
        ("{okk: ^true}", "rule 'r1' sets unknown outcome 'okk'; declare it under outcomes"),
    ], id="an unknown hjemmel and an unknown outcome are both reported"),
    pytest.param(rule("nope > 1").replace("    then: {ok: true}\n", """\
    then: {ok: true}
  - id: r2
    title: t
    hjemmel: h1
    when: alder > 'x'
    then: {ok: true}
"""), [
        ("nope > 1", "unknown fact or value 'nope'"),
        ("alder > 'x'", "type mismatch in alder > 'x': alder is int, 'x' is string"),
    ], id="the problems of different rules are reported together"),
]


@pytest.mark.parametrize(("text", "expected"), MANY_PROBLEMS)
def test_every_mistake_of_a_file_is_reported_in_one_run(text: str, expected: list[tuple[str, str]]) -> None:
    places = [place(text, at) for at, _ in expected]
    report = "\n".join(rf"regler\.yaml:{line}:{column}: {re.escape(message)}"
                       for (line, column), (_, message) in zip(places, expected, strict=True))
    with pytest.raises(RulesetInvalid, match=rf"^{report}$") as caught:
        load_ruleset_text(text, "regler.yaml")
    assert [(d.line, d.column, d.message) for d in caught.value.diagnostics] == [
        (*where, message) for where, (_, message) in zip(places, expected, strict=True)]
