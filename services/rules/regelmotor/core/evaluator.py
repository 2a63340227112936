"""Evaluate facts against one compiled ruleset version and explain the result.

One way through: validated facts → derived values → durable_rules (round by round) → exceptions
and combine policies → outcome → explanation. Nothing here reads the clock: `as_of` is an input.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from . import engine
from .closures import ValueOf, VerdictOf, value_of, verdict_of
from .combine import Contribution, combine
from .compiler import PRESENT_MARKER, Atom, CompiledRule, CompiledRuleset, Round, compile_ruleset
from .decision import (
    ConditionTrace,
    Decision,
    DecisionHead,
    DerivedTrace,
    ExceptionTrace,
    Explanation,
    HjemmelRef,
    ManualReview,
    OutcomeTrace,
    ParameterTrace,
    RuleTrace,
)
from .errors import EngineFailure, FieldViolation, InvalidFacts
from .expressions import Name, atoms_with_polarity
from .limits import shown_text
from .model import Derived, Rule, Ruleset
from .schema import FactValidator
from .types import encode_for_engine, to_json_value
from .vocabulary import CallContext

ENGINE_NAME = "regelmotor"
_MISSING = object()


def engine_version() -> str:
    from regelmotor import __version__

    return f"{ENGINE_NAME} {__version__} (durable_rules {engine.DURABLE_RULES_VERSION})"


class Evaluator:
    """A compiled, engine-registered ruleset version, ready to evaluate from any thread."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.compiled: CompiledRuleset = compile_ruleset(ruleset)
        self.validator = FactValidator(ruleset.facts)
        for round_ in [self.compiled.constraints, *self.compiled.rounds]:
            for partition in round_.partitions:
                engine.register(partition.engine_name, partition.definition)
        self._hjemler = {hid: _hjemmel_ref(ruleset, hid) for hid in ruleset.hjemler}
        self.engine_version = engine_version()
        # Static shape of the explanation, worked out once so each evaluation only fills in values.
        self.setters: dict[str, list[Rule]] = {name: [] for name in ruleset.outcomes}
        self.exceptions: dict[str, list[Rule]] = {rule.id: [] for rule in ruleset.rules}
        for rule in ruleset.rules:
            for name in rule.effects:
                self.setters[name].append(rule)
            if rule.unntak_fra:
                self.exceptions[rule.unntak_fra].append(rule)
        self.conditions: dict[str, list[tuple[Atom, bool]]] = {}
        self.compiled_rules: list[CompiledRule] = []
        for round_ in self.compiled.rounds:
            self.compiled_rules.extend(round_.rules)
            for compiled in round_.rules:
                self.conditions[compiled.rule.id] = _distinct_atoms(round_, compiled.rule)
        order = {rule.id: index for index, rule in enumerate(ruleset.rules)}
        self.compiled_rules.sort(key=lambda c: order[c.rule.id])
        # What each step of an evaluation derives and finalises (the steps: _derive_steps).
        self.derive_steps = _derive_steps(self.compiled)
        self.finalised_after: dict[int, list[str]] = {}  # round index (-1: before any) -> outcomes it settles
        for name, final_round in self.compiled.outcome_round.items():
            self.finalised_after.setdefault(max(final_round, -1), []).append(name)
        self.derive: dict[str, ValueOf] = {name: value_of(d.expr) for name, d in ruleset.derived.items()}
        self.verdicts: dict[str, VerdictOf] = {rule.id: verdict_of(rule.condition) for rule in ruleset.rules}
        self.effects: dict[str, dict[str, ValueOf]] = {
            rule.id: {field: value_of(expr) for field, expr in rule.effects.items()} for rule in ruleset.rules}

    def validate(self, raw_facts: Any) -> dict[str, Any]:
        return self.validator.validate(raw_facts)

    def run(self, raw_facts: Any, as_of: date, *, selected_by: str = "as_of",
            selection_date: date | None = None) -> Evaluation:
        """Validate the facts and evaluate every round; the result can then be explained."""
        evaluation = Evaluation(self, self.validator.validate(raw_facts), as_of, selected_by, selection_date)
        evaluation.execute()
        return evaluation

    def evaluate(self, raw_facts: Any, as_of: date, *, decision_id: str | None = None,
                 selected_by: str = "as_of", selection_date: date | None = None) -> Decision:
        evaluation = self.run(raw_facts, as_of, selected_by=selected_by, selection_date=selection_date)
        return evaluation.decision(decision_id or str(uuid.uuid4()))

    def static_trace(self, compiled: CompiledRule) -> RuleTrace:
        """The fields of a rule's trace that this version fixes; what an evaluation adds is left empty."""
        rule = compiled.rule
        return RuleTrace(rule.id, rule.title, [self._hjemler[h] for h in rule.hjemmel], rule.condition_text,
                         False, False, {}, [], rule.unntak_fra, [], [], rule.manuell_vurdering, rule.begrunnelse,
                         compiled.round)


