"""The one text of a moment that decisions, the decision log and the API state: ISO 8601 in UTC, to the microsecond
(it also sorts as text)."""

from __future__ import annotations

from datetime import UTC, datetime


def moment_text(moment: datetime) -> str:
    """`moment` as ISO 8601 in UTC with microseconds. A naive datetime is refused: its zone would be a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
