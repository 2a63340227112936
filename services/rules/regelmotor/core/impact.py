"""Impact of a candidate version on decisions already made: each logged decision evaluated again under the
candidate, as if the candidate had been in force on the decision's date, and compared outcome field by outcome
field with what was decided. A correction (`supersedes`) decides only in place of the version it corrects and
only for its own days: a decision of another version, or of a day it does not cover, stays as it was.

The result is a tally: per field how many decisions change, a cross-table of old → new values for enumerations
and booleans, the sums before and after for numbers, and the first few changed decisions as examples (with the
first rule whose result differs). Tallies of parts of a window merge into the tally of the whole, so the parts
can be evaluated in several processes. Pure: no log, no gRPC, no clock.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import RegelmotorError
from .evaluator import Evaluation, Evaluator
from .model import Ruleset
from .types import Kind
from .values import read_date

CROSS_TABLE_KINDS = frozenset({Kind.ENUM.value, Kind.BOOL.value})
SUMMED_KINDS = frozenset({Kind.INT.value, Kind.DECIMAL.value})
REFUSALS = ""  # the key of the refusals among the examples wanted


@dataclass(frozen=True)
class LoggedDecision:
    """A logged decision as the analysis reads it: what it was decided on, and what was decided."""

    seq: int
    decision_id: str
    version: str
    ruleset_sha256: str
    as_of: str
    facts: dict[str, Any]
    outcome: dict[str, Any]


@dataclass(frozen=True)
class Example:
    """A decision that would change (or that the candidate refuses: `message` says why)."""

    seq: int
    decision_id: str
    as_of: str
    before: Any = None
    after: Any = None
    first_rule: str = ""
    message: str = ""


@dataclass
class FieldTally:
    kind: str
    changed: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)  # JSON text before, after -> count
    sum_before: Decimal = Decimal(0)
    sum_after: Decimal = Decimal(0)
    examples: list[Example] = field(default_factory=list)


@dataclass
class ImpactTally:
    analysed: int = 0
    changed: int = 0
    refused: int = 0
    decided: int = 0  # evaluated under the candidate: for a correction, the decisions it would decide in place of
    fields: dict[str, FieldTally] = field(default_factory=dict)
    refusals: list[Example] = field(default_factory=list)

    def merge(self, other: ImpactTally, max_examples: int) -> None:
        """Add `other` (a tally of other decisions); the examples kept are the first `max_examples` in log order."""
        self.analysed += other.analysed
        self.changed += other.changed
        self.refused += other.refused
        self.decided += other.decided
        self.refusals = _first(self.refusals + other.refusals, max_examples)
        for name, theirs in other.fields.items():
            ours = self.fields.setdefault(name, FieldTally(theirs.kind))
            ours.changed += theirs.changed
            ours.transitions.update(theirs.transitions)
            ours.sum_before += theirs.sum_before
            ours.sum_after += theirs.sum_after
            ours.examples = _first(ours.examples + theirs.examples, max_examples)

    def filled(self, max_examples: int) -> frozenset[str]:
        """The fields (and REFUSALS) that have all the examples wanted: later parts need find none for them."""
        full = {name for name, tally in self.fields.items() if len(tally.examples) >= max_examples}
        if len(self.refusals) >= max_examples:
            full.add(REFUSALS)
        return frozenset(full)


def _first(examples: list[Example], count: int) -> list[Example]:
    return sorted(examples, key=lambda e: e.seq)[:count]


def outcome_kinds(evaluator: Evaluator) -> dict[str, str]:
    """The candidate's public outcome fields and the kind of each."""
    return {name: spec.type.kind.value for name, spec in evaluator.ruleset.outcomes.items() if not spec.internal}


def selection_day(ruleset: Ruleset, facts: Any, as_of: str) -> date:
    """The date that selects a version of `ruleset` for these facts: its selecting fact's, else as_of."""
    day = read_date(as_of)
    selecting = ruleset.meta.selected_by
    if selecting is not None and isinstance(facts, dict) and facts.get(selecting) is not None:
        try:
            return read_date(facts[selecting])
        except ValueError:
            return day
    return day


def run_as_in_force(evaluator: Evaluator, facts: Any, as_of: str) -> Evaluation:
    """Evaluate `facts` under `evaluator`'s version as if it were the one in force on `as_of` (its own validity
    dates are not asked): the version is chosen, and the parameters read, as for a call pinned to it."""
    selecting = evaluator.ruleset.meta.selected_by
    return evaluator.run(facts, read_date(as_of), selected_by=selecting or "as_of",
                         selection_date=selection_day(evaluator.ruleset, facts, as_of))


def corrects(correction: Ruleset, decision: LoggedDecision) -> bool:
    """Whether a correction would decide in place of the version that made `decision`: that version is the one it
    supersedes, and the decision's selecting date lies in the correction's own period."""
    meta = correction.meta
    if decision.version != meta.supersedes:
        return False
    day = selection_day(correction, decision.facts, decision.as_of)
    return meta.gyldig_fra <= day and (meta.gyldig_til is None or day <= meta.gyldig_til)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _number(value: Any) -> Decimal:
    if value is None or isinstance(value, bool):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


