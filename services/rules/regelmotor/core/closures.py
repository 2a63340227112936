"""Expressions turned into Python closures once per ruleset version, so evaluation does not walk the
expression tree (and format its atoms as text) on every call.

Two kinds:
- `value_of(expr)`: a derived value's or an effect's expression, computed from the values known so far
  (the same rules as before: a vocabulary call with a null value argument is null when the function
  says nulls propagate; a data-name argument is passed as written);
- `verdict_of(expr)`: a rule's condition joined from the engine's verdicts on its atoms, for the
  check that the engine's verdict on the whole rule agrees with them (tests/test_verdicts_agree.py). The
  atoms themselves are decided by durable_rules; this only combines them with the rule's and/or/not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import EngineFailure
from .expressions import And, Call, Expr, ListLiteral, Literal, Name, Not, Or
from .vocabulary import DATA_NAME_ARGS, FUNCTIONS, CallContext

ValueOf = Callable[[Mapping[str, Any], CallContext], Any]
VerdictOf = Callable[[Mapping[str, bool]], bool]


def value_of(expr: Expr) -> ValueOf:
    if isinstance(expr, Name):
        name = expr.name
        return lambda values, _context: values.get(name)
    if isinstance(expr, Literal):
        constant = expr.value
        return lambda _values, _context: constant
    if isinstance(expr, ListLiteral):
        items = [item.value for item in expr.items]
        return lambda _values, _context: list(items)  # a fresh list: a function may keep what it is given
    if isinstance(expr, Call):
        return _call(expr)

    def refuse(_values: Mapping[str, Any], _context: CallContext) -> Any:
        raise EngineFailure(f"a derived value cannot be {expr}")

    return refuse


def _call(expr: Call) -> ValueOf:
    function = FUNCTIONS[expr.func]
    data_args = DATA_NAME_ARGS.get(expr.func, ())
    arguments = [value_of(argument) for argument in expr.args]  # a data name is a Literal: passed as written
    implementation = function.impl
    if not function.nulls_propagate:
        return lambda values, context: implementation(context, *[a(values, context) for a in arguments])
    nullable = tuple(i not in data_args for i in range(len(arguments)))  # a null here makes the call's value null
    shape = _value_run(expr, nullable)
    if shape is not None:
        head, first, count, tail = shape
        if count == 1:
            return _one_value(implementation, head, arguments[first], tail)
        return _two_values(implementation, head, arguments[first], arguments[first + 1], tail)

    def call(values: Mapping[str, Any], context: CallContext) -> Any:
        computed = [a(values, context) for a in arguments]
        for value, can_null in zip(computed, nullable, strict=True):
            if value is None and can_null:
                return None
        return implementation(context, *computed)

    return call


def _value_run(expr: Call, nullable: tuple[bool, ...]) -> tuple[tuple[Any, ...], int, int, tuple[Any, ...]] | None:
    """For a call of one or two values in a row, every other argument a literal data name (age_on(a, b),
    lookup('tabell', a, 'kolonne'), parameter('navn', a), ...): the literals before them, the position of the
    first value, how many values, and the literals after them. None for any other call."""
    values = [i for i, can_null in enumerate(nullable) if can_null]
    if len(values) not in (1, 2) or values[-1] - values[0] != len(values) - 1:
        return None
    constants = [arg.value if isinstance(arg, Literal) else None for arg in expr.args]
    if any(not isinstance(expr.args[i], Literal) for i, can_null in enumerate(nullable) if not can_null):
        return None
    return tuple(constants[: values[0]]), values[0], len(values), tuple(constants[values[-1] + 1 :])


# The common shapes of call, written out: about half the cost of the general call. Every argument is computed
# before any null is looked at, as in the general call, so an argument that fails fails here too; a data name
# is a constant, passed as written.
def _one_value(implementation: Callable[..., Any], head: tuple[Any, ...], argument: ValueOf,
               tail: tuple[Any, ...]) -> ValueOf:
    def call(values: Mapping[str, Any], context: CallContext) -> Any:
        value = argument(values, context)
        return None if value is None else implementation(context, *head, value, *tail)

    return call


def _two_values(implementation: Callable[..., Any], head: tuple[Any, ...], first: ValueOf, second: ValueOf,
                tail: tuple[Any, ...]) -> ValueOf:
    def call(values: Mapping[str, Any], context: CallContext) -> Any:
        a, b = first(values, context), second(values, context)
        return None if a is None or b is None else implementation(context, *head, a, b, *tail)

    return call


def verdict_of(expr: Expr) -> VerdictOf:
    if isinstance(expr, And):
        parts = [verdict_of(item) for item in expr.items]
        return lambda held: all(part(held) for part in parts)
    if isinstance(expr, Or):
        parts = [verdict_of(item) for item in expr.items]
        return lambda held: any(part(held) for part in parts)
    if isinstance(expr, Not):
        inner = verdict_of(expr.item)
        return lambda held: not inner(held)
    text = str(expr)  # an atom: the engine's verdict on it, by its text
    return lambda held: held[text]
