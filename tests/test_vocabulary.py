"""The closed vocabulary of functions available to derived values: each implementation called directly.

Every implementation is called as ``FUNCTIONS[name].impl(ctx, *args)`` with a real ``CallContext``
holding real ``Parameter`` and ``Table`` objects, the way the evaluator calls them. The tables below
read as the specification of each function: a case's id says what it shows, its arguments and the
value (of exactly that type) the function gives.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from regelmotor.core.errors import ParameterValueMissing
from regelmotor.core.model import Parameter, ParameterValue, Table
from regelmotor.core.types import DECIMAL, INT, STRING
from regelmotor.core.vocabulary import FUNCTIONS, CallContext, ParameterRead

OSLO = ZoneInfo("Europe/Oslo")

# --- fixtures -------------------------------------------------------------------------------------

# A daily rate with a declared gap in 2013 (no value that year), then yearly values.
DAGSATS = Parameter(
    name="dagsats",
    type=INT,
    unit="NOK",
    description="Dagsats per liggedøgn",
    source="test",
    values=(
        ParameterValue(date(2012, 1, 1), 4000),
        ParameterValue(date(2013, 1, 1), None, note="ikke fastsatt"),
        ParameterValue(date(2014, 1, 1), 4200),
        ParameterValue(date(2024, 1, 1), 5745),
        ParameterValue(date(2025, 1, 1), 5981),
    ),
)

# A decimal rate that changes in the middle of a year.
EGENANDEL = Parameter(
    name="egenandel",
    type=DECIMAL,
    unit="NOK",
    description="Egenandel per døgn",
    source="test",
    values=(
        ParameterValue(date(2025, 1, 1), Decimal("1234.50")),
        ParameterValue(date(2025, 7, 1), Decimal("1300.25")),
    ),
)

ICD_GRUPPER = Table(
    name="icd_grupper",
    key="kode",
    columns={"organsystem": STRING, "merknad": STRING},
    rows={
        "I10-I15": {"organsystem": "sirkulasjon", "merknad": "hypertensive sykdommer"},
        "E10-E14": {"organsystem": "endokrin", "merknad": None},
        "J44": {"organsystem": "respirasjon", "merknad": "KOLS"},
        "R69": {"organsystem": None, "merknad": "ukjent"},
    },
)

# Overlapping keys: a code may fall in several rows.
HJERTE = Table(
    name="hjerte",
    key="kode",
    columns={"gruppe": STRING},
    rows={
        "I20-I25": {"gruppe": "iskemisk hjertesykdom"},
        "I21": {"gruppe": "hjerteinfarkt"},
    },
)

FRISTER = Table(
    name="frister",
    key="fagomrade",
    columns={"frist_uker": INT, "navn": STRING},
    rows={
        "psykisk_helsevern_barn": {"frist_uker": 6, "navn": "Psykisk helsevern for barn og unge"},
        "rus": {"frist_uker": None, "navn": "Tverrfaglig spesialisert rusbehandling"},
    },
)


def make_ctx() -> CallContext:
    return CallContext(
        parameters={p.name: p for p in (DAGSATS, EGENANDEL)},
        tables={t.name: t for t in (ICD_GRUPPER, HJERTE, FRISTER)},
    )


def call(name: str, *args: Any, ctx: CallContext | None = None) -> Any:
    return FUNCTIONS[name].impl(ctx if ctx is not None else make_ctx(), *args)


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def d(text: str) -> date:
    return date.fromisoformat(text)


def case(description: str, function: str, *args: Any, gives: Any) -> Any:
    """One row of a table: `function(*args)` gives `gives`; `description` is the case's id."""
    return pytest.param(function, args, gives, id=f"{function}: {description}")


def same(result: Any, expected: Any) -> bool:
    """Equal, and of the same type (so True is not 1 and Decimal(0) is not 0), item by item in lists."""
    if isinstance(expected, list):
        return isinstance(result, list) and len(result) == len(expected) and all(
            same(r, e) for r, e in zip(result, expected, strict=True))
    return type(result) is type(expected) and result == expected


