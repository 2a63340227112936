"""Dates, times and amounts as a Norwegian reader expects them: 16. april 2026, 29 612 kr (Babel, locale nb)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

LOCALE = "nb_NO"
OSLO = ZoneInfo("Europe/Oslo")


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def norsk_dato(value: Any) -> str:
    """16. april 2026; a value that is no date is shown as it is."""
    day = _as_date(value)
    return format_date(day, "d. MMMM y", locale=LOCALE) if day is not None else str(value or "")


def norsk_tid(value: Any) -> str:
    """16. april 2026 kl. 14:05 in Oslo time, from an ISO timestamp (…Z or with an offset)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if not isinstance(value, datetime):
        return str(value or "")
    moment = value.astimezone(OSLO) if value.tzinfo else value
    return format_datetime(moment, "d. MMMM y 'kl.' HH:mm", locale=LOCALE)


def norsk_tall(value: Any) -> str:
    """29 612 (grouped with a narrow no-break space, as Babel's nb locale does); 1,5 for a fraction."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return format_decimal(number, locale=LOCALE)


def kroner(value: Any) -> str:
    """29 612 kr."""
    return f"{norsk_tall(value)}\u00a0kr"
