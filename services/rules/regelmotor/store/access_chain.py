"""The hash chain over the access log (schema 3).

Every access-log row written since schema 3 carries ``prev_hash`` (the hash of the previous chained row;
64 zeros for the first) and ``hash``::

    hash = sha256_hex(utf8(prev_hash + canonical_json({"at", "who", "action", "detail"})))

with ``at`` as `timestamp_text` and ``detail`` as the parsed JSON value. Rows are ordered by id; the id
itself is not hashed (it is assigned by the database), the links are what fix the order.

Rows logged before schema 3 have no chain (prev_hash and hash NULL). The chain starts at the first row
written after the upgrade; the unchained rows before it are only as trustworthy as the database. A row
without a hash after the chain has started, a broken link or a hash that does not match its row is an
"access log altered" problem. Removing the newest chained rows leaves a consistent chain: only a signed
checkpoint (regelmotor.store.checkpoint) that names a later access head shows it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from .chain import GENESIS, Problem, canonical_json, timestamp_text

ACCESS_ALTERED: Final = "access log altered"


@dataclass(frozen=True)
class AccessHead:
    """The id and hash of the newest chained access-log row (id 0 and GENESIS when there is none)."""

    id: int
    hash: str


NO_ACCESS = AccessHead(0, GENESIS)


def access_hash(prev_hash: str, at: datetime, who: str, action: str, detail: Any) -> str:
    body = canonical_json({"at": timestamp_text(at), "who": who, "action": action, "detail": detail})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def verify_access(rows: Iterable[dict[str, Any]], start: AccessHead = NO_ACCESS) -> tuple[AccessHead, Problem | None]:
    """Walk the access log (dicts as `DecisionLog.access_log` returns them, oldest first), from `start` (a
    row already trusted; the rows are then those after it). Returns the head of the chain as far as it
    verifies, and the first problem (kind "access log altered", seq = row id)."""
    head = start
    for row in rows:
        row_id, prev_hash, digest = int(row["id"]), row.get("prev_hash"), row.get("hash")
        if digest is None and prev_hash is None:
            if head.id:
                return head, _altered(row_id, "has no hash although the chain started at an earlier row")
            continue  # logged before the chain existed
        if prev_hash != head.hash:
            what = "the chain start" if not head.id else f"row {head.id}"
            return head, _altered(row_id, f"does not link to {what} (a row before it was removed or changed)")
        try:
            expected = access_hash(str(prev_hash), row["at"], row["who"], row["action"], row["detail"])
        except (TypeError, ValueError) as exc:
            return head, _altered(row_id, f"cannot be hashed: {exc}")
        if expected != digest:
            return head, _altered(row_id, "does not match its hash (it was edited)")
        head = AccessHead(row_id, str(digest))
    return head, None


def _altered(row_id: int, reason: str) -> Problem:
    return Problem(row_id, None, ACCESS_ALTERED, f"access log row {row_id} {reason}")