# --- the vocabulary as a whole ---------------------------------------------------------------------


def test_vocabulary_contains_exactly_the_documented_functions() -> None:
    # If a function is added or removed, this file must cover it: update the list and add cases.
    assert set(FUNCTIONS) == {
        "age_on",
        "months_on",
        "add_days",
        "add_weeks",
        "add_working_days",
        "days_between",
        "hours_between",
        "date_of",
        "min_date",
        "max_date",
        "coalesce",
        "count_distinct",
        "icd10_in",
        "icd10_classify",
        "lookup",
        "parameter",
        "parameter_sum_days",
    }


def test_every_function_is_registered_under_its_own_name() -> None:
    for name, function in FUNCTIONS.items():
        assert function.name == name
        assert function.signature.startswith(name + "(")


def test_functions_that_handle_absent_arguments_themselves_do_not_propagate_nulls() -> None:
    handles_nulls = {"min_date", "max_date", "coalesce", "count_distinct", "icd10_in", "icd10_classify"}
    for name, function in FUNCTIONS.items():
        assert function.nulls_propagate is (name not in handles_nulls), name


def test_every_function_has_cases_below() -> None:
    covered = {param.values[0] for param in [*CALLS, *REFUSALS, *GAPS]}
    assert covered == set(FUNCTIONS)


# --- what each function gives ---------------------------------------------------------------------

