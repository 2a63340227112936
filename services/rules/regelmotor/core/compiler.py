"""Compile a ruleset into durable_rules ruleset definitions.

Every rule condition is decided by durable_rules, twice over:
- each rule's whole condition is one engine rule (`r<n>`), with negation pushed down to the atoms
  and absent values (JSON null) handled explicitly, so "not (x > 5)" holds when x is absent;
- each distinct atomic condition is also its own engine rule (`c<n>`), so the explanation can say
  which conditions held and which did not ("why not").
That the engine's verdict on each rule equals the boolean combination of the engine's verdicts on its
atoms is checked by tests/test_verdicts_agree.py (every bundled case, random facts), not on every evaluation.

Rules that read outcomes of other rules run in later *rounds*: outcomes of a round are combined
(exceptions and combine policies applied) before the next round's facts are asserted. Each round
is split into *partitions* of a bounded number of engine rules, because durable_rules fails when
about 60 alpha nodes match one fact (error 303) and hangs when ~512 rules test one field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import CompileError as CompileError  # raised here; re-exported for callers
from .expressions import And, Compare, Expr, ListLiteral, Literal, Name, Not, Or, Present, atoms
from .graphs import longest_paths
from .model import Rule, Ruleset
from .types import Kind, ValueType, encode_for_engine

ALWAYS_RULE = "always"
PRESENT_MARKER = "_r"
MAX_RULES_PER_PARTITION = 40
MAX_TESTS_PER_PARTITION = 160
MAX_TESTS_PER_FIELD = 256
MAX_NAMES_PER_FACT = 200
# durable_rules fails (error 303) when 64 alternatives of one engine rule's `$or` hold at once.
MAX_ALTERNATIVES = 60

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_ENGINE_OP = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}

JsonCond = dict[str, Any]


@dataclass(frozen=True)
class Atom:
    id: str
    expr: Expr
    text: str
    reads: tuple[str, ...]


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    engine_id: str
    round: int


@dataclass
class Partition:
    engine_name: str
    definition: dict[str, Any]
    tests: int


@dataclass
class Round:
    index: int
    rules: list[CompiledRule] = field(default_factory=list)
    atoms: dict[str, Atom] = field(default_factory=dict)  # atom text -> atom
    reads: set[str] = field(default_factory=set)
    partitions: list[Partition] = field(default_factory=list)
    checks_constraints: bool = False  # its engine rulesets also check the constraints (v<n>): see _with_constraints


@dataclass
class CompiledRuleset:
    ruleset: Ruleset
    rounds: list[Round]
    derived_level: dict[str, int]  # derived value -> first round that may read it
    outcome_round: dict[str, int]  # outcome -> round after which it is final (-1: no rule sets it)
    constraints: Round = field(default_factory=lambda: Round(-1))  # input checks, run before round 0


def compile_ruleset(ruleset: Ruleset) -> CompiledRuleset:
    levels = _Levels(ruleset)
    rounds: dict[int, Round] = {}
    for position, rule in enumerate(ruleset.rules):
        index = levels.rule_round(rule.id)
        target = rounds.setdefault(index, Round(index))
        target.rules.append(CompiledRule(rule, f"r{position}", index))
    ordered = [rounds[i] for i in sorted(rounds)]
    # Renumber densely so round k runs k-th.
    remap = {r.index: i for i, r in enumerate(ordered)}
    atom_counter = 0
    for round_ in ordered:
        round_.index = remap[round_.index]
        round_.rules = [CompiledRule(c.rule, c.engine_id, round_.index) for c in round_.rules]
        for compiled in round_.rules:
            round_.reads |= compiled.rule.condition.names()
            for atom in atoms(compiled.rule.condition):
                text = str(atom)
                if text not in round_.atoms:
                    round_.atoms[text] = Atom(f"c{atom_counter}", atom, text, tuple(sorted(atom.names())))
                    atom_counter += 1
        if len(round_.reads) > MAX_NAMES_PER_FACT:
            raise CompileError(f"the rules of round {round_.index} read {len(round_.reads)} names; the engine takes "
                               f"at most {MAX_NAMES_PER_FACT} in one round", rule=round_.rules[0].rule.id)
        round_.partitions = _partition(ruleset, round_)
    outcome_round = {name: remap.get(levels.outcome_final_round(name), -1) for name in ruleset.outcomes}
    derived_level = {name: _dense(levels.available(name), remap) for name in ruleset.derived}
    checks = _constraint_round(ruleset)
    if ordered and checks.partitions and _with_constraints(ruleset, ordered[0], checks):
        checks = Round(-1)
    return CompiledRuleset(ruleset, ordered, derived_level, outcome_round, checks)


def _constraint_entries(ruleset: Ruleset) -> list[tuple[str, JsonCond]]:
    lists = list_names(ruleset)
    return [(f"v{index}", _checked(to_engine(constraint.condition, lists), constraint.id))
            for index, constraint in enumerate(ruleset.constraints)]


def _constraint_round(ruleset: Ruleset) -> Round:
    checks = Round(-1)
    for constraint in ruleset.constraints:
        checks.reads |= constraint.condition.names()
    checks.partitions = _pack(ruleset, "v", _constraint_entries(ruleset))
    return checks


def _with_constraints(ruleset: Ruleset, first: Round, checks: Round) -> bool:
    """Put the constraints' checks into the first round's engine rulesets when they fit without another one,
    so that one assert decides both (an assert costs 6-10 µs whatever it holds). They read the same values:
    the constraints read facts and the derived values that read no outcome, all known before the first round,
    and no derived value is computed between the two (evaluator: the first round's derive step is empty).
    The evaluation then refuses the facts when a check fires, before it looks at any rule of the round."""
    reads = first.reads | checks.reads
    partitions = _pack(ruleset, str(first.index), _round_entries(ruleset, first) + _constraint_entries(ruleset))
    if len(partitions) > len(first.partitions) or len(reads) > MAX_NAMES_PER_FACT:
        return False
    first.reads, first.partitions, first.checks_constraints = reads, partitions, True
    return True


def _dense(level: int, remap: dict[int, int]) -> int:
    later = [dense for raw, dense in remap.items() if raw >= level]
    return min(later) if later else len(remap)


_Node = tuple[str, str]  # ("name", a fact, derived value or outcome) or ("rule", the root of a family)


class _Levels:
    """When each name becomes available and in which round each rule runs: the longest paths of the graph
    of what reads what (graphs.longest_paths). Facts are available at once, a derived value when what it
    reads is, an outcome in the round after that of its last rule. A rule and its exceptions are resolved
    together (their family, named by its root), so they share a round."""

    def __init__(self, ruleset: Ruleset) -> None:
        rules = {rule.id: rule for rule in ruleset.rules}
        self.family = {rule.id: _family_root(rules, rule.id) for rule in ruleset.rules}
        self.setters: dict[str, list[str]] = {}
        graph: dict[_Node, set[_Node]] = {}
        for name, derived in ruleset.derived.items():
            graph[("name", name)] = {("name", n) for n in derived.reads}
        for rule in ruleset.rules:
            reads = rule.condition.names() | {e.name for e in rule.effects.values() if isinstance(e, Name)}
            graph.setdefault(("rule", self.family[rule.id]), set()).update(("name", n) for n in reads)
            for name in rule.effects:
                self.setters.setdefault(name, []).append(rule.id)
                graph.setdefault(("name", name), set()).add(("rule", self.family[rule.id]))
        outcomes = {("name", name) for name in ruleset.outcomes}
        self.levels, cyclic = longest_paths(graph, lambda dep, node: int(node in outcomes and dep[0] == "rule"))
        if cyclic:
            family = min((node for node in cyclic if node[0] == "rule"), default=None)
            if family is not None:
                raise CompileError(f"rule {family[1]!r} and its exceptions read an outcome that they set themselves",
                                   rule=family[1])
            raise CompileError("names depend on one another in a cycle", name=min(cyclic)[1])

    def available(self, name: str) -> int:
        return self.levels.get(("name", name), 0)

    def outcome_final_round(self, name: str) -> int:
        return max((self.rule_round(rule) for rule in self.setters.get(name, [])), default=-1)

    def rule_round(self, rule_id: str) -> int:
        return self.levels[("rule", self.family[rule_id])]


def _family_root(rules: dict[str, Rule], rule_id: str) -> str:
    """The rule an exception is an exception to, followed to the base rule that is none."""
    root = rule_id
    seen = {root}
    while (base := rules[root].unntak_fra) is not None:
        if base in seen or base not in rules:  # the loader refuses both; never loop
            raise CompileError(f"the exceptions of rule {rule_id!r} do not lead to a base rule", rule=rule_id)
        seen.add(base)
        root = base
    return root


# --- condition translation ---------------------------------------------------------------------


def list_names(ruleset: Ruleset) -> frozenset[str]:
    typed: dict[str, ValueType] = {name: f.type for name, f in ruleset.facts.items()}
    typed.update({name: d.type for name, d in ruleset.derived.items()})
    typed.update({name: o.type for name, o in ruleset.outcomes.items()})
    return frozenset(name for name, vtype in typed.items() if vtype.kind is Kind.LIST)


def to_engine(expr: Expr, lists: frozenset[str] = frozenset(), negated: bool = False) -> JsonCond:
    """The durable_rules expression for `expr` (or its negation), over a fact where absent is null.

    `lists` names the list-valued names: an empty list is encoded as null, and a non-empty one is
    recognised by having an item (durable_rules' `$neq null` never matches an array)."""
    if isinstance(expr, Not):
        return to_engine(expr.item, lists, not negated)
    if isinstance(expr, (And, Or)):
        parts = [to_engine(item, lists, negated) for item in expr.items]
        conjunctive = isinstance(expr, And) != negated
        return {"$and": parts} if conjunctive else {"$or": parts}
    if isinstance(expr, Present):
        name = expr.target.name
        if negated:
            return {name: None}
        if name in lists:
            return {"$iany": {name: {"$neq": {"$i": None}}}}
        return {"$neq": {name: None}}
    if isinstance(expr, Name):
        return _either({expr.name: None}, {expr.name: False}) if negated else {expr.name: True}
    if isinstance(expr, Literal) and isinstance(expr.value, bool):
        holds = expr.value != negated
        return {PRESENT_MARKER: 1} if holds else {PRESENT_MARKER: 0}
    if isinstance(expr, Compare):
        return _compare(expr, negated)
    raise CompileError(f"not a condition: {expr}")


def _either(*parts: JsonCond) -> JsonCond:
    return {"$or": list(parts)}


def _both(*parts: JsonCond) -> JsonCond:
    return parts[0] if len(parts) == 1 else {"$and": list(parts)}


def _compare(cmp: Compare, negated: bool) -> JsonCond:
    if cmp.op in ("in", "not in"):
        return _membership(cmp, negated != (cmp.op == "not in"))
    left, right, op = cmp.left, cmp.right, cmp.op
    if isinstance(left, Literal):
        left, right, op = right, left, _FLIP[op]
    assert isinstance(left, Name)
    names = [left.name] + ([right.name] if isinstance(right, Name) else [])
    operand: Any = {"$m": right.name} if isinstance(right, Name) else encode_for_engine(_literal(right))
    if negated:
        test = _test(left.name, _NEGATE[op], operand)
        return _either(*({n: None} for n in names), test)
    guards = [{"$neq": {n: None}} for n in names if op in ("!=",) or isinstance(right, Name)]
    return _both(*guards, _test(left.name, op, operand))


def _test(name: str, op: str, operand: Any) -> JsonCond:
    if op == "==":
        return {name: operand}
    return {_ENGINE_OP[op]: {name: operand}}


def _literal(expr: Expr) -> Any:
    assert isinstance(expr, Literal)
    return expr.value


def _membership(cmp: Compare, negated: bool) -> JsonCond:
    left, right = cmp.left, cmp.right
    if isinstance(right, ListLiteral):
        assert isinstance(left, Name)
        values = [encode_for_engine(item.value) for item in right.items]
        if negated:
            return _either({left.name: None}, _both(*({"$neq": {left.name: v}} for v in values)))
        return _either(*({left.name: v} for v in values)) if len(values) > 1 else {left.name: values[0]}
    assert isinstance(right, Name) and isinstance(left, Literal)
    value = encode_for_engine(left.value)
    if negated:
        # Empty lists are encoded as null, because `$iall` never matches an empty array.
        return _either({right.name: None}, {"$iall": {right.name: {"$neq": {"$i": value}}}})
    return {"$iany": {right.name: {"$i": value}}}


def count_tests(cond: Any) -> int:
    """Leaf tests in an engine condition: a proxy for the alpha nodes it creates."""
    if isinstance(cond, dict):
        total = 0
        for key, value in cond.items():
            if key in ("$and", "$or"):
                total += sum(count_tests(v) for v in value)
            else:
                total += 1
        return total
    return 1


def _fields(cond: Any, out: dict[str, int]) -> None:
    if isinstance(cond, dict):
        for key, value in cond.items():
            if key in ("$and", "$or"):
                for item in value:
                    _fields(item, out)
            elif key.startswith("$"):
                for name in value:
                    out[name] = out.get(name, 0) + 1
            else:
                out[key] = out.get(key, 0) + 1


def _partition(ruleset: Ruleset, round_: Round) -> list[Partition]:
    return _pack(ruleset, str(round_.index), _round_entries(ruleset, round_))


def _round_entries(ruleset: Ruleset, round_: Round) -> list[tuple[str, JsonCond]]:
    lists = list_names(ruleset)
    entries: list[tuple[str, JsonCond]] = [(a.id, to_engine(a.expr, lists)) for a in round_.atoms.values()]
    entries += [(c.engine_id, _checked(to_engine(c.rule.condition, lists), c.rule.id)) for c in round_.rules]
    return entries


def _checked(cond: JsonCond, owner: str) -> JsonCond:
    count = alternatives(cond)
    if count > MAX_ALTERNATIVES:
        raise CompileError(f"the condition joins {count} alternatives with `or` that can hold at once; durable_rules "
                           f"fails when 64 do (at most {MAX_ALTERNATIVES}): split it into several rules", rule=owner)
    return cond


def alternatives(cond: Any) -> int:
    """How many alternatives of an engine condition's `$or`s can hold at once, at most.

    Alternatives add up, also through nested `$or`s; of an `$and`, the widest part counts (the
    engine does not multiply them out). Equality tests of one field count once: only one holds."""
    if not isinstance(cond, dict):
        return 1
    if "$and" in cond:
        return max((alternatives(part) for part in cond["$and"]), default=1)
    if "$or" not in cond:
        return 1
    total = 0
    fields: set[str] = set()
    for part in cond["$or"]:
        equality = isinstance(part, dict) and len(part) == 1 and not next(iter(part)).startswith("$")
        field = next(iter(part)) if equality else None
        if field is None or not isinstance(part[field], (str, int, float, bool, type(None))):
            total += alternatives(part)
        elif field not in fields:
            fields.add(field)
            total += 1
    return total


def _pack(ruleset: Ruleset, label: str, entries: list[tuple[str, JsonCond]]) -> list[Partition]:
    partitions: list[Partition] = []
    current: dict[str, Any] = {}
    tests = 0
    for engine_id, cond in entries:
        weight = count_tests(cond)
        if current and (len(current) >= MAX_RULES_PER_PARTITION or tests + weight > MAX_TESTS_PER_PARTITION):
            partitions.append(_finish(ruleset, label, len(partitions), current, tests))
            current, tests = {}, 0
        current[engine_id] = {"all": [{"m": cond}]}
        tests += weight
    if current:
        partitions.append(_finish(ruleset, label, len(partitions), current, tests))
    return partitions


def _finish(ruleset: Ruleset, label: str, number: int, rules: dict[str, Any], tests: int) -> Partition:
    per_field: dict[str, int] = {}
    for rule in rules.values():
        _fields(rule["all"][0]["m"], per_field)
    for name, count in per_field.items():
        if count > MAX_TESTS_PER_FIELD:
            raise CompileError(f"{count} tests of {name!r} in one engine ruleset (at most {MAX_TESTS_PER_FIELD}); "
                               "durable_rules hangs near 512", name=name)
    # A rule that always matches: an unmatched fact cannot be deleted safely in durable_rules.
    definition = {ALWAYS_RULE: {"all": [{"m": {"$ex": {PRESENT_MARKER: 1}}}]}, **rules}
    # The content hash is part of the name: a registered durable_rules name can never be replaced.
    name = f"{ruleset.key}#{ruleset.sha256[:12]}/{label}.{number}"
    return Partition(name, definition, tests)
