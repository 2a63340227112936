"""The decision and its explanation tree: what hospital systems receive and auditors read.

All values in a decision are plain JSON (ISO dates, decimals as text), so a decision serialises,
stores and compares without custom encoders. `content_sha256` covers everything except the
decision id, so a replay of the same facts on the same ruleset version gives the same hash.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

# The trace entries below are plain slotted dataclasses rather than frozen ones: an evaluation makes
# about eighty of them, a frozen one costs three times as much to create (1.6 µs against 0.5), and
# nothing changes them once the evaluation has built them.


@dataclass(frozen=True)
class HjemmelRef:
    id: str
    kilde: str
    sitat: str  # a readable citation, e.g. "pasient- og brukerrettighetsloven § 2-2 1. ledd"
    kapittel: str | None
    paragraf: str | None
    ledd: int | None
    punktum: int | None
    bokstav: str | None
    i_kraft: str | None
    url: str | None
    verified: bool
    merknad: str | None = None  # e.g. why the reference is not verified


@dataclass(slots=True)
class ConditionTrace:
    """One atomic condition of a rule, as decided by the engine, with the values it read."""

    condition: str
    held: bool
    reads: dict[str, Any]
    negated: bool = False  # the rule needs this condition NOT to hold (it stands under a `not`)


@dataclass(slots=True)
class ExceptionTrace:
    rule_id: str
    held: bool  # the exception's condition held, so it overrode this rule


@dataclass(slots=True)
class RuleTrace:
    id: str
    title: str
    hjemmel: list[HjemmelRef]
    condition: str
    fired: bool  # the rule's whole condition held (decided by the engine)
    applied: bool  # fired and not overridden by an exception
    result: dict[str, Any]  # the outcome values it gives (when applied) or would give
    conditions: list[ConditionTrace]
    unntak_fra: str | None = None
    exceptions: list[ExceptionTrace] = field(default_factory=list)
    overridden_by: list[str] = field(default_factory=list)
    manuell_vurdering: str | None = None
    begrunnelse: str | None = None
    round: int = 0


@dataclass(slots=True)
class DerivedTrace:
    name: str
    expression: str
    inputs: dict[str, Any]
    value: Any


@dataclass(slots=True)
class ParameterTrace:
    name: str
    on: str
    gyldig_fra: str
    value: Any
    unit: str
    # The secondary source the value rests on until a primary one is found (`sekundaerkilde` on the ruleset's
    # value). Left out of `to_dict` when None, so a decision reading no such value keeps the content hash it had.
    sekundaerkilde: str | None = None


@dataclass(slots=True)
class OutcomeTrace:
    name: str
    value: Any
    combine: str
    from_rules: list[str]  # applied rules that gave a value; empty means the default was used
    internal: bool = False  # an intermediate result, not part of the public outcome


@dataclass(slots=True)
class ManualReview:
    rule_id: str
    begrunnelse: str


@dataclass(frozen=True)
class Explanation:
    rules: list[RuleTrace]
    derived: list[DerivedTrace]
    parameters: list[ParameterTrace]
    outcomes: list[OutcomeTrace]


@dataclass(frozen=True)
class Correction:
    """The deciding version is a correction of another: which version it supersedes, and from when it decides in
    that version's place (its publication, ISO 8601 UTC; None for a version read from a directory)."""

    supersedes: str
    published_at: str | None


@dataclass(frozen=True)
class Selection:
    """What a decision says of how its version was chosen, beyond the date that chose it."""

    correction: Correction | None = None
    known_at: str | None = None


NO_SELECTION = Selection()


@dataclass(frozen=True)
class DecisionBasis:
    """What every decision says about itself, with or without its explanation."""

    decision_id: str
    ruleset: str
    version: str
    ruleset_sha256: str
    engine_version: str
    as_of: str
    selected_by: str  # the fact that selected the version, or "as_of"
    selection_date: str
    facts: dict[str, Any]  # the validated facts with defaults, as used
    outcome: dict[str, Any]
    manuell_vurdering: list[ManualReview]
    # Left out of `to_dict` when None, so a decision without them keeps the content hash it always had.
    correction: Correction | None = field(default=None, kw_only=True)
    known_at: str | None = field(default=None, kw_only=True)  # the versions as known then (ISO 8601 UTC)


@dataclass(frozen=True)
class DecisionHead(DecisionBasis):
    """A decision without its explanation: what a decision log stores and a summary shows about it."""

    applied_rules: list[str]


@dataclass(frozen=True)
class Decision(DecisionBasis):
    explanation: Explanation

    def to_dict(self) -> dict[str, Any]:
        result = _plain(self)
        assert isinstance(result, dict)
        for optional in ("correction", "known_at"):
            if result[optional] is None:
                del result[optional]
        for parameter in result["explanation"]["parameters"]:
            if parameter["sekundaerkilde"] is None:
                del parameter["sekundaerkilde"]
        return result

    @property
    def fired_rules(self) -> list[str]:
        return [r.id for r in self.explanation.rules if r.fired]

    @property
    def applied_rules(self) -> list[str]:
        return [r.id for r in self.explanation.rules if r.applied]

    @property
    def content_sha256(self) -> str:
        body = self.to_dict()
        body.pop("decision_id")
        text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_decision_id() -> str:
    """A new random decision id: a version 4 UUID (the standard library's; one place for every maker of ids)."""
    return str(uuid.uuid4())


def _plain(value: Any) -> Any:
    """Dataclasses to dicts, like dataclasses.asdict but without its deep copies: the values here are
    already plain JSON, and a decision has a thousand nodes, so asdict was the slowest step."""
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        return {name: _plain(getattr(value, name)) for name in fields}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def decision_from_dict(data: dict[str, Any]) -> Decision:
    """Rebuild a decision from `to_dict()` output (e.g. read back from a log)."""
    exp = data["explanation"]
    rules = [
        RuleTrace(**{**r, "hjemmel": [HjemmelRef(**h) for h in r["hjemmel"]],
                     "conditions": [ConditionTrace(**c) for c in r["conditions"]],
                     "exceptions": [ExceptionTrace(**e) for e in r["exceptions"]]})
        for r in exp["rules"]
    ]
    explanation = Explanation(rules, [DerivedTrace(**d) for d in exp["derived"]],
                              [ParameterTrace(**p) for p in exp["parameters"]],
                              [OutcomeTrace(**o) for o in exp["outcomes"]])
    correction = data.get("correction")
    return Decision(**{**data, "explanation": explanation,
                       "manuell_vurdering": [ManualReview(**m) for m in data["manuell_vurdering"]],
                       "correction": Correction(**correction) if correction else None})
