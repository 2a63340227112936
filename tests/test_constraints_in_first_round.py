"""The constraints are checked in the same engine assert as the first round's rules when they fit its engine
rulesets (one assert fewer per evaluation), and in an assert of their own when they do not: either way the facts
are refused with the same fields and messages, and facts that pass get the same decision."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from regelmotor.core.errors import InvalidFacts
from regelmotor.core.evaluator import Evaluator

AS_OF = date(2026, 1, 1)


def constrained(rules: int) -> str:
    listed = "".join(f"  - {{id: r{i}, title: r{i}, hjemmel: h1, when: 'n > {i}', then: {{ok: true}}}}\n"
                     for i in range(rules))
    return f"""\
facts:
  n: {{type: int}}
  m: {{type: int}}
constraints:
  - id: n-med-m
    when: present(m) and not present(n)
    field: n
    message: n is required when m is given (m = {{m}})
rules:
{listed}outcomes:
  ok: {{type: bool, default: false, combine: any}}
"""


# 20 rules and their 20 atoms fill an engine ruleset (compiler.MAX_RULES_PER_PARTITION): a check would need another.
@pytest.mark.parametrize(("rules", "shared"), [(3, True), (20, False)], ids=["fit: shared", "full: their own"])
def test_constraints_refuse_the_same_whether_or_not_they_share_the_first_rounds_assert(
        make_evaluator: Callable[..., Evaluator], rules: int, shared: bool) -> None:
    evaluator = make_evaluator(constrained(rules))
    compiled = evaluator.compiled
    assert compiled.rounds[0].checks_constraints is shared
    assert bool(compiled.constraints.partitions) is not shared
    with pytest.raises(InvalidFacts, match="n is required when m is given") as caught:
        evaluator.evaluate({"m": 7}, AS_OF)
    assert [(v.field, v.reason) for v in caught.value.violations] == [("n", "n is required when m is given (m = 7)")]
    decision = evaluator.evaluate({"m": 7, "n": 2}, AS_OF)
    assert decision.outcome == {"ok": True}
    assert decision.fired_rules == ["r0", "r1"]
