"""RulesetService.AnalyseImpact: what a candidate version would have changed in the decisions already logged.

Where it runs: the candidate source is parsed and compiled only in the impact workers, a sandbox pool of its own
(the sources worker's memory and time limits) whose processes run at a lower CPU priority (`impact_nice`, 10 by
default): they use every core the engine workers leave idle, and yield it to them under load, so an analysis
delays Evaluate calls only by a bounded share (measured: bench/impact_latency.py, BENCHMARKS.md). The front reads
only the seqs of the window, cuts them into ranges of CHUNK decisions and hands each range to a free impact
worker (at most one range more in flight than workers); the workers read their ranges from the log themselves,
parse and evaluate; the front merges the ranges' small tallies in order. So the front's part is a constant per
range (its CPU per decision is measured by bench/impact.py), and the decisions' text never passes through it.

Reading logged decisions reads patient data: the call needs `ruleset:author`, a `formaal`, and is recorded in the
access log (who, what, why) before anything is read, as AuditService's reads are. Bad input is refused before
anything is read or recorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import grpc

from regelmotor.core.api import Regelmotor
from regelmotor.core.errors import FieldViolation
from regelmotor.core.identity import Pseudonymiser
from regelmotor.core.impact import SUMMED_KINDS, Example, ImpactTally, transitions_of
from regelmotor.core.moments import moment_text
from regelmotor.store import DecisionLog, ListFilter, State
from regelmotor_api.v1 import ruleset_pb2 as rpb

from .audit import checked_purpose, decision_filter
from .convert import to_value
from .errors import bad_request, not_kept, pool_failure, source_failure, worker_failed
from .moments import DEFAULT_SETTLE_SECONDS, BadMoment, past_moment
from .pool import PoolError, WorkerPool
from .protocol import AnalyseChunk, Failed, ImpactPart, ImpactPrepared, PrepareImpact
from .recording import caller_of
from .servicers import abort, ask, time_left

Context = grpc.aio.ServicerContext[Any, Any]
MAX_SOURCE_BYTES = 1024 * 1024
CHUNK = 500  # decisions per range handed to an impact worker: about 0.2 s of work; the front's part is per range
EXAMPLES = (5, 50)  # default and most examples per outcome field


async def _refuse(context: Context, field: str, reason: str) -> None:
    await abort(context, bad_request([FieldViolation(field, reason)]))


async def _days(request: rpb.AnalyseImpactRequest, context: Context) -> tuple[str | None, str | None]:
    """The window of the decisions' dates (as_of_from, as_of_to; None: open)."""
    days: list[str | None] = []
    for name in ("as_of_from", "as_of_to"):
        text = getattr(request, name)
        try:
            ok = not text or date.fromisoformat(text).isoformat() == text
        except ValueError:
            ok = False
        if not ok:
            await _refuse(context, name, f"a date YYYY-MM-DD, not {text[:40]!r}")
        days.append(text or None)
    if days[0] and days[1] and days[0] > days[1]:
        await _refuse(context, "as_of_to", "before as_of_from")
    return days[0], days[1]


async def _known_at(request: rpb.AnalyseImpactRequest, context: Context, settle: float) -> datetime | None:
    if not request.known_at:
        return None
    try:
        return past_moment(request.known_at, settle)
    except BadMoment as exc:
        await _refuse(context, "known_at", str(exc))
        raise AssertionError("refusing raises") from None


def _progress(done: int, total: int) -> rpb.AnalyseImpactResponse:
    return rpb.AnalyseImpactResponse(progress=rpb.ImpactProgress(done=done, total=total))


def _ranges(log: DecisionLog, filters: ListFilter, total: int) -> list[tuple[int, int]]:
    """The window cut into seq ranges of CHUNK matching decisions each, from the seqs alone (read off the event
    loop, once: a few bytes per decision). Records are only appended, with growing seqs, so a range read later by
    a worker holds the same decisions; those logged after the count are left out (at most `total`)."""
    ranges: list[tuple[int, int]] = []
    seqs = log.replay_seqs(filters)
    try:
        for index, seq in enumerate(itertools.islice(seqs, total)):
            if index % CHUNK == 0:
                ranges.append((seq, seq))
            else:
                ranges[-1] = (ranges[-1][0], seq)
    finally:
        close = getattr(seqs, "close", None)
        if close is not None:
            close()
    return ranges


