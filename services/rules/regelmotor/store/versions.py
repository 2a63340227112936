"""Ruleset versions kept in the store, beside the decision log, and every step of their lifecycle.

A version's source and cases are stored once and never change (the tables refuse UPDATE and DELETE); its state
is what its chained events say (regelmotor.store.lifecycle). Every step is decided and recorded in one
transaction that holds the store's lifecycle lock (SQLite: the log's writer lock and ``BEGIN IMMEDIATE``;
PostgreSQL: a transaction-scoped advisory lock per schema), so two approvals of overlapping versions made at
once - from two clients, two instances - are decided one after the other: the second sees the first published
and is refused.

The store never parses a ruleset source: a caller's source is parsed only in the sandbox, which hands over what
the store needs of it (`VersionText.meta`); the rulesets directory a store is seeded from is read by the server
as at any start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from regelmotor.core.errors import LifecycleRefused, VersionTaken
from regelmotor.core.repository import RulesetSnapshot
from regelmotor.core.timeline import Span, periods, timeline_problems

from .chain import Problem, canonical_json, timestamp_text
from .lifecycle import (
    NO_EVENTS,
    Action,
    Event,
    EventHead,
    State,
    VersionMeta,
    VersionState,
    VersionText,
    event_hash,
    fold,
    text_digest,
    verify_events,
)

SERVED = (State.PUBLISHED, State.RETIRED, State.DRAFT)  # the states an instance loads (drafts: by pin or allow_drafts)
MAX_REASON = 2000  # characters of a rejection's or retirement's reason


class Tx(Protocol):
    """One open transaction of the backend (SQL with ``?`` placeholders)."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class Tables(Protocol):
    """How a backend reaches the ruleset tables (regelmotor.store.version_tables)."""

    # SQL for a stored decision's selection date (YYYY-MM-DD text), else its as_of.
    selection_date: str

    def writing(self) -> AbstractContextManager[Tx]:
        """A write transaction holding the lifecycle lock."""

    def reading(self) -> AbstractContextManager[Tx]:
        """A read-only transaction (one snapshot)."""


@dataclass(frozen=True)
class StoredText:
    state: VersionState
    source: str
    cases: str


