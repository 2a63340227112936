"""Combining the values that several applied rules give one outcome field.

A disagreement that the declared policy does not settle is an error, never a silent pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import Conflict, OutcomeConflict
from .model import Combine, OutcomeSpec


@dataclass(frozen=True)
class Contribution:
    rule_id: str
    value: Any
    prioritet: int


def combine(spec: OutcomeSpec, contributions: list[Contribution]) -> tuple[Any, list[str]]:
    """The outcome's value and the rules that decided it (empty: the default was used)."""
    if not contributions:
        default = spec.default
        return (list(default) if isinstance(default, list) else default), []
    policy = spec.combine
    if policy is Combine.ANY:
        deciding = [c for c in contributions if c.value is True] or contributions
        return any(c.value is True for c in contributions), [c.rule_id for c in deciding]
    if policy is Combine.ALL:
        deciding = [c for c in contributions if c.value is not True] or contributions
        return all(c.value is True for c in contributions), [c.rule_id for c in deciding]
    if policy is Combine.COLLECT:
        items: list[Any] = []
        for c in contributions:
            if c.value is not None and c.value not in items:
                items.append(c.value)
        return items, [c.rule_id for c in contributions]
    if policy in (Combine.MIN, Combine.MAX):
        present = [c for c in contributions if c.value is not None]
        if not present:
            return None, [c.rule_id for c in contributions]
        pick = min if policy is Combine.MIN else max
        best = pick(c.value for c in present)
        return best, [c.rule_id for c in present if c.value == best]
    if policy is Combine.PRIORITY:
        top = max(c.prioritet for c in contributions)
        contributions = [c for c in contributions if c.prioritet == top]
    return _unique(spec, contributions)


def _unique(spec: OutcomeSpec, contributions: list[Contribution]) -> tuple[Any, list[str]]:
    first = contributions[0].value
    if any(c.value != first for c in contributions[1:]):
        raise OutcomeConflict(Conflict(spec.name, {c.rule_id: c.value for c in contributions}), spec.combine.value)
    return first, [c.rule_id for c in contributions]
