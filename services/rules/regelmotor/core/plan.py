"""What one compiled ruleset version fixes about every evaluation of it, worked out once per version.

An evaluation (regelmotor.core.evaluator) walks these plans and only fills in values: the steps of derived
values, each engine round's fact (its names and their JSON keys), the engine's ids of each round's atomic
conditions and rules, the exceptions that can override a rule, the outcomes each round makes final and the
rules that can set each outcome, with their effects as closures (regelmotor.core.closures).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .closures import ValueOf, value_of
from .compiler import CompiledRuleset, Round
from .errors import EngineFailure
from .model import Derived, Ruleset


@dataclass(frozen=True, slots=True)
class EngineFact:
    """What asserting one round's fact takes: the engine rulesets, and the names the fact carries."""

    engine_names: list[str]
    reads: tuple[str, ...]  # the names whose values it carries
    pick: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # their values, in the order of `reads`, from a mapping


@dataclass(frozen=True, slots=True)
class RoundPlan:
    index: int
    fact: EngineFact
    atoms: tuple[tuple[str, str], ...]  # (atomic condition's text, its engine rule's id)
    rules: tuple[tuple[str, str], ...]  # (rule id, its engine rule's id), in the round's order
    overridable: tuple[tuple[str, tuple[str, ...]], ...]  # (rule id, its exceptions' ids): rules that have some
    finalises: tuple[str, ...]  # the outcomes that are final once this round has run
    checks_constraints: bool  # its engine rulesets also check the constraints: it runs first, after derive step 0


@dataclass(frozen=True, slots=True)
class Setter:
    """A rule that can give an outcome its value."""

    rule_id: str
    effect: ValueOf
    prioritet: int


@dataclass(frozen=True, slots=True)
class EvaluationPlan:
    derive_steps: tuple[tuple[Derived, ...], ...]  # step 0 before the constraints, i before round i - 1, last after
    constraints: EngineFact | None  # None: the version declares no constraints
    rounds: tuple[RoundPlan, ...]
    finalised_first: tuple[str, ...]  # outcomes that no rule sets: final before anything runs
    setters: dict[str, tuple[Setter, ...]]  # outcome -> the rules that can set it, in file order
    derive: dict[str, ValueOf]  # derived value -> its expression as a closure
    derived_in_order: tuple[Derived, ...]  # every derived value computed, in the order of the steps
    outcomes: tuple[tuple[str, str, bool], ...]  # (outcome, its combine policy, internal), as declared: their traces


def plan_evaluation(compiled: CompiledRuleset) -> EvaluationPlan:
    ruleset = compiled.ruleset
    finalised_after: dict[int, list[str]] = {}  # round index (-1: before any) -> outcomes it settles
    for name, final_round in compiled.outcome_round.items():
        finalised_after.setdefault(max(final_round, -1), []).append(name)
    exceptions: dict[str, list[str]] = {rule.id: [] for rule in ruleset.rules}
    for rule in ruleset.rules:
        if rule.unntak_fra:
            exceptions[rule.unntak_fra].append(rule.id)
    rounds = tuple(
        RoundPlan(
            round_.index, _engine_fact(round_),
            tuple((text, atom.id) for text, atom in round_.atoms.items()),
            tuple((c.rule.id, c.engine_id) for c in round_.rules),
            tuple((c.rule.id, tuple(exceptions[c.rule.id])) for c in round_.rules if exceptions[c.rule.id]),
            tuple(finalised_after.get(round_.index, ())), round_.checks_constraints,
        )
        for round_ in compiled.rounds
    )
    constraints = _engine_fact(compiled.constraints) if compiled.constraints.partitions else None
    derive_steps = _derive_steps(compiled)
    if any(round_.checks_constraints for round_ in rounds) and derive_steps[1]:
        # The compiler joins the constraints to the first round only because nothing is derived in between.
        raise EngineFailure(f"derived values before the first round of {ruleset.key}, which checks the constraints")
    return EvaluationPlan(derive_steps, constraints, rounds, tuple(finalised_after.get(-1, ())),
                          _setters(ruleset), {name: value_of(d.expr) for name, d in ruleset.derived.items()},
                          tuple(derived for step in derive_steps for derived in step),
                          tuple((name, spec.combine.value, spec.internal) for name, spec in ruleset.outcomes.items()))


def _engine_fact(round_: Round) -> EngineFact:
    reads = tuple(sorted(round_.reads))
    return EngineFact([p.engine_name for p in round_.partitions], reads, _picker(reads))


def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if len(names) > 1:
        return operator.itemgetter(*names)
    if names:  # an itemgetter of one name gives the value, not a tuple
        name = names[0]
        return lambda values: (values[name],)
    return lambda values: ()  # rules that read nothing (`when: true`)


def _setters(ruleset: Ruleset) -> dict[str, tuple[Setter, ...]]:
    setters: dict[str, list[Setter]] = {name: [] for name in ruleset.outcomes}
    for rule in ruleset.rules:
        for name, expr in rule.effects.items():
            setters[name].append(Setter(rule.id, value_of(expr), rule.prioritet))
    return {name: tuple(found) for name, found in setters.items()}


def _derive_steps(compiled: CompiledRuleset) -> tuple[tuple[Derived, ...], ...]:
    """The derived values of each step: step 0 before the constraints, step i before round i - 1, the last after
    every round. A derived value comes in the first step that allows its level."""
    steps: Sequence[int] = [0, *[round_.index for round_ in compiled.rounds], len(compiled.rounds) + 1]
    derive_steps: list[list[Derived]] = [[] for _ in steps]
    for name, derived in compiled.ruleset.derived.items():
        level = compiled.derived_level[name]
        step = next((i for i, limit in enumerate(steps) if level <= limit), None)
        if step is not None:
            derive_steps[step].append(derived)
    return tuple(tuple(step) for step in derive_steps)
