"""A moment a request asks about (`known_at`): what is accepted, checked at the edge where the clock may be read
(never inside an evaluation).

A moment must lie at least `settle` seconds in the past (setting `known_at_settle_seconds`, default 10): each
instance takes a newly published version within a few seconds (hot reload), so for a more recent moment an
instance may not know yet what was published by then, and the same question could get another answer later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MAX_MOMENT_CHARS = 40
EXAMPLE = "2026-03-01T12:00:00+01:00"
DEFAULT_SETTLE_SECONDS = 10.0


class BadMoment(ValueError):
    """Why a text is not a settled past moment with a UTC offset (the reason, for a FieldViolation)."""


def past_moment(text: str, settle: float = DEFAULT_SETTLE_SECONDS) -> datetime:
    """`text` as a timezone-aware moment in UTC, at least `settle` seconds in the past. Raises BadMoment."""
    try:
        moment = datetime.fromisoformat(text) if len(text) <= MAX_MOMENT_CHARS else None
        if moment is not None and moment.utcoffset() is not None:
            moment = moment.astimezone(UTC)  # in range in UTC too (year 1 at +01:00 is not)
    except (ValueError, OverflowError):
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise BadMoment(f"an ISO 8601 moment with a UTC offset is required, e.g. {EXAMPLE}")
    latest = datetime.now(UTC) - timedelta(seconds=settle)
    if moment > latest:
        raise BadMoment(f"must be at least {settle:g} seconds ago: what the service knew then may not yet have "
                        "reached every instance, so the answer could still change")
    return moment
