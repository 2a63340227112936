"""Dependency graphs of a ruleset: cycles, evaluation order and levels, without recursion.

The loader orders derived values and finds cycles with these; the compiler finds the round of each
rule with `longest_paths`.

A source may hold tens of thousands of names; recursive walks would hit Python's recursion limit
and quadratic ones would take minutes, so every walk here is iterative and linear.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Set
from typing import TypeVar

N = TypeVar("N", bound=Hashable)


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


def longest_paths(graph: Mapping[N, Set[N]], weight: Callable[[N, N], int]) -> tuple[dict[N, int], set[N]]:
    """Each node's level, and the nodes left over because they lie on or behind a cycle.

    A node without dependencies in the graph is at level 0; any other at the most of its
    dependencies' level plus `weight(dependency, node)`. Edges to nodes outside the graph or to
    itself are ignored. One walk in dependency order (Kahn's), so linear in the graph's size."""
    inside = {node: {d for d in deps if d in graph and d != node} for node, deps in graph.items()}
    waiting = {node: len(deps) for node, deps in inside.items()}
    dependents: dict[N, list[N]] = {node: [] for node in graph}
    for node, deps in inside.items():
        for dep in deps:
            dependents[dep].append(node)
    ready = [node for node in graph if waiting[node] == 0]
    level: dict[N, int] = {}
    while ready:
        node = ready.pop()
        level[node] = max((level[d] + weight(d, node) for d in inside[node]), default=0)
        for dependent in dependents[node]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    return level, set(graph) - set(level)


def dependency_order(graph: Mapping[str, Set[str]]) -> tuple[list[str], set[str]]:
    """The names in an order where each comes after what it depends on, and the names left over
    because they lie on or behind a cycle. Edges to names outside the graph or to itself are ignored.

    The order is that of repeated passes over the graph in its own order, each pass taking every
    name whose dependencies are taken (as the evaluator always ordered derived values): a name is
    taken in the pass after its latest dependency, or in the same pass when that dependency comes
    earlier in the graph."""
    position = {name: index for index, name in enumerate(graph)}
    passes, cyclic = longest_paths(graph, lambda dep, name: int(position[dep] > position[name]))
    return sorted(passes, key=lambda name: (passes[name], position[name])), cyclic


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