# A logged decision with its "before" outcome replaced (see Reanalysis.tally); raises RegelmotorError when it cannot.
Baseline = Callable[[LoggedDecision], LoggedDecision]


class Reanalysis:
    """Evaluates logged decisions under a candidate and tallies the changes. `logged_version` gives the
    evaluator of a decision's own version (ruleset name, decision; None when it is not at hand): asked only for
    the examples, to name the first rule whose result differs."""

    def __init__(self, candidate: Evaluator,
                 logged_version: Callable[[str, LoggedDecision], Evaluator | None]) -> None:
        self.candidate = candidate
        self.kinds = outcome_kinds(candidate)
        self.logged_version = logged_version

    def tally(self, decisions: Iterable[LoggedDecision], max_examples: int,
              filled: frozenset[str] = frozenset(), baseline: Baseline | None = None) -> ImpactTally:
        """The tally of `decisions`, with at most `max_examples` examples per field (none for `filled` ones).
        `baseline`: what each decision's "before" is instead of its logged outcome (the rules as known at a
        moment); a decision it cannot decide counts as refused, its message saying so."""
        result = ImpactTally(fields={name: FieldTally(kind) for name, kind in self.kinds.items()})
        correction = self.candidate.ruleset if self.candidate.ruleset.meta.supersedes else None
        for logged in decisions:
            result.analysed += 1
            try:
                decision = logged if baseline is None else baseline(logged)
                if correction is not None and not corrects(correction, decision):
                    self._compare(decision, None, result, max_examples, filled)  # it decides as before
                    continue
                evaluation = run_as_in_force(self.candidate, decision.facts, decision.as_of)
                result.decided += 1
            except RegelmotorError as exc:
                result.refused += 1
                if REFUSALS not in filled and len(result.refusals) < max_examples:
                    result.refusals.append(Example(logged.seq, logged.decision_id, logged.as_of,
                                                   message=str(exc)[:300]))
                continue
            self._compare(decision, evaluation, result, max_examples, filled)
        return result

    def _compare(self, decision: LoggedDecision, evaluation: Evaluation | None, result: ImpactTally,
                 max_examples: int, filled: frozenset[str]) -> None:
        """Tally `decision` against the candidate's `evaluation` of it (None: the candidate does not decide it, so
        its outcome stays as it was)."""
        after_outcome = (dict(decision.outcome) if evaluation is None
                         else {name: evaluation.json_of(name) for name in self.kinds})
        names = list(self.kinds) + [n for n in decision.outcome if n not in self.kinds]
        first_rule: str | None = None
        any_change = False
        for name in names:
            before, after = decision.outcome.get(name), after_outcome.get(name)
            tally = result.fields.setdefault(name, FieldTally("unknown"))
            if tally.kind in CROSS_TABLE_KINDS:
                tally.transitions[_json(before), _json(after)] += 1
            elif tally.kind in SUMMED_KINDS:
                tally.sum_before += _number(before)
                tally.sum_after += _number(after)
            if before == after:
                continue
            any_change = True
            tally.changed += 1
            if name not in filled and len(tally.examples) < max_examples:
                if first_rule is None:
                    assert evaluation is not None  # a decision the candidate does not decide never changes
                    first_rule = self._first_rule(decision, evaluation)
                tally.examples.append(Example(decision.seq, decision.decision_id, decision.as_of, before, after,
                                              first_rule))
        result.changed += any_change

    def _first_rule(self, decision: LoggedDecision, evaluation: Evaluation) -> str:
        """The first rule, in the candidate's order, whose result (fired, applied, what it gives) differs from
        the logged version's for these facts; "" when that version is not at hand or no rule's result differs."""
        logged = self.logged_version(self.candidate.ruleset.meta.name, decision)
        if logged is None:
            return ""
        try:
            old = run_as_in_force(logged, decision.facts, decision.as_of).decision(decision.decision_id)
        except RegelmotorError:
            return ""
        new = evaluation.decision(decision.decision_id)
        before = {r.id: (r.fired, r.applied, r.result) for r in old.explanation.rules}
        for rule in new.explanation.rules:
            if before.pop(rule.id, None) != (rule.fired, rule.applied, rule.result):
                return rule.id
        return next(iter(before), "")  # a rule the candidate no longer has


def parse_logged(seq: int, decision_id: str, version: str, ruleset_sha256: str, as_of: str, facts_json: str,
                 outcome_json: str) -> LoggedDecision:
    """A logged decision from the text its log stores."""
    return LoggedDecision(seq, decision_id, version, ruleset_sha256, as_of, json.loads(facts_json),
                          json.loads(outcome_json))


def transitions_of(tally: FieldTally) -> list[tuple[Any, Any, int]]:
    """The cross-table as (before, after, count), largest first, then by values."""
    cells = [(json.loads(a), json.loads(b), n) for (a, b), n in tally.transitions.items()]
    return sorted(cells, key=lambda c: (-c[2], _json(c[0]), _json(c[1])))

