"""The lifecycle of a ruleset version kept in the store, and the hash chain over its events.

States: ``draft`` → ``proposed`` → ``published`` → ``retired``, and ``proposed`` → ``rejected``. A version's
state is not a column anyone can set: it is what the version's events say, read in order (`fold`):

    imported  (detail.state: published or draft)  the version came from a rulesets directory (first start, import)
    proposed                                      an author proposed it; its source passed validation and its cases
    approved                                      a second person approved the proposed sha256: published
    rejected  (detail.reason)                     an approver turned the proposal down
    retired   (detail.from, detail.reason)        no longer selected by date; pinned requests only before `from`

Every event row carries ``prev_hash`` (the hash of the previous event; 64 zeros for the first) and ``hash``::

    hash = sha256_hex(utf8(prev_hash + canonical_json({"at", "who", "action", "name", "version", "sha256",
                                                       "detail"})))

with ``at`` as `timestamp_text`. The ``imported`` and ``proposed`` events name in ``detail.text_sha256`` the
digest of the stored source and cases (`text_digest`), so a source edited in the database is found too. As for
the access log (regelmotor.store.access_chain), removing the newest events leaves a consistent chain: a signed
checkpoint that names a later event head shows it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from .chain import GENESIS, Problem, canonical_json, timestamp_text


class State(StrEnum):
    DRAFT = "draft"
    PROPOSED = "proposed"
    PUBLISHED = "published"
    RETIRED = "retired"
    REJECTED = "rejected"


class Action(StrEnum):
    IMPORTED = "imported"
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETIRED = "retired"


@dataclass(frozen=True)
class VersionMeta:
    """What the store needs to know of a version without reading its source again (a caller's source is parsed
    only in the sandbox): its period, how it is selected, and the hjemler it marks as not verified."""

    title: str
    gyldig_fra: date
    gyldig_til: date | None
    allow_gap_before: bool = False
    selected_by: str | None = None
    unverified: tuple[str, ...] = ()
    supersedes: str | None = None  # a correction of that version (regelmotor.core.timeline)
    correction_reason: str = ""

    def to_json(self) -> str:
        value: dict[str, Any] = {"title": self.title, "gyldig_fra": self.gyldig_fra.isoformat(),
                                 "gyldig_til": self.gyldig_til.isoformat() if self.gyldig_til else None,
                                 "allow_gap_before": self.allow_gap_before, "selected_by": self.selected_by,
                                 "unverified": list(self.unverified)}
        if self.supersedes is not None:  # absent, not null, for any other version: as stored before corrections
            value.update(supersedes=self.supersedes, correction_reason=self.correction_reason)
        return canonical_json(value)

    @staticmethod
    def from_json(text: str) -> VersionMeta:
        value = json.loads(text)
        return VersionMeta(str(value["title"]), date.fromisoformat(value["gyldig_fra"]),
                           date.fromisoformat(value["gyldig_til"]) if value.get("gyldig_til") else None,
                           bool(value.get("allow_gap_before")), value.get("selected_by"),
                           tuple(value.get("unverified") or ()), value.get("supersedes"),
                           str(value.get("correction_reason") or ""))


@dataclass(frozen=True)
class VersionText:
    """A version as proposed or imported: its source and cases, never changed once stored."""

    name: str
    version: str
    source: str
    cases: str
    sha256: str  # of the canonical content (regelmotor.core.hashing), what approvals name
    meta: VersionMeta

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


def text_digest(source: str, cases: str) -> str:
    """The digest of a version's stored texts, named by its imported or proposed event."""
    return hashlib.sha256(canonical_json([source, cases]).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EventHead:
    """The id and hash of the newest event (0 and GENESIS when there is none)."""

    id: int
    hash: str


NO_EVENTS = EventHead(0, GENESIS)


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    who: str  # the person, as the verified token names them (or the caller, without authentication)
    action: str
    name: str
    version: str
    sha256: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


def event_hash(prev_hash: str, at: datetime, who: str, action: str, name: str, version: str, sha256: str,
               detail: Any) -> str:
    body = canonical_json({"at": timestamp_text(at), "who": who, "action": action, "name": name,
                           "version": version, "sha256": sha256, "detail": detail})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


@dataclass
class VersionState:
    """A version's state as its events say, with who proposed it and from when it is retired."""

    name: str
    version: str
    sha256: str
    state: State
    meta: VersionMeta
    proposed_by: str | None = None
    retired_from: date | None = None
    published_at: datetime | None = None  # when it was approved (or imported as published)
    retired_at: datetime | None = None  # when its retirement was recorded

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


def fold(events: Iterable[Event], metas: Mapping[tuple[str, str], VersionMeta]) -> dict[tuple[str, str], VersionState]:
    """Each version's state after its events (oldest first); versions without a stored text are left out."""
    states: dict[tuple[str, str], VersionState] = {}
    for event in events:
        key = (event.name, event.version)
        meta = metas.get(key)
        if meta is None:
            continue
        current = states.setdefault(key, VersionState(event.name, event.version, event.sha256, State.DRAFT, meta))
        if event.action == Action.IMPORTED:
            current.state = State(event.detail.get("state", State.DRAFT))
            current.published_at = event.at if current.state is State.PUBLISHED else None
        elif event.action == Action.PROPOSED:
            current.state, current.proposed_by = State.PROPOSED, event.who
        elif event.action == Action.APPROVED:
            current.state, current.published_at = State.PUBLISHED, event.at
        elif event.action == Action.REJECTED:
            current.state = State.REJECTED
        elif event.action == Action.RETIRED:
            current.state, current.retired_from = State.RETIRED, date.fromisoformat(event.detail["from"])
            current.retired_at = event.at
    return states


def verify_events(events: Iterable[Event], digests: Mapping[tuple[str, str], str],
                  start: EventHead = NO_EVENTS) -> tuple[EventHead, Problem | None]:
    """Walk the events (oldest first) from `start` (an event already trusted; the events are then those after
    it). `digests`: the `text_digest` of each stored version's texts, checked against the event that stored them.
    Returns the head as far as the chain verifies, and the first problem (kind "lifecycle altered", seq = id)."""
    head = start
    for event in events:
        if event.prev_hash != head.hash:
            what = "the chain start" if not head.id else f"event {head.id}"
            return head, _altered(event.id, f"does not link to {what} (an event before it was removed or changed)")
        try:
            expected = event_hash(event.prev_hash, event.at, event.who, event.action, event.name, event.version,
                                  event.sha256, event.detail)
        except (TypeError, ValueError) as exc:
            return head, _altered(event.id, f"cannot be hashed: {exc}")
        if expected != event.hash:
            return head, _altered(event.id, "does not match its hash (it was edited)")
        stored = event.detail.get("text_sha256") if isinstance(event.detail, dict) else None
        if stored is not None and digests.get((event.name, event.version)) != stored:
            return head, _altered(event.id, f"stored {event.name}@{event.version}, whose source or cases in the "
                                            "store no longer match it (they were edited or removed)")
        head = EventHead(event.id, event.hash)
    return head, None


def _altered(event_id: int, reason: str) -> Problem:
    return Problem(event_id, None, "lifecycle altered", f"ruleset lifecycle event {event_id} {reason}")
