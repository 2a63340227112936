"""The facade callers use: pick the version in force, evaluate, explain.

`as_of` defaults to today's date in Europe/Oslo here, at the edge, and the date used is recorded in
the decision; rule evaluation itself never reads the clock.
"""

from __future__ import annotations

import threading
from datetime import date, datetime
from pathlib import Path
from typing import Any

from . import calendar_no
from .calendar_no import OSLO
from .decision import Correction, Decision, Selection, new_decision_id
from .errors import FieldViolation, InvalidFacts
from .evaluator import Evaluation, Evaluator
from .model import Ruleset
from .moments import moment_text
from .repository import RulesetRepository
from .values import read_date


def today_in_oslo() -> date:
    return datetime.now(OSLO).date()


def as_of_date(value: date | str) -> date:
    """The evaluation date, held to the rules of a date fact (YYYY-MM-DD in ASCII digits, within the
    accepted range), or InvalidFacts naming `as_of`."""
    try:
        return read_date(value)
    except ValueError as exc:
        raise InvalidFacts([FieldViolation("as_of", str(exc))]) from None


class Regelmotor:
    """Evaluates facts against the rulesets of one repository. Safe to share between threads."""

    def __init__(self, repository: RulesetRepository) -> None:
        self.repository = repository
        self._evaluators: dict[tuple[str, str], Evaluator] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_directory(cls, root: str | Path, *, include_drafts: bool = False) -> Regelmotor:
        return cls(RulesetRepository.load(root, include_drafts=include_drafts))

    def evaluator(self, ruleset: Ruleset) -> Evaluator:
        key = (ruleset.key, ruleset.sha256)
        found = self._evaluators.get(key)
        if found is None:
            with self._lock:
                found = self._evaluators.get(key)
                if found is None:
                    found = Evaluator(ruleset)
                    self._evaluators[key] = found
        return found

    def warm_up(self, repository: RulesetRepository | None = None) -> None:
        """Compile and register every version (of `repository`, else of this one's) now, so the first request
        pays nothing extra. That includes the holiday calendar: the `holidays` package imports its Norway module
        on first use (about 0.15 s), which would otherwise fall on the first request that counts working days."""
        repository = repository or self.repository
        for name in repository.names():
            for ruleset in repository.all_versions(name):
                self.evaluator(ruleset)
                calendar_no.public_holidays(ruleset.meta.gyldig_fra.year)

    def switch_to(self, repository: RulesetRepository) -> None:
        """Serve `repository` from now on, once every version of it is compiled (a version compiled already, by
        its key and sha256, is reused): a version that does not compile raises here, and this one serves on."""
        self.warm_up(repository)
        self.repository = repository

    def choose(self, name: str, facts: Any, *, as_of: date, version: str | None = None,
               replay: bool = False, known_at: datetime | None = None) -> tuple[Ruleset, str, date]:
        """The version to use, the fact that selected it ("as_of" if none) and the selecting date. `replay`: the
        recorded decision of a pinned version is evaluated again, whatever has been retired since. `known_at`:
        the versions as they were published and retired at that moment (None: now)."""
        selecting = self.repository.selecting_fact(name)
        if version is not None:
            # A pinned version needs no selection; its schema check reports a missing or bad fact.
            pinned = self.repository.get(name, version)
            raw = facts.get(selecting) if selecting and isinstance(facts, dict) else None
            try:
                selection_date = read_date(raw) if raw is not None else as_of
            except ValueError:
                selection_date = as_of
            if not replay:
                self.repository.check_pinned(pinned, selection_date, known_at)
            return pinned, selecting or "as_of", selection_date
        selection_date = as_of
        if selecting is not None:
            raw = facts.get(selecting) if isinstance(facts, dict) else None
            if raw is None:
                raise InvalidFacts([FieldViolation(selecting, "required fact is missing (it selects the version)")])
            try:
                selection_date = read_date(raw)
            except ValueError as exc:
                raise InvalidFacts([FieldViolation(selecting, str(exc))]) from None
        return self.repository.select(name, selection_date, known_at), selecting or "as_of", selection_date

    def run(self, name: str, facts: Any, *, as_of: date | str | None = None,
            version: str | None = None, replay: bool = False, known_at: datetime | None = None) -> Evaluation:
        """Evaluate without explaining yet: `Evaluation.decision()` gives the decision. `as_of` may be given
        as text YYYY-MM-DD; either way a bad one is InvalidFacts naming `as_of`. `known_at` (timezone-aware):
        decide as the service would have with the versions published by then; the decision says so."""
        if known_at is not None and known_at.utcoffset() is None:
            raise InvalidFacts([FieldViolation("known_at", "a moment with a UTC offset is required")])
        # Asked as known at a moment, a request without as_of is dated that moment's day: the same answer each time.
        default_day = known_at.astimezone(OSLO).date() if known_at is not None else None
        used_as_of = as_of_date(as_of) if as_of is not None else default_day or today_in_oslo()
        ruleset, selected_by, selection_date = self.choose(name, facts, as_of=used_as_of, version=version,
                                                           replay=replay, known_at=known_at)
        return self.evaluator(ruleset).run(facts, used_as_of, selected_by=selected_by, selection_date=selection_date,
                                           selection=self._selection(ruleset, known_at))

    def _selection(self, ruleset: Ruleset, known_at: datetime | None) -> Selection | None:
        superseded = self.repository.superseded(ruleset)
        if superseded is None and known_at is None:
            return None
        correction = None
        if superseded is not None:
            version, published_at = superseded
            correction = Correction(version, moment_text(published_at) if published_at else None)
        return Selection(correction, moment_text(known_at) if known_at else None)

    def evaluate(self, name: str, facts: Any, *, as_of: date | str | None = None, version: str | None = None,
                 decision_id: str | None = None, known_at: datetime | None = None) -> Decision:
        return self.run(name, facts, as_of=as_of, version=version,
                        known_at=known_at).decision(decision_id or new_decision_id())
