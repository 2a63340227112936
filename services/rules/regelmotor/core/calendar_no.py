"""Norwegian calendar arithmetic: public holidays, working days, ages, Oslo dates.

Working days (virkedager) are Monday to Friday minus Norwegian public holidays (Helsedirektoratet's
priority guides, ch. 4.1). Holidays come from the pinned `holidays` package, always with
``include_sundays=False``: older releases counted every Sunday as a holiday by default.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from .limits import LATEST_DATE

OSLO = ZoneInfo("Europe/Oslo")


@lru_cache(maxsize=512)
def public_holidays(year: int) -> frozenset[date]:
    """Norway's public holidays (helligdager and offentlige høytidsdager) in `year`."""
    calendar = holidays.country_holidays("NO", years=year, include_sundays=False)
    return frozenset(calendar.keys())


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in public_holidays(day.year)


@lru_cache(maxsize=65536)
def add_working_days(start: date, count: int) -> date:
    """The `count`-th working day after `start`; `start` itself is never counted.

    `count` must be zero or more; zero gives `start` back unchanged.
    """
    if count < 0:
        raise ValueError(f"working days to add must be zero or more, got {count}")
    # Every five working days take at least a week, so the walk below can be refused before it starts
    # when its end lies past the latest date the engine accepts (a count of 2**53 would walk to 9999).
    if count // 5 * 7 > (LATEST_DATE - start).days:
        raise ValueError(f"{count} working days after {start.isoformat()} is later than {LATEST_DATE.isoformat()}, "
                         "the latest date the engine accepts")
    day = start
    remaining = count
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


def age_on(birth: date, on: date) -> int:
    """Completed years on `on`. The age increases on the birthday; a 29 February birthday is
    reached on 1 March in years without a leap day."""
    if on < birth:
        raise ValueError(f"date {on.isoformat()} is before the birth date {birth.isoformat()}")
    before_birthday = (on.month, on.day) < (birth.month, birth.day)
    return on.year - birth.year - int(before_birthday)


def months_on(birth: date, on: date) -> int:
    """Completed months of age on `on`. A month is complete on the same day-of-month as the birth, or
    on the first day after a shorter month's end (born 31 January: one month old on 1 March)."""
    if on < birth:
        raise ValueError(f"date {on.isoformat()} is before the birth date {birth.isoformat()}")
    months = (on.year - birth.year) * 12 + on.month - birth.month
    if on.day < birth.day:
        months -= 1
    return months


def oslo_date(moment: datetime) -> date:
    """The calendar date of an aware datetime in Europe/Oslo."""
    if moment.tzinfo is None:
        raise ValueError("a datetime without a UTC offset has no calendar date in Oslo")
    return moment.astimezone(OSLO).date()
