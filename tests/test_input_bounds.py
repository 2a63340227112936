"""The bounds of what a request may ask (dates, numbers, list and text sizes) and how much of it an error
echoes: every value outside them is refused as bad input naming the field, never an overflow or a crash."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from regelmotor.core import calendar_no
from regelmotor.core.api import Regelmotor
from regelmotor.core.diff import diff_rulesets
from regelmotor.core.errors import InvalidFacts, RulesetInvalid
from regelmotor.core.evaluator import Evaluator
from regelmotor.core.json_schema import input_schema
from regelmotor.core.limits import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_LENGTH,
    EARLIEST_DATE,
    ECHO_CHARS,
    FIELD_CHARS,
    LATEST_DATE,
    MAX_SAFE_INTEGER,
    MAX_VIOLATIONS,
    shown,
)
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.model import Ruleset
from regelmotor.core.schema import FactValidator
from tests.conftest import BUNDLED_RULESETS, ruleset_text
from tests.grpc_support import VALID_FACTS
from tests.strategies import in_digits, non_ascii_digit_classes

AS_OF = date(2026, 4, 20)

FACTS = """\
facts:
  dag: {type: date}
  tid: {type: datetime}
  antall: {type: int}
  belop: {type: decimal}
  kode: {type: string}
  koder: {type: list, items: {type: string}}
  kort: {type: string, max_length: 4}
  fa: {type: list, items: {type: int}, max_items: 3}
derived:
  dag_pluss: add_days(dag, antall)
  virkedag: add_working_days(dag, antall)
rules:
  - id: r
    title: r
    hjemmel: h1
    when: present(dag_pluss) or present(virkedag)
    then: {ok: true}
outcomes:
  ok: {type: bool, default: false, combine: any}
