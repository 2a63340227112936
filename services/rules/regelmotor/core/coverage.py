"""What a version's test cases leave untested: rules and exceptions no case fires, outcome values no case expects.

A case covers a rule when the rule's condition held in its decision (fired, whether or not an exception then
overrode it), passed or not: a failing case is reported as failing, and counting it here keeps the two
reports independent. An outcome value is covered when some case's `expect` names it: for an enum outcome each
of its values, for a bool outcome true and false, for a list of enums each value appearing in an expected list.
Internal outcomes are left out (a case cannot expect them); so are outcomes of other types, whose values
cannot be listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .cases import Case, CaseResult
from .model import Ruleset
from .types import Kind, ValueType, to_json_value


@dataclass(frozen=True)
class Coverage:
    """What the cases of one version leave untested."""

    rules_not_fired: tuple[str, ...]  # rules that are not exceptions, in file order
    exceptions_not_fired: tuple[str, ...]  # rules with `unntak_fra`, in file order
    values_not_expected: dict[str, tuple[str, ...]]  # outcome -> its values no case expects (only when some)
    cases: int  # the cases that gave a decision

    @property
    def complete(self) -> bool:
        return not (self.rules_not_fired or self.exceptions_not_fired or self.values_not_expected)


def listed_values(vtype: ValueType) -> tuple[str, ...] | None:
    """The values of a type as a cases file writes them, when they can be listed (enum, bool, list of enums)."""
    if vtype.kind is Kind.LIST and vtype.item is not None:
        vtype = vtype.item
    if vtype.kind is Kind.ENUM:
        return tuple(vtype.values)
    if vtype.kind is Kind.BOOL:
        return ("true", "false")
    return None


def _written(value: Any) -> Iterable[str]:
    """An expected value as the texts it covers: a list covers each of its items."""
    if isinstance(value, list):
        for item in value:
            yield from _written(item)
    elif isinstance(value, bool):
        yield "true" if value else "false"
    elif value is not None:
        yield str(to_json_value(value))


def _expected(cases: Iterable[Case], name: str) -> set[str]:
    found: set[str] = set()
    for case in cases:
        if name in case.expect:
            found.update(_written(case.expect[name]))
    return found


def coverage(ruleset: Ruleset, results: Iterable[CaseResult]) -> Coverage:
    """What the cases behind `results` (each case run on `ruleset`) leave untested."""
    ran = list(results)
    fired: set[str] = set()
    for result in ran:
        if result.decision is not None:
            fired.update(result.decision.fired_rules)
    missing = [rule for rule in ruleset.rules if rule.id not in fired]
    values: dict[str, tuple[str, ...]] = {}
    for name, spec in ruleset.outcomes.items():
        listed = listed_values(spec.type)
        if spec.internal or listed is None:
            continue
        expected = _expected((result.case for result in ran), name)
        untested = tuple(value for value in listed if value not in expected)
        if untested:
            values[name] = untested
    return Coverage(tuple(r.id for r in missing if r.unntak_fra is None),
                    tuple(r.id for r in missing if r.unntak_fra is not None), values,
                    sum(1 for result in ran if result.decision is not None))