DATES = [
    case("the day before the birthday", "age_on", d("2003-03-10"), d("2026-03-09"), gives=22),
    case("the age increases on the birthday", "age_on", d("2003-03-10"), d("2026-03-10"), gives=23),
    case("the day after the birthday", "age_on", d("2003-03-10"), d("2026-03-11"), gives=23),
    case("born 29 February, on 28 February of a leap year", "age_on", d("2004-02-29"), d("2024-02-28"), gives=19),
    case("born 29 February, on 29 February", "age_on", d("2004-02-29"), d("2024-02-29"), gives=20),
    case("born 29 February, on 28 February of a common year", "age_on", d("2004-02-29"), d("2025-02-28"),
         gives=20),
    case("born 29 February, a common year's birthday is 1 March", "age_on", d("2004-02-29"), d("2025-03-01"),
         gives=21),
    case("born 31 December, on 1 January", "age_on", d("2000-12-31"), d("2001-01-01"), gives=0),
    case("born 31 December, the day before the first birthday", "age_on", d("2000-12-31"), d("2001-12-30"),
         gives=0),
    case("born 31 December, on the first birthday", "age_on", d("2000-12-31"), d("2001-12-31"), gives=1),
    case("a month is complete on the same day of the month", "months_on", d("2026-02-10"), d("2026-03-30"),
         gives=1),
    case("completed months across a year end", "months_on", d("2025-12-29"), d("2026-03-30"), gives=3),

    case("onto 29 February 2024", "add_days", d("2024-02-28"), 1, gives=d("2024-02-29")),
    case("over 29 February 2024", "add_days", d("2024-02-28"), 2, gives=d("2024-03-01")),
    case("back onto 29 February 2024", "add_days", d("2024-03-01"), -1, gives=d("2024-02-29")),
    case("a common year has no 29 February", "add_days", d("2023-02-28"), 1, gives=d("2023-03-01")),
    case("across a year end", "add_days", d("2025-12-31"), 1, gives=d("2026-01-01")),
    case("two weeks across a year end", "add_days", d("2025-12-20"), 14, gives=d("2026-01-03")),
    case("back across a year end", "add_days", d("2026-01-01"), -1, gives=d("2025-12-31")),
    case("zero is the same date", "add_days", d("2026-04-03"), 0, gives=d("2026-04-03")),
    case("plain calendar days land on holidays (Good Friday)", "add_days", d("2026-04-02"), 1,
         gives=d("2026-04-03")),
    case("lands on Easter Monday without moving", "add_weeks", d("2026-03-30"), 1, gives=d("2026-04-06")),
    case("Saturday to Saturday without moving", "add_weeks", d("2026-03-28"), 2, gives=d("2026-04-11")),
    case("over 29 February 2024", "add_weeks", d("2024-02-26"), 1, gives=d("2024-03-04")),
    case("a week in February of a common year", "add_weeks", d("2023-02-26"), 1, gives=d("2023-03-05")),
    case("across a year end", "add_weeks", d("2025-12-29"), 1, gives=d("2026-01-05")),
    case("back across a year end", "add_weeks", d("2026-01-05"), -1, gives=d("2025-12-29")),
    case("52 weeks of a leap year", "add_weeks", d("2024-01-01"), 52, gives=d("2024-12-30")),
    case("zero is the same date", "add_weeks", d("2026-03-30"), 0, gives=d("2026-03-30")),

    case("10 over Easter 2026", "add_working_days", d("2026-03-30"), 10, gives=d("2026-04-16")),
    case("65 over Easter 2026", "add_working_days", d("2026-03-30"), 65, gives=d("2026-07-07")),
    case("10 over Ascension Day and Whit Monday 2026", "add_working_days", d("2026-05-11"), 10,
         gives=d("2026-05-27")),
    case("65 over Ascension Day and Whit Monday 2026", "add_working_days", d("2026-05-11"), 65,
         gives=d("2026-08-12")),
    case("10 over Christmas and New Year", "add_working_days", d("2025-12-19"), 10, gives=d("2026-01-07")),
    case("65 over Christmas and New Year", "add_working_days", d("2025-12-19"), 65, gives=d("2026-03-25")),
    case("skips 17 May on a Monday", "add_working_days", d("2027-05-14"), 1, gives=d("2027-05-18")),
    case("zero is the same date, even a Saturday", "add_working_days", d("2026-04-04"), 0, gives=d("2026-04-04")),
    case("from Easter Saturday", "add_working_days", d("2026-04-04"), 1, gives=d("2026-04-07")),
    case("from Ascension Day", "add_working_days", d("2026-05-14"), 1, gives=d("2026-05-15")),

    case("across 29 February 2024", "days_between", d("2024-02-28"), d("2024-03-01"), gives=2),
    case("across the end of February 2023", "days_between", d("2023-02-28"), d("2023-03-01"), gives=1),
    case("across a year end", "days_between", d("2025-12-31"), d("2026-01-01"), gives=1),
    case("a leap year has 366 days", "days_between", d("2024-01-01"), d("2025-01-01"), gives=366),
    case("a common year has 365 days", "days_between", d("2025-01-01"), d("2026-01-01"), gives=365),
    case("negative when reversed", "days_between", d("2024-03-01"), d("2024-02-28"), gives=-2),
    case("negative when reversed across a year end", "days_between", d("2026-01-01"), d("2025-12-31"), gives=-1),
    case("the same day is zero", "days_between", d("2026-05-17"), d("2026-05-17"), gives=0),

    case("the earliest, absent dates ignored", "min_date", d("2026-05-01"), None, d("2026-04-30"), d("2026-06-01"),
         gives=d("2026-04-30")),
    case("absent first", "min_date", None, d("2026-05-01"), gives=d("2026-05-01")),
    case("absent last", "min_date", d("2026-05-01"), None, gives=d("2026-05-01")),
    case("across a year end", "min_date", d("2026-01-01"), d("2025-12-31"), gives=d("2025-12-31")),
    case("the latest, absent dates ignored", "max_date", d("2026-05-01"), None, d("2026-04-30"), d("2026-06-01"),
         gives=d("2026-06-01")),
    case("absent first", "max_date", None, d("2026-05-01"), gives=d("2026-05-01")),
    case("absent last", "max_date", d("2026-05-01"), None, gives=d("2026-05-01")),
    case("across a year end", "max_date", d("2026-01-01"), d("2025-12-31"), gives=d("2026-01-01")),
    case("only absent dates give an absent date", "min_date", None, None, gives=None),
    case("only absent dates give an absent date", "max_date", None, None, None, gives=None),
]

