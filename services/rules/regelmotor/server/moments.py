"""A moment a request asks about (`known_at`): what is accepted, checked at the edge where the clock may be read
(never inside an evaluation)."""

from __future__ import annotations

from datetime import UTC, datetime

MAX_MOMENT_CHARS = 40
EXAMPLE = "2026-03-01T12:00:00+01:00"


class BadMoment(ValueError):
    """Why a text is not a past moment with a UTC offset (the reason, for a FieldViolation)."""


def past_moment(text: str) -> datetime:
    """`text` as a timezone-aware moment, not in the future: an answer about the future could change before the
    future comes, so it would not be reproducible. Raises BadMoment."""
    try:
        moment = datetime.fromisoformat(text) if len(text) <= MAX_MOMENT_CHARS else None
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise BadMoment(f"an ISO 8601 moment with a UTC offset is required, e.g. {EXAMPLE}")
    if moment > datetime.now(UTC):
        raise BadMoment("is in the future: what is known then is not known yet")
    return moment
