"""The closed vocabulary of pure functions that derived values may use.

Every function is pure: facts, literals, parameters and tables in, one value out; none reads the
clock. An absent argument (null) gives an absent result unless the function says otherwise, so
optional facts flow through derived values without special cases.

Each entry has a type check used by the loader (so a misuse is reported with its line before any
evaluation) and an implementation used by the evaluator. `docs/ruleset-format.md` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from . import calendar_no, icd10
from .expressions import Expr, ListLiteral, Literal
from .model import Parameter, Table
from .types import BOOL, DATE, DECIMAL, INT, STRING, Kind, ValueType, list_of


class SignatureError(ValueError):
    """A function used with the wrong number or types of arguments."""


class Scope(Protocol):
    def parameter(self, name: str) -> Parameter | None: ...

    def table(self, name: str) -> Table | None: ...


@dataclass(frozen=True)
class Arg:
    expr: Expr
    type: ValueType


@dataclass
class ParameterRead:
    parameter: str
    on: date
    gyldig_fra: date
    value: Any
    unit: str
    sekundaerkilde: str | None = None  # the secondary source the value rests on, if it does


@dataclass
class CallContext:
    """What an implementation may touch at run time: the ruleset's data, and a log of reads."""

    parameters: dict[str, Parameter]
    tables: dict[str, Table]
    parameter_reads: list[ParameterRead] = field(default_factory=list)

    def parameter_value(self, name: str, on: date) -> Any:
        parameter = self.parameters[name]
        found = parameter.value_on(on)
        self.parameter_reads.append(ParameterRead(name, on, found.gyldig_fra, found.value, parameter.unit,
                                                  found.sekundaerkilde))
        return found.value


@dataclass(frozen=True)
class Function:
    name: str
    signature: str
    doc: str
    check: Callable[[list[Arg], Scope], ValueType]
    impl: Callable[..., Any]  # (CallContext, *args) -> value
    nulls_propagate: bool = True


def _expect(args: list[Arg], kinds: Sequence[frozenset[Kind]], name: str) -> None:
    if len(args) != len(kinds):
        raise SignatureError(f"{name} takes {len(kinds)} argument(s), got {len(args)}")
    for index, (arg, allowed) in enumerate(zip(args, kinds, strict=True), start=1):
        if arg.type.kind is Kind.NULL:
            continue
        if arg.type.kind not in allowed:
            wanted = " or ".join(sorted(k.value for k in allowed))
            raise SignatureError(f"{name}: argument {index} ({arg.expr}) is {arg.type}, expected {wanted}")


def _literal_text(arg: Arg, what: str, func: str) -> str:
    if not isinstance(arg.expr, Literal) or not isinstance(arg.expr.value, str):
        raise SignatureError(f"{func}: the {what} must be a quoted name, e.g. '{what}'")
    return arg.expr.value


_D = frozenset({Kind.DATE})
_DT = frozenset({Kind.DATETIME})
_I = frozenset({Kind.INT})
_TXT = frozenset({Kind.STRING, Kind.ENUM})
_LIST = frozenset({Kind.LIST})


def _fixed(result: ValueType, *kinds: frozenset[Kind], name: str) -> Callable[[list[Arg], Scope], ValueType]:
    def check(args: list[Arg], scope: Scope) -> ValueType:
        _expect(args, kinds, name)
        return result

    return check


# --- dates ---------------------------------------------------------------------------------


def _age_on(ctx: CallContext, birth: date, on: date) -> int:
    return calendar_no.age_on(birth, on)


def _months_on(ctx: CallContext, birth: date, on: date) -> int:
    return calendar_no.months_on(birth, on)


def _add_days(ctx: CallContext, start: date, days: int) -> date:
    return start + timedelta(days=days)


def _add_weeks(ctx: CallContext, start: date, weeks: int) -> date:
    return start + timedelta(weeks=weeks)


def _add_working_days(ctx: CallContext, start: date, days: int) -> date:
    return calendar_no.add_working_days(start, days)