TIMES = [
    case("exactly 24 hours", "hours_between", dt("2026-03-02T08:00:00+01:00"), dt("2026-03-03T08:00:00+01:00"),
         gives=Decimal(24)),
    case("24 hours and one minute is over 24", "hours_between", dt("2026-03-02T08:00:00+01:00"),
         dt("2026-03-03T08:01:00+01:00"), gives=Decimal(1441) / Decimal(60)),
    case("one second short of 24 hours is under 24", "hours_between", dt("2026-03-02T08:00:00+01:00"),
         dt("2026-03-03T07:59:59+01:00"), gives=Decimal(86399) / Decimal(3600)),
    case("fractions of an hour are exact", "hours_between", dt("2026-03-02T08:00:00+01:00"),
         dt("2026-03-02T09:30:00+01:00"), gives=Decimal("1.5")),
    case("negative when reversed", "hours_between", dt("2026-03-03T08:00:00+01:00"),
         dt("2026-03-02T08:00:00+01:00"), gives=Decimal(-24)),
    case("the same instant at different offsets is zero", "hours_between", dt("2026-03-02T07:00:00+00:00"),
         dt("2026-03-02T08:00:00+01:00"), gives=Decimal(0)),
    # Oslo moved from +01:00 to +02:00 at 02:00 on 30 March 2025, and back at 03:00 on 26 October 2025.
    case("noon to noon over the spring change is 23 hours", "hours_between", dt("2025-03-29T12:00:00+01:00"),
         dt("2025-03-30T12:00:00+02:00"), gives=Decimal(23)),
    case("noon to noon over the autumn change is 25 hours", "hours_between", dt("2025-10-25T12:00:00+02:00"),
         dt("2025-10-26T12:00:00+01:00"), gives=Decimal(25)),
    case("the same instants in UTC count real time", "hours_between",
         dt("2025-03-29T12:00:00+01:00").astimezone(UTC), dt("2025-03-30T12:00:00+02:00").astimezone(UTC),
         gives=Decimal(23)),
    # The same instants with the Europe/Oslo zone instead of fixed offsets: the same elapsed real time.
    case("Oslo zone datetimes over the spring change are 23 hours apart", "hours_between",
         datetime(2025, 3, 29, 12, 0, tzinfo=OSLO), datetime(2025, 3, 30, 12, 0, tzinfo=OSLO), gives=Decimal(23)),
    case("Oslo zone datetimes over the autumn change are 25 hours apart", "hours_between",
         datetime(2025, 10, 25, 12, 0, tzinfo=OSLO), datetime(2025, 10, 26, 12, 0, tzinfo=OSLO), gives=Decimal(25)),

    case("a UTC evening on the autumn change night is the next day in Oslo", "date_of",
         dt("2024-10-26T23:30:00+00:00"), gives=d("2024-10-27")),
    case("a UTC evening in summer is the next day in Oslo", "date_of", dt("2024-06-30T22:30:00+00:00"),
         gives=d("2024-07-01")),
    case("just before Oslo's midnight in summer", "date_of", dt("2024-06-30T21:59:59+00:00"), gives=d("2024-06-30")),
    case("just before Oslo's midnight in winter", "date_of", dt("2025-01-15T22:59:59+00:00"), gives=d("2025-01-15")),
    case("Oslo's midnight in winter", "date_of", dt("2025-01-15T23:00:00+00:00"), gives=d("2025-01-16")),
    case("a New York evening is the next day in Oslo", "date_of",
         datetime(2025, 12, 31, 18, 30, tzinfo=timezone(timedelta(hours=-5))), gives=d("2026-01-01")),
]

