"""Norwegian calendar arithmetic: public holidays, working days, ages and Oslo dates.

Working days are Monday to Friday minus the public holidays of Norway (lov om helligdager og
helligdagsfred § 2, lov om 1. og 17. mai som høgtidsdager): 1 January, Maundy Thursday, Good Friday,
Easter Sunday and Monday, 1 May, 17 May, Ascension Day, Whit Sunday and Monday, 25 and 26 December.
Christmas Eve and New Year's Eve are ordinary working days. "+N working days from D" never counts D.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regelmotor.core.calendar_no import (
    add_working_days,
    age_on,
    is_working_day,
    oslo_date,
    public_holidays,
)
from tests.conftest import BUNDLED_RULESETS, ROOT

# --- public_holidays ----------------------------------------------------------------------------


def test_public_holidays_2026_are_exactly_the_statutory_days() -> None:
    assert public_holidays(2026) == frozenset(
        {
            date(2026, 1, 1),  # første nyttårsdag
            date(2026, 4, 2),  # skjærtorsdag
            date(2026, 4, 3),  # langfredag
            date(2026, 4, 5),  # første påskedag
            date(2026, 4, 6),  # andre påskedag
            date(2026, 5, 1),  # 1. mai
            date(2026, 5, 14),  # Kristi himmelfartsdag
            date(2026, 5, 17),  # 17. mai
            date(2026, 5, 24),  # første pinsedag
            date(2026, 5, 25),  # andre pinsedag
            date(2026, 12, 25),  # første juledag
            date(2026, 12, 26),  # andre juledag
        }
    )


def test_public_holidays_2025_follow_easter_on_20_april() -> None:
    assert public_holidays(2025) == frozenset(
        {
            date(2025, 1, 1),
            date(2025, 4, 17),
            date(2025, 4, 18),
            date(2025, 4, 20),
            date(2025, 4, 21),
            date(2025, 5, 1),
            date(2025, 5, 17),
            date(2025, 5, 29),
            date(2025, 6, 8),
            date(2025, 6, 9),
            date(2025, 12, 25),
            date(2025, 12, 26),
        }
    )


def test_public_holidays_2027_whit_monday_coincides_with_17_may() -> None:
    # Easter 2027 is 28 March, so Whit Monday falls on 17 May: eleven distinct days, not twelve.
    days = public_holidays(2027)
    assert len(days) == 11
    assert date(2027, 5, 16) in days
    assert date(2027, 5, 17) in days
    assert {date(2027, 3, 25), date(2027, 3, 26), date(2027, 3, 28), date(2027, 3, 29)} <= days
    assert date(2027, 5, 6) in days  # Ascension Day


def test_public_holidays_leap_year_2024() -> None:
    days = public_holidays(2024)
    assert {date(2024, 3, 28), date(2024, 3, 29), date(2024, 3, 31), date(2024, 4, 1)} <= days
    assert {date(2024, 5, 9), date(2024, 5, 19), date(2024, 5, 20)} <= days
    assert len(days) == 12


def test_public_holidays_do_not_include_ordinary_sundays() -> None:
    days = public_holidays(2026)
    ordinary_sundays = [date(2026, 1, 4), date(2026, 3, 1), date(2026, 8, 16), date(2026, 12, 27)]
    for sunday in ordinary_sundays:
        assert sunday.weekday() == 6
        assert sunday not in days


def test_public_holidays_do_not_include_christmas_eve_or_new_years_eve() -> None:
    for year in (2024, 2025, 2026):
        assert date(year, 12, 24) not in public_holidays(year)
        assert date(year, 12, 31) not in public_holidays(year)


def test_public_holidays_only_contain_days_of_the_requested_year() -> None:
    for year in (2024, 2025, 2026, 2027):
        assert all(day.year == year for day in public_holidays(year))


# --- is_working_day -------------------------------------------------------------------------------


def test_ordinary_weekday_is_a_working_day() -> None:
    assert is_working_day(date(2026, 3, 30))  # Monday
    assert is_working_day(date(2026, 4, 1))  # Wednesday before Easter


def test_weekend_is_not_a_working_day() -> None:
    assert not is_working_day(date(2026, 3, 28))  # Saturday
    assert not is_working_day(date(2026, 3, 29))  # Sunday


def test_easter_2026_weekdays_are_not_working_days() -> None:
    for day in (date(2026, 4, 2), date(2026, 4, 3), date(2026, 4, 6)):
        assert day.weekday() < 5
        assert not is_working_day(day)
    assert is_working_day(date(2026, 4, 7))  # Tuesday after Easter


def test_17_may_on_a_monday_is_not_a_working_day() -> None:
    assert date(2027, 5, 17).weekday() == 0
    assert not is_working_day(date(2027, 5, 17))


def test_17_may_2026_is_a_sunday_and_not_a_working_day() -> None:
    assert date(2026, 5, 17).weekday() == 6
    assert not is_working_day(date(2026, 5, 17))
    assert is_working_day(date(2026, 5, 18))  # the Monday after is an ordinary working day


def test_1_may_ascension_and_whit_monday_are_not_working_days() -> None:
    assert not is_working_day(date(2026, 5, 1))  # Friday
    assert not is_working_day(date(2026, 5, 14))  # Thursday
    assert not is_working_day(date(2026, 5, 25))  # Monday


def test_christmas_eve_and_new_years_eve_on_weekdays_are_working_days() -> None:
    assert date(2025, 12, 24).weekday() == 2
    assert is_working_day(date(2025, 12, 24))
    assert date(2025, 12, 31).weekday() == 2
    assert is_working_day(date(2025, 12, 31))


def test_christmas_and_new_year_on_weekdays_are_not_working_days() -> None:
    assert not is_working_day(date(2025, 12, 25))  # Thursday
    assert not is_working_day(date(2025, 12, 26))  # Friday
    assert not is_working_day(date(2026, 1, 1))  # Thursday


# --- add_working_days -----------------------------------------------------------------------------


def test_assessment_deadline_skips_easter_2026() -> None:
    # 10 working days from Monday 30 March 2026: 2, 3 and 6 April are holidays on weekdays.
    assert add_working_days(date(2026, 3, 30), 10) == date(2026, 4, 16)


def test_treatment_deadline_65_working_days_over_easter_2026() -> None:
    assert add_working_days(date(2026, 3, 30), 65) == date(2026, 7, 7)


def test_assessment_deadline_skips_ascension_and_whit_monday_2026() -> None:
    # 14 May (Ascension) and 25 May (Whit Monday) are skipped; 17 May is a Sunday anyway.
    assert add_working_days(date(2026, 5, 11), 10) == date(2026, 5, 27)


def test_treatment_deadline_65_working_days_from_11_may_2026() -> None:
    assert add_working_days(date(2026, 5, 11), 65) == date(2026, 8, 12)


def test_assessment_deadline_over_christmas_counts_christmas_eve_and_new_years_eve() -> None:
    # From Friday 19 December 2025: 22, 23, 24, 29, 30, 31 Dec and 2, 5, 6, 7 Jan.
    assert add_working_days(date(2025, 12, 19), 10) == date(2026, 1, 7)


def test_treatment_deadline_65_working_days_over_new_year() -> None:
    assert add_working_days(date(2025, 12, 19), 65) == date(2026, 3, 25)


def test_one_working_day_after_friday_before_17_may_2027_skips_the_monday_holiday() -> None:
    assert add_working_days(date(2027, 5, 14), 1) == date(2027, 5, 18)


def test_one_working_day_after_friday_is_the_next_monday() -> None:
    assert add_working_days(date(2026, 3, 27), 1) == date(2026, 3, 30)


def test_the_start_day_itself_is_not_counted() -> None:
    # Tuesday 31 March 2026 + 1 is Wednesday 1 April, not the Tuesday itself.
    assert add_working_days(date(2026, 3, 31), 1) == date(2026, 4, 1)


def test_zero_working_days_returns_the_start_date() -> None:
    assert add_working_days(date(2026, 3, 30), 0) == date(2026, 3, 30)


def test_zero_working_days_from_a_holiday_returns_the_holiday_unchanged() -> None:
    assert add_working_days(date(2026, 4, 3), 0) == date(2026, 4, 3)


def test_negative_working_days_is_refused() -> None:
    with pytest.raises(ValueError, match="-1"):
        add_working_days(date(2026, 3, 30), -1)


def test_start_on_a_saturday_counts_from_the_following_monday() -> None:
    assert add_working_days(date(2026, 3, 28), 1) == date(2026, 3, 30)
    # 30, 31 March, 1 April, then Easter (2, 3, 6 April) is skipped: 7 and 8 April.
    assert add_working_days(date(2026, 3, 28), 5) == date(2026, 4, 8)


def test_start_on_good_friday_skips_the_rest_of_easter() -> None:
    # Good Friday 3 April 2026: Saturday, Easter Sunday and Easter Monday follow.
    assert add_working_days(date(2026, 4, 3), 1) == date(2026, 4, 7)


def test_start_on_a_sunday_holiday_counts_from_the_next_working_day() -> None:
    assert add_working_days(date(2026, 5, 17), 1) == date(2026, 5, 18)


def test_add_working_days_result_is_always_a_working_day() -> None:
    start = date(2025, 12, 19)
    for count in range(1, 80):
        assert is_working_day(add_working_days(start, count))


def test_add_working_days_is_strictly_increasing_in_count() -> None:
    start = date(2026, 3, 30)
    results = [add_working_days(start, n) for n in range(0, 70)]
    assert all(earlier < later for earlier, later in pairwise(results))


# --- working days: properties over random dates 2000-2040 ----------------------------------------


def _easter_sunday(year: int) -> date:
    """Gregorian Easter (the anonymous algorithm in Meeus, Astronomical Algorithms, ch. 8): a reference
    independent of the holidays package the implementation uses."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def _statutory_holidays(year: int) -> set[date]:
    """The days listed in this module's docstring, from the statutes."""
    easter = _easter_sunday(year)
    moving = {easter + timedelta(days=offset) for offset in (-3, -2, 0, 1, 39, 49, 50)}
    return moving | {date(year, 1, 1), date(year, 5, 1), date(year, 5, 17), date(year, 12, 25), date(year, 12, 26)}