class Evaluation:
    """One evaluation of validated facts: the values, the engine's verdicts and the outcome.

    `decision()` explains it as a `Decision`. The state is public for encoders that write the explanation
    straight to another form (the gRPC answer's wire bytes) from the same values: `held`, `rule_fired`,
    `applied`, `json_of`, `effect_json`, `derived`, `parameters` and `outcomes`. Nothing changes it once
    `execute()` has run."""

    def __init__(self, evaluator: Evaluator, facts: dict[str, Any], as_of: date, selected_by: str = "as_of",
                 selection_date: date | None = None) -> None:
        self.evaluator = evaluator
        self.selected_by = selected_by
        self.selection_date = selection_date or as_of
        self.ruleset = evaluator.ruleset
        self.compiled = evaluator.compiled
        self.facts = facts
        self.as_of = as_of
        self.values: dict[str, Any] = {**facts, "as_of": as_of}
        self.context = CallContext(self.ruleset.parameters, self.ruleset.tables)
        self.derived_traces: dict[str, DerivedTrace] = {}
        self.held: dict[int, dict[str, bool]] = {}  # round -> atom text -> the engine's verdict
        self.rule_fired: dict[str, bool] = {}
        self.applied: dict[str, bool] = {}
        self.outcome_traces: dict[str, OutcomeTrace] = {}
        self._json: dict[str, Any] = {}  # JSON form of each value, made once: values never change once set
        self._effects: dict[tuple[str, str], Any] = {}  # (rule id, field) -> JSON of what it gives or would give

    def json_of(self, name: str) -> Any:
        found = self._json.get(name, _MISSING)
        if found is _MISSING:
            found = self._json[name] = to_json_value(self.values.get(name))
        return found

    def execute(self) -> None:
        evaluator = self.evaluator
        for name in evaluator.finalised_after.get(-1, ()):
            self._finalise_outcome(name)
        steps = evaluator.derive_steps
        self._derive_step(steps[0])
        self._check_constraints()
        for step, round_ in enumerate(self.compiled.rounds, start=1):
            self._derive_step(steps[step])
            self._run_round(round_)
        self._derive_step(steps[-1])

    # --- derived values ----------------------------------------------------------------------

    def _derive_step(self, step: list[Derived]) -> None:
        for derived in step:
            self._derive(derived)

    def _derive(self, derived: Derived) -> None:
        try:
            value = self.evaluator.derive[derived.name](self.values, self.context)
        except (ValueError, ArithmeticError) as exc:
            # A function refuses inputs that contradict each other (a birth date after the date asked
            # about), or its arithmetic leaves what a value can hold (a date past 9999, a decimal
            # overflow): either way the facts did it, so name the facts involved, the first as the field.
            facts = [n for n in derived.reads if n in self.ruleset.facts] or [derived.name]
            problem = str(exc) if isinstance(exc, ValueError) else "the result is out of range"
            reason = f"{problem} (while computing {derived.name} = {derived.text} from {', '.join(derived.reads)})"
            raise InvalidFacts([FieldViolation(facts[0], reason)]) from None
        self.values[derived.name] = value
        inputs = {n: self.json_of(n) for n in derived.reads}
        self.derived_traces[derived.name] = DerivedTrace(derived.name, derived.text, inputs, to_json_value(value))

    def _check_constraints(self) -> None:
        checks = self.compiled.constraints
        if not checks.partitions:
            return
        fired = engine.fire([p.engine_name for p in checks.partitions], self._engine_fact(checks))
        violations = [
            FieldViolation(c.field, c.message.format_map(_Placeholders(self)))
            for index, c in enumerate(self.ruleset.constraints)
            if f"v{index}" in fired
        ]
        if violations:
            raise InvalidFacts(violations)

    def _engine_fact(self, round_: Round) -> dict[str, Any]:
        fact: dict[str, Any] = {name: encode_for_engine(self.values.get(name)) for name in round_.reads}
        fact[PRESENT_MARKER] = 1
        return fact

    # --- engine rounds -----------------------------------------------------------------------

    def _run_round(self, round_: Round) -> None:
        fired = engine.fire([p.engine_name for p in round_.partitions], self._engine_fact(round_))
        atoms = self.held[round_.index] = {text: atom.id in fired for text, atom in round_.atoms.items()}
        verdicts = self.evaluator.verdicts
        for compiled in round_.rules:
            held = compiled.engine_id in fired
            expected = verdicts[compiled.rule.id](atoms)
            if held != expected:
                raise EngineFailure(
                    f"durable_rules decided rule {compiled.rule.id!r} {held} but its conditions give {expected}"
                )
            self.rule_fired[compiled.rule.id] = held
        self._resolve_exceptions(round_.rules)
        for name in self.evaluator.finalised_after.get(round_.index, ()):
            self._finalise_outcome(name)

    def _resolve_exceptions(self, rules: list[CompiledRule]) -> None:
        # An exception overrides its base whenever its own condition holds (Catala-style default
        # logic): the base rule then gives nothing, whatever the order of the rules in the file.
        for compiled in rules:
            rule = compiled.rule
            overriding = [e.id for e in self._exceptions_to(rule.id) if self.rule_fired.get(e.id)]
            self.applied[rule.id] = self.rule_fired[rule.id] and not overriding

    def _exceptions_to(self, rule_id: str) -> list[Rule]:
        return self.evaluator.exceptions[rule_id]

    def _finalise_outcome(self, name: str) -> None:
        spec = self.ruleset.outcomes[name]
        effects = self.evaluator.effects
        contributions = [
            Contribution(rule.id, effects[rule.id][name](self.values, self.context), rule.prioritet)
            for rule in self.evaluator.setters[name]
            if self.applied.get(rule.id)
        ]
        value, deciding = combine(spec, contributions)
        self.values[name] = value
        self.outcome_traces[name] = OutcomeTrace(name, self.json_of(name), spec.combine.value, deciding,
                                                 spec.internal)

    # --- the explanation ---------------------------------------------------------------------

    def effect_json(self, rule: Rule, field: str) -> Any:
        """The JSON value that `rule` gives `field` when applied, or would give, once all rounds have run."""
        key = (rule.id, field)
        found = self._effects.get(key, _MISSING)
        if found is _MISSING:
            expr = rule.effects[field]
            found = self._effects[key] = (
                self.json_of(expr.name) if isinstance(expr, Name)
                else to_json_value(self.evaluator.effects[rule.id][field](self.values, self.context)))
        return found

    @property
    def derived(self) -> list[DerivedTrace]:
        return list(self.derived_traces.values())

    @property
    def parameters(self) -> list[ParameterTrace]:
        return [ParameterTrace(p.parameter, p.on.isoformat(), p.gyldig_fra.isoformat(), to_json_value(p.value), p.unit)
                for p in self.context.parameter_reads]

    @property
    def outcomes(self) -> list[OutcomeTrace]:
        return [self.outcome_traces[n] for n in self.ruleset.outcomes]

    def head(self, decision_id: str) -> DecisionHead:
        outcome = {n: self.json_of(n) for n, spec in self.ruleset.outcomes.items() if not spec.internal}
        manual = [ManualReview(r.id, r.manuell_vurdering) for r in self.ruleset.rules
                  if r.manuell_vurdering and self.applied.get(r.id)]
        applied = [c.rule.id for c in self.evaluator.compiled_rules if self.applied[c.rule.id]]
        meta = self.ruleset.meta
        return DecisionHead(decision_id, meta.name, meta.version, self.ruleset.sha256, self.evaluator.engine_version,
                            self.as_of.isoformat(), self.selected_by, self.selection_date.isoformat(),
                            {k: self.json_of(k) for k in self.facts}, outcome, manual, applied)

    def decision(self, decision_id: str) -> Decision:
        head = self.head(decision_id)
        rules = [self.rule_trace(c) for c in self.evaluator.compiled_rules]
        explanation = Explanation(rules, self.derived, self.parameters, self.outcomes)
        return Decision(head.decision_id, head.ruleset, head.version, head.ruleset_sha256, head.engine_version,
                        head.as_of, head.selected_by, head.selection_date, head.facts, head.outcome,
                        head.manuell_vurdering, explanation)

    def rule_trace(self, compiled: CompiledRule) -> RuleTrace:
        rule = compiled.rule
        held = self.held[compiled.round]
        json_of = self.json_of
        conditions = [ConditionTrace(atom.text, held[atom.text], {n: json_of(n) for n in atom.reads}, negated)
                      for atom, negated in self.evaluator.conditions[rule.id]]
        exceptions = [ExceptionTrace(e.id, bool(self.rule_fired.get(e.id))) for e in self._exceptions_to(rule.id)]
        result = {field: self.effect_json(rule, field) for field in rule.effects}
        return RuleTrace(
            rule.id, rule.title, [self.evaluator._hjemler[h] for h in rule.hjemmel], rule.condition_text,
            self.rule_fired[rule.id], self.applied[rule.id], result, conditions, rule.unntak_fra, exceptions,
            [e.rule_id for e in exceptions if e.held], rule.manuell_vurdering, rule.begrunnelse, compiled.round,
        )


