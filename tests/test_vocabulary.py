"""The closed vocabulary of functions available to derived values: each implementation called directly.

Every implementation is called as ``FUNCTIONS[name].impl(ctx, *args)`` with a real ``CallContext``
holding real ``Parameter`` and ``Table`` objects, the way the evaluator calls them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from regelmotor.core.errors import ParameterValueMissing
from regelmotor.core.icd10 import in_range as icd10_in_range
from regelmotor.core.icd10 import range_problem as validate_icd10_range
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


# --- the vocabulary as a whole ---------------------------------------------------------------------


def test_vocabulary_contains_exactly_the_documented_functions() -> None:
    # If a function is added or removed, this file must cover it: update the list and add tests.
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


# --- age_on -------------------------------------------------------------------------------------


def test_age_on_birthday_boundaries() -> None:
    born = date(2003, 3, 10)
    assert call("age_on", born, date(2026, 3, 9)) == 22
    assert call("age_on", born, date(2026, 3, 10)) == 23
    assert call("age_on", born, date(2026, 3, 11)) == 23


def test_age_on_leap_day_birth_in_leap_and_common_years() -> None:
    born = date(2004, 2, 29)
    assert call("age_on", born, date(2024, 2, 28)) == 19
    assert call("age_on", born, date(2024, 2, 29)) == 20
    assert call("age_on", born, date(2025, 2, 28)) == 20
    assert call("age_on", born, date(2025, 3, 1)) == 21


def test_age_on_year_boundary() -> None:
    born = date(2000, 12, 31)
    assert call("age_on", born, date(2001, 1, 1)) == 0
    assert call("age_on", born, date(2001, 12, 30)) == 0
    assert call("age_on", born, date(2001, 12, 31)) == 1


def test_age_on_a_date_before_birth_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^date 2010-05-04 is before the birth date 2010-05-05$"):
        call("age_on", date(2010, 5, 5), date(2010, 5, 4))


# --- add_days / add_weeks ---------------------------------------------------------------------------


def test_add_days_over_29_february_2024() -> None:
    assert call("add_days", date(2024, 2, 28), 1) == date(2024, 2, 29)
    assert call("add_days", date(2024, 2, 28), 2) == date(2024, 3, 1)
    assert call("add_days", date(2024, 3, 1), -1) == date(2024, 2, 29)


def test_add_days_in_a_common_year_has_no_29_february() -> None:
    assert call("add_days", date(2023, 2, 28), 1) == date(2023, 3, 1)


def test_add_days_across_year_end_both_ways() -> None:
    assert call("add_days", date(2025, 12, 31), 1) == date(2026, 1, 1)
    assert call("add_days", date(2025, 12, 20), 14) == date(2026, 1, 3)
    assert call("add_days", date(2026, 1, 1), -1) == date(2025, 12, 31)


def test_add_days_zero_is_the_same_date() -> None:
    assert call("add_days", date(2026, 4, 3), 0) == date(2026, 4, 3)


def test_add_days_is_plain_calendar_and_lands_on_holidays() -> None:
    assert call("add_days", date(2026, 4, 2), 1) == date(2026, 4, 3)  # Good Friday


def test_add_weeks_lands_on_easter_monday_without_moving() -> None:
    assert call("add_weeks", date(2026, 3, 30), 1) == date(2026, 4, 6)


def test_add_weeks_lands_on_a_weekend_day_without_moving() -> None:
    assert call("add_weeks", date(2026, 3, 28), 2) == date(2026, 4, 11)  # Saturday to Saturday


def test_add_weeks_over_29_february_2024() -> None:
    assert call("add_weeks", date(2024, 2, 26), 1) == date(2024, 3, 4)
    assert call("add_weeks", date(2023, 2, 26), 1) == date(2023, 3, 5)


def test_add_weeks_across_year_end_both_ways() -> None:
    assert call("add_weeks", date(2025, 12, 29), 1) == date(2026, 1, 5)
    assert call("add_weeks", date(2026, 1, 5), -1) == date(2025, 12, 29)
    assert call("add_weeks", date(2024, 1, 1), 52) == date(2024, 12, 30)


def test_add_weeks_zero_is_the_same_date() -> None:
    assert call("add_weeks", date(2026, 3, 30), 0) == date(2026, 3, 30)


# --- add_working_days -------------------------------------------------------------------------------


def test_add_working_days_skips_easter_2026() -> None:
    assert call("add_working_days", date(2026, 3, 30), 10) == date(2026, 4, 16)
    assert call("add_working_days", date(2026, 3, 30), 65) == date(2026, 7, 7)


def test_add_working_days_skips_ascension_and_whit_monday_2026() -> None:
    assert call("add_working_days", date(2026, 5, 11), 10) == date(2026, 5, 27)
    assert call("add_working_days", date(2026, 5, 11), 65) == date(2026, 8, 12)


def test_add_working_days_over_christmas_and_new_year() -> None:
    assert call("add_working_days", date(2025, 12, 19), 10) == date(2026, 1, 7)
    assert call("add_working_days", date(2025, 12, 19), 65) == date(2026, 3, 25)


def test_add_working_days_skips_17_may_on_a_monday() -> None:
    assert call("add_working_days", date(2027, 5, 14), 1) == date(2027, 5, 18)


def test_add_working_days_zero_and_negative() -> None:
    assert call("add_working_days", date(2026, 4, 4), 0) == date(2026, 4, 4)
    with pytest.raises(ValueError, match=r"^working days to add must be zero or more, got -3$"):
        call("add_working_days", date(2026, 4, 4), -3)


def test_add_working_days_from_a_saturday_or_a_holiday() -> None:
    assert call("add_working_days", date(2026, 4, 4), 1) == date(2026, 4, 7)  # Easter Saturday
    assert call("add_working_days", date(2026, 5, 14), 1) == date(2026, 5, 15)  # Ascension Day


# --- days_between -------------------------------------------------------------------------------


def test_days_between_across_29_february_2024() -> None:
    assert call("days_between", date(2024, 2, 28), date(2024, 3, 1)) == 2
    assert call("days_between", date(2023, 2, 28), date(2023, 3, 1)) == 1


def test_days_between_across_year_end() -> None:
    assert call("days_between", date(2025, 12, 31), date(2026, 1, 1)) == 1
    assert call("days_between", date(2024, 1, 1), date(2025, 1, 1)) == 366
    assert call("days_between", date(2025, 1, 1), date(2026, 1, 1)) == 365


def test_days_between_is_negative_when_reversed() -> None:
    assert call("days_between", date(2024, 3, 1), date(2024, 2, 28)) == -2
    assert call("days_between", date(2026, 1, 1), date(2025, 12, 31)) == -1


def test_days_between_the_same_day_is_zero() -> None:
    assert call("days_between", date(2026, 5, 17), date(2026, 5, 17)) == 0


# --- hours_between ------------------------------------------------------------------------------


def test_hours_between_exactly_24_hours() -> None:
    hours = call("hours_between", dt("2026-03-02T08:00:00+01:00"), dt("2026-03-03T08:00:00+01:00"))
    assert isinstance(hours, Decimal)
    assert hours == Decimal(24)


def test_hours_between_24_hours_and_one_minute_is_over_24() -> None:
    hours = call("hours_between", dt("2026-03-02T08:00:00+01:00"), dt("2026-03-03T08:01:00+01:00"))
    assert hours > Decimal(24)
    assert hours == Decimal(1441) / Decimal(60)


def test_hours_between_one_second_short_of_24_hours_is_under_24() -> None:
    hours = call("hours_between", dt("2026-03-02T08:00:00+01:00"), dt("2026-03-03T07:59:59+01:00"))
    assert hours < Decimal(24)


def test_hours_between_fractional_hours_are_exact() -> None:
    assert call("hours_between", dt("2026-03-02T08:00:00+01:00"), dt("2026-03-02T09:30:00+01:00")) == Decimal(
        "1.5"
    )


def test_hours_between_is_negative_when_reversed() -> None:
    assert call("hours_between", dt("2026-03-03T08:00:00+01:00"), dt("2026-03-02T08:00:00+01:00")) == Decimal(
        -24
    )


def test_hours_between_different_offsets_for_the_same_instant_is_zero() -> None:
    assert call("hours_between", dt("2026-03-02T07:00:00+00:00"), dt("2026-03-02T08:00:00+01:00")) == 0


def test_hours_between_across_spring_dst_change_is_23_hours() -> None:
    # Oslo moved from +01:00 to +02:00 at 02:00 on 30 March 2025: noon to noon is 23 real hours.
    hours = call("hours_between", dt("2025-03-29T12:00:00+01:00"), dt("2025-03-30T12:00:00+02:00"))
    assert hours == Decimal(23)


def test_hours_between_across_autumn_dst_change_is_25_hours() -> None:
    # Oslo moved from +02:00 back to +01:00 at 03:00 on 26 October 2025.
    hours = call("hours_between", dt("2025-10-25T12:00:00+02:00"), dt("2025-10-26T12:00:00+01:00"))
    assert hours == Decimal(25)


def test_hours_between_utc_datetimes_across_the_dst_change_counts_real_time() -> None:
    start = dt("2025-03-29T12:00:00+01:00").astimezone(UTC)
    end = dt("2025-03-30T12:00:00+02:00").astimezone(UTC)
    assert call("hours_between", start, end) == Decimal(23)


def test_hours_between_oslo_zone_datetimes_across_spring_dst_change_is_23_hours() -> None:
    # The same two instants as above, expressed with the Europe/Oslo zone instead of fixed offsets:
    # a caller passing zone-aware datetimes must get the same elapsed real time.
    start = datetime(2025, 3, 29, 12, 0, tzinfo=OSLO)
    end = datetime(2025, 3, 30, 12, 0, tzinfo=OSLO)
    assert start.utcoffset() == timedelta(hours=1)
    assert end.utcoffset() == timedelta(hours=2)
    assert call("hours_between", start, end) == Decimal(23)


def test_hours_between_oslo_zone_datetimes_across_autumn_dst_change_is_25_hours() -> None:
    start = datetime(2025, 10, 25, 12, 0, tzinfo=OSLO)
    end = datetime(2025, 10, 26, 12, 0, tzinfo=OSLO)
    assert call("hours_between", start, end) == Decimal(25)


# --- date_of ------------------------------------------------------------------------------------


def test_date_of_utc_evening_on_dst_night_is_the_next_day_in_oslo() -> None:
    assert call("date_of", dt("2024-10-26T23:30:00+00:00")) == date(2024, 10, 27)


def test_date_of_utc_evening_in_summer_is_the_next_day_in_oslo() -> None:
    assert call("date_of", dt("2024-06-30T22:30:00+00:00")) == date(2024, 7, 1)


def test_date_of_just_before_oslo_midnight_stays_on_the_same_day() -> None:
    assert call("date_of", dt("2024-06-30T21:59:59+00:00")) == date(2024, 6, 30)
    assert call("date_of", dt("2025-01-15T22:59:59+00:00")) == date(2025, 1, 15)
    assert call("date_of", dt("2025-01-15T23:00:00+00:00")) == date(2025, 1, 16)


def test_date_of_a_datetime_far_west_of_oslo() -> None:
    new_york = timezone(timedelta(hours=-5))
    assert call("date_of", datetime(2025, 12, 31, 18, 30, tzinfo=new_york)) == date(2026, 1, 1)


def test_date_of_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^a datetime without a UTC offset has no calendar date in Oslo$"):
        call("date_of", datetime(2024, 10, 26, 23, 30))


# --- min_date / max_date -------------------------------------------------------------------------


def test_min_date_picks_the_earliest_and_ignores_absent_dates() -> None:
    assert call("min_date", date(2026, 5, 1), None, date(2026, 4, 30), date(2026, 6, 1)) == date(2026, 4, 30)
    assert call("min_date", None, date(2026, 5, 1)) == date(2026, 5, 1)
    assert call("min_date", date(2026, 5, 1), None) == date(2026, 5, 1)


def test_max_date_picks_the_latest_and_ignores_absent_dates() -> None:
    assert call("max_date", date(2026, 5, 1), None, date(2026, 4, 30), date(2026, 6, 1)) == date(2026, 6, 1)
    assert call("max_date", None, date(2026, 5, 1)) == date(2026, 5, 1)
    assert call("max_date", date(2026, 5, 1), None) == date(2026, 5, 1)


def test_min_and_max_date_across_year_end() -> None:
    assert call("min_date", date(2026, 1, 1), date(2025, 12, 31)) == date(2025, 12, 31)
    assert call("max_date", date(2026, 1, 1), date(2025, 12, 31)) == date(2026, 1, 1)


def test_min_and_max_date_of_only_absent_dates_is_absent() -> None:
    assert call("min_date", None, None) is None
    assert call("max_date", None, None, None) is None


# --- coalesce / count_distinct ----------------------------------------------------------------------


def test_coalesce_returns_the_first_present_value() -> None:
    assert call("coalesce", None, date(2026, 1, 2), date(2026, 1, 3)) == date(2026, 1, 2)
    assert call("coalesce", "a", "b") == "a"
    assert call("coalesce", None, None, 7) == 7


def test_coalesce_treats_zero_false_and_empty_text_as_present() -> None:
    assert call("coalesce", None, 0, 5) == 0
    assert call("coalesce", None, False, True) is False
    assert call("coalesce", None, "", "x") == ""


def test_coalesce_of_only_absent_values_is_absent() -> None:
    assert call("coalesce", None, None) is None


def test_count_distinct_counts_different_values() -> None:
    assert call("count_distinct", ["F32.2", "F41.1", "F32.2"]) == 2
    assert call("count_distinct", [date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 2)]) == 2
    assert call("count_distinct", [1, 2, 3, 4]) == 4


def test_count_distinct_of_an_empty_or_absent_list_is_zero() -> None:
    assert call("count_distinct", []) == 0
    assert call("count_distinct", None) == 0


# --- icd10_in / icd10_in_range ------------------------------------------------------------------------


def test_icd10_in_a_sibling_subcode_does_not_match() -> None:
    assert call("icd10_in", "F32.1", ["F32.2", "F32.3"]) is False


def test_icd10_in_a_listed_subcode_matches_itself_and_its_own_subcodes() -> None:
    assert call("icd10_in", "F32.2", ["F32.2", "F32.3"]) is True
    assert call("icd10_in", "F32.20", ["F32.2", "F32.3"]) is True
    assert call("icd10_in", "F32.3", ["F32.2", "F32.3"]) is True


def test_icd10_in_a_bare_category_is_not_inside_one_of_its_subcodes() -> None:
    assert call("icd10_in", "F32", ["F32.2"]) is False


def test_icd10_in_category_range_includes_subcodes_and_both_ends() -> None:
    assert call("icd10_in", "F25.1", ["F20-F31"]) is True
    assert call("icd10_in", "F31.9", ["F20-F31"]) is True
    assert call("icd10_in", "F20", ["F20-F31"]) is True
    assert call("icd10_in", "F20.0", ["F20-F31"]) is True


def test_icd10_in_category_range_excludes_neighbours() -> None:
    assert call("icd10_in", "F32", ["F20-F31"]) is False
    assert call("icd10_in", "F32.0", ["F20-F31"]) is False
    assert call("icd10_in", "F19.9", ["F20-F31"]) is False


def test_icd10_in_subcode_entry_covers_deeper_subcodes_only() -> None:
    assert call("icd10_in", "F10.2", ["F10.2"]) is True
    assert call("icd10_in", "F10.24", ["F10.2"]) is True
    assert call("icd10_in", "F10.1", ["F10.2"]) is False
    assert call("icd10_in", "F10", ["F10.2"]) is False


def test_icd10_in_category_entry_covers_all_its_subcodes() -> None:
    assert call("icd10_in", "E11", ["E11"]) is True
    assert call("icd10_in", "E11.9", ["E11"]) is True
    assert call("icd10_in", "E10.9", ["E11"]) is False
    assert call("icd10_in", "E12", ["E11"]) is False


def test_icd10_in_whole_pregnancy_chapter() -> None:
    assert call("icd10_in", "O99.8", ["O00-O99"]) is True
    assert call("icd10_in", "O00", ["O00-O99"]) is True
    assert call("icd10_in", "P00", ["O00-O99"]) is False
    assert call("icd10_in", "N99.9", ["O00-O99"]) is False


def test_icd10_in_range_across_chapter_letters() -> None:
    assert call("icd10_in", "D48.9", ["C00-D48"]) is True
    assert call("icd10_in", "C50.9", ["C00-D48"]) is True
    assert call("icd10_in", "D49", ["C00-D48"]) is False


def test_icd10_in_any_code_of_a_list_in_any_range() -> None:
    assert call("icd10_in", ["Z00", "J44.1", "F25.1"], ["E10-E14", "F20-F31"]) is True
    assert call("icd10_in", ["Z00", "J44.1"], ["E10-E14", "F20-F31"]) is False


def test_icd10_in_absent_or_empty_codes_or_ranges_is_false() -> None:
    assert call("icd10_in", None, ["F20-F31"]) is False
    assert call("icd10_in", [], ["F20-F31"]) is False
    assert call("icd10_in", "F25.1", []) is False


def test_icd10_in_range_directly() -> None:
    assert icd10_in_range("F25.1", "F20-F31") is True
    assert icd10_in_range("F32", "F20-F31") is False
    assert icd10_in_range("F32.20", "F32.2") is True
    assert icd10_in_range("F32.1", "F32.2") is False
    assert icd10_in_range("E11.65", "E11") is True


@pytest.mark.parametrize("spec", ["f20", "F20-", "F2", "", "F20 - F31", "F32."])
def test_icd10_in_range_refuses_a_malformed_spec(spec: str) -> None:
    with pytest.raises(ValueError, match=f"^not an ICD-10 code or range: {re.escape(repr(spec))}$"):
        icd10_in_range("F25.1", spec)


@pytest.mark.parametrize("spec", ["E11", "F32.2", "F20-F31", "O00-O99", "F10.24", "C00-D48", "F10-F10"])
def test_validate_icd10_range_accepts_codes_and_category_ranges(spec: str) -> None:
    assert validate_icd10_range(spec) is None


def test_validate_icd10_range_rejects_lower_case() -> None:
    problem = validate_icd10_range("f20")
    assert problem is not None
    assert "'f20'" in problem


def test_validate_icd10_range_rejects_a_backwards_range() -> None:
    problem = validate_icd10_range("F20-F10")
    assert problem is not None
    assert "backwards" in problem


@pytest.mark.parametrize("spec", ["F10.2-F19.2", "F10.2-F19", "F10-F19.2"])
def test_validate_icd10_range_rejects_subcode_ranges(spec: str) -> None:
    problem = validate_icd10_range(spec)
    assert problem is not None
    assert "three-character" in problem


@pytest.mark.parametrize("spec", ["", "F2", "F20-", "F20 - F31", "20F", "F20-F31-F40"])
def test_validate_icd10_range_rejects_malformed_text(spec: str) -> None:
    problem = validate_icd10_range(spec)
    assert problem is not None
    assert "not an ICD-10 code or range" in problem


# --- icd10_classify ---------------------------------------------------------------------------------


def test_icd10_classify_distinct_categories_in_first_seen_order() -> None:
    codes = ["E11.9", "I10", "E10.1", "J44.1", "Z00"]
    assert call("icd10_classify", codes, "icd_grupper", "organsystem") == [
        "endokrin",
        "sirkulasjon",
        "respirasjon",
    ]


def test_icd10_classify_order_follows_the_codes_not_the_table() -> None:
    assert call("icd10_classify", ["J44.0", "I11.9"], "icd_grupper", "organsystem") == [
        "respirasjon",
        "sirkulasjon",
    ]


def test_icd10_classify_single_code() -> None:
    assert call("icd10_classify", "I15.0", "icd_grupper", "organsystem") == ["sirkulasjon"]
    assert call("icd10_classify", "I16", "icd_grupper", "organsystem") == []


def test_icd10_classify_skips_empty_cells() -> None:
    assert call("icd10_classify", ["R69", "E11"], "icd_grupper", "organsystem") == ["endokrin"]
    assert call("icd10_classify", ["E11", "J44"], "icd_grupper", "merknad") == ["KOLS"]


def test_icd10_classify_code_in_overlapping_rows_gets_both_values() -> None:
    assert call("icd10_classify", "I21.0", "hjerte", "gruppe") == ["iskemisk hjertesykdom", "hjerteinfarkt"]
    assert call("icd10_classify", "I22", "hjerte", "gruppe") == ["iskemisk hjertesykdom"]


def test_icd10_classify_no_codes_gives_an_empty_list() -> None:
    assert call("icd10_classify", None, "icd_grupper", "organsystem") == []
    assert call("icd10_classify", [], "icd_grupper", "organsystem") == []
    assert call("icd10_classify", ["Z00", "A09"], "icd_grupper", "organsystem") == []


# --- lookup -------------------------------------------------------------------------------------


def test_lookup_returns_the_cell() -> None:
    assert call("lookup", "frister", "psykisk_helsevern_barn", "frist_uker") == 6
    assert call("lookup", "frister", "rus", "navn") == "Tverrfaglig spesialisert rusbehandling"


def test_lookup_of_an_absent_key_is_absent() -> None:
    assert call("lookup", "frister", "somatikk", "frist_uker") is None


def test_lookup_of_an_empty_cell_is_absent() -> None:
    assert call("lookup", "frister", "rus", "frist_uker") is None


# --- parameter ----------------------------------------------------------------------------------


def test_parameter_value_in_force_on_a_date_and_the_read_is_recorded() -> None:
    ctx = make_ctx()
    assert call("parameter", "dagsats", date(2024, 6, 15), ctx=ctx) == 5745
    assert ctx.parameter_reads == [ParameterRead("dagsats", date(2024, 6, 15), date(2024, 1, 1), 5745, "NOK")]


def test_parameter_changes_on_its_gyldig_fra_date() -> None:
    ctx = make_ctx()
    assert call("parameter", "dagsats", date(2024, 12, 31), ctx=ctx) == 5745
    assert call("parameter", "dagsats", date(2025, 1, 1), ctx=ctx) == 5981
    assert [(r.on, r.gyldig_fra, r.value) for r in ctx.parameter_reads] == [
        (date(2024, 12, 31), date(2024, 1, 1), 5745),
        (date(2025, 1, 1), date(2025, 1, 1), 5981),
    ]


def test_parameter_after_the_last_value_keeps_the_last_value() -> None:
    ctx = make_ctx()
    assert call("parameter", "dagsats", date(2030, 7, 1), ctx=ctx) == 5981
    assert ctx.parameter_reads[0].gyldig_fra == date(2025, 1, 1)


def test_parameter_after_a_declared_gap_resumes() -> None:
    ctx = make_ctx()
    assert call("parameter", "dagsats", date(2014, 1, 1), ctx=ctx) == 4200
    assert call("parameter", "dagsats", date(2012, 12, 31), ctx=ctx) == 4000
    assert [r.gyldig_fra for r in ctx.parameter_reads] == [date(2014, 1, 1), date(2012, 1, 1)]


def test_parameter_decimal_value_and_unit_are_recorded() -> None:
    ctx = make_ctx()
    assert call("parameter", "egenandel", date(2025, 7, 1), ctx=ctx) == Decimal("1300.25")
    read = ctx.parameter_reads[0]
    assert read.parameter == "egenandel"
    assert read.unit == "NOK"
    assert read.gyldig_fra == date(2025, 7, 1)


def _missing(parameter: str, when: str) -> str:
    """The whole message of ParameterValueMissing, as a pattern for pytest.raises(match=...)."""
    return f"^parameter '{parameter}' has no value for {re.escape(when)}$"


def test_parameter_in_a_declared_gap_is_an_error_naming_parameter_and_date() -> None:
    ctx = make_ctx()
    with pytest.raises(ParameterValueMissing, match=_missing("dagsats", "2013-06-01 (ikke fastsatt)")) as caught:
        call("parameter", "dagsats", date(2013, 6, 1), ctx=ctx)
    assert caught.value.parameter == "dagsats"
    assert caught.value.on == date(2013, 6, 1)
    assert "dagsats" in str(caught.value)
    assert "2013-06-01" in str(caught.value)
    assert ctx.parameter_reads == []


def test_parameter_on_the_first_day_of_a_declared_gap_is_an_error() -> None:
    with pytest.raises(ParameterValueMissing, match=_missing("dagsats", "2013-01-01 (ikke fastsatt)")) as caught:
        call("parameter", "dagsats", date(2013, 1, 1))
    assert caught.value.on == date(2013, 1, 1)


def test_parameter_before_its_first_value_is_an_error_naming_parameter_and_date() -> None:
    ctx = make_ctx()
    with pytest.raises(ParameterValueMissing, match=_missing("dagsats", "2011-12-31")) as caught:
        call("parameter", "dagsats", date(2011, 12, 31), ctx=ctx)
    assert caught.value.parameter == "dagsats"
    assert caught.value.on == date(2011, 12, 31)
    assert "2011-12-31" in str(caught.value)
    assert ctx.parameter_reads == []


# --- parameter_sum_days -------------------------------------------------------------------------------


def test_parameter_sum_days_stay_over_new_year_uses_each_years_rate() -> None:
    ctx = make_ctx()
    total = call("parameter_sum_days", "dagsats", date(2024, 12, 30), date(2025, 1, 2), ctx=ctx)
    assert total == 2 * 5745 + 1 * 5981
    assert [(r.parameter, r.gyldig_fra, r.value) for r in ctx.parameter_reads] == [
        ("dagsats", date(2024, 1, 1), 5745),
        ("dagsats", date(2025, 1, 1), 5981),
    ]


def test_parameter_sum_days_end_day_is_not_counted() -> None:
    assert call("parameter_sum_days", "dagsats", date(2024, 3, 1), date(2024, 3, 2)) == 5745
    assert call("parameter_sum_days", "dagsats", date(2024, 3, 1), date(2024, 3, 11)) == 10 * 5745


def test_parameter_sum_days_counts_29_february() -> None:
    assert call("parameter_sum_days", "dagsats", date(2024, 2, 28), date(2024, 3, 1)) == 2 * 5745


def test_parameter_sum_days_over_several_years() -> None:
    # 31 Dec 2023 at the 2014 rate, all of leap year 2024, 1 Jan 2025.
    total = call("parameter_sum_days", "dagsats", date(2023, 12, 31), date(2025, 1, 2))
    assert total == 1 * 4200 + 366 * 5745 + 1 * 5981


def test_parameter_sum_days_change_in_the_middle_of_a_year() -> None:
    ctx = make_ctx()
    total = call("parameter_sum_days", "egenandel", date(2025, 6, 29), date(2025, 7, 2), ctx=ctx)
    assert total == 2 * Decimal("1234.50") + 1 * Decimal("1300.25")
    assert total == Decimal("3769.25")
    assert [r.gyldig_fra for r in ctx.parameter_reads] == [date(2025, 1, 1), date(2025, 7, 1)]


def test_parameter_sum_days_empty_stay_is_zero_and_reads_nothing() -> None:
    ctx = make_ctx()
    assert call("parameter_sum_days", "dagsats", date(2025, 3, 1), date(2025, 3, 1), ctx=ctx) == 0
    assert ctx.parameter_reads == []


def test_parameter_sum_days_into_a_declared_gap_is_an_error_naming_parameter_and_date() -> None:
    with pytest.raises(ParameterValueMissing, match=_missing("dagsats", "2013-01-01 (ikke fastsatt)")) as caught:
        call("parameter_sum_days", "dagsats", date(2012, 12, 30), date(2013, 1, 2))
    assert caught.value.parameter == "dagsats"
    assert caught.value.on.year == 2013
    assert caught.value.on == date(2013, 1, 1)
    assert "dagsats" in str(caught.value)
    assert "2013-01-01" in str(caught.value)


def test_parameter_sum_days_inside_a_declared_gap_is_an_error() -> None:
    with pytest.raises(ParameterValueMissing, match=_missing("dagsats", "2013-05-01 (ikke fastsatt)")) as caught:
        call("parameter_sum_days", "dagsats", date(2013, 5, 1), date(2013, 5, 10))
    assert caught.value.parameter == "dagsats"
    assert caught.value.on == date(2013, 5, 1)


def test_parameter_sum_days_leaving_a_declared_gap_is_an_error() -> None:
    # The first night (31 Dec 2013) has no value even though 1 Jan 2014 has one.
    with pytest.raises(ParameterValueMissing, match=_missing("dagsats", "2013-12-31 (ikke fastsatt)")) as caught:
        call("parameter_sum_days", "dagsats", date(2013, 12, 31), date(2014, 1, 2))
    assert caught.value.on == date(2013, 12, 31)


def test_parameter_sum_days_before_the_first_value_is_an_error() -> None:
    with pytest.raises(ParameterValueMissing, match=_missing("egenandel", "2024-12-31")) as caught:
        call("parameter_sum_days", "egenandel", date(2024, 12, 31), date(2025, 1, 2))
    assert caught.value.parameter == "egenandel"
    assert caught.value.on == date(2024, 12, 31)


def test_parameter_sum_days_after_the_gap_uses_the_resumed_value() -> None:
    assert call("parameter_sum_days", "dagsats", date(2014, 1, 1), date(2014, 1, 4)) == 3 * 4200



def test_months_on_through_the_vocabulary() -> None:
    assert call("months_on", date(2026, 2, 10), date(2026, 3, 30)) == 1
    assert call("months_on", date(2025, 12, 29), date(2026, 3, 30)) == 3
