"""The small expression language of conditions and derived values.

Authors write Python-like text: ``alder < 23 and fagomrade in ['tsb', 'psykisk_helsevern_voksne']``,
``present(vurdert_dato)``, ``'injiserer' in individuelle_forhold``, ``add_working_days(ansiennitetsdato, 10)``.
It is parsed with Python's own `ast` module and then restricted to a closed set of node kinds, so
nothing an author writes can run arbitrary code.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from . import values
from .limits import MAX_SAFE_INTEGER

_AST_OPS: dict[type[ast.cmpop], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_KEYWORD_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}
# Bounds on what one expression may be: the longest bundled one has under 300 characters and a few
# levels; these keep parsing and every recursive walk over the tree far from Python's limits.
MAX_EXPRESSION_CHARS = 4000
MAX_EXPRESSION_DEPTH = 40
MAX_INT = MAX_SAFE_INTEGER  # like an int fact: a JSON number holds it exactly


@dataclass(frozen=True)
class Expr:
    col: int  # 0-based column in the expression text
    line: int  # 1-based line within the expression text

    def names(self) -> set[str]:
        return set()


@dataclass(frozen=True)
class Name(Expr):
    name: str

    def names(self) -> set[str]:
        return {self.name}

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Literal(Expr):
    value: Any

    def __str__(self) -> str:
        return render_literal(self.value)


@dataclass(frozen=True)
class ListLiteral(Expr):
    items: tuple[Literal, ...]

    def __str__(self) -> str:
        return "[" + ", ".join(str(i) for i in self.items) + "]"


@dataclass(frozen=True)
class Call(Expr):
    func: str
    args: tuple[Expr, ...]

    def names(self) -> set[str]:
        out: set[str] = set()
        for arg in self.args:
            out |= arg.names()
        return out

    def __str__(self) -> str:
        return f"{self.func}(" + ", ".join(str(a) for a in self.args) + ")"


@dataclass(frozen=True)
class Present(Expr):
    """``present(x)``: x has a value (for a list: at least one item)."""

    target: Name

    def names(self) -> set[str]:
        return {self.target.name}

    def __str__(self) -> str:
        return f"present({self.target})"


@dataclass(frozen=True)
class Compare(Expr):
    op: str
    left: Expr
    right: Expr

    def names(self) -> set[str]:
        return self.left.names() | self.right.names()

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True)
class And(Expr):
    items: tuple[Expr, ...]

    def names(self) -> set[str]:
        return set().union(*(i.names() for i in self.items))

    def __str__(self) -> str:
        return " and ".join(_wrap(i) for i in self.items)


@dataclass(frozen=True)
class Or(Expr):
    items: tuple[Expr, ...]

    def names(self) -> set[str]:
        return set().union(*(i.names() for i in self.items))

    def __str__(self) -> str:
        return " or ".join(_wrap(i) for i in self.items)


@dataclass(frozen=True)
class Not(Expr):
    item: Expr

    def names(self) -> set[str]:
        return self.item.names()

    def __str__(self) -> str:
        return f"not {_wrap(self.item)}"


def _wrap(expr: Expr) -> str:
    return f"({expr})" if isinstance(expr, (And, Or)) else str(expr)


def render_literal(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, datetime):
        return f"datetime('{value.isoformat()}')"
    if isinstance(value, date):
        return f"date('{value.isoformat()}')"
    if isinstance(value, str):
        return repr(value)
    return str(value)


class ExpressionSyntaxError(ValueError):
    def __init__(self, message: str, line: int = 1, col: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.col = col


def parse(text: str) -> Expr:
    """Parse expression text into the restricted syntax tree, or raise ExpressionSyntaxError."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionSyntaxError(f"the expression has {len(text):,} characters; at most {MAX_EXPRESSION_CHARS:,} "
                                    "are allowed (move parts of it into derived values)")
    source = " ".join(text.split("\n")) if "\n" in text else text
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionSyntaxError(
            f"cannot read expression {_clip(text.strip())!r}: {exc.msg}", 1, max((exc.offset or 1) - 1, 0)
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionSyntaxError(f"the expression is nested too deeply (at most {MAX_EXPRESSION_DEPTH} levels)") \
            from None
    if _depth(tree.body) > MAX_EXPRESSION_DEPTH:
        raise ExpressionSyntaxError(f"the expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep")
    return _convert(tree.body)


def _depth(root: ast.AST) -> int:
    """The nesting depth of a syntax tree, found without recursion."""
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_EXPRESSION_DEPTH:
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _convert(node: ast.expr) -> Expr:
    line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
    if isinstance(node, ast.BoolOp):
        items = tuple(_convert(v) for v in node.values)
        return And(col, line, items) if isinstance(node.op, ast.And) else Or(col, line, items)
    if isinstance(node, ast.UnaryOp):
        return _convert_unary(node, line, col)
    if isinstance(node, ast.Compare):
        return _convert_compare(node, line, col)
    if isinstance(node, ast.Name):
        if node.id in _KEYWORD_LITERALS:
            return Literal(col, line, _KEYWORD_LITERALS[node.id])
        return Name(col, line, node.id)
    if isinstance(node, ast.Constant):
        return _convert_constant(node, line, col)
    if isinstance(node, (ast.List, ast.Tuple)):
        elements = [_convert(e) for e in node.elts]
        literals = tuple(e for e in elements if isinstance(e, Literal))
        if len(literals) != len(elements):
            raise ExpressionSyntaxError("a list may only hold literal values", line, col)
        return ListLiteral(col, line, literals)
    if isinstance(node, ast.Call):
        return _convert_call(node, line, col)
    raise _unsupported(node, line, col)


def _unsupported(node: ast.expr, line: int, col: int) -> ExpressionSyntaxError:
    return ExpressionSyntaxError(f"unsupported syntax {ast.unparse(node)!r}: use names, literals, comparisons, "
                                 "and/or/not, `in`, present(...) and the documented functions", line, col)


def _convert_unary(node: ast.UnaryOp, line: int, col: int) -> Expr:
    if isinstance(node.op, ast.Not):
        return Not(col, line, _convert(node.operand))
    if isinstance(node.op, ast.USub):
        inner = _convert(node.operand)
        if isinstance(inner, Literal) and isinstance(inner.value, (int, float)) and inner.value is not True:
            return Literal(col, line, -inner.value)
        raise ExpressionSyntaxError("a minus sign is only allowed before a number", line, col)
    raise _unsupported(node, line, col)


def _convert_constant(node: ast.Constant, line: int, col: int) -> Literal:
    if isinstance(node.value, int) and not isinstance(node.value, bool) and abs(node.value) > MAX_INT:
        raise ExpressionSyntaxError(f"the number is too large (at most {MAX_INT})", line, col)
    if isinstance(node.value, float) and not math.isfinite(node.value):
        raise ExpressionSyntaxError("the number is too large", line, col)
    if isinstance(node.value, (bool, int, float, str)) or node.value is None:
        return Literal(col, line, node.value)
    raise ExpressionSyntaxError(f"unsupported literal {_clip(repr(node.value))}", line, col)


def _convert_compare(node: ast.Compare, line: int, col: int) -> Expr:
    parts: list[Expr] = []
    left = _convert(node.left)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = _convert(comparator)
        parts.append(Compare(col, line, _AST_OPS[type(op)], left, right))
        left = right
    return parts[0] if len(parts) == 1 else And(col, line, tuple(parts))


def _convert_call(node: ast.Call, line: int, col: int) -> Expr:
    if not isinstance(node.func, ast.Name):
        raise ExpressionSyntaxError(f"unsupported call {ast.unparse(node.func)!r}", line, col)
    if node.keywords:
        raise ExpressionSyntaxError("functions take positional arguments only", line, col)
    func = node.func.id
    args = tuple(_convert(a) for a in node.args)
    if func == "present":
        if len(args) != 1 or not isinstance(args[0], Name):
            raise ExpressionSyntaxError("present(...) takes exactly one fact or value name", line, col)
        return Present(col, line, args[0])
    if func in ("date", "datetime"):
        return _date_literal(func, args, line, col)
    return Call(col, line, func, args)


def _date_literal(func: str, args: tuple[Expr, ...], line: int, col: int) -> Literal:
    if len(args) != 1 or not isinstance(args[0], Literal) or not isinstance(args[0].value, str):
        raise ExpressionSyntaxError(f"{func}(...) takes one quoted ISO text", line, col)
    read = values.read_date if func == "date" else values.read_datetime  # as a fact of the type is read
    try:
        return Literal(col, line, read(args[0].value))
    except ValueError as exc:
        raise ExpressionSyntaxError(str(exc), line, col) from None


def atoms_with_polarity(expr: Expr, negated: bool = False) -> list[tuple[Expr, bool]]:
    """The atomic conditions with whether each stands under an odd number of `not`s."""
    if isinstance(expr, (And, Or)):
        out: list[tuple[Expr, bool]] = []
        for item in expr.items:
            out.extend(atoms_with_polarity(item, negated))
        return out
    if isinstance(expr, Not):
        return atoms_with_polarity(expr.item, not negated)
    return [(expr, negated)]


def atoms(expr: Expr) -> list[Expr]:
    """The atomic conditions of a boolean expression, left to right."""
    if isinstance(expr, (And, Or)):
        out: list[Expr] = []
        for item in expr.items:
            out.extend(atoms(item))
        return out
    if isinstance(expr, Not):
        return atoms(expr.item)
    return [expr]
