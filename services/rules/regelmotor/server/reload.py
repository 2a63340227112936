"""Hot reload: a version published or retired in the store is served by every engine worker of every running
instance within a few seconds, without a restart.

Noticing: every `reload_seconds` (default 1) the front reads the newest lifecycle event's id from the store beside
the decision log (one row by its primary key). Every step of the lifecycle appends an event in the same
transaction that makes it, from any instance or from `regelmotor ruleset import`, so the id is a change counter
the store keeps already, on SQLite as on PostgreSQL. (PostgreSQL's LISTEN/NOTIFY would need a connection of its
own held open and a poll all the same after it broke, and SQLite has nothing like it.) When the id moved, the front
reads the store's snapshot; one that differs from the served one (a proposal or rejection does not) is reloaded.

Reloading: the front loads and checks the snapshot first (as at a start); then each engine worker in turn gets a
`Reload` between two messages - a call it is working on finishes on the versions it began with - compiles every
version of it (reusing those compiled already) and only then switches. The pool's config is the new one from the
start, so a worker started meanwhile starts with it. Once every worker serves it, the front's own repository
(ListRulesets, GetRuleset) switches too, so what the front lists is what its workers serve. One worker at a time:
the others go on taking calls, and a call waits at most for one compilation. The impact workers follow too, in the
background and each between two chunks (they only read the versions a decision was made with, to name the first
rule that differs, and may run at idle priority, which no reload should wait for).

A snapshot that does not load in the front, or does not compile in a worker, is not served: the workers that took
it already go back to the versions they served (compiled, so that cannot fail), the failure is logged (file and
line, never source text), counted (`regelmotor.ruleset.reloads`, outcome `refused`) and reported as the health
condition `ruleset_reload` (the instance still decides, on the versions it served), and it is tried again at the
next change in the store.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from regelmotor.core.api import Regelmotor
from regelmotor.core.errors import RegelmotorError, RulesetInvalid
from regelmotor.core.repository import RulesetRepository, RulesetSnapshot
from regelmotor.store import RulesetStore

from .health import ServiceHealth
from .pool import PoolError, WorkerPool
from .protocol import Failed, Reload, Reloaded
from .servicers import InlineEngine, ask
from .supervision import WorkerProcess
from .telemetry import Telemetry
from .worker import WorkerConfig

log = logging.getLogger("regelmotor.reload")


def problem_text(exc: RegelmotorError) -> str:
    """Why a snapshot was not taken, safe to log: the file and line of its first problem, never the text."""
    if isinstance(exc, RulesetInvalid) and exc.diagnostics:
        first = exc.diagnostics[0]
        return f"{len(exc.diagnostics)} problem(s), the first in {first.file} line {first.line}"
    return f"{type(exc).__name__} while compiling"


def switch_engine(motor: Regelmotor, snapshot: RulesetSnapshot, *, include_drafts: bool) -> Reloaded:
    """An engine's side of a Reload: serve `snapshot` once all of it compiled, else go on as before."""
    try:
        repository = RulesetRepository.from_snapshot(snapshot, include_drafts=include_drafts)
        motor.switch_to(repository)
    except RegelmotorError as exc:
        return Reloaded(problem=problem_text(exc))
    return Reloaded(versions=repository.version_count())