def _days_between(ctx: CallContext, start: date, end: date) -> int:
    return (end - start).days


def _hours_between(ctx: CallContext, start: datetime, end: datetime) -> Decimal:
    # Elapsed real time. Python subtracts two datetimes that share a tzinfo as wall-clock times, so
    # both are moved to UTC first: a daylight-saving change then counts, whatever zone they carry.
    seconds = Decimal(int((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()))
    return seconds / Decimal(3600)


def _date_of(ctx: CallContext, moment: datetime) -> date:
    return calendar_no.oslo_date(moment)


def _dates_check(name: str) -> Callable[[list[Arg], Scope], ValueType]:
    def check(args: list[Arg], scope: Scope) -> ValueType:
        if len(args) < 2:
            raise SignatureError(f"{name} takes two or more dates")
        _expect(args, [_D] * len(args), name)
        return DATE

    return check


def _min_date(ctx: CallContext, *days: date | None) -> date | None:
    present = [d for d in days if d is not None]
    return min(present) if present else None


def _max_date(ctx: CallContext, *days: date | None) -> date | None:
    present = [d for d in days if d is not None]
    return max(present) if present else None


# --- general -------------------------------------------------------------------------------


def _coalesce_check(args: list[Arg], scope: Scope) -> ValueType:
    if len(args) < 2:
        raise SignatureError("coalesce takes two or more values")
    typed = [a.type for a in args if a.type.kind is not Kind.NULL]
    if not typed:
        raise SignatureError("coalesce needs at least one argument that is not null")
    first = typed[0]
    for other in typed[1:]:
        if other.kind != first.kind:
            raise SignatureError(f"coalesce: arguments mix {first} and {other}")
    return first


def _coalesce(ctx: CallContext, *values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _count_distinct_check(args: list[Arg], scope: Scope) -> ValueType:
    _expect(args, [_LIST], "count_distinct")
    return INT


def _count_distinct(ctx: CallContext, values: list[Any] | None) -> int:
    return len(set(values or []))


# --- ICD-10 ----------------------------------------------------------------------------------


def _codes_arg(arg: Arg, func: str) -> None:
    kind = arg.type.kind
    item = arg.type.item
    if kind in (Kind.STRING, Kind.NULL):
        return
    if kind is Kind.LIST and item is not None and item.kind is Kind.STRING:
        return
    raise SignatureError(f"{func}: argument 1 ({arg.expr}) must be a code or a list of codes, not {arg.type}")


def _icd10_in_check(args: list[Arg], scope: Scope) -> ValueType:
    if len(args) != 2:
        raise SignatureError("icd10_in takes a code or list of codes and a list of ranges")
    _codes_arg(args[0], "icd10_in")
    ranges = args[1].expr
    if not isinstance(ranges, ListLiteral) or not all(isinstance(i.value, str) for i in ranges.items):
        raise SignatureError("icd10_in: argument 2 must be a list of quoted ranges, e.g. ['F20-F31', 'F32.2']")
    for item in ranges.items:
        problem = icd10.range_problem(item.value)
        if problem:
            raise SignatureError(f"icd10_in: {problem}")
    return BOOL


def _as_codes(codes: str | list[str] | None) -> list[str]:
    if codes is None:
        return []
    return [codes] if isinstance(codes, str) else list(codes)


def _icd10_in(ctx: CallContext, codes: str | list[str] | None, ranges: list[str]) -> bool:
    listed = _as_codes(codes)
    if not listed:
        return False
    index = icd10.index_of(tuple(ranges))
    return any(index.positions(code) for code in listed)


def _icd10_classify_check(args: list[Arg], scope: Scope) -> ValueType:
    if len(args) != 3:
        raise SignatureError("icd10_classify takes codes, a table name and a column name")
    _codes_arg(args[0], "icd10_classify")
    table_name = _literal_text(args[1], "table", "icd10_classify")
    column = _literal_text(args[2], "column", "icd10_classify")
    table = scope.table(table_name)
    if table is None:
        raise SignatureError(f"icd10_classify: no table named {table_name!r}")
    if column not in table.columns:
        raise SignatureError(f"icd10_classify: table {table_name!r} has no column {column!r}")
    for key in table.rows:
        problem = icd10.range_problem(key)
        if problem:
            raise SignatureError(f"icd10_classify: table {table_name!r}: {problem}")
    return list_of(table.columns[column])


def _icd10_classify(ctx: CallContext, codes: str | list[str] | None, table: str, column: str) -> list[Any]:
    listed = _as_codes(codes)
    if not listed:
        return []
    rows = ctx.tables[table].rows
    index = icd10.index_of(tuple(rows))
    in_order = list(rows.values())
    found: list[Any] = []
    for code in listed:
        for position in index.positions(code):  # the rows that cover the code, in the table's order
            value = in_order[position].get(column)
            if value is not None and value not in found:
                found.append(value)
    return found


# --- parameters and tables ---------------------------------------------------------------------


def _parameter_check(args: list[Arg], scope: Scope) -> ValueType:
    if len(args) != 2:
        raise SignatureError("parameter takes a quoted parameter name and a date")
    name = _literal_text(args[0], "parameter", "parameter")
    found = scope.parameter(name)
    if found is None:
        raise SignatureError(f"parameter: no parameter named {name!r}")
    _expect(args[1:], [_D], "parameter")
    return found.type


def _parameter(ctx: CallContext, name: str, on: date) -> Any:
    return ctx.parameter_value(name, on)


def _parameter_sum_days_check(args: list[Arg], scope: Scope) -> ValueType:
    if len(args) != 3:
        raise SignatureError("parameter_sum_days takes a quoted parameter name, a first day and an end day")
    name = _literal_text(args[0], "parameter", "parameter_sum_days")
    found = scope.parameter(name)
    if found is None:
        raise SignatureError(f"parameter_sum_days: no parameter named {name!r}")
    if not found.type.is_numeric:
        raise SignatureError(f"parameter_sum_days: parameter {name!r} is {found.type}, not a number")
    _expect(args[1:], [_D, _D], "parameter_sum_days")
    return found.type


def _parameter_sum_days(ctx: CallContext, name: str, first: date, end: date) -> Any:
    """Sum of the parameter's value on each day from `first` up to, not including, `end`.
    Each day is priced at the value in force on that day (a stay over New Year gets two rates)."""
    total: Any = 0
    day = first
    while day < end:
        year_end = min(date(day.year + 1, 1, 1), end)
        # One read per value period keeps the trace short: the value holds until the next start date.
        value = ctx.parameter_value(name, day)
        next_change = _next_change(ctx.parameters[name], day)
        stop = min(year_end, next_change) if next_change else year_end
        total += value * (stop - day).days
        day = stop
    return total


def _next_change(parameter: Parameter, day: date) -> date | None:
    later = [v.gyldig_fra for v in parameter.values if v.gyldig_fra > day]
    return min(later) if later else None


def _lookup_check(args: list[Arg], scope: Scope) -> ValueType:
    if len(args) != 3:
        raise SignatureError("lookup takes a quoted table name, a key and a quoted column name")
    table_name = _literal_text(args[0], "table", "lookup")
    column = _literal_text(args[2], "column", "lookup")
    table = scope.table(table_name)
    if table is None:
        raise SignatureError(f"lookup: no table named {table_name!r}")
    if column not in table.columns:
        raise SignatureError(f"lookup: table {table_name!r} has no column {column!r}")
    _expect(args[1:2], [_TXT], "lookup")
    return table.columns[column]


def _lookup(ctx: CallContext, table: str, key: str, column: str) -> Any:
    row = ctx.tables[table].rows.get(key)
    return None if row is None else row.get(column)


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in [
        Function("age_on", "age_on(fodselsdato, dato) -> int",
                 "Completed years on a date; the age increases on the birthday (29 February: on 1 March "
                 "in other years).", _fixed(INT, _D, _D, name="age_on"), _age_on),
        Function("months_on", "months_on(fodselsdato, dato) -> int",
                 "Completed months of age on a date (for rules such as «under 3 måneder»).",
                 _fixed(INT, _D, _D, name="months_on"), _months_on),
        Function("add_days", "add_days(dato, n) -> date", "Calendar days added (n may be negative).",
                 _fixed(DATE, _D, _I, name="add_days"), _add_days),
        Function("add_weeks", "add_weeks(dato, n) -> date",
                 "Calendar weeks added; not moved off weekends or holidays.",
                 _fixed(DATE, _D, _I, name="add_weeks"), _add_weeks),
        Function("add_working_days", "add_working_days(dato, n) -> date",
                 "The n-th Norwegian working day (Monday-Friday minus public holidays) after the date; "
                 "the date itself is not counted.", _fixed(DATE, _D, _I, name="add_working_days"),
                 _add_working_days),
        Function("days_between", "days_between(fra, til) -> int", "Calendar days from `fra` to `til`.",
                 _fixed(INT, _D, _D, name="days_between"), _days_between),
        Function("hours_between", "hours_between(fra, til) -> decimal",
                 "Elapsed real hours between two datetimes (a daylight-saving change counts).",
                 _fixed(DECIMAL, _DT, _DT, name="hours_between"), _hours_between),
        Function("date_of", "date_of(tidspunkt) -> date", "The calendar date of a datetime in Europe/Oslo.",
                 _fixed(DATE, _DT, name="date_of"), _date_of),
        Function("min_date", "min_date(a, b, ...) -> date",
                 "The earliest of the dates that are present; absent if none is.", _dates_check("min_date"),
                 _min_date, nulls_propagate=False),
        Function("max_date", "max_date(a, b, ...) -> date",
                 "The latest of the dates that are present; absent if none is.", _dates_check("max_date"),
                 _max_date, nulls_propagate=False),
        Function("coalesce", "coalesce(a, b, ...) -> same type", "The first argument that is present.",
                 _coalesce_check, _coalesce, nulls_propagate=False),
        Function("count_distinct", "count_distinct(liste) -> int", "The number of different values in a list.",
                 _count_distinct_check, _count_distinct, nulls_propagate=False),
        Function("icd10_in", "icd10_in(koder, ['F20-F31', 'F32.2', ...]) -> bool",
                 "Whether any code lies in any of the ranges (a category covers its subcodes).",
                 _icd10_in_check, _icd10_in, nulls_propagate=False),
        Function("icd10_classify", "icd10_classify(koder, 'tabell', 'kolonne') -> list",
                 "The distinct column values of the table rows (keyed by ICD-10 code or range) that the "
                 "codes fall in.", _icd10_classify_check, _icd10_classify, nulls_propagate=False),
        Function("lookup", "lookup('tabell', nokkel, 'kolonne') -> column type",
                 "A cell of a data table; absent when the key is absent.", _lookup_check, _lookup),
        Function("parameter", "parameter('navn', dato) -> parameter type",
                 "The parameter's value in force on the date; no value is an error naming the parameter "
                 "and the date.", _parameter_check, _parameter),
        Function("parameter_sum_days", "parameter_sum_days('navn', fra, til) -> number",
                 "Sum of the parameter's value for each day from `fra` up to, not including, `til`, each "
                 "day at the value in force that day.", _parameter_sum_days_check, _parameter_sum_days),
    ]
}

# Arguments that are names of ruleset data, not values: never absent, never facts.
DATA_NAME_ARGS: dict[str, tuple[int, ...]] = {
    "parameter": (0,),
    "parameter_sum_days": (0,),
    "lookup": (0, 2),
    "icd10_classify": (1, 2),
    "icd10_in": (1,),
}

__all__ = ["FUNCTIONS", "STRING", "Arg", "CallContext", "Function", "ParameterRead", "Scope", "SignatureError"]