class RulesetStore:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    # -- reading -------------------------------------------------------------------------------------

    def is_empty(self) -> bool:
        with self.tables.reading() as tx:
            return not tx.rows("SELECT 1 FROM ruleset_versions LIMIT 1")

    def states(self, name: str | None = None) -> list[VersionState]:
        """Every stored version (of `name`), by name and first day."""
        with self.tables.reading() as tx:
            found = _states(tx, name)
        return sorted(found.values(), key=lambda s: (s.name, s.meta.gyldig_fra, s.version))

    def history(self, name: str) -> list[Event]:
        """The lifecycle events of a ruleset's versions, oldest first."""
        with self.tables.reading() as tx:
            return _events(tx, "WHERE name = ?", (name,))

    def texts(self, states: Sequence[State] = SERVED) -> list[StoredText]:
        """The stored versions in the given states, with their source and cases, by name and first day."""
        with self.tables.reading() as tx:
            found = _states(tx, None)
            rows = {(n, v): (s, c) for n, v, s, c in tx.rows("SELECT name, version, source, cases FROM "
                                                           "ruleset_versions")}
        chosen = sorted((s for s in found.values() if s.state in states),
                        key=lambda s: (s.name, s.meta.gyldig_fra, s.version))
        return [StoredText(s, *rows[(s.name, s.version)]) for s in chosen]

    def text(self, name: str, version: str) -> StoredText | None:
        """One stored version in any state, with its source and cases; None when the store has no such version."""
        with self.tables.reading() as tx:
            state = _states(tx, name).get((name, version))
            rows = tx.rows("SELECT source, cases FROM ruleset_versions WHERE name = ? AND version = ?",
                           (name, version))
        return StoredText(state, *rows[0]) if state is not None and rows else None

    def snapshot(self) -> RulesetSnapshot:
        """The versions an instance serves, as the repository reads a directory of them: published and retired
        ones recorded as published (with their retirement), drafts as drafts."""
        served = self.texts()
        published = "".join(f"{t.state.name} {t.state.version} {t.state.sha256}\n" for t in served
                            if t.state.state is not State.DRAFT)
        retired = tuple((t.state.key, t.state.retired_from.isoformat()) for t in served
                        if t.state.retired_from is not None)
        files = tuple(sorted((f"store/{t.state.name}/{t.state.version}.yaml", t.source) for t in served))
        published_at = tuple((t.state.key, t.state.published_at.isoformat()) for t in served
                             if t.state.published_at is not None)
        retired_at = tuple((t.state.key, t.state.retired_at.isoformat()) for t in served
                           if t.state.retired_at is not None)
        return RulesetSnapshot("store", files, published, retired, published_at, retired_at)

    def events(self, from_id: int = 0) -> list[Event]:
        with self.tables.reading() as tx:
            return _events(tx, "WHERE id >= ?", (from_id,))

    def head(self) -> EventHead:
        with self.tables.reading() as tx:
            return _head(tx)

    def verify(self, start: EventHead = NO_EVENTS) -> tuple[EventHead, Problem | None]:
        """The event chain from `start` on (one snapshot), with each stored text against its event."""
        with self.tables.reading() as tx:
            events = _events(tx, "WHERE id > ?", (start.id,))
            digests = {(n, v): text_digest(s, c) for n, v, s, c in
                       tx.rows("SELECT name, version, source, cases FROM ruleset_versions")}
        return verify_events(events, digests, start)

    # -- the lifecycle -------------------------------------------------------------------------------

    def import_versions(self, items: Sequence[tuple[VersionText, State]], who: str, origin: str,
                        retired: Mapping[str, date] | None = None) -> list[VersionState]:
        """Store versions read from a rulesets directory, in one transaction; a version stored already with the
        same sha256 is skipped, with another one refused (VersionTaken). Returns the versions stored.

        Into an empty store (the first start, or importing an export) the directory's states are taken as they
        are: published ones (they must fit the timeline) as published, drafts as drafts, and `retired`
        (`name@version` -> first day no longer covered) replayed as retirements. Into a store that holds versions
        already, import never publishes: each new published version is stored as proposed by `who`, to be
        approved by another person like any proposal (four eyes), and `retired` is left to RetireRuleset."""
        with self.tables.writing() as tx:
            found = _states(tx, None)
            fresh = []
            for text, state in items:
                have = found.get((text.name, text.version))
                if have is not None and have.sha256 == text.sha256:
                    continue
                if have is not None:
                    raise VersionTaken(text.name, text.version, have.state.value)
                fresh.append((text, state))
            if found:
                for text, state in fresh:
                    _insert_text(tx, text)
                    action = Action.PROPOSED if state is State.PUBLISHED else Action.IMPORTED
                    detail = {"origin": origin, "text_sha256": text_digest(text.source, text.cases)}
                    _append(tx, who, action, text.name, text.version, text.sha256,
                            detail if action is Action.PROPOSED else {**detail, "state": state.value})
            else:
                _seed(tx, who, origin, fresh, dict(retired or {}))
            now = _states(tx, None)
            return [now[(text.name, text.version)] for text, _ in fresh]

    def propose(self, text: VersionText, who: str) -> VersionState:
        """Store a proposed version (its source validated and its cases passed, in the sandbox)."""
        with self.tables.writing() as tx:
            have = _states(tx, text.name).get((text.name, text.version))
            if have is not None:
                raise VersionTaken(text.name, text.version, have.state.value)
            _insert_text(tx, text)
            _append(tx, who, Action.PROPOSED, text.name, text.version, text.sha256,
                    {"text_sha256": text_digest(text.source, text.cases)})
            return _states(tx, text.name)[(text.name, text.version)]

    def approve(self, name: str, version: str, sha256: str, who: str, acknowledged: Sequence[str]) -> VersionState:
        """Publish a proposed version: by another person than its proposer, naming its sha256, acknowledging
        each hjemmel it marks as not verified, and fitting the published versions' timeline."""
        with self.tables.writing() as tx:
            found = _states(tx, name)
            current = _proposed(found, name, version)
            if current.proposed_by == who:
                raise LifecycleRefused("FOUR_EYES", f"{current.key} was proposed by {who}: another person must "
                                       "approve it", ruleset=name, version=version, proposer=who)
            if sha256 != current.sha256:
                raise LifecycleRefused("SHA256_MISMATCH", f"the approval names sha256 {sha256[:64]!r}, but "
                                       f"{current.key} as proposed has sha256 {current.sha256}: approve what you "
                                       "reviewed", ruleset=name, version=version, sha256=current.sha256)
            missing = [h for h in current.meta.unverified if h not in acknowledged]
            if missing:
                raise LifecycleRefused("HJEMMEL_NOT_VERIFIED", f"{current.key} cites hjemler marked not verified "
                                       f"({', '.join(missing)}): acknowledge each to publish it",
                                       ruleset=name, version=version, hjemler=",".join(missing))
            published = [s for s in found.values() if s.state is State.PUBLISHED]
            _check_selector(current, published)
            _check_timeline(name, [(s.version, s.meta) for s in [*published, current]])
            _append(tx, who, Action.APPROVED, name, version, sha256,
                    {"acknowledged_unverified": sorted(set(acknowledged) & set(current.meta.unverified))})
            return _states(tx, name)[(name, version)]

    def reject(self, name: str, version: str, who: str, reason: str) -> VersionState:
        with self.tables.writing() as tx:
            current = _proposed(_states(tx, name), name, version)
            _append(tx, who, Action.REJECTED, name, version, current.sha256, {"reason": reason[:MAX_REASON]})
            return _states(tx, name)[(name, version)]

    def retire(self, name: str, version: str, who: str, from_day: date, reason: str) -> VersionState:
        """Retire a published version from `from_day`: refused when a logged decision of it was selected for that
        day or later (its replay would no longer be answered), or when another version's period would change."""
        with self.tables.writing() as tx:
            found = _states(tx, name)
            current = found.get((name, version))
            if current is None or current.state is not State.PUBLISHED:
                raise _wrong_state(name, version, current, "published")
            latest = tx.rows(f"SELECT max({self.tables.selection_date}) FROM decisions "
                             "WHERE ruleset = ? AND version = ?", (name, version))[0][0]
            if latest is not None and str(latest) >= from_day.isoformat():
                raise LifecycleRefused("DECISIONS_PINNED", f"decisions of {current.key} are logged for dates up to "
                                       f"{latest}: retire it from a day after that, so their replays keep working",
                                       ruleset=name, version=version, latest=str(latest))
            _check_retirement(name, current, [s for s in found.values() if s.state is State.PUBLISHED])
            _append(tx, who, Action.RETIRED, name, version, current.sha256,
                    {"from": from_day.isoformat(), "reason": reason[:MAX_REASON]})
            return _states(tx, name)[(name, version)]