def _reference_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _statutory_holidays(day.year)


DAYS_2000_2040 = st.dates(date(2000, 1, 1), date(2040, 12, 31))
COUNTS = st.integers(0, 260)  # up to a year of working days


def test_the_easter_reference_agrees_with_known_dates() -> None:
    assert [_easter_sunday(y) for y in (2000, 2008, 2019, 2025, 2026, 2038)] == [
        date(2000, 4, 23), date(2008, 3, 23), date(2019, 4, 21), date(2025, 4, 20), date(2026, 4, 5),
        date(2038, 4, 25)]


@given(year=st.integers(2000, 2040))
def test_public_holidays_are_the_statutory_days_in_every_year(year: int) -> None:
    assert public_holidays(year) == _statutory_holidays(year)


@given(day=DAYS_2000_2040)
def test_a_working_day_is_a_weekday_that_is_no_statutory_holiday(day: date) -> None:
    assert is_working_day(day) is _reference_working_day(day)


@given(start=DAYS_2000_2040, count=st.integers(1, 260))
def test_adding_working_days_lands_on_a_working_day_after_exactly_that_many(start: date, count: int) -> None:
    end = add_working_days(start, count)
    assert end > start and _reference_working_day(end)  # never a weekend day or a holiday
    between = [start + timedelta(days=i) for i in range(1, (end - start).days + 1)]
    assert sum(_reference_working_day(day) for day in between) == count  # start itself not counted


