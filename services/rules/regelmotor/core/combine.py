"""Combining the values that several applied rules give one outcome field.

A disagreement that the declared policy does not settle is an error, never a silent pick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .errors import Conflict, OutcomeConflict
from .model import Combine, OutcomeSpec


class Contribution(NamedTuple):
    """What one applied rule gives an outcome (a tuple: an evaluation makes one per applied rule and outcome,
    and a frozen dataclass costs three times as much to make)."""

    rule_id: str
    value: Any
    prioritet: int


Result = tuple[Any, list[str]]  # the outcome's value, and the rules that decided it


def combine(spec: OutcomeSpec, contributions: list[Contribution]) -> Result:
    """The outcome's value and the rules that decided it (empty: the default was used)."""
    if not contributions:
        default = spec.default
        return (list(default) if isinstance(default, list) else default), []
    return _POLICIES[spec.combine](spec, contributions)


def _any(spec: OutcomeSpec, contributions: list[Contribution]) -> Result:
    deciding = [c for c in contributions if c.value is True] or contributions
    return any(c.value is True for c in contributions), [c.rule_id for c in deciding]


def _all(spec: OutcomeSpec, contributions: list[Contribution]) -> Result:
    deciding = [c for c in contributions if c.value is not True] or contributions
    return all(c.value is True for c in contributions), [c.rule_id for c in deciding]


def _collect(spec: OutcomeSpec, contributions: list[Contribution]) -> Result:
    items: list[Any] = []
    for c in contributions:
        if c.value is not None and c.value not in items:
            items.append(c.value)
    return items, [c.rule_id for c in contributions]


def _extreme(pick: Callable[[Iterable[Any]], Any]) -> Callable[[OutcomeSpec, list[Contribution]], Result]:
    """min or max of the values present, decided by the rules that gave it."""
    def policy(spec: OutcomeSpec, contributions: list[Contribution]) -> Result:
        present = [c for c in contributions if c.value is not None]
        if not present:
            return None, [c.rule_id for c in contributions]
        best = pick(c.value for c in present)
        return best, [c.rule_id for c in present if c.value == best]

    return policy


def _priority(spec: OutcomeSpec, contributions: list[Contribution]) -> Result:
    top = max(c.prioritet for c in contributions)
    return _unique(spec, [c for c in contributions if c.prioritet == top])


def _unique(spec: OutcomeSpec, contributions: list[Contribution]) -> Result:
    first = contributions[0].value
    if any(c.value != first for c in contributions[1:]):
        raise OutcomeConflict(Conflict(spec.name, {c.rule_id: c.value for c in contributions}), spec.combine.value)
    return first, [c.rule_id for c in contributions]


_POLICIES: dict[Combine, Callable[[OutcomeSpec, list[Contribution]], Result]] = {
    Combine.UNIQUE: _unique,
    Combine.PRIORITY: _priority,
    Combine.ANY: _any,
    Combine.ALL: _all,
    Combine.MIN: _extreme(min),
    Combine.MAX: _extreme(max),
    Combine.COLLECT: _collect,
}