GENERAL = [
    case("the first present date", "coalesce", None, d("2026-01-02"), d("2026-01-03"), gives=d("2026-01-02")),
    case("the first of two texts", "coalesce", "a", "b", gives="a"),
    case("the first present number", "coalesce", None, None, 7, gives=7),
    case("zero is present", "coalesce", None, 0, 5, gives=0),
    case("false is present", "coalesce", None, False, True, gives=False),
    case("empty text is present", "coalesce", None, "", "x", gives=""),
    case("only absent values give an absent value", "coalesce", None, None, gives=None),
    case("different codes", "count_distinct", ["F32.2", "F41.1", "F32.2"], gives=2),
    case("different dates", "count_distinct", [d("2026-01-01"), d("2026-01-01"), d("2026-01-02")], gives=2),
    case("different numbers", "count_distinct", [1, 2, 3, 4], gives=4),
    case("an empty list has none", "count_distinct", [], gives=0),
    case("an absent list has none", "count_distinct", None, gives=0),
]

ICD10 = [
    case("a sibling subcode does not match", "icd10_in", "F32.1", ["F32.2", "F32.3"], gives=False),
    case("a listed subcode matches itself", "icd10_in", "F32.2", ["F32.2", "F32.3"], gives=True),
    case("a listed subcode covers its own subcodes", "icd10_in", "F32.20", ["F32.2", "F32.3"], gives=True),
    case("the second listed subcode matches", "icd10_in", "F32.3", ["F32.2", "F32.3"], gives=True),
    case("a bare category is not inside one of its subcodes", "icd10_in", "F32", ["F32.2"], gives=False),
    case("a category range covers a subcode inside", "icd10_in", "F25.1", ["F20-F31"], gives=True),
    case("a category range covers its last category's subcodes", "icd10_in", "F31.9", ["F20-F31"], gives=True),
    case("a category range covers its first category", "icd10_in", "F20", ["F20-F31"], gives=True),
    case("a category range covers its first category's subcodes", "icd10_in", "F20.0", ["F20-F31"], gives=True),
    case("the category after a range is outside", "icd10_in", "F32", ["F20-F31"], gives=False),
    case("a subcode of the category after a range is outside", "icd10_in", "F32.0", ["F20-F31"], gives=False),
    case("a subcode of the category before a range is outside", "icd10_in", "F19.9", ["F20-F31"], gives=False),
    case("a subcode entry matches itself", "icd10_in", "F10.2", ["F10.2"], gives=True),
    case("a subcode entry covers deeper subcodes", "icd10_in", "F10.24", ["F10.2"], gives=True),
    case("a subcode entry does not cover a sibling", "icd10_in", "F10.1", ["F10.2"], gives=False),
    case("a subcode entry does not cover its category", "icd10_in", "F10", ["F10.2"], gives=False),
    case("a category entry matches itself", "icd10_in", "E11", ["E11"], gives=True),
    case("a category entry covers its subcodes", "icd10_in", "E11.9", ["E11"], gives=True),
    case("a category entry does not cover the category before", "icd10_in", "E10.9", ["E11"], gives=False),
    case("a category entry does not cover the category after", "icd10_in", "E12", ["E11"], gives=False),
    case("the pregnancy chapter covers its last code", "icd10_in", "O99.8", ["O00-O99"], gives=True),
    case("the pregnancy chapter covers its first code", "icd10_in", "O00", ["O00-O99"], gives=True),
    case("the pregnancy chapter ends before P", "icd10_in", "P00", ["O00-O99"], gives=False),
    case("the pregnancy chapter starts after N", "icd10_in", "N99.9", ["O00-O99"], gives=False),
    case("a range across chapter letters covers its end", "icd10_in", "D48.9", ["C00-D48"], gives=True),
    case("a range across chapter letters covers its first letter", "icd10_in", "C50.9", ["C00-D48"], gives=True),
    case("a range across chapter letters ends at its end", "icd10_in", "D49", ["C00-D48"], gives=False),
    case("any code of a list in any range", "icd10_in", ["Z00", "J44.1", "F25.1"], ["E10-E14", "F20-F31"],
         gives=True),
    case("no code of a list in any range", "icd10_in", ["Z00", "J44.1"], ["E10-E14", "F20-F31"], gives=False),
    case("absent codes are in no range", "icd10_in", None, ["F20-F31"], gives=False),
    case("no codes are in no range", "icd10_in", [], ["F20-F31"], gives=False),
    case("no ranges hold no code", "icd10_in", "F25.1", [], gives=False),

    case("distinct groups in the order of the codes", "icd10_classify", ["E11.9", "I10", "E10.1", "J44.1", "Z00"],
         "icd_grupper", "organsystem", gives=["endokrin", "sirkulasjon", "respirasjon"]),
    case("the order follows the codes, not the table", "icd10_classify", ["J44.0", "I11.9"], "icd_grupper",
         "organsystem", gives=["respirasjon", "sirkulasjon"]),
    case("a single code in a range", "icd10_classify", "I15.0", "icd_grupper", "organsystem", gives=["sirkulasjon"]),
    case("a single code in no row", "icd10_classify", "I16", "icd_grupper", "organsystem", gives=[]),
    case("an empty cell gives nothing", "icd10_classify", ["R69", "E11"], "icd_grupper", "organsystem",
         gives=["endokrin"]),
    case("empty cells of another column give nothing", "icd10_classify", ["E11", "J44"], "icd_grupper", "merknad",
         gives=["KOLS"]),
    case("a code in overlapping rows gets both values", "icd10_classify", "I21.0", "hjerte", "gruppe",
         gives=["iskemisk hjertesykdom", "hjerteinfarkt"]),
    case("a code in one of overlapping rows gets one value", "icd10_classify", "I22", "hjerte", "gruppe",
         gives=["iskemisk hjertesykdom"]),
    case("absent codes give an empty list", "icd10_classify", None, "icd_grupper", "organsystem", gives=[]),
    case("no codes give an empty list", "icd10_classify", [], "icd_grupper", "organsystem", gives=[]),
    case("codes in no row give an empty list", "icd10_classify", ["Z00", "A09"], "icd_grupper", "organsystem",
         gives=[]),
]