@given(start=DAYS_2000_2040, count=COUNTS)
def test_adding_working_days_is_strictly_increasing_in_the_count(start: date, count: int) -> None:
    assert add_working_days(start, count) < add_working_days(start, count + 1)
    assert add_working_days(start, 0) == start


@given(start=DAYS_2000_2040, first=COUNTS, second=COUNTS)
def test_adding_working_days_in_two_steps_is_adding_them_at_once(start: date, first: int, second: int) -> None:
    assert add_working_days(add_working_days(start, first), second) == add_working_days(start, first + second)


@given(start=DAYS_2000_2040, count=st.integers(1, 260))
def test_from_a_day_off_counting_starts_at_the_next_working_day(start: date, count: int) -> None:
    # From a weekend day or holiday, +N working days is the same as from the working day before it.
    before = start
    while not _reference_working_day(before):
        before -= timedelta(days=1)
    assert add_working_days(start, count) == add_working_days(before, count)


# --- age_on -------------------------------------------------------------------------------------


def test_age_on_the_day_before_the_birthday() -> None:
    assert age_on(date(2003, 3, 10), date(2026, 3, 9)) == 22


def test_age_on_the_birthday() -> None:
    assert age_on(date(2003, 3, 10), date(2026, 3, 10)) == 23


def test_age_on_the_day_after_the_birthday() -> None:
    assert age_on(date(2003, 3, 10), date(2026, 3, 11)) == 23


def test_age_when_a_later_month_has_an_earlier_day() -> None:
    # Birthday in March; on 1 April the birthday has passed although 1 < 10.
    assert age_on(date(2003, 3, 10), date(2026, 4, 1)) == 23
    # On 20 February it has not, although 20 > 10.
    assert age_on(date(2003, 3, 10), date(2026, 2, 20)) == 22


def test_age_of_leap_day_child_in_a_leap_year() -> None:
    born = date(2004, 2, 29)
    assert age_on(born, date(2024, 2, 28)) == 19
    assert age_on(born, date(2024, 2, 29)) == 20
    assert age_on(born, date(2024, 3, 1)) == 20


