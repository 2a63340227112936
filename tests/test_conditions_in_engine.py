"""Conditions as decided by durable_rules: traces, many rules, rounds and constraints.

What a condition means case by case (absent values, negation, lists, dates) is kept as data in
tests/semantics/*.yaml and run by test_condition_semantics.py. The property test at the end compares
the engine's verdict on random conditions and random facts with a reference reading of the same
semantics, written here for the test only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regelmotor.core.errors import InvalidFacts
from regelmotor.core.evaluator import Evaluator

AS_OF = date(2026, 1, 1)

FACTS = """\
facts:
  n: {type: int}
  m: {type: int}
  d: {type: date}
  e: {type: date}
  t: {type: datetime}
  x: {type: decimal}
  f: {type: enum, values: [a, b, c]}
  s: {type: string}
  flag: {type: bool}
  items: {type: list, items: {type: enum, values: [a, b, c]}}
"""


def one_rule(condition: str) -> str:
    return FACTS + f"""\
rules:
  - id: r
    title: r
    hjemmel: h1
    when: "{condition}"
    then: {{ok: true}}
outcomes:
  ok: {{type: bool, default: false, combine: any}}
"""


def test_condition_trace_shows_values_read_and_polarity(make_evaluator: Callable[..., Evaluator]) -> None:
    decision = make_evaluator(one_rule("n > 5 and not present(d)")).evaluate({"n": 7}, AS_OF)
    first, second = decision.explanation.rules[0].conditions
    assert (first.condition, first.held, first.reads, first.negated) == ("n > 5", True, {"n": 7}, False)
    assert (second.condition, second.held, second.reads, second.negated) == ("present(d)", False, {"d": None}, True)


def test_many_firing_rules_are_split_across_engine_rulesets(make_evaluator: Callable[..., Evaluator]) -> None:
    # durable_rules fails with error 303 when about 60 rules match one fact; 150 must still work.
    rules = "".join(
        f"  - {{id: r{i}, title: r{i}, hjemmel: h1, when: 'n > {i}', then: {{hits: r{i}}}}}\n" for i in range(150)
    )
    body = "facts:\n  n: {type: int}\nrules:\n" + rules + (
        "outcomes:\n  hits: {type: list, items: {type: string}, combine: collect}\n")
    evaluator = make_evaluator(body)
    assert len(evaluator.compiled.rounds[0].partitions) > 2
    decision = evaluator.evaluate({"n": 1000}, AS_OF)
    assert decision.outcome["hits"] == [f"r{i}" for i in range(150)]
    assert evaluator.evaluate({"n": 10}, AS_OF).outcome["hits"] == [f"r{i}" for i in range(10)]


ROUNDS = """\
facts:
  start: {type: date, required: true}
  uker: {type: int}
derived:
  frist_dato: add_weeks(start, uker)
  frist_pluss: add_days(frist, 1)
rules:
  - id: frist
    title: frist
    hjemmel: h1
    when: present(uker)
    then: {frist: =frist_dato}
  - id: sen
    title: sen
    hjemmel: h1
    when: present(frist) and frist > date('2026-06-01')
    then: {sen: true}
outcomes:
  frist: {type: date}
  sen: {type: bool, default: false, combine: any}
  dagen_etter: {type: date, internal: true}
"""


def test_rules_reading_outcomes_run_in_a_later_round(make_evaluator: Callable[..., Evaluator]) -> None:
    evaluator = make_evaluator(ROUNDS)
    assert [len(r.rules) for r in evaluator.compiled.rounds] == [1, 1]
    decision = evaluator.evaluate({"start": "2026-05-01", "uker": 6}, AS_OF)
    assert decision.outcome == {"frist": "2026-06-12", "sen": True}
    derived = {d.name: d.value for d in decision.explanation.derived}
    assert derived["frist_pluss"] == "2026-06-13"
    assert "dagen_etter" not in decision.outcome  # internal outcomes are explained, not returned
    assert evaluator.evaluate({"start": "2026-05-01"}, AS_OF).outcome == {"frist": None, "sen": False}


def test_long_chains_of_dependencies_get_their_rounds_without_a_depth_limit(
        make_evaluator: Callable[..., Evaluator]) -> None:
    # 100 derived values in a chain, read by the first of 30 rules that each read the outcome of the one
    # before: the rounds come from one linear walk of the graph (graphs.longest_paths), not a recursion.
    derived = "".join(f"  d{i}: coalesce(d{i - 1}, 0)\n" for i in range(1, 101))
    rules = "".join(f"  - {{id: r{i}, title: r, hjemmel: h1, when: 'present(o{i - 1})', then: {{o{i}: {i}}}}}\n"
                    for i in range(1, 31))
    outcomes = "".join(f"  o{i}: {{type: int}}\n" for i in range(31))
    body = ("facts:\n  d0: {type: int}\nderived:\n" + derived + "rules:\n"
            "  - {id: r0, title: r, hjemmel: h1, when: 'present(d100)', then: {o0: 0}}\n" + rules
            + "outcomes:\n" + outcomes)
    evaluator = make_evaluator(body)
    assert [len(r.rules) for r in evaluator.compiled.rounds] == [1] * 31
    assert evaluator.evaluate({"d0": 5}, AS_OF).outcome == {f"o{i}": i for i in range(31)}


CONSTRAINT = FACTS + """\
constraints:
  - id: m-krever-n
    when: present(m) and not present(n)
    field: n
    message: n is required when m is given