DATA = [
    case("a cell", "lookup", "frister", "psykisk_helsevern_barn", "frist_uker", gives=6),
    case("a text cell", "lookup", "frister", "rus", "navn", gives="Tverrfaglig spesialisert rusbehandling"),
    case("an absent key gives an absent value", "lookup", "frister", "somatikk", "frist_uker", gives=None),
    case("an empty cell gives an absent value", "lookup", "frister", "rus", "frist_uker", gives=None),

    case("the value in force on a date", "parameter", "dagsats", d("2024-06-15"), gives=5745),
    case("the day before a new value", "parameter", "dagsats", d("2024-12-31"), gives=5745),
    case("a new value holds from its gyldig_fra", "parameter", "dagsats", d("2025-01-01"), gives=5981),
    case("after the last value, the last value", "parameter", "dagsats", d("2030-07-01"), gives=5981),
    case("after a declared gap, the next value", "parameter", "dagsats", d("2014-01-01"), gives=4200),
    case("before a declared gap, the value before", "parameter", "dagsats", d("2012-12-31"), gives=4000),
    case("a decimal value", "parameter", "egenandel", d("2025-07-01"), gives=Decimal("1300.25")),

    case("a stay over New Year at each year's rate", "parameter_sum_days", "dagsats", d("2024-12-30"),
         d("2025-01-02"), gives=2 * 5745 + 1 * 5981),
    case("the end day is not counted", "parameter_sum_days", "dagsats", d("2024-03-01"), d("2024-03-02"),
         gives=5745),
    case("ten days", "parameter_sum_days", "dagsats", d("2024-03-01"), d("2024-03-11"), gives=10 * 5745),
    case("29 February counts", "parameter_sum_days", "dagsats", d("2024-02-28"), d("2024-03-01"), gives=2 * 5745),
    # 31 Dec 2023 at the 2014 rate, all of leap year 2024, 1 Jan 2025.
    case("several years", "parameter_sum_days", "dagsats", d("2023-12-31"), d("2025-01-02"),
         gives=1 * 4200 + 366 * 5745 + 1 * 5981),
    case("a change in the middle of a year", "parameter_sum_days", "egenandel", d("2025-06-29"), d("2025-07-02"),
         gives=Decimal("3769.25")),  # 2 * 1234.50 + 1 * 1300.25
    case("an empty stay is zero", "parameter_sum_days", "dagsats", d("2025-03-01"), d("2025-03-01"), gives=0),
    case("after a declared gap, the resumed value", "parameter_sum_days", "dagsats", d("2014-01-01"),
         d("2014-01-04"), gives=3 * 4200),
]

