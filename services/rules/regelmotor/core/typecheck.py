"""Type checking of expressions against a ruleset's names, before anything is evaluated.

Conditions may only contain what durable_rules decides: comparisons of a name with a literal or
another name, `in` with a literal list or on a list fact, presence tests and boolean names, joined
by and/or/not. Computation belongs in derived values, which are typed here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .expressions import (
    And,
    Call,
    Compare,
    Expr,
    ListLiteral,
    Literal,
    Name,
    Not,
    Or,
    Present,
    render_literal,
)
from .types import BOOL, DATE, DATETIME, DECIMAL, INT, NULL, STRING, Kind, ValueType, list_of
from .vocabulary import DATA_NAME_ARGS, FUNCTIONS, Arg, Scope, SignatureError


class ExpressionTypeError(ValueError):
    def __init__(self, message: str, expr: Expr | None = None) -> None:
        super().__init__(message)
        self.expr = expr


@dataclass(frozen=True)
class NameInfo:
    type: ValueType
    kind: str  # "fact", "derived", "outcome", "builtin"


def literal_type(value: object) -> ValueType:
    from datetime import date, datetime
    from decimal import Decimal

    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, (float, Decimal)):
        return DECIMAL
    if isinstance(value, str):
        return STRING
    if isinstance(value, datetime):
        return DATETIME
    if isinstance(value, date):
        return DATE
    if isinstance(value, list):
        return list_of(literal_type(value[0]) if value else STRING)
    raise ExpressionTypeError(f"unsupported literal {value!r}")


class TypeChecker:
    def __init__(self, names: Mapping[str, NameInfo], scope: Scope) -> None:
        self.names = names
        self.scope = scope

    def name_type(self, name: Name) -> ValueType:
        info = self.names.get(name.name)
        if info is None:
            raise ExpressionTypeError(f"unknown fact or value {name.name!r}", name)
        return info.type

    # --- derived values -----------------------------------------------------------------------

    def infer(self, expr: Expr) -> ValueType:
        """The type of a derived-value expression."""
        if isinstance(expr, Name):
            return self.name_type(expr)
        if isinstance(expr, Literal):
            return literal_type(expr.value)
        if isinstance(expr, ListLiteral):
            return list_of(literal_type(expr.items[0].value) if expr.items else STRING)
        if isinstance(expr, Call):
            return self._infer_call(expr)
        raise ExpressionTypeError(
            f"{expr} is a condition; a derived value is a function call, a name or a literal "
            "(put conditions in rules)",
            expr,
        )

    def _infer_call(self, call: Call) -> ValueType:
        function = FUNCTIONS.get(call.func)
        if function is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExpressionTypeError(f"unknown function {call.func!r}; the vocabulary is: {known}", call)
        data_args = DATA_NAME_ARGS.get(call.func, ())
        args = [
            Arg(a, literal_type(a.value) if i in data_args and isinstance(a, Literal) else self.infer(a))
            if not isinstance(a, ListLiteral)
            else Arg(a, self.infer(a))
            for i, a in enumerate(call.args)
        ]
        try:
            return function.check(args, self.scope)
        except SignatureError as exc:
            raise ExpressionTypeError(str(exc), call) from None

    # --- conditions ---------------------------------------------------------------------------

    def check_condition(self, expr: Expr) -> None:
        if isinstance(expr, (And, Or)):
            for item in expr.items:
                self.check_condition(item)
            return
        if isinstance(expr, Not):
            self.check_condition(expr.item)
            return
        if isinstance(expr, Present):
            self.name_type(expr.target)
            return
        if isinstance(expr, Name):
            found = self.name_type(expr)
            if found.kind is not Kind.BOOL:
                raise ExpressionTypeError(
                    f"{expr.name} is {found}, not bool: compare it with something, e.g. {expr.name} == ...",
                    expr,
                )
            return
        if isinstance(expr, Literal) and isinstance(expr.value, bool):
            return
        if isinstance(expr, Compare):
            self._check_compare(expr)
            return
        if isinstance(expr, Call):
            raise ExpressionTypeError(
                f"function calls are not allowed in a condition ({expr}); define a derived value and "
                "compare that",
                expr,
            )
        raise ExpressionTypeError(f"{expr} is not a condition", expr)

    def _check_compare(self, cmp: Compare) -> None:
        left, right = cmp.left, cmp.right
        if cmp.op in ("in", "not in"):
            self._check_membership(cmp)
            return
        for side in (left, right):
            if isinstance(side, Literal) and side.value is None:
                raise ExpressionTypeError(
                    f"{cmp}: compare with null is not allowed; use present(x) or not present(x)", cmp
                )
            if isinstance(side, Call):
                raise ExpressionTypeError(
                    f"function calls are not allowed in a condition ({side}); define a derived value and "
                    "compare that",
                    cmp,
                )
            if not isinstance(side, (Name, Literal)):
                raise ExpressionTypeError(f"{cmp}: each side must be a name or a literal", cmp)
        if isinstance(left, Literal) and isinstance(right, Literal):
            raise ExpressionTypeError(f"{cmp} compares two constants", cmp)
        left_type = self._side_type(left)
        right_type = self._side_type(right)
        self._require_comparable(cmp, left, left_type, right, right_type)
        if cmp.op not in ("==", "!=") and left_type.kind in (Kind.BOOL, Kind.ENUM):
            raise ExpressionTypeError(f"{cmp}: {left_type.kind.value} values can only be tested with == or !=", cmp)

    def _side_type(self, side: Expr) -> ValueType:
        if isinstance(side, Name):
            return self.name_type(side)
        assert isinstance(side, Literal)
        return literal_type(side.value)

    def _require_comparable(
        self, cmp: Compare, left: Expr, left_type: ValueType, right: Expr, right_type: ValueType
    ) -> None:
        if left_type.kind is Kind.LIST or right_type.kind is Kind.LIST:
            raise ExpressionTypeError(f"{cmp}: a list can only be tested with `'value' in list`", cmp)
        if not left_type.comparable_with(right_type):
            hint = ""
            if {left_type.kind, right_type.kind} == {Kind.DATE, Kind.STRING}:
                hint = "; write a date as date('YYYY-MM-DD')"
            raise ExpressionTypeError(
                f"type mismatch in {cmp}: {left} is {left_type}, {right} is {right_type}{hint}", cmp
            )
        for name_side, name_type, other in ((left, left_type, right), (right, right_type, left)):
            if name_type.kind is Kind.ENUM and isinstance(other, Literal):
                self._require_enum_value(cmp, name_side, name_type, other)

    def _require_enum_value(self, cmp: Expr, name: Expr, enum: ValueType, literal: Literal) -> None:
        if literal.value not in enum.values:
            raise ExpressionTypeError(
                f"{render_literal(literal.value)} is not a value of {name}; its values are: "
                + ", ".join(enum.values),
                cmp,
            )

    def _check_membership(self, cmp: Compare) -> None:
        left, right = cmp.left, cmp.right
        if isinstance(right, ListLiteral):
            if not isinstance(left, Name):
                raise ExpressionTypeError(f"{cmp}: the left side of `in [...]` must be a name", cmp)
            left_type = self.name_type(left)
            if not right.items:
                raise ExpressionTypeError(f"{cmp}: the list is empty", cmp)
            for item in right.items:
                self._require_comparable(cmp, left, left_type, item, literal_type(item.value))
            return
        if isinstance(right, Name):
            list_type = self.name_type(right)
            if list_type.kind is not Kind.LIST or list_type.item is None:
                raise ExpressionTypeError(f"{cmp}: {right} is {list_type}, not a list", cmp)
            if not isinstance(left, Literal):
                raise ExpressionTypeError(
                    f"{cmp}: the value tested for membership in a list must be a literal", cmp
                )
            self._require_comparable(cmp, right, list_type.item, left, literal_type(left.value))
            return
        raise ExpressionTypeError(f"{cmp}: `in` needs a literal list or a list fact on the right", cmp)


__all__ = ["BOOL", "DATE", "DATETIME", "DECIMAL", "INT", "STRING", "ExpressionTypeError", "NameInfo", "TypeChecker"]