def _seed(tx: Tx, who: str, origin: str, fresh: list[tuple[VersionText, State]], retired: dict[str, date]) -> None:
    """An empty store takes a directory's versions in their states, its retirements replayed after them."""
    published = [text for text, state in fresh if state is State.PUBLISHED]
    unknown = sorted(set(retired) - {text.key for text in published})
    if unknown:
        name, _, version = unknown[0].partition("@")
        raise LifecycleRefused("NO_SUCH_VERSION", f"{unknown[0]} is listed as retired but is not a published "
                               "version of the directory", ruleset=name, version=version)
    for name in {text.name for text in published}:  # as in force: the retired ones no longer count
        _check_timeline(name, [(t.version, t.meta) for t in published if t.name == name and t.key not in retired])
    for text, state in fresh:
        _insert_text(tx, text)
        _append(tx, who, Action.IMPORTED, text.name, text.version, text.sha256,
                {"state": state.value, "origin": origin, "text_sha256": text_digest(text.source, text.cases)})
    for text in published:
        if text.key in retired:
            _append(tx, who, Action.RETIRED, text.name, text.version, text.sha256,
                    {"from": retired[text.key].isoformat(), "reason": f"retired in {origin}"})


# -- checks --------------------------------------------------------------------------------------------


def _span(version: str, meta: VersionMeta) -> Span:
    return Span(version, meta.gyldig_fra, meta.gyldig_til, meta.allow_gap_before, meta.supersedes)


def _check_timeline(name: str, versions: list[tuple[str, VersionMeta]]) -> None:
    problems = timeline_problems(name, [_span(v, m) for v, m in versions])
    if problems:
        first = problems[0]
        raise LifecycleRefused("TIMELINE", f"{name}: {first.message}", ruleset=name, version=first.version,
                               key=first.key)