class RulesetReloader:
    """Watches the store's change counter and brings the front and its engine to what the store serves."""

    def __init__(self, store: RulesetStore, motor: Regelmotor, engine: WorkerPool | InlineEngine, *,
                 served: RulesetSnapshot, seen: int, include_drafts: bool, health: ServiceHealth,
                 telemetry: Telemetry, interval: float, followers: tuple[WorkerPool, ...] = ()) -> None:
        self.store = store
        self.motor = motor
        self.engine = engine
        self.served = served  # the snapshot the front lists and every engine worker serves
        self.seen = seen  # the newest lifecycle event id read
        self.include_drafts = include_drafts
        self.health = health
        self.telemetry = telemetry
        self.interval = interval
        self.followers = followers  # pools whose workers follow the served snapshot (impact)
        self._refused: RulesetSnapshot | None = None
        self._following: set[asyncio.Task[None]] = set()
        self._follow_lock = asyncio.Lock()  # one round of Reloads at a time in a pool (`between_messages`)

    async def run(self) -> None:
        """Look for a change every `interval` seconds until cancelled; a store that cannot be read is tried
        again at the next turn."""
        try:
            while True:
                await asyncio.sleep(self.interval)
                try:
                    await self.check()
                except Exception as exc:  # psycopg's and sqlite3's errors alike: the next turn tries again
                    log.warning("the ruleset store could not be read", extra={"error": type(exc).__name__})
        finally:
            for task in self._following:
                task.cancel()

    async def check(self) -> bool:
        """Reload when the store changed since the last look and serves another snapshot; whether it did."""
        head = await asyncio.to_thread(self.store.head)
        if head.id == self.seen:
            return False
        snapshot = await asyncio.to_thread(self.store.snapshot)  # read after the head: no change is missed
        self.seen = head.id
        if snapshot in (self.served, self._refused):
            return False
        return await self.apply(snapshot, head.id)

    async def apply(self, snapshot: RulesetSnapshot, event: int = 0) -> bool:
        """Serve `snapshot` in the engine and then in the front; False (the old one served on) when it does not
        load or compile."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            repository = await asyncio.to_thread(RulesetRepository.from_snapshot, snapshot,
                                                 include_drafts=self.include_drafts)
            problem = None if repository.versions else "no version to serve"
        except RegelmotorError as exc:
            problem = problem_text(exc)
        if problem is None:
            problem = await self._switch_engine(snapshot)
        if problem is not None:
            self._refused = snapshot
            log.error("ruleset reload refused: the versions served before are served on",
                      extra={"problem": problem, "event": event})
            self.telemetry.ruleset_reloads.add(1, {"outcome": "refused"})
            self.health.rulesets_loaded(False, problem)
            return False
        self.motor.repository = repository
        self.served, self._refused = snapshot, None
        for pool in self.followers:
            pool.config = replace(pool.config, snapshot=snapshot)  # a worker started from now on starts with it
            task = asyncio.create_task(self._follow(pool))
            self._following.add(task)
            task.add_done_callback(self._following.discard)
        log.info("rulesets reloaded", extra={"versions": repository.version_count(), "event": event,
                                             "seconds": round(loop.time() - began, 3)})
        self.telemetry.ruleset_reloads.add(1, {"outcome": "served"})
        self.health.rulesets_loaded(True)
        return True

    async def _follow(self, pool: WorkerPool) -> None:
        """Bring a follower's running workers to its config, in the background: its workers may run at idle
        priority (impact), and the next reload must not wait for them. Each takes the Reload between two of its
        messages, so an analysis's chunk finishes on the versions it began with."""
        async with self._follow_lock:
            problem = await _bring(pool, pool.config)
        if problem is not None:  # its examples then lack the first differing rule for the newest versions
            log.warning("a worker could not follow the reloaded versions", extra={"pool": pool.name,
                                                                                  "problem": problem})

    async def _switch_engine(self, snapshot: RulesetSnapshot) -> str | None:
        if isinstance(self.engine, InlineEngine):
            return _problem(await ask(self.engine, Reload(snapshot), None))
        pool = self.engine
        before = pool.config
        pool.config = replace(before, snapshot=snapshot)  # a worker started from now on starts with it
        problem = await _bring(pool, pool.config)
        if problem is not None:
            pool.config = before
            back = await _bring(pool, before)
            if back is not None:
                log.error("an engine worker could not go back to the versions it served", extra={"problem": back})
        return problem


async def _bring(pool: WorkerPool, target: WorkerConfig) -> str | None:
    """Reload each worker of `pool` that serves another config than `target`, one at a time, until all serve it
    (a worker still starting with another is reloaded once it is ready); the first problem, if any."""
    while True:
        ready, starting = pool.behind(target)
        if not ready and not starting:
            return None
        if not ready:
            await asyncio.sleep(0.05)
            continue
        for worker in ready:
            problem = await _reload(pool, worker, target)
            if problem is not None:
                return problem


async def _reload(pool: WorkerPool, worker: WorkerProcess, target: WorkerConfig) -> str | None:
    assert target.snapshot is not None
    try:
        answer = await pool.between_messages(worker, Reload(target.snapshot))
    except PoolError:  # lost: its replacement starts with the pool's config
        return None
    problem = _problem(answer)
    if problem is None:
        worker.config = target
    return problem


def _problem(answer: object) -> str | None:
    if isinstance(answer, Reloaded):
        return answer.problem or None
    return answer.reason if isinstance(answer, Failed) else f"answered {type(answer).__name__}"
