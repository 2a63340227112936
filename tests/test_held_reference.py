"""The explanation's "why not" is right: for random facts on every shipped ruleset version, every atomic
condition's `held` equals an independent evaluation of that condition over the values the evaluation used.

The engine decides conditions in durable_rules, from the compiled rules. The reference here reads the
condition's expression tree (regelmotor.core.expressions) and follows the null semantics of
docs/ruleset-format.md: a comparison (<, <=, >, >=, ==, !=) with an absent value does not hold (so
`not (x > 5)` holds when x is absent); `present(x)` is true when x has a value, for a list when it has at
least one item; a bool name on its own holds when it is true. `in` and `not in` are membership, one the
negation of the other: an absent value is in no list and nothing is in an absent (or empty) list, so
`x not in ['a']` holds when x is absent (docs/ruleset-format.md says so and points to the reference cases in
tests/semantics/, which pin it case by case). Nothing of the engine's compiled output is used.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regelmotor.core.api import Regelmotor
from regelmotor.core.decision import Decision
from regelmotor.core.evaluator import Evaluator
from regelmotor.core.expressions import Compare, Expr, ListLiteral, Literal, Name, Present, atoms_with_polarity
from regelmotor.core.model import Ruleset
from regelmotor.core.types import Kind, ValueType
from tests.strategies import facts_in_period, period_dates, plausible_facts_for
from tests.test_properties import VERSIONS, evaluated

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


def _typed(value: Any, vtype: ValueType) -> Any:
    """A decision's plain JSON value (ISO dates, decimals as text) as the typed value it stands for."""
    if value is None:
        return None
    if vtype.kind is Kind.LIST:
        assert vtype.item is not None
        return [_typed(item, vtype.item) for item in value]
    if vtype.kind is Kind.DATE:
        return date.fromisoformat(value)
    if vtype.kind is Kind.DATETIME:
        return datetime.fromisoformat(value)
    if vtype.kind is Kind.DECIMAL:
        return Decimal(str(value))
    return value


def values_used(ruleset: Ruleset, decision: Decision) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every name a condition can read - facts, derived values, outcomes (internal ones too) and as_of - as
    the decision reports it (plain) and typed."""
    plain: dict[str, Any] = {"as_of": decision.as_of, **decision.facts}
    types: dict[str, ValueType] = {"as_of": ValueType(Kind.DATE)}
    types.update({name: spec.type for name, spec in ruleset.facts.items()})
    for derived in decision.explanation.derived:
        plain[derived.name] = derived.value
        types[derived.name] = ruleset.derived[derived.name].type
    for outcome in decision.explanation.outcomes:
        plain[outcome.name] = outcome.value
        types[outcome.name] = ruleset.outcomes[outcome.name].type
    return plain, {name: _typed(value, types[name]) for name, value in plain.items()}


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, list) and not value)


def _operand(expr: Expr, values: dict[str, Any]) -> Any:
    if isinstance(expr, Name):
        return values[expr.name]
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, ListLiteral):
        return [item.value for item in expr.items]
    raise AssertionError(f"a condition operand cannot be {expr}")


def reference_held(atom: Expr, values: dict[str, Any]) -> bool:
    """Whether an atomic condition holds, by the documented semantics."""
    if isinstance(atom, Literal):
        return atom.value is True
    if isinstance(atom, Name):
        return values[atom.name] is True
    if isinstance(atom, Present):
        return not _absent(values[atom.target.name])
    if isinstance(atom, Compare):
        left, right = _operand(atom.left, values), _operand(atom.right, values)
        if atom.op in ("in", "not in"):
            # Membership: an absent value is in no list, and nothing is in an absent list.
            member = not _absent(left) and not _absent(right) and left in right
            return member is (atom.op == "in")
        if _absent(left) or _absent(right):
            return False  # a comparison with an absent value does not hold
        return _ORDER[atom.op](left, right)
    raise AssertionError(f"not an atomic condition: {atom}")


@pytest.mark.parametrize(("motor", "ruleset"), VERSIONS, ids=[r.key for _, r in VERSIONS])
def test_every_conditions_held_is_the_reference_evaluation_of_it(motor: Regelmotor, ruleset: Ruleset) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(facts=facts_in_period(ruleset), as_of=period_dates(ruleset))
    def check(facts: dict[str, Any], as_of: date) -> None:
        decision = evaluated(motor, ruleset, facts, as_of)
        plain, typed = values_used(ruleset, decision)
        traces = {trace.id: trace for trace in decision.explanation.rules}
        assert set(traces) == {rule.id for rule in ruleset.rules}
        for rule in ruleset.rules:
            atoms = atoms_with_polarity(rule.condition)
            conditions = traces[rule.id].conditions
            assert [(c.condition, c.negated) for c in conditions] == [(str(a), n) for a, n in atoms], rule.id
            for (atom, _), trace in zip(atoms, conditions, strict=True):
                assert trace.reads == {name: plain[name] for name in atom.names()}, (rule.id, trace.condition)
                assert trace.held is reference_held(atom, typed), (rule.id, trace.condition, trace.reads)

    check()


# Every operator, name against name and against literal, on every type, each side sometimes absent: the
# shipped rulesets use no `!=` and no `not in`, so this ruleset makes sure those are held to the rules too.
EVERY_OPERATOR = """\
facts:
  x: {type: int}
  y: {type: int}
  q: {type: decimal}
  s: {type: enum, values: [a, b, c]}
  l: {type: list, items: {type: enum, values: [a, b, c]}}
  d: {type: date}
  e: {type: date}
  t: {type: datetime}
  b: {type: bool}
  tekst: {type: string}
