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
        self._engine_version = engine_version()
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
                seen: set[tuple[str, bool]] = set()
                entries: list[tuple[Atom, bool]] = []
                for expr, negated in atoms_with_polarity(compiled.rule.condition):
                    key = (str(expr), negated)
                    if key not in seen:
                        seen.add(key)
                        entries.append((round_.atoms[key[0]], negated))
                self.conditions[compiled.rule.id] = entries
        order = {rule.id: index for index, rule in enumerate(ruleset.rules)}
        self.compiled_rules.sort(key=lambda c: order[c.rule.id])
        self.derive: dict[str, ValueOf] = {name: value_of(d.expr) for name, d in ruleset.derived.items()}
        self.verdicts: dict[str, VerdictOf] = {rule.id: verdict_of(rule.condition) for rule in ruleset.rules}
        self.effects: dict[str, dict[str, ValueOf]] = {
            rule.id: {field: value_of(expr) for field, expr in rule.effects.items()} for rule in ruleset.rules}

    def validate(self, raw_facts: Any) -> dict[str, Any]:
        return self.validator.validate(raw_facts)

    def evaluate(self, raw_facts: Any, as_of: date, *, decision_id: str | None = None,
                 selected_by: str = "as_of", selection_date: date | None = None) -> Decision:
        facts = self.validator.validate(raw_facts)
        run = _Run(self, facts, as_of)
        run.execute()
        return run.decision(decision_id or str(uuid.uuid4()), selected_by, selection_date or as_of)


class _Run:
    """The state of one evaluation."""

    def __init__(self, evaluator: Evaluator, facts: dict[str, Any], as_of: date) -> None:
        self.evaluator = evaluator
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

    def json_of(self, name: str) -> Any:
        found = self._json.get(name, _MISSING)
        if found is _MISSING:
            found = self._json[name] = to_json_value(self.values.get(name))
        return found

    def execute(self) -> None:
        for name, final_round in self.compiled.outcome_round.items():
            if final_round < 0:
                self._finalise_outcome(name)
        self._derive_up_to(0)
        self._check_constraints()
        for round_ in self.compiled.rounds:
            self._derive_up_to(round_.index)
            self._run_round(round_)
        self._derive_up_to(len(self.compiled.rounds) + 1)

    # --- derived values ----------------------------------------------------------------------

    def _derive_up_to(self, round_index: int) -> None:
        for name, derived in self.ruleset.derived.items():
            if name not in self.derived_traces and self.compiled.derived_level[name] <= round_index:
                self._derive(derived)

    def _derive(self, derived: Derived) -> None:
        try:
            value = self.evaluator.derive[derived.name](self.values, self.context)
        except ValueError as exc:
            # A function refuses inputs that contradict each other (a birth date after the date asked
            # about): name the facts involved, the first as the field.
            facts = [n for n in derived.reads if n in self.ruleset.facts] or [derived.name]
            reason = f"{exc} (while computing {derived.name} = {derived.text} from {', '.join(derived.reads)})"
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
        for name, final_round in self.compiled.outcome_round.items():
            if final_round == round_.index:
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

    # --- the decision ------------------------------------------------------------------------

    def decision(self, decision_id: str, selected_by: str, selection_date: date) -> Decision:
        rules = [self._rule_trace(c) for c in self.evaluator.compiled_rules]
        parameters = [
            ParameterTrace(p.parameter, p.on.isoformat(), p.gyldig_fra.isoformat(), to_json_value(p.value), p.unit)
            for p in self.context.parameter_reads
        ]
        explanation = Explanation(rules, list(self.derived_traces.values()), parameters,
                                  [self.outcome_traces[n] for n in self.ruleset.outcomes])
        outcome = {n: self.json_of(n) for n, spec in self.ruleset.outcomes.items() if not spec.internal}
        manual = [ManualReview(r.id, r.manuell_vurdering) for r in self.ruleset.rules
                  if r.manuell_vurdering and self.applied.get(r.id)]
        meta = self.ruleset.meta
        return Decision(decision_id, meta.name, meta.version, self.ruleset.sha256, self.evaluator._engine_version,
                        self.as_of.isoformat(), selected_by, selection_date.isoformat(),
                        {k: self.json_of(k) for k in self.facts}, outcome, manual, explanation)

    def _rule_trace(self, compiled: CompiledRule) -> RuleTrace:
        rule = compiled.rule
        held = self.held[compiled.round]
        json_of = self.json_of
        conditions = [ConditionTrace(atom.text, held[atom.text], {n: json_of(n) for n in atom.reads}, negated)
                      for atom, negated in self.evaluator.conditions[rule.id]]
        exceptions = [ExceptionTrace(e.id, bool(self.rule_fired.get(e.id))) for e in self._exceptions_to(rule.id)]
        effects = self.evaluator.effects[rule.id]
        result = {field: json_of(expr.name) if isinstance(expr, Name)
                  else to_json_value(effects[field](self.values, self.context))
                  for field, expr in rule.effects.items()}
        return RuleTrace(
            rule.id, rule.title, [self.evaluator._hjemler[h] for h in rule.hjemmel], rule.condition_text,
            self.rule_fired[rule.id], self.applied[rule.id], result, conditions, rule.unntak_fra, exceptions,
            [e.rule_id for e in exceptions if e.held], rule.manuell_vurdering, rule.begrunnelse, compiled.round,
        )


class _Placeholders(dict[str, str]):
    """`{name}` in a constraint message shows that fact's or derived value's value."""

    def __init__(self, run: _Run) -> None:
        super().__init__()
        self.run = run

    def __missing__(self, key: str) -> str:
        if key in self.run.values:
            value = self.run.json_of(key)
            return "null" if value is None else str(value)
        return "{" + key + "}"


def _hjemmel_ref(ruleset: Ruleset, hid: str) -> HjemmelRef:
    h = ruleset.hjemler[hid]
    return HjemmelRef(h.id, h.kilde, h.cite(), h.kapittel, h.paragraf, h.ledd, h.punktum, h.bokstav,
                      h.i_kraft.isoformat() if h.i_kraft else None, h.url, h.verified, h.merknad)
