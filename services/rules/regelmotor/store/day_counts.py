"""Decisions counted per calendar day and outcome value, grouped in the database (`DecisionLog.count_per_day`).

Days are calendar days in `DAY_ZONE`: PostgreSQL converts each time itself (AT TIME ZONE); SQLite has no time
zones, so it joins the records to the days' bounds in UTC, made here (`day_bounds`) - a day in Oslo is 23, 24 or
25 hours long."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from .chain import canonical_json, timestamp_text

DAY_ZONE: Final = "Europe/Oslo"
MAX_DAYS: Final = 400  # a period longer than this is refused: a year and a bit, bounded work per call
MAX_GROUPS: Final = 20_000  # days x values; more means the outcome is no category (e.g. a date), refused


class TooManyGroups(ValueError):
    """The counted outcome has more distinct values in the period than `MAX_GROUPS` rows can show."""


@dataclass(frozen=True)
class DayCount:
    """How many decisions recorded on `day` (YYYY-MM-DD in DAY_ZONE) had `value` (JSON) as the outcome."""

    day: str
    value: Any
    count: int


def day_bounds(recorded_from: datetime, recorded_to: datetime) -> list[tuple[str, str, str]]:
    """Each DAY_ZONE day the period touches, as (day, start, stop) with start and stop as `timestamp_text`."""
    zone = ZoneInfo(DAY_ZONE)
    first = recorded_from.astimezone(zone).date()
    last = (recorded_to - timedelta(microseconds=1)).astimezone(zone).date()
    bounds = []
    day = first
    while day <= last:
        following = day + timedelta(days=1)
        bounds.append((day.isoformat(), _midnight(day, zone), _midnight(following, zone)))
        day = following
    return bounds


def _midnight(day: date, zone: ZoneInfo) -> str:
    return timestamp_text(datetime.combine(day, time(0), tzinfo=zone))


def day_counts(rows: list[tuple[Any, Any, Any]]) -> list[DayCount]:
    """Rows of (day, the value's JSON text or NULL, count) as DayCounts, by day and then the value's canonical JSON
    (the same order from both backends, whose JSON texts and collations differ). A missing outcome (NULL) and a
    null one count together, as null."""
    merged: dict[tuple[str, str], DayCount] = {}
    for day, text, count in rows:
        value = None if text is None else json.loads(text)
        key = (str(day), canonical_json(value))
        earlier = merged.get(key)
        merged[key] = DayCount(key[0], value, int(count) + (earlier.count if earlier else 0))
    return [merged[key] for key in sorted(merged)]