rules:
""" + "".join(f"""  - id: r{i}
    title: R{i}
    hjemmel: h1
    when: "{condition}"
    then: {{ok: true}}
""" for i, condition in enumerate([
    "x != 3", "x == y", "x < y", "x >= 2 and y <= 2", "not (x > 5)", "x != y", "q <= 1.5", "q > x",
    "s != 'a'", "s == 'b'", "s in ['a', 'b']", "s not in ['a', 'b']", "'a' in l", "'a' not in l",
    "present(l)", "not present(s)", "d < e", "d != e", "d >= date('2020-01-01')", "e == date('2020-01-01')",
    "t > datetime('2020-01-01T00:00:00+01:00')", "t <= datetime('2020-01-01T12:00:00+00:00')", "b", "not b",
    "b == false", "b != true", "true", "false", "tekst == 'hei'", "tekst != 'hei'", "tekst < 'm'",
    "tekst not in ['hei', 'hallo']", "x in [1, 2, 3] or not (s == 'c')"])) + """outcomes:
  ok: {type: bool, default: false, combine: any}
"""


def test_the_reference_holds_for_every_operator_and_absent_values(make_ruleset: Callable[..., Ruleset]) -> None:
    ruleset = make_ruleset(EVERY_OPERATOR)
    evaluator = Evaluator(ruleset)
    small = {"x": st.integers(0, 6), "y": st.integers(0, 6), "q": st.sampled_from([0.5, 1.5, 2.5, 3.0]),
             "d": st.sampled_from(["2019-12-31", "2020-01-01", "2020-01-02"]),
             "e": st.sampled_from(["2019-12-31", "2020-01-01", "2020-01-02"]),
             "t": st.sampled_from(["2019-12-31T23:00:00+00:00", "2020-01-01T00:00:00+01:00",
                                   "2020-01-01T12:00:00+00:00", "2020-01-01T13:00:00+01:00"]),
             "tekst": st.sampled_from(["", "hei", "hallo", "m", "zebra"])}

    @settings(max_examples=300, deadline=None)
    @given(facts=plausible_facts_for(ruleset, small))
    def check(facts: dict[str, Any]) -> None:
        decision = evaluator.evaluate(facts, date(2026, 1, 1))  # no constraints: nothing is refused
        _, typed = values_used(ruleset, decision)
        for rule, trace in zip(ruleset.rules, decision.explanation.rules, strict=True):
            for (atom, _), condition in zip(atoms_with_polarity(rule.condition), trace.conditions, strict=True):
                assert condition.held is reference_held(atom, typed), (rule.id, condition.condition, condition.reads)

    check()