rules:
  - {id: r, title: r, hjemmel: h1, when: 'true', then: {ok: true}}
outcomes:
  ok: {type: bool, default: false, combine: any}
"""


def test_constraints_refuse_input_with_field_and_message(make_evaluator: Callable[..., Evaluator]) -> None:
    evaluator = make_evaluator(CONSTRAINT)
    with pytest.raises(InvalidFacts, match=r"^invalid facts: n: n is required when m is given$") as caught:
        evaluator.evaluate({"m": 1}, AS_OF)
    assert [(v.field, v.reason) for v in caught.value.violations] == [("n", "n is required when m is given")]
    assert evaluator.evaluate({"m": 1, "n": 2}, AS_OF).outcome == {"ok": True}


# --- property: the engine agrees with the documented semantics on random conditions ------------

INT_NAMES = ["n", "m"]
ops = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
atom = st.one_of(
    st.builds(lambda a, o, v: (f"{a} {o} {v}", ("cmp", a, o, v)), st.sampled_from(INT_NAMES), ops,
              st.integers(-3, 3)),
    st.builds(lambda o: (f"n {o} m", ("cmp2", "n", o, "m")), ops),
    st.builds(lambda a: (f"present({a})", ("present", a)), st.sampled_from([*INT_NAMES, "f", "items"])),
    st.builds(lambda v: (f"f in {v!r}", ("in", "f", v)), st.lists(st.sampled_from("abc"), min_size=1, max_size=3)),
    st.builds(lambda v: (f"'{v}' in items", ("member", v)), st.sampled_from("abc")),
    st.just(("flag", ("flag",))),
)


def combine(children: Any) -> Any:
    return st.one_of(
        st.builds(lambda a, b: (f"({a[0]}) and ({b[0]})", ("and", a[1], b[1])), children, children),
        st.builds(lambda a, b: (f"({a[0]}) or ({b[0]})", ("or", a[1], b[1])), children, children),
        st.builds(lambda a: (f"not ({a[0]})", ("not", a[1])), children),
    )


conditions = st.recursive(atom, combine, max_leaves=6)
facts_strategy = st.fixed_dictionaries(
    {},
    optional={"n": st.integers(-3, 3), "m": st.integers(-3, 3), "f": st.sampled_from("abc"),
              "items": st.lists(st.sampled_from("abc"), max_size=3), "flag": st.booleans()},
)

_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def reference(tree: Any, facts: dict[str, Any]) -> bool:
    """The documented meaning: a comparison with an absent value does not hold."""
    kind = tree[0]
    if kind == "and":
        return reference(tree[1], facts) and reference(tree[2], facts)
    if kind == "or":
        return reference(tree[1], facts) or reference(tree[2], facts)
    if kind == "not":
        return not reference(tree[1], facts)
    if kind == "cmp":
        value = facts.get(tree[1])
        return value is not None and _PY_OPS[tree[2]](value, tree[3])
    if kind == "cmp2":
        a, b = facts.get("n"), facts.get("m")
        return a is not None and b is not None and _PY_OPS[tree[2]](a, b)
    if kind == "present":
        value = facts.get(tree[1])
        return value is not None and value != []
    if kind == "in":
        return facts.get("f") in tree[2]
    if kind == "member":
        return tree[1] in (facts.get("items") or [])
    return facts.get("flag") is True


_evaluators: dict[str, Evaluator] = {}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(condition=conditions, facts=facts_strategy)
def test_engine_agrees_with_reference_semantics(make_evaluator: Callable[..., Evaluator], condition: Any,
                                                facts: dict[str, Any]) -> None:
    text, tree = condition
    evaluator = _evaluators.get(text)
    if evaluator is None:
        evaluator = _evaluators[text] = make_evaluator(one_rule(text.replace('"', "'")))
    decision = evaluator.evaluate(facts, AS_OF)
    assert decision.explanation.rules[0].fired is reference(tree, facts), (text, facts)


def test_constraint_message_can_show_values(make_evaluator: Callable[..., Evaluator]) -> None:
    evaluator = make_evaluator(CONSTRAINT.replace("n is required when m is given", "n is required when m is {m}"))
    with pytest.raises(InvalidFacts, match=r"^invalid facts: n: n is required when m is 7$") as caught:
        evaluator.evaluate({"m": 7}, AS_OF)
    assert caught.value.violations[0].reason == "n is required when m is 7"


def test_rounds_whose_rules_read_no_name_or_one_name(make_evaluator: Callable[..., Evaluator]) -> None:
    evaluator = make_evaluator("""\
facts:
  n: {type: int}
rules:
  - {id: r, title: r, hjemmel: h1, when: 'true', then: {ok: true}}
  - {id: s, title: s, hjemmel: h1, when: 'ok', then: {again: true}}
outcomes:
  ok: {type: bool, default: false, combine: any}
  again: {type: bool, default: false, combine: any}
""")
    assert [round_.reads for round_ in evaluator.compiled.rounds] == [set(), {"ok"}]
    decision = evaluator.evaluate({}, AS_OF)
    assert decision.outcome == {"ok": True, "again": True}
    assert decision.fired_rules == ["r", "s"]