def _distinct_atoms(round_: Round, rule: Rule) -> list[tuple[Atom, bool]]:
    """The rule's atomic conditions with their polarity, each once, in the order written."""
    seen: set[tuple[str, bool]] = set()
    entries: list[tuple[Atom, bool]] = []
    for expr, negated in atoms_with_polarity(rule.condition):
        key = (str(expr), negated)
        if key not in seen:
            seen.add(key)
            entries.append((round_.atoms[key[0]], negated))
    return entries


def _derive_steps(compiled: CompiledRuleset) -> list[list[Derived]]:
    """The derived values of each step: step 0 before the constraints, step i before round i, the last after
    every round. A derived value comes in the first step that allows its level."""
    steps = [0, *[round_.index for round_ in compiled.rounds], len(compiled.rounds) + 1]
    derive_steps: list[list[Derived]] = [[] for _ in steps]
    for name, derived in compiled.ruleset.derived.items():
        level = compiled.derived_level[name]
        step = next((i for i, limit in enumerate(steps) if level <= limit), None)
        if step is not None:
            derive_steps[step].append(derived)
    return derive_steps


class _Placeholders(dict[str, str]):
    """`{name}` in a constraint message shows that fact's or derived value's value."""

    def __init__(self, run: Evaluation) -> None:
        super().__init__()
        self.run = run

    def __missing__(self, key: str) -> str:
        if key in self.run.values:
            value = self.run.json_of(key)
            return "null" if value is None else shown_text(str(value))  # input: shown shortened
        return "{" + key + "}"


def _hjemmel_ref(ruleset: Ruleset, hid: str) -> HjemmelRef:
    h = ruleset.hjemler[hid]
    return HjemmelRef(h.id, h.kilde, h.cite(), h.kapittel, h.paragraf, h.ledd, h.punktum, h.bokstav,
                      h.i_kraft.isoformat() if h.i_kraft else None, h.url, h.verified, h.merknad)