def _check_selector(current: VersionState, published: list[VersionState]) -> None:
    others = {s.meta.selected_by for s in published}
    if others and others != {current.meta.selected_by}:
        raise LifecycleRefused("SELECTED_BY", f"{current.key} is selected by {current.meta.selected_by or 'as_of'}, "
                               f"the published versions by {', '.join(sorted(map(str, others)))}",
                               ruleset=current.name, version=current.version)


def _check_retirement(name: str, current: VersionState, published: list[VersionState]) -> None:
    corrections = sorted(p.version for p in published if p.meta.supersedes == current.version)
    if corrections:
        raise LifecycleRefused("TIMELINE", f"{current.key} has a published correction ({', '.join(corrections)}) "
                               "that decides in its place: retire the correction first", ruleset=name,
                               version=corrections[0], key="supersedes")
    on_timeline = [p for p in published if p.meta.supersedes is None]  # corrections are not on it
    before = {s.version: end for s, end in periods(_span(p.version, p.meta) for p in on_timeline)}
    rest = [p for p in published if p.version != current.version]
    after = {s.version: end for s, end in periods(_span(p.version, p.meta) for p in rest if p.meta.supersedes is None)}
    changed = [v for v in after if after[v] != before[v]]
    if changed:
        raise LifecycleRefused("TIMELINE", f"retiring {current.key} would make version {changed[0]} govern "
                               f"its days too: retire that one first, or give it a gyldig_til",
                               ruleset=name, version=changed[0], key="gyldig_til")
    _check_timeline(name, [(p.version, p.meta) for p in rest])


def _proposed(found: dict[tuple[str, str], VersionState], name: str, version: str) -> VersionState:
    current = found.get((name, version))
    if current is None or current.state is not State.PROPOSED:
        raise _wrong_state(name, version, current, "proposed")
    return current


def _wrong_state(name: str, version: str, current: VersionState | None, wanted: str) -> LifecycleRefused:
    if current is None:
        return LifecycleRefused("NO_SUCH_VERSION", f"the store has no version {version!r} of {name!r}",
                                ruleset=name, version=version)
    return LifecycleRefused("WRONG_STATE", f"{current.key} is {current.state.value}, not {wanted}",
                            ruleset=name, version=version, state=current.state.value)


# -- rows ----------------------------------------------------------------------------------------------


def _moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.astimezone(UTC)


def _events(tx: Tx, where: str, params: Sequence[Any]) -> list[Event]:
    rows = tx.rows("SELECT id, at, who, action, name, version, sha256, detail, prev_hash, hash FROM ruleset_events "
                   f"{where} ORDER BY id", params)
    return [Event(int(i), _moment(at), who, action, n, v, sha, json.loads(detail), prev, digest)
            for i, at, who, action, n, v, sha, detail, prev, digest in rows]


def _states(tx: Tx, name: str | None) -> dict[tuple[str, str], VersionState]:
    where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
    metas = {(n, v): VersionMeta.from_json(m) for n, v, m in
             tx.rows(f"SELECT name, version, meta FROM ruleset_versions {where}", params)}
    return fold(_events(tx, where, params), metas)


def _head(tx: Tx) -> EventHead:
    rows = tx.rows("SELECT id, hash FROM ruleset_events ORDER BY id DESC LIMIT 1")
    return NO_EVENTS if not rows else EventHead(int(rows[0][0]), str(rows[0][1]))


def _insert_text(tx: Tx, text: VersionText) -> None:
    tx.rows("INSERT INTO ruleset_versions (name, version, source, cases, sha256, meta, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", (text.name, text.version, text.source, text.cases, text.sha256,
                                             text.meta.to_json(), timestamp_text(datetime.now(UTC))))


def _append(tx: Tx, who: str, action: Action, name: str, version: str, sha256: str, detail: dict[str, Any]) -> None:
    at = datetime.now(UTC)
    prev_hash = _head(tx).hash
    digest = event_hash(prev_hash, at, who, action.value, name, version, sha256, detail)
    tx.rows("INSERT INTO ruleset_events (at, who, action, name, version, sha256, detail, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (timestamp_text(at), who, action.value, name, version, sha256, canonical_json(detail), prev_hash, digest))

