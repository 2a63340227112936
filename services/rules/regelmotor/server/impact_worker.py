"""The impact worker's side of an impact analysis: a caller's candidate source parsed and compiled here, in the
sandbox, never in the front; logged decisions read from the log here (the front hands out seq ranges only, so its
share of an analysis stays small: server/impact.py) and evaluated again under it (regelmotor.core.impact)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime

from regelmotor.core.api import Regelmotor
from regelmotor.core.errors import Diagnostic, RegelmotorError, RulesetInvalid
from regelmotor.core.evaluator import Evaluator
from regelmotor.core.impact import Baseline, LoggedDecision, Reanalysis, parse_logged
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.repository import RulesetRepository, RulesetSnapshot
from regelmotor.store import DecisionLog, ReplayInput, open_log

from .protocol import AnalyseChunk, ImpactPart, ImpactPrepared, PrepareImpact, Reloaded

# Candidates kept compiled (an analysis sends its source with every chunk); durable_rules never frees one, so the
# pool retires the worker after a number of messages as it does the sources worker.
_KEPT = 4



class ImpactWork:
    def __init__(self, snapshot: RulesetSnapshot | None, log_location: str | None) -> None:
        self._snapshot = snapshot
        self._candidates: OrderedDict[str, Reanalysis] = OrderedDict()
        self._logged: Regelmotor | None = None
        self._as_known: Regelmotor | None = None  # the served versions, for a "before" as known at a moment
        self._log_location = log_location
        self._log: DecisionLog | None = None  # opened on the first chunk, kept until the worker ends

    def handle(self, message: PrepareImpact | AnalyseChunk) -> ImpactPrepared | ImpactPart:
        if isinstance(message, PrepareImpact):
            return self._prepare(message.source)
        analysis = self._candidate(message.source)
        inputs = self._read(message)
        try:
            decisions = (parse_logged(row.seq, row.decision_id, row.version, row.ruleset_sha256, row.as_of,
                                      row.facts_json, row.outcome_json) for row in inputs)
            name = analysis.candidate.ruleset.meta.name
            baseline = self._baseline(name, message.known_at) if message.known_at else None
            return ImpactPart(analysis.tally(decisions, message.max_examples, message.filled, baseline))
        finally:
            close = getattr(inputs, "close", None)
            if close is not None:
                close()

    def _read(self, message: AnalyseChunk) -> Iterator[ReplayInput]:
        if self._log is None:
            if self._log_location is None:
                raise RuntimeError("this impact worker was started without the decision log's location")
            remote = self._log_location.startswith("postgres")
            self._log = open_log(self._log_location, **({"pool_size": 1} if remote else {}))
        return self._log.replay_inputs(dataclasses.replace(message.filters, seq_from=message.first_seq,
                                                           seq_to=message.last_seq))

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

    def _prepare(self, source: str) -> ImpactPrepared:
        try:
            analysis = self._candidate(source)
        except RulesetInvalid as exc:
            return ImpactPrepared(diagnostics=_lines(exc.diagnostics))
        except RegelmotorError as exc:  # the engine refused it
            return ImpactPrepared(diagnostics=((1, 1, str(exc)),))
        meta = analysis.candidate.ruleset.meta
        return ImpactPrepared(meta.name, meta.version, analysis.candidate.ruleset.sha256)

    def _candidate(self, source: str) -> Reanalysis:
        key = hashlib.sha256(source.encode()).hexdigest()
        found = self._candidates.get(key)
        if found is None:
            found = Reanalysis(Evaluator(load_ruleset_text(source, "source")), self._logged_version)
            self._candidates[key] = found
            if len(self._candidates) > _KEPT:
                self._candidates.popitem(last=False)
        self._candidates.move_to_end(key)
        return found

    def follow(self, snapshot: RulesetSnapshot) -> Reloaded:
        """Know the versions of `snapshot` from now on (hot reload), so the examples of decisions made with a
        version published after this worker started name their first differing rule too. The versions compiled
        already are kept (by key and sha256): only the repository changes."""
        self._as_known = None  # rebuilt from the new snapshot when next asked
        if self._logged is None:  # built from the snapshot when first asked
            self._snapshot = snapshot
            return Reloaded()
        repository = RulesetRepository.from_snapshot(snapshot, include_drafts=True)
        self._logged.repository, self._snapshot = repository, snapshot
        return Reloaded(versions=repository.version_count())

    def _baseline(self, name: str, known_at: str) -> Baseline:
        """Each decision's "before" as the versions published by `known_at` decide it (drafts never count)."""
        if self._as_known is None:
            if self._snapshot is None:
                raise RuntimeError("this impact worker was started without the served versions")
            self._as_known = Regelmotor(RulesetRepository.from_snapshot(self._snapshot))
        motor, moment = self._as_known, datetime.fromisoformat(known_at)

        def before(decision: LoggedDecision) -> LoggedDecision:
            evaluation = motor.run(name, decision.facts, as_of=decision.as_of, known_at=moment)
            outcome = {name: evaluation.json_of(name) for name, spec in evaluation.ruleset.outcomes.items()
                       if not spec.internal}
            chosen = evaluation.ruleset  # the version as known then, which a correction may stand in for
            return dataclasses.replace(decision, outcome=outcome, version=chosen.meta.version,
                                       ruleset_sha256=chosen.sha256)

        return before

    def _logged_version(self, name: str, decision: LoggedDecision) -> Evaluator | None:
        """The evaluator of the version a decision was made with, when this instance has that very content."""
        if self._snapshot is None:
            return None
        if self._logged is None:
            self._logged = Regelmotor(RulesetRepository.from_snapshot(self._snapshot, include_drafts=True))
        try:
            ruleset = self._logged.repository.get(name, decision.version)
        except RegelmotorError:
            return None
        return self._logged.evaluator(ruleset) if ruleset.sha256 == decision.ruleset_sha256 else None


def _lines(diagnostics: list[Diagnostic]) -> tuple[tuple[int, int, str], ...]:
    return tuple((d.line, d.column, d.message) for d in diagnostics)