def _example(example: Example) -> rpb.ImpactExample:
    return rpb.ImpactExample(decision_id=example.decision_id, as_of=example.as_of, before=to_value(example.before),
                             after=to_value(example.after), first_rule=example.first_rule, message=example.message)


def report(tally: ImpactTally, prepared: ImpactPrepared, seconds: float) -> rpb.ImpactReport:
    """The report of a whole analysis."""
    outcomes = []
    for name, field in tally.fields.items():
        impact = rpb.OutcomeImpact(field=name, kind=field.kind, changed=field.changed,
                                   examples=[_example(e) for e in field.examples])
        impact.transitions.extend(rpb.ValueTransition(before=to_value(a), after=to_value(b), count=n)
                                  for a, b, n in transitions_of(field))
        if field.kind in SUMMED_KINDS:
            impact.sum_before, impact.sum_after = str(field.sum_before), str(field.sum_after)
        outcomes.append(impact)
    return rpb.ImpactReport(ruleset=prepared.name, candidate_version=prepared.version,
                            candidate_sha256=prepared.sha256, analysed=tally.analysed, changed=tally.changed,
                            decided=tally.decided,
                            refused=tally.refused, outcomes=outcomes, refusals=[_example(e) for e in tally.refusals],
                            seconds=seconds)


