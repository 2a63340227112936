"""Searching the access log (who read what, when, and why): the filter, and its page tokens.

Each backend turns an `AccessFilter` into its own SQL (`sqlite`, `postgres`); the rows come back as the dicts of
`DecisionLog.access_log`, newest first, a page at a time."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AccessFilter:
    """Which access-log rows to list. Unset (None) fields do not filter; set ones must all match.

    at_from is inclusive, at_to exclusive (both timezone-aware). decision_id matches rows whose detail names that
    decision; formaal_contains matches rows whose detail's purpose contains the text, ignoring case."""

    at_from: datetime | None = None
    at_to: datetime | None = None
    who: str | None = None
    action: str | None = None
    decision_id: str | None = None
    formaal_contains: str | None = None

    def __post_init__(self) -> None:
        for name in ("at_from", "at_to"):
            moment = getattr(self, name)
            if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
                raise ValueError(f"AccessFilter.{name} must be timezone-aware")


def folded(text: str | None) -> str | None:
    """Text as both backends compare it ignoring case (`str.lower`, as PostgreSQL's lower() with a UTF-8 ctype)."""
    return None if text is None else text.lower()


def encode_access_cursor(before_id: int) -> str:
    """An opaque page token of the access log: the next page holds the rows before this id (newest first)."""
    text = json.dumps({"v": 1, "access_before": before_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def decode_access_cursor(cursor: str) -> int:
    """The id a page token stands for; ValueError when it is not a token made by `encode_access_cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        before = data["access_before"]
        if data.get("v") != 1 or not isinstance(before, int) or isinstance(before, bool) or before < 1:
            raise ValueError
        return before
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error, AttributeError):
        raise ValueError("not a page token of this access log") from None


def access_page(rows: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """A page from up to limit + 1 rows read newest first: the rows, and the token for the next page."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_access_cursor(int(rows[-1]["id"]))
    return rows, None