def test_age_of_leap_day_child_in_a_common_year_increases_on_1_march() -> None:
    born = date(2004, 2, 29)
    assert age_on(born, date(2025, 2, 28)) == 20
    assert age_on(born, date(2025, 3, 1)) == 21


def test_age_across_the_year_boundary() -> None:
    born = date(2000, 12, 31)
    assert age_on(born, date(2001, 1, 1)) == 0
    assert age_on(born, date(2001, 12, 30)) == 0
    assert age_on(born, date(2001, 12, 31)) == 1
    assert age_on(born, date(2002, 1, 1)) == 1


def test_age_on_the_birth_date_is_zero() -> None:
    assert age_on(date(2026, 1, 15), date(2026, 1, 15)) == 0


def test_age_18_boundary() -> None:
    born = date(2008, 6, 1)
    assert age_on(born, date(2026, 5, 31)) == 17
    assert age_on(born, date(2026, 6, 1)) == 18


def test_age_on_a_date_before_birth_is_refused() -> None:
    with pytest.raises(ValueError, match="before the birth date"):
        age_on(date(2003, 3, 10), date(2003, 3, 9))


# --- oslo_date ------------------------------------------------------------------------------------


def test_oslo_date_late_utc_evening_in_winter_time_is_the_next_day() -> None:
    # 26 October 2024 23:30 UTC: summer time ended at 01:00 UTC on 27 Oct, so Oslo is still +02:00
    # at 23:30 UTC on the 26th, i.e. 01:30 on 27 October.
    assert oslo_date(datetime.fromisoformat("2024-10-26T23:30:00+00:00")) == date(2024, 10, 27)


def test_oslo_date_in_summer_time_is_two_hours_ahead_of_utc() -> None:
    assert oslo_date(datetime.fromisoformat("2024-06-30T22:30:00+00:00")) == date(2024, 7, 1)
    assert oslo_date(datetime.fromisoformat("2024-06-30T21:59:59+00:00")) == date(2024, 6, 30)


def test_oslo_date_in_winter_time_is_one_hour_ahead_of_utc() -> None:
    assert oslo_date(datetime.fromisoformat("2025-01-15T23:00:00+00:00")) == date(2025, 1, 16)
    assert oslo_date(datetime.fromisoformat("2025-01-15T22:59:59+00:00")) == date(2025, 1, 15)


def test_oslo_date_new_years_eve_utc_is_new_years_day_in_oslo() -> None:
    assert oslo_date(datetime(2025, 12, 31, 23, 30, tzinfo=UTC)) == date(2026, 1, 1)


def test_oslo_date_of_a_datetime_with_another_offset() -> None:
    # 18:00 in New York (-05:00) on 1 March is 00:00 on 2 March in Oslo (+01:00).
    new_york = timezone(timedelta(hours=-5))
    assert oslo_date(datetime(2025, 3, 1, 18, 0, tzinfo=new_york)) == date(2025, 3, 2)
    assert oslo_date(datetime(2025, 3, 1, 17, 59, tzinfo=new_york)) == date(2025, 3, 1)


def test_oslo_date_of_an_oslo_local_time_is_its_own_date() -> None:
    assert oslo_date(datetime.fromisoformat("2026-05-17T00:15:00+02:00")) == date(2026, 5, 17)


def test_oslo_date_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        oslo_date(datetime(2024, 10, 26, 23, 30))


def test_months_on_counts_completed_months() -> None:
    from regelmotor.core.calendar_no import months_on

    assert months_on(date(2026, 2, 10), date(2026, 5, 9)) == 2
    assert months_on(date(2026, 2, 10), date(2026, 5, 10)) == 3
    assert months_on(date(2026, 1, 31), date(2026, 2, 28)) == 0
    assert months_on(date(2026, 1, 31), date(2026, 3, 1)) == 1
    assert months_on(date(2025, 12, 15), date(2026, 1, 15)) == 1
    with pytest.raises(ValueError, match=r"^date 2026-01-01 is before the birth date 2026-01-02$"):
        months_on(date(2026, 1, 2), date(2026, 1, 1))


def test_warm_up_loads_the_holiday_calendar_so_no_request_pays_for_its_import() -> None:
    # In a fresh interpreter: this test process may have loaded the calendar already.
    code = ("import sys; from regelmotor.core.api import Regelmotor; "
            "from regelmotor.core.repository import RulesetRepository; "
            f"motor = Regelmotor(RulesetRepository.load({str(BUNDLED_RULESETS)!r}, include_drafts=True)); "
            "before = 'holidays.countries.norway' in sys.modules; motor.warm_up(); "
            "print(before, 'holidays.countries.norway' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "services" / "rules")})
    assert out.stdout.split() == ["False", "True"]