class ImpactAnalyst:
    """Runs AnalyseImpact calls (see the module docstring). `log` None: the service keeps no decision log."""

    def __init__(self, log: DecisionLog | None, pool: WorkerPool, motor: Regelmotor, pseudonymiser: Pseudonymiser,
                 max_decisions: int, known_at_settle: float = DEFAULT_SETTLE_SECONDS) -> None:
        self.known_at_settle = known_at_settle
        self.log = log
        self.pool = pool
        self.motor = motor
        self.pseudonymiser = pseudonymiser
        self.max_decisions = max_decisions

    async def analyse(self, request: rpb.AnalyseImpactRequest,
                      context: Context) -> AsyncIterator[rpb.AnalyseImpactResponse]:
        started = time.perf_counter()
        log = self.log
        if log is None:
            await abort(context, not_kept())
            raise AssertionError("abort raises")
        formaal = await checked_purpose(request.formaal, context)
        source = await self._candidate_source(request, context)
        filters, detail = await decision_filter(request.filter, self.pseudonymiser, context)
        await self._check_ruleset(request, context)
        max_examples = request.max_examples or EXAMPLES[0]
        if not 0 < max_examples <= EXAMPLES[1]:
            await _refuse(context, "max_examples", f"between 1 and {EXAMPLES[1]} (0: {EXAMPLES[0]})")
        days = await _days(request, context)
        known_at = await _known_at(request, context, self.known_at_settle)
        prepared = await self._prepare(source, request.ruleset, context)
        # Lookups "as known at" a moment are questions about the past, not decisions made: left out.
        filters = dataclasses.replace(filters, ruleset=request.ruleset, as_of_from=days[0], as_of_to=days[1],
                                      lookups=False)
        if known_at is not None:  # only what had been logged by then: the same report whenever it is asked
            recorded_to = known_at + timedelta(microseconds=1)  # recorded_to is exclusive
            if filters.recorded_to is None or recorded_to < filters.recorded_to:
                filters = dataclasses.replace(filters, recorded_to=recorded_to)
        total = await asyncio.to_thread(log.count, filters, self.max_decisions + 1)
        if total > self.max_decisions:
            await _refuse(context, "filter", f"the window holds more than {self.max_decisions} logged decisions "
                                             "(impact_max_decisions): narrow as_of_from and as_of_to, or "
                                             "recorded_from and recorded_to")
        await asyncio.to_thread(log.log_access, caller_of(context), "AnalyseImpact", {
            **detail, "recorded_from": filters.recorded_from.isoformat() if filters.recorded_from else None,
            "recorded_to": filters.recorded_to.isoformat() if filters.recorded_to else None,
            "as_of_from": days[0], "as_of_to": days[1],
            "candidate_version": prepared.version, "candidate_sha256": prepared.sha256, "decisions": total,
            "known_at": request.known_at or None, "formaal": formaal})
        yield _progress(0, total)
        tally = ImpactTally()
        known = moment_text(known_at) if known_at is not None else None
        async for done in self._evaluate(log, source, filters, total, max_examples, tally, context, known):
            yield _progress(done, total)
        answer = report(tally, prepared, time.perf_counter() - started)
        answer.known_at = known or ""
        yield rpb.AnalyseImpactResponse(report=answer)

    async def _candidate_source(self, request: rpb.AnalyseImpactRequest, context: Context) -> str:
        """The candidate's YAML source: as sent, or as the store keeps a version of it."""
        if request.WhichOneof("candidate") == "stored":
            return await self._stored_source(request.stored, context)
        if request.WhichOneof("candidate") != "source" or not request.source.strip():
            await _refuse(context, "source", "required: the YAML source of the candidate version, or stored")
        if len(request.source.encode()) > MAX_SOURCE_BYTES:
            await _refuse(context, "source", f"at most {MAX_SOURCE_BYTES} bytes")
        return request.source

    async def _stored_source(self, wanted: rpb.VersionRef, context: Context) -> str:
        assert self.log is not None
        if not wanted.name or not wanted.version:
            await _refuse(context, "stored.name" if not wanted.name else "stored.version", "required")
        stored = await asyncio.to_thread(self.log.rulesets().texts, tuple(State))
        for text in stored:
            if (text.state.name, text.state.version) == (wanted.name, wanted.version):
                return text.source
        await _refuse(context, "stored.version", f"the store holds no version {wanted.version[:100]!r} of "
                                                 f"{wanted.name[:100]!r}")
        raise AssertionError("refusing raises")

    async def _check_ruleset(self, request: rpb.AnalyseImpactRequest, context: Context) -> None:
        names = self.motor.repository.names()
        if request.ruleset not in names:
            await _refuse(context, "ruleset", f"unknown ruleset {request.ruleset[:100]!r}; known: {', '.join(names)}")
        if request.filter.ruleset and request.filter.ruleset != request.ruleset:
            await _refuse(context, "filter.ruleset", "must be empty or equal to ruleset")

    async def _work(self, message: PrepareImpact | AnalyseChunk, context: Context) -> object:
        """An impact worker's answer; the call is ended with the pool's error, or INTERNAL for a fault of ours."""
        try:
            answer = await ask(self.pool, message, time_left(context))
        except PoolError as exc:
            failure = source_failure(exc) if isinstance(message, PrepareImpact) else pool_failure(exc)
            await abort(context, failure)
            raise
        if isinstance(answer, Failed):
            await abort(context, worker_failed(answer.reason))
        return answer

    async def _prepare(self, source: str, ruleset: str, context: Context) -> ImpactPrepared:
        """The candidate compiled in the sandbox (all its workers started: an analysis uses them all)."""
        self.pool.fill()
        prepared = await self._work(PrepareImpact(source), context)
        assert isinstance(prepared, ImpactPrepared)
        if prepared.diagnostics:
            error = bad_request([FieldViolation("source", f"line {line}, column {column}: {message}")
                                 for line, column, message in prepared.diagnostics])
            await abort(context, error)
        if prepared.name != ruleset:
            await _refuse(context, "ruleset", f"the candidate is a version of {prepared.name!r}, not {ruleset!r}")
        return prepared

    async def _evaluate(self, log: DecisionLog, source: str, filters: ListFilter, total: int, max_examples: int,
                        tally: ImpactTally, context: Context, known_at: str | None) -> AsyncIterator[int]:
        """Hand the window's seq ranges to the impact workers (one range more in flight than workers, so none
        waits for the front, and never more), merge each range's tally in order, and yield the decisions done so
        far. The front's part per range is constant: a small message out, a small tally in."""
        ranges = deque(await asyncio.to_thread(_ranges, log, filters, total))
        pending: deque[asyncio.Task[object]] = deque()
        try:
            while ranges or pending:
                while ranges and len(pending) <= self.pool.size:
                    first, last = ranges.popleft()
                    message = AnalyseChunk(source, filters, first, last, max_examples, tally.filled(max_examples),
                                           known_at)
                    pending.append(asyncio.create_task(self._work(message, context)))
                part = await pending.popleft()
                assert isinstance(part, ImpactPart)
                tally.merge(part.tally, max_examples)
                yield tally.analysed
        finally:
            for task in pending:
                task.cancel()
