"""Dependency graphs of a ruleset: cycles and evaluation order, without recursion.

A source may hold tens of thousands of names; recursive walks would hit Python's recursion limit
and quadratic ones would take minutes, so both walks here are iterative and linear.
"""

from __future__ import annotations

from collections.abc import Mapping, Set


def find_cycle(graph: Mapping[str, Set[str]]) -> list[str]:
    """One cycle as [a, b, …, a] (edges to names outside the graph are ignored), or []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path: list[str] = [start]
        pending: list[list[str]] = [_successors(graph, start)]
        state[start] = 1
        while path:
            if not pending[-1]:
                state[path.pop()] = 2
                pending.pop()
                continue
            nxt = pending[-1].pop()
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                pending.append(_successors(graph, nxt))
    return []


def _successors(graph: Mapping[str, Set[str]], name: str) -> list[str]:
    """Successors inside the graph, last-visited first (so they are visited in sorted order)."""
    return sorted((n for n in graph[name] if n in graph), reverse=True)


def dependency_order(graph: Mapping[str, Set[str]]) -> tuple[list[str], set[str]]:
    """The names in an order where each comes after what it depends on, and the names left over
    because they lie on or behind a cycle. Edges to names outside the graph or to itself are ignored.

    The order is that of repeated passes over the graph in its own order, each pass taking every
    name whose dependencies are taken (as the evaluator always ordered derived values), but found
    in linear time: a name is taken in the pass after its latest dependency, or in the same pass
    when that dependency comes earlier in the graph."""
    position = {name: index for index, name in enumerate(graph)}
    inside = {name: {d for d in deps if d in graph and d != name} for name, deps in graph.items()}
    waiting = {name: len(deps) for name, deps in inside.items()}
    dependents: dict[str, list[str]] = {name: [] for name in graph}
    for name, deps in inside.items():
        for dep in deps:
            dependents[dep].append(name)
    ready = [name for name in graph if waiting[name] == 0]
    passes: dict[str, int] = {}
    while ready:
        name = ready.pop()
        passes[name] = max((passes[d] + (position[d] > position[name]) for d in inside[name]), default=0)
        for dependent in dependents[name]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    ordered = sorted(passes, key=lambda name: (passes[name], position[name]))
    return ordered, set(graph) - set(passes)


def exception_cycle(bases: Mapping[str, str | None]) -> list[str]:
    """A cycle of `unntak_fra` links (rule -> the rule it is an exception to) as [a, b, …, a], or []."""
    done: set[str] = set()
    for start in bases:
        seen: dict[str, int] = {}  # rule -> its place on this chain
        current: str | None = start
        while current is not None and current in bases and current not in done:
            if current in seen:
                chain = list(seen)
                return [*chain[seen[current]:], current]
            seen[current] = len(seen)
            current = bases[current]
        done.update(seen)
    return []