CALLS = [*DATES, *TIMES, *GENERAL, *ICD10, *DATA]


@pytest.mark.parametrize(("function", "args", "expected"), CALLS)
def test_a_function_gives_its_documented_value(function: str, args: tuple[Any, ...], expected: Any) -> None:
    result = call(function, *args)
    assert same(result, expected), f"{function}{args} gave {result!r}, expected {expected!r}"


# --- what each function refuses -------------------------------------------------------------------


def refusal(description: str, function: str, *args: Any, match: str) -> Any:
    return pytest.param(function, args, match, id=f"{function}: {description}")


REFUSALS = [
    refusal("a date before the birth", "age_on", d("2010-05-05"), d("2010-05-04"),
            match=r"^date 2010-05-04 is before the birth date 2010-05-05$"),
    refusal("a date before the birth", "months_on", d("2010-05-05"), d("2010-05-04"),
            match=r"^date 2010-05-04 is before the birth date 2010-05-05$"),
    refusal("a negative count", "add_working_days", d("2026-04-04"), -3,
            match=r"^working days to add must be zero or more, got -3$"),
    refusal("a datetime without a UTC offset", "date_of", datetime(2024, 10, 26, 23, 30),
            match=r"^a datetime without a UTC offset has no calendar date in Oslo$"),
]