"""


@pytest.fixture(scope="module")
def bounded() -> Ruleset:
    return load_ruleset_text(ruleset_text(FACTS), "bounds.yaml")


@pytest.fixture(scope="module")
def validator(bounded: Ruleset) -> FactValidator:
    return FactValidator(bounded.facts)


@pytest.fixture(scope="module")
def motor() -> Regelmotor:
    return Regelmotor.from_directory(BUNDLED_RULESETS, include_drafts=True)


def refused(check: Callable[[], Any]) -> dict[str, str]:
    with pytest.raises(InvalidFacts, match="invalid facts") as caught:
        check()
    return {v.field: v.reason for v in caught.value.violations}


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0001-01-01", "9999-12-31", "1799-12-31", "2200-01-01"])
def test_a_date_fact_outside_the_accepted_range_is_refused_naming_it(validator: FactValidator, text: str) -> None:
    assert "outside the dates the engine accepts (1800-01-01 to 2199-12-31)" in refused(
        lambda: validator.validate({"dag": text}))["dag"]


def test_the_edges_of_the_accepted_range_are_accepted(validator: FactValidator) -> None:
    for day in (EARLIEST_DATE, LATEST_DATE):
        assert validator.validate({"dag": day.isoformat()})["dag"] == day


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
                                  "1799-12-31T23:00:00-01:00", "2200-01-01T00:00:00Z"])
def test_a_datetime_outside_the_range_is_refused_even_with_an_extreme_offset(validator: FactValidator,
                                                                              text: str) -> None:
    assert "outside the dates the engine accepts" in refused(lambda: validator.validate({"tid": text}))["tid"]


def test_dates_and_datetimes_in_any_non_ascii_digits_are_refused(validator: FactValidator,
                                                                  motor: Regelmotor) -> None:
    classes = non_ascii_digit_classes()
    assert len(classes) > 50  # Arabic-Indic, Devanagari, ..., fullwidth, mathematical digits
    for digits in classes:
        day = in_digits("2026-04-20", digits)
        assert "ASCII digits" in refused(lambda: validator.validate({"dag": day}))["dag"], digits  # noqa: B023
        moment = in_digits("2026-04-20T10:00:00+01:00", digits)
        assert "ASCII digits" in refused(lambda: validator.validate({"tid": moment}))["tid"], digits  # noqa: B023
        assert "ASCII digits" in refused(
            lambda: motor.run("rett-til-helsehjelp", VALID_FACTS, as_of=day))["as_of"], digits  # noqa: B023


@pytest.mark.parametrize("as_of", [date(1, 1, 1), date(9999, 12, 31), "9999-12-31", "1799-12-31", "20260420",
                                   "2026-04-20\n", "i dag"])
def test_as_of_outside_the_range_or_form_is_refused_naming_as_of(motor: Regelmotor, as_of: date | str) -> None:
    assert list(refused(lambda: motor.run("rett-til-helsehjelp", VALID_FACTS, as_of=as_of))) == ["as_of"]


def test_as_of_may_be_given_as_text(motor: Regelmotor) -> None:
    assert motor.evaluate("rett-til-helsehjelp", VALID_FACTS, as_of="2026-04-20").as_of == "2026-04-20"


@pytest.mark.parametrize("facts", [
    {"ansiennitetsdato": "9999-12-31"},  # selects the version, then had working days added: past 9999
    {"fodselsdato": "0001-01-01"},
])
def test_calendar_edge_facts_of_a_bundled_ruleset_are_refused_naming_the_fact(motor: Regelmotor,
                                                                             facts: dict[str, str]) -> None:
    (name,) = facts
    assert "outside the dates" in refused(lambda: motor.evaluate("rett-til-helsehjelp", {**VALID_FACTS, **facts},
                                                                 as_of=AS_OF))[name]


# --- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2.0**60, 10**5000, 1e300],
                         ids=["2**53", "-2**53", "2.0**60", "10**5000", "1e300"])
def test_whole_numbers_beyond_what_a_double_holds_exactly_are_refused(validator: FactValidator, value: Any) -> None:
    assert "must lie within ±9007199254740991" in refused(lambda: validator.validate({"antall": value}))["antall"]


def test_whole_numbers_at_the_bound_are_accepted(validator: FactValidator) -> None:
    for value in (MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, float(2**52)):
        assert validator.validate({"antall": value})["antall"] == int(value)


@pytest.mark.parametrize(("value", "reason"), [(1e300, "must lie within"), (Decimal("1E+400"), "must lie within"),
                                                (Decimal("1E-999999"), "at most 24 decimal places"),
                                                (5e-324, "at most 24 decimal places"),
                                                (Decimal("Infinity"), "finite")])
def test_decimals_must_be_finite_and_bounded(validator: FactValidator, value: Any, reason: str) -> None:
    assert reason in refused(lambda: validator.validate({"belop": value}))["belop"]


def test_decimals_within_the_bounds_are_accepted(validator: FactValidator) -> None:
    for value in (0.1, 1e-7, -123456.789, float(MAX_SAFE_INTEGER)):
        assert validator.validate({"belop": value})["belop"] == Decimal(str(value))


# --- derived values ----------------------------------------------------------------------------


def test_an_overflow_computing_a_derived_value_is_invalid_facts_naming_the_facts(bounded: Ruleset) -> None:
    evaluator = Evaluator(bounded)
    # Within every bound, but 2**53 - 1 days from any date lies past the end of the calendar.
    violations = refused(lambda: evaluator.evaluate({"dag": "2026-01-01", "antall": MAX_SAFE_INTEGER}, AS_OF))
    assert violations == {
        "antall": "the result is out of range (while computing dag_pluss = add_days(dag, antall) from antall, dag)"}


def test_adding_more_working_days_than_the_range_holds_is_refused_at_once(bounded: Ruleset) -> None:
    evaluator = Evaluator(bounded)
    facts = {"dag": "2026-01-01", "antall": 200_000}  # add_days gives 2573; the working days would end past 2199
    started = time.monotonic()
    violations = refused(lambda: evaluator.evaluate(facts, AS_OF))
    assert "200000 working days after 2026-01-01 is later than 2199-12-31" in violations["antall"]
    assert time.monotonic() - started < 5  # no walk of the calendar day by day


def test_add_working_days_refuses_a_count_that_ends_past_the_latest_date() -> None:
    with pytest.raises(ValueError, match="later than 2199-12-31"):
        calendar_no.add_working_days(date(2026, 1, 1), MAX_SAFE_INTEGER)
    assert calendar_no.add_working_days(date(2199, 12, 1), 5) == date(2199, 12, 6)  # 1 December is a Sunday


# --- lists and texts ---------------------------------------------------------------------------


def test_lists_and_texts_have_default_and_declared_size_limits(bounded: Ruleset, validator: FactValidator) -> None:
    assert bounded.facts["koder"].items_limit == DEFAULT_MAX_ITEMS
    assert bounded.facts["koder"].length_limit == DEFAULT_MAX_LENGTH
    assert (bounded.facts["fa"].items_limit, bounded.facts["fa"].length_limit) == (3, None)
    assert (bounded.facts["kort"].items_limit, bounded.facts["kort"].length_limit) == (None, 4)
    assert validator.validate({"koder": ["x" * DEFAULT_MAX_LENGTH] * DEFAULT_MAX_ITEMS, "fa": [1, 2, 3],
                               "kort": "abcd"})["kort"] == "abcd"
    violations = refused(lambda: validator.validate({
        "koder": ["x"] * (DEFAULT_MAX_ITEMS + 1), "fa": [1, 2, 3, 4], "kort": "abcde",
        "kode": "y" * (DEFAULT_MAX_LENGTH + 1)}))
    assert violations == {"koder": f"at most {DEFAULT_MAX_ITEMS} items, got {DEFAULT_MAX_ITEMS + 1}",
                          "fa": "at most 3 items, got 4", "kort": "at most 4 characters, got 5",
                          "kode": f"at most {DEFAULT_MAX_LENGTH} characters, got {DEFAULT_MAX_LENGTH + 1}"}
    assert refused(lambda: validator.validate({"koder": ["ok", "z" * 1000]})) == {
        "koder[1]": "at most 200 characters, got 1000"}


def test_300_000_codes_are_refused_before_a_single_one_is_checked(motor: Regelmotor) -> None:
    facts = {"fodselsdato": "1950-01-01", "diagnoser": ["not a code"] * 300_000}
    started = time.monotonic()
    violations = refused(lambda: motor.evaluate("prioriterte-pasientgrupper", facts, as_of=AS_OF))
    assert violations == {"diagnoser": "at most 100 items, got 300000"}
    assert time.monotonic() - started < 5  # generous: it is one len()


@pytest.mark.parametrize(("declaration", "message"), [
    ("{type: int, max_items: 5}", "max_items is only for a list fact"),
    ("{type: list, items: {type: int}, max_length: 5}", "max_length is only for a string fact or a list of strings"),
    ("{type: list, items: {type: int}, max_items: 0}", "max_items must be a whole number from 1 to 10000, got 0"),
    ("{type: list, items: {type: int}, max_items: 10001}",
     "max_items must be a whole number from 1 to 10000, got 10001"),
    ("{type: string, max_length: 'lang'}", "max_length must be a whole number from 1 to 100000, got 'lang'"),
])
def test_size_limits_a_ruleset_declares_are_checked(declaration: str, message: str) -> None:
    rules = FACTS[FACTS.index("rules:"):].replace("present(dag_pluss) or present(virkedag)", "present(x)")
    body = f"facts:\n  x: {declaration}\n{rules}"
    with pytest.raises(RulesetInvalid, match="x") as caught:
        load_ruleset_text(ruleset_text(body), "limits.yaml")
    assert [d.message for d in caught.value.diagnostics] == [message]


def test_the_input_schema_shows_every_bound_the_engine_enforces(bounded: Ruleset) -> None:
    properties = input_schema(bounded)["properties"]
    assert properties["koder"]["maxItems"] == DEFAULT_MAX_ITEMS
    assert properties["koder"]["items"]["maxLength"] == DEFAULT_MAX_LENGTH
    assert properties["fa"]["maxItems"] == 3
    assert properties["fa"]["items"] == {"type": "integer", "minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER}
    assert properties["kort"]["maxLength"] == 4
    assert (properties["dag"]["formatMinimum"], properties["dag"]["formatMaximum"]) == ("1800-01-01", "2199-12-31")
    assert (properties["antall"]["minimum"], properties["antall"]["maximum"]) == (-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    assert (properties["belop"]["minimum"], properties["belop"]["maximum"]) == (-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)


def test_a_declared_bound_tighter_than_the_engines_is_shown(motor: Regelmotor) -> None:
    ruleset = motor.repository.get("rett-til-helsehjelp", "2024.07")
    klinisk = input_schema(ruleset)["properties"]["klinisk_frist_uker"]
    assert (klinisk["minimum"], klinisk["maximum"]) == (0, 104)


# --- what an error echoes ----------------------------------------------------------------------


def test_a_reason_echoes_at_most_a_shortened_value(validator: FactValidator, motor: Regelmotor) -> None:
    huge = "å" * 1_000_000
    reason = refused(lambda: motor.evaluate("rett-til-helsehjelp", {**VALID_FACTS, "fagomrade": huge},
                                            as_of=AS_OF))["fagomrade"]
    assert reason.startswith("'ååå") and "..." in reason and len(reason) < ECHO_CHARS + 400
    assert len(refused(lambda: validator.validate({"antall": {str(n): n for n in range(100_000)}}))["antall"]) < 120
    assert len(shown(10**5000)) <= ECHO_CHARS and len(shown(["x" * 10**6] * 10**5)) <= ECHO_CHARS


def test_an_unknown_fact_with_a_huge_name_is_named_shortened(validator: FactValidator) -> None:
    (field,) = refused(lambda: validator.validate({"u" * 1_000_000: 1}))
    assert len(field) == FIELD_CHARS and field.endswith("…")


def test_100_000_unknown_facts_give_a_bounded_error_quickly(validator: FactValidator) -> None:
    facts = {f"ukjent_{n}": n for n in range(100_000)}
    started = time.monotonic()
    with pytest.raises(InvalidFacts, match="and 99981 more unknown facts") as caught:
        validator.validate(facts)
    violations = caught.value.violations
    assert len(violations) == MAX_VIOLATIONS
    assert violations[0].field == "ukjent_0" and violations[-1].field == "facts"
    assert time.monotonic() - started < 5  # generous: no pydantic error per key


def test_many_problems_are_reported_up_to_the_limit(validator: FactValidator) -> None:
    with pytest.raises(InvalidFacts, match="and 81 more problems") as caught:
        validator.validate({"koder": [1] * 100})
    assert len(caught.value.violations) == MAX_VIOLATIONS
    assert caught.value.violations[0].field == "koder[0]"


def test_a_changed_size_limit_is_a_change_of_the_input_schema(bounded: Ruleset) -> None:
    changed = load_ruleset_text(ruleset_text(FACTS.replace("max_items: 3", "max_items: 5")), "bounds.yaml")
    assert diff_rulesets(bounded, changed).facts == [
        "~ fact fa: list of int max_items 3 → list of int max_items 5"]


def test_a_constraint_message_shows_a_fact_shortened(make_evaluator: Callable[..., Evaluator]) -> None:
    evaluator = make_evaluator("""\
facts:
  kode: {type: string}
constraints:
  - {id: c, when: present(kode), field: kode, message: "koden {kode} er ikke tillatt"}
rules:
  - {id: r, title: r, hjemmel: h1, when: 'true', then: {ok: true}}
outcomes:
  ok: {type: bool, default: false, combine: any}
""")
    reason = refused(lambda: evaluator.evaluate({"kode": "k" * DEFAULT_MAX_LENGTH}, AS_OF))["kode"]
    assert reason == "koden " + "k" * (ECHO_CHARS - 1) + "… er ikke tillatt"
