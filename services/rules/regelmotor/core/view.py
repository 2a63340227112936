"""The public, read-only face of an evaluation: what writers of its answer read.

An `Evaluation` (regelmotor.core.evaluator) computes and keeps its state to itself. Whatever writes its
answer - the Decision builder (`regelmotor.core.explain`), the gRPC wire encoder (`regelmotor.server.wire`),
the CLI through the Decision - reads it through `EvaluationView` only: values, verdicts and traces, never
the evaluator's working state, and nothing it could change. `RuleShape` is what one ruleset version fixes
about a rule's trace, worked out once per version; `Headline` is the outcome a ruleset declares as its
headline (`headline:` in the ruleset file), for summaries such as span attributes.

The mappings are what the evaluation holds, typed `Mapping` so that a writer cannot change them (mypy,
strict, checks every writer); the traces are shared, not copied: writers must not modify them either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from .compiler import Atom
from .decision import Correction, DerivedTrace, HjemmelRef, OutcomeTrace, ParameterTrace, RuleTrace
from .model import Rule, Ruleset
from .wording import Wording


@dataclass(frozen=True, slots=True)
class RuleShape:
    """What one ruleset version fixes about a rule's trace: the same in every evaluation."""

    rule: Rule
    round: int  # the engine round that decides it
    hjemmel: tuple[HjemmelRef, ...]
    conditions: tuple[tuple[Atom, bool], ...]  # its distinct atomic conditions; True: it stands under a `not`
    exceptions: tuple[Rule, ...]  # the rules that are exceptions to it
    wording: Wording | None = None  # its title and begrunnelse when they name a parameter; None: fixed text

    def texts(self, day: date) -> tuple[str, str | None]:
        """Its title and begrunnelse in a decision whose selection date is `day`."""
        if self.wording is None:
            return self.rule.title, self.rule.begrunnelse
        return self.wording.on(day)

    def static_trace(self, day: date | None = None) -> RuleTrace:
        """The fields of its trace that the version fixes (with `day`, and a wording, the title and begrunnelse of
        that day); what an evaluation adds is left empty."""
        rule = self.rule
        title, begrunnelse = (rule.title, rule.begrunnelse) if day is None else self.texts(day)
        return RuleTrace(rule.id, title, list(self.hjemmel), rule.condition_text, False, False, {}, [],
                         rule.unntak_fra, [], [], rule.manuell_vurdering, begrunnelse, self.round)


@dataclass(frozen=True, slots=True)
class Headline:
    """The value of the outcome a ruleset declares as its headline."""

    outcome: str  # the outcome's name
    value: Any  # its JSON value (None: the outcome has no value)

    @property
    def text(self) -> str:
        """The value as one short text for a summary: a text as is, true/false, a number; "" for no value."""
        value = self.value
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


class EvaluationView(Protocol):
    """An evaluation as the writers of its answer see it (see the module docstring)."""

    @property
    def ruleset(self) -> Ruleset: ...

    @property
    def rules(self) -> Sequence[RuleShape]:
        """Every rule of the version, in file order."""
        ...

    @property
    def engine_version(self) -> str: ...

    @property
    def as_of(self) -> date: ...

    @property
    def selected_by(self) -> str:
        """The fact that selected the version, or "as_of"."""
        ...

    @property
    def selection_date(self) -> date: ...

    @property
    def correction(self) -> Correction | None:
        """What the deciding version supersedes, and since when (None: it is not a correction)."""
        ...

    @property
    def known_at(self) -> str | None:
        """The moment the version was selected as known at (ISO 8601 UTC), when one was asked for."""
        ...

    @property
    def facts(self) -> Mapping[str, Any]:
        """The validated facts with their defaults, as used (engine values; `json_of` gives their JSON)."""
        ...

    def json_of(self, name: str) -> Any:
        """The JSON value of a fact, derived value or outcome (None when it has none)."""
        ...

    @property
    def json_values(self) -> Mapping[str, Any]:
        """The JSON value of every fact, derived value and outcome by name, as `json_of` gives it; read by
        subscript (`[name]`), which gives None for a name without a value."""
        ...

    @property
    def held(self) -> Mapping[int, Mapping[str, bool]]:
        """Round -> atomic condition's text -> whether the engine decided it held."""
        ...

    @property
    def rule_fired(self) -> Mapping[str, bool]:
        """Rule id -> its whole condition held."""
        ...

    @property
    def applied(self) -> Mapping[str, bool]:
        """Rule id -> it fired and no exception overrode it."""
        ...

    def effect_json(self, rule: Rule, field: str) -> Any:
        """The JSON value that `rule` gives the outcome `field` when applied, or would give."""
        ...

    @property
    def derived(self) -> Sequence[DerivedTrace]:
        """The derived values' traces, in the order they were computed."""
        ...

    @property
    def parameters(self) -> Sequence[ParameterTrace]:
        """The parameter values read, in the order they were read."""
        ...

    @property
    def outcomes(self) -> Sequence[OutcomeTrace]:
        """Every outcome's trace, internal ones too, in declaration order."""
        ...

    @property
    def headline(self) -> Headline | None:
        """The declared headline outcome and its value; None when the ruleset declares none."""
        ...