@pytest.mark.parametrize(("function", "args", "match"), REFUSALS)
def test_a_function_refuses_arguments_it_has_no_answer_for(function: str, args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(function, *args)


def gap(description: str, function: str, *args: Any, missing: str, note: str = "", read_first: tuple[str, ...] = ()
        ) -> Any:
    """A call that meets a day without a value: `missing`, shown with the gap's `note`; the days read before it."""
    return pytest.param(function, args, d(missing), f" ({note})" if note else "", [d(day) for day in read_first],
                        id=f"{function}: {description}")


GAPS = [
    gap("a date in a declared gap", "parameter", "dagsats", d("2013-06-01"), missing="2013-06-01",
        note="ikke fastsatt"),
    gap("the first day of a declared gap", "parameter", "dagsats", d("2013-01-01"), missing="2013-01-01",
        note="ikke fastsatt"),
    gap("a date before the first value", "parameter", "dagsats", d("2011-12-31"), missing="2011-12-31"),
    gap("a stay into a declared gap", "parameter_sum_days", "dagsats", d("2012-12-30"), d("2013-01-02"),
        missing="2013-01-01", note="ikke fastsatt", read_first=("2012-12-30",)),
    gap("a stay inside a declared gap", "parameter_sum_days", "dagsats", d("2013-05-01"), d("2013-05-10"),
        missing="2013-05-01", note="ikke fastsatt"),
    # The first night (31 Dec 2013) has no value even though 1 Jan 2014 has one.
    gap("a stay leaving a declared gap", "parameter_sum_days", "dagsats", d("2013-12-31"), d("2014-01-02"),
        missing="2013-12-31", note="ikke fastsatt"),
    gap("a stay from before the first value", "parameter_sum_days", "egenandel", d("2024-12-31"), d("2025-01-02"),
        missing="2024-12-31"),
]


@pytest.mark.parametrize(("function", "args", "missing", "note", "read_first"), GAPS)
def test_a_day_without_a_parameter_value_is_an_error_naming_the_parameter_and_the_day(
        function: str, args: tuple[Any, ...], missing: date, note: str, read_first: list[date]) -> None:
    ctx = make_ctx()
    parameter = args[0]
    pattern = f"^parameter '{parameter}' has no value for {re.escape(missing.isoformat() + note)}$"
    with pytest.raises(ParameterValueMissing, match=pattern) as caught:
        call(function, *args, ctx=ctx)
    assert (caught.value.parameter, caught.value.on) == (parameter, missing)
    assert [read.on for read in ctx.parameter_reads] == read_first  # the day without a value is not recorded


# --- what reading a parameter records in the explanation --------------------------------------------

READS = [
    pytest.param([("parameter", "dagsats", d("2024-06-15"))],
                 [ParameterRead("dagsats", d("2024-06-15"), d("2024-01-01"), 5745, "NOK")],
                 id="parameter: the date asked, the gyldig_fra found, the value and the unit"),
    pytest.param([("parameter", "dagsats", d("2024-12-31")), ("parameter", "dagsats", d("2025-01-01"))],
                 [ParameterRead("dagsats", d("2024-12-31"), d("2024-01-01"), 5745, "NOK"),
                  ParameterRead("dagsats", d("2025-01-01"), d("2025-01-01"), 5981, "NOK")],
                 id="parameter: each read, in order, on either side of a change"),
    pytest.param([("parameter", "dagsats", d("2030-07-01"))],
                 [ParameterRead("dagsats", d("2030-07-01"), d("2025-01-01"), 5981, "NOK")],
                 id="parameter: after the last value, the last gyldig_fra"),
    pytest.param([("parameter", "dagsats", d("2014-01-01")), ("parameter", "dagsats", d("2012-12-31"))],
                 [ParameterRead("dagsats", d("2014-01-01"), d("2014-01-01"), 4200, "NOK"),
                  ParameterRead("dagsats", d("2012-12-31"), d("2012-01-01"), 4000, "NOK")],
                 id="parameter: on either side of a declared gap"),
    pytest.param([("parameter", "egenandel", d("2025-07-01"))],
                 [ParameterRead("egenandel", d("2025-07-01"), d("2025-07-01"), Decimal("1300.25"), "NOK")],
                 id="parameter: a decimal value and its unit"),
    pytest.param([("parameter_sum_days", "dagsats", d("2024-12-30"), d("2025-01-02"))],
                 [ParameterRead("dagsats", d("2024-12-30"), d("2024-01-01"), 5745, "NOK"),
                  ParameterRead("dagsats", d("2025-01-01"), d("2025-01-01"), 5981, "NOK")],
                 id="parameter_sum_days: one read per value period over New Year"),
    pytest.param([("parameter_sum_days", "egenandel", d("2025-06-29"), d("2025-07-02"))],
                 [ParameterRead("egenandel", d("2025-06-29"), d("2025-01-01"), Decimal("1234.50"), "NOK"),
                  ParameterRead("egenandel", d("2025-07-01"), d("2025-07-01"), Decimal("1300.25"), "NOK")],
                 id="parameter_sum_days: one read per value period inside a year"),
    pytest.param([("parameter_sum_days", "dagsats", d("2025-03-01"), d("2025-03-01"))], [],
                 id="parameter_sum_days: an empty stay reads nothing"),
]


@pytest.mark.parametrize(("calls", "reads"), READS)
def test_reading_a_parameter_is_recorded(calls: list[tuple[Any, ...]], reads: list[ParameterRead]) -> None:
    ctx = make_ctx()
    for function, *args in calls:
        call(function, *args, ctx=ctx)
    assert ctx.parameter_reads == reads
