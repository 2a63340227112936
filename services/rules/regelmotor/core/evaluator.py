"""Evaluate facts against one compiled ruleset version and explain the result.

One way through: validated facts → derived values → durable_rules (round by round) → exceptions
and combine policies → outcome; the explanation is written from the evaluation's read-only face
(regelmotor.core.view, regelmotor.core.explain). Nothing here reads the clock: `as_of` is an input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from . import engine, explain
from .combine import Contribution, combine
from .compiler import PRESENT_MARKER, Atom, CompiledRuleset, Round, compile_ruleset
from .decision import (
    NO_SELECTION,
    Correction,
    Decision,
    DecisionHead,
    DerivedTrace,
    HjemmelRef,
    OutcomeTrace,
    ParameterTrace,
    Selection,
    new_decision_id,
)
from .errors import FieldViolation, InvalidFacts
from .expressions import atoms_with_polarity
from .limits import shown_text
from .model import Derived, Rule, Ruleset
from .plan import EngineFact, EvaluationPlan, RoundPlan, plan_evaluation
from .schema import FactValidator
from .types import encode_for_engine, engine_values, json_values, to_json_value
from .view import Headline, RuleShape
from .vocabulary import CallContext
from .wording import wording

ENGINE_NAME = "regelmotor"


def engine_version() -> str:
    from regelmotor import __version__

    return f"{ENGINE_NAME} {__version__} (durable_rules {engine.DURABLE_RULES_VERSION})"


class Evaluator:
    """A compiled, engine-registered ruleset version, ready to evaluate from any thread.

    Public: `ruleset`, `compiled` (what the engine runs), `engine_version`, `rules` (each rule's shape) and
    the ways to evaluate; the rest is the evaluations' working state, worked out once per version."""

    def __init__(self, ruleset: Ruleset) -> None:
        self._ruleset = ruleset
        self._compiled: CompiledRuleset = compile_ruleset(ruleset)
        self._validator = FactValidator(ruleset.facts)
        for round_ in [self._compiled.constraints, *self._compiled.rounds]:
            for partition in round_.partitions:
                engine.register(partition.engine_name, partition.definition)
        self._engine_version = engine_version()
        # Static shape of the explanation, worked out once so each evaluation only fills in values.
        exceptions: dict[str, list[Rule]] = {rule.id: [] for rule in ruleset.rules}
        for rule in ruleset.rules:
            if rule.unntak_fra:
                exceptions[rule.unntak_fra].append(rule)
        hjemler = {hid: _hjemmel_ref(ruleset, hid) for hid in ruleset.hjemler}
        order = {rule.id: index for index, rule in enumerate(ruleset.rules)}
        shapes: list[RuleShape] = []
        for round_ in self._compiled.rounds:
            for compiled in round_.rules:
                rule = compiled.rule
                shapes.append(RuleShape(rule, compiled.round, tuple(hjemler[h] for h in rule.hjemmel),
                                        tuple(_distinct_atoms(round_, rule)), tuple(exceptions[rule.id]),
                                        wording(rule, ruleset.parameters)))
        shapes.sort(key=lambda shape: order[shape.rule.id])
        self._rules: tuple[RuleShape, ...] = tuple(shapes)
        self._plan: EvaluationPlan = plan_evaluation(self._compiled)
        # What each rule gives each outcome, for the explanation: a name's value (name, None), or the JSON of a
        # literal (None, its JSON), which is the same in every evaluation.
        self._effect_sources: dict[str, dict[str, tuple[str | None, Any]]] = {
            rule.id: explain.effect_sources(rule) for rule in ruleset.rules}
        self._decision_plan = explain.plan_decision(ruleset, self._rules)

    @property
    def ruleset(self) -> Ruleset:
        return self._ruleset

    @property
    def compiled(self) -> CompiledRuleset:
        """The ruleset as the engine runs it (rounds, partitions, atoms)."""
        return self._compiled

    @property
    def engine_version(self) -> str:
        return self._engine_version

    @property
    def rules(self) -> tuple[RuleShape, ...]:
        """Every rule's shape, in file order: the same objects for every evaluation of this version."""
        return self._rules

    def validate(self, raw_facts: Any) -> dict[str, Any]:
        return self._validator.validate(raw_facts)

    def run(self, raw_facts: Any, as_of: date, *, selected_by: str = "as_of",
            selection_date: date | None = None, selection: Selection | None = None) -> Evaluation:
        """Validate the facts and evaluate every round; the result can then be explained. `selection`: what
        the decision says of how its version was chosen beyond the date (a correction, a known_at)."""
        evaluation = Evaluation(self, self._validator.validate(raw_facts), as_of, selected_by, selection_date,
                                selection)
        evaluation._execute()
        return evaluation

    def evaluate(self, raw_facts: Any, as_of: date, *, decision_id: str | None = None,
                 selected_by: str = "as_of", selection_date: date | None = None) -> Decision:
        evaluation = self.run(raw_facts, as_of, selected_by=selected_by, selection_date=selection_date)
        return evaluation.decision(decision_id or new_decision_id())


class Evaluation:
    """One evaluation of validated facts: the values, the engine's verdicts and the outcome.

    Made by `Evaluator.run`. Its public face is `EvaluationView` (regelmotor.core.view): read-only values,
    verdicts and traces for the writers of its answer; `head()` and `decision()` explain it
    (regelmotor.core.explain). Its state is its own, and nothing changes it once it has run."""

    def __init__(self, evaluator: Evaluator, facts: dict[str, Any], as_of: date, selected_by: str = "as_of",
                 selection_date: date | None = None, selection: Selection | None = None) -> None:
        self._evaluator = evaluator
        self._ruleset = evaluator.ruleset
        self._as_of = as_of
        self._selected_by = selected_by
        self._selection_date = selection_date or as_of
        self._selection = selection or NO_SELECTION
        self._facts = facts
        self._values: dict[str, Any] = {**facts, "as_of": as_of}
        # Each value as the engine compares it, made when the value is set (values never change once set), so
        # that a round's fact is picked from here in one step (EngineFact.pick).
        self._encoded = _EngineValues(engine_values(self._values))
        self._context = CallContext(self._ruleset.parameters, self._ruleset.tables)
        self._held: dict[int, Mapping[str, bool]] = {}  # round -> atom text -> the engine's verdict
        self._rule_fired: dict[str, bool] = {}
        self._applied: dict[str, bool] = {}
        self._deciding: dict[str, list[str]] = {}  # outcome -> the rules that decided it (empty: its default)
        self._json = _JsonValues(self._values)  # JSON form of each value, made once: values never change once set
        # The traces are written from the values when first asked for: the explanation's writers ask, a caller
        # who wants only the outcome does not pay for them.
        self._derived_traces: list[DerivedTrace] | None = None
        self._outcome_traces: list[OutcomeTrace] | None = None

    # --- the public, read-only face (EvaluationView) -----------------------------------------

    @property
    def ruleset(self) -> Ruleset:
        return self._ruleset

    @property
    def rules(self) -> tuple[RuleShape, ...]:
        return self._evaluator.rules

    @property
    def engine_version(self) -> str:
        return self._evaluator.engine_version

    @property
    def as_of(self) -> date:
        return self._as_of

    @property
    def selected_by(self) -> str:
        return self._selected_by

    @property
    def selection_date(self) -> date:
        return self._selection_date

    @property
    def correction(self) -> Correction | None:
        return self._selection.correction

    @property
    def known_at(self) -> str | None:
        return self._selection.known_at

    # The mappings are the evaluation's own, handed out as `Mapping`: read-only to every writer, as mypy (strict)
    # checks. A MappingProxyType would also refuse changes at run time, but reading through it cost the
    # answer's writers about 2.5 µs per decision (BENCHMARKS.md, 2026-12-06, the layers).

    @property
    def facts(self) -> Mapping[str, Any]:
        return self._facts

    @property
    def held(self) -> Mapping[int, Mapping[str, bool]]:
        return self._held

    @property
    def rule_fired(self) -> Mapping[str, bool]:
        return self._rule_fired

    @property
    def applied(self) -> Mapping[str, bool]:
        return self._applied

    @property
    def json_of(self) -> Callable[[str], Any]:
        """The JSON value of a name (None when it has none). A lookup in the evaluation's JSON values, which
        makes each the first time it is asked for: the explanation's writers ask about 150 times a decision."""
        return self._json.__getitem__

    @property
    def json_values(self) -> Mapping[str, Any]:
        """Every value's JSON by name, made in one go once the evaluation has run (those made already are kept):
        the Decision builder reads nearly all of them; a name without a value reads None."""
        json = self._json
        if not json.complete:
            made = json_values(self._values)
            if json:
                made.update(json)
            json.update(made)
            json.complete = True
        return json

    def effect_json(self, rule: Rule, field: str) -> Any:
        """The JSON value that `rule` gives `field` when applied, or would give, once all rounds have run."""
        name, constant = self._evaluator._effect_sources[rule.id][field]
        if name is not None:
            return self._json[name]
        return list(constant) if isinstance(constant, list) else constant  # a list of its own: the caller's

    @property
    def derived(self) -> list[DerivedTrace]:
        if self._derived_traces is None:
            json = self.json_values
            traces = []
            # In the order computed: the plan's steps, every one of which has run (else there is no evaluation).
            for d in self._evaluator._plan.derived_in_order:
                reads = d.reads
                inputs = {reads[0]: json[reads[0]]} if len(reads) == 1 else {n: json[n] for n in reads}
                traces.append(DerivedTrace(d.name, d.text, inputs, json[d.name]))
            self._derived_traces = traces
        return list(self._derived_traces)

    @property
    def parameters(self) -> list[ParameterTrace]:
        return [ParameterTrace(p.parameter, p.on.isoformat(), p.gyldig_fra.isoformat(), to_json_value(p.value), p.unit,
                               p.sekundaerkilde)
                for p in self._context.parameter_reads]

    @property
    def outcomes(self) -> list[OutcomeTrace]:
        if self._outcome_traces is None:
            json, deciding = self.json_values, self._deciding
            self._outcome_traces = [OutcomeTrace(name, json[name], policy, deciding[name], internal)
                                    for name, policy, internal in self._evaluator._plan.outcomes]
        return list(self._outcome_traces)

    @property
    def headline(self) -> Headline | None:
        name = self._ruleset.meta.headline
        return None if name is None else Headline(name, self.json_of(name))

    def head(self, decision_id: str) -> DecisionHead:
        """The decision without its explanation (regelmotor.core.explain)."""
        return explain.head(self, self._evaluator._decision_plan, decision_id)

    def decision(self, decision_id: str) -> Decision:
        """The decision with its explanation (regelmotor.core.explain)."""
        return explain.decision(self, self._evaluator._decision_plan, decision_id)

    # --- evaluating --------------------------------------------------------------------------

    def _execute(self) -> None:
        plan = self._evaluator._plan
        self._finalise(plan.finalised_first)
        steps = plan.derive_steps
        self._derive_step(steps[0])
        if plan.constraints is not None:
            self._check_constraints(plan.constraints)
        for step, round_ in enumerate(plan.rounds, start=1):
            self._derive_step(steps[step])
            self._run_round(round_)
        self._derive_step(steps[-1])

    # --- derived values ----------------------------------------------------------------------

    def _derive_step(self, step: tuple[Derived, ...]) -> None:
        derive = self._evaluator._plan.derive
        for derived in step:
            try:
                value = derive[derived.name](self._values, self._context)
            except (ValueError, ArithmeticError) as exc:
                raise self._refusal(derived, exc) from None
            self._values[derived.name] = value
            self._encoded[derived.name] = encode_for_engine(value)

    def _refusal(self, derived: Derived, exc: ValueError | ArithmeticError) -> InvalidFacts:
        # A function refuses inputs that contradict each other (a birth date after the date asked
        # about), or its arithmetic leaves what a value can hold (a date past 9999, a decimal
        # overflow): either way the facts did it, so name the facts involved, the first as the field.
        facts = [n for n in derived.reads if n in self._ruleset.facts] or [derived.name]
        problem = str(exc) if isinstance(exc, ValueError) else "the result is out of range"
        reason = f"{problem} (while computing {derived.name} = {derived.text} from {', '.join(derived.reads)})"
        return InvalidFacts([FieldViolation(facts[0], reason)])

    def _check_constraints(self, checks: EngineFact) -> None:
        self._refuse_violations(engine.fire(checks.engine_names, self._engine_fact(checks)))

    def _refuse_violations(self, fired: set[str]) -> None:
        violations = [
            FieldViolation(c.field, c.message.format_map(_Placeholders(self._values, self.json_of)))
            for index, c in enumerate(self._ruleset.constraints)
            if f"v{index}" in fired
        ]
        if violations:
            raise InvalidFacts(violations)

    def _engine_fact(self, fact: EngineFact) -> dict[str, Any]:
        encoded = dict(zip(fact.reads, fact.pick(self._encoded), strict=True))
        encoded[PRESENT_MARKER] = 1
        return encoded

    # --- engine rounds -----------------------------------------------------------------------

    def _run_round(self, round_: RoundPlan) -> None:
        # The engine decides every atomic condition (for the explanation) and every rule: which rules fire is
        # its verdict alone. That each rule's verdict is the and/or/not of its atoms' verdicts is checked by the
        # tests (tests/test_verdicts_agree.py), on every bundled case and on random facts, not again here.
        fired = engine.fire(round_.fact.engine_names, self._engine_fact(round_.fact))
        if round_.checks_constraints:
            self._refuse_violations(fired)
        self._held[round_.index] = {text: engine_id in fired for text, engine_id in round_.atoms}
        rule_fired = self._rule_fired
        applied = self._applied
        for rule_id, engine_id in round_.rules:
            rule_fired[rule_id] = applied[rule_id] = engine_id in fired
        # An exception overrides its base whenever its own condition holds (Catala-style default
        # logic): the base rule then gives nothing, whatever the order of the rules in the file.
        for rule_id, exceptions in round_.overridable:
            if rule_fired[rule_id] and any(rule_fired[e] for e in exceptions):
                applied[rule_id] = False
        self._finalise(round_.finalises)

    def _finalise(self, names: tuple[str, ...]) -> None:
        """Combine what the applied rules give each of these outcomes (its default when none gives anything)."""
        applied, values, context, deciding = self._applied, self._values, self._context, self._deciding
        setters, specs, encoded = self._evaluator._plan.setters, self._ruleset.outcomes, self._encoded
        for name in names:
            contributions = [Contribution(setter.rule_id, setter.effect(values, context), setter.prioritet)
                             for setter in setters[name] if applied.get(setter.rule_id)]
            values[name], deciding[name] = combine(specs[name], contributions)
            encoded[name] = encode_for_engine(values[name])


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


class _EngineValues(dict[str, Any]):
    """The values as the engine compares them; a name without a value is absent (null) to the engine."""

    def __missing__(self, name: str) -> Any:
        return None


class _JsonValues(dict[str, Any]):
    """The JSON form of an evaluation's values, each made when first asked for."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__()
        self.known = values
        self.complete = False  # every value has its JSON here (Evaluation.json_values)

    def __missing__(self, name: str) -> Any:
        found = self[name] = to_json_value(self.known.get(name))
        return found


class _Placeholders(dict[str, str]):
    """`{name}` in a constraint message shows that fact's or derived value's value."""

    def __init__(self, values: Mapping[str, Any], json_of: Callable[[str], Any]) -> None:
        super().__init__()
        self.known = values
        self.json_of = json_of

    def __missing__(self, key: str) -> str:
        if key in self.known:
            value = self.json_of(key)
            return "null" if value is None else shown_text(str(value))  # input: shown shortened
        return "{" + key + "}"


def _hjemmel_ref(ruleset: Ruleset, hid: str) -> HjemmelRef:
    h = ruleset.hjemler[hid]
    return HjemmelRef(h.id, h.kilde, h.cite(), h.kapittel, h.paragraf, h.ledd, h.punktum, h.bokstav,
                      h.i_kraft.isoformat() if h.i_kraft else None, h.url, h.verified, h.merknad)
