"""Mutated ruleset and cases sources, made from the shipped ones, for the property tests of the loader.

A mutation works on the parsed document and writes it back as YAML: keys deleted, renamed
(misspelt) or added, values replaced by other types (`'no'`, lists, mappings, null, huge numbers,
deep nesting), items duplicated or swapped, `unntak_fra` pointing rules at each other, texts,
booleans, numbers and dates changed. A run under `time_bound` turns a hang into a failure.
"""

from __future__ import annotations

import copy
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from regelmotor.core.yamlsource import load_located
from tests.conftest import BUNDLED_RULESETS, FIXTURES

DocPath = tuple[str | int, ...]

SOURCES = sorted(p for root in (BUNDLED_RULESETS, FIXTURES / "rulesets") for p in root.glob("*/*.yaml"))
RULESETS = [p for p in SOURCES if not p.name.endswith(".cases.yaml")]
CASES = [p for p in SOURCES if p.name.endswith(".cases.yaml")]


class _PlainDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Writes shared objects out in full: a ruleset may not use aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(document: Any) -> str:
    return yaml.dump(document, Dumper=_PlainDumper, allow_unicode=True, sort_keys=False, width=120)


@cache
def parsed(path: Path) -> Any:
    return load_located(path.read_text(encoding="utf-8")).data


def node_paths(document: Any) -> list[DocPath]:
    """Every place in a document (the root excluded), parents before children."""
    found: list[DocPath] = []
    stack: list[tuple[DocPath, Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            found.append((*path, key))
            stack.append(((*path, key), child))
    return found


def _get(document: Any, path: DocPath) -> Any:
    for step in path:
        document = document[step]
    return document


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


STRANGE_VALUES: list[Any] = [
    "no", "yes", "true", "'no'", "", "x", " ", [], {}, None, True, False, 0, -1, 1.5, 10**30, 2**63, -(2**70),
    date(2025, 1, 1), ["a", "b"], {"a": 1}, {"type": "bool"}, _deep(60), _deep(20), "a" * 5000,
    "not " * 60 + "x", "(" * 30 + "x" + ")" * 30, "x > 0x" + "f" * 40, "=nope", "= internal",
]
PLAUSIBLE_KEYS = ["internal", "combine", "values_from", "allow_gap_before", "unntak_fra", "description", "combin",
                  "requird", "prioritet", "default", "items", "values", "verified", "note", "x", "<<", "id", "when"]


def _misspell(key: str, draw: st.DrawFn) -> str:
    if not key:
        return "x"
    at = draw(st.integers(0, len(key) - 1))
    how = draw(st.sampled_from(["drop", "double", "swap", "upper"]))
    if how == "drop":
        return key[:at] + key[at + 1:] or "x"
    if how == "double":
        return key[:at] + key[at] + key[at:]
    if how == "swap" and at + 1 < len(key):
        return key[:at] + key[at + 1] + key[at] + key[at + 2:]
    return key.upper()


def _changed_scalar(value: Any, draw: st.DrawFn) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + draw(st.sampled_from([1, -1, 1000]))
    if isinstance(value, float):
        return value * 2 + 1
    if isinstance(value, date):
        return value + timedelta(days=draw(st.sampled_from([1, -1, 365])))
    if isinstance(value, str):
        return draw(st.sampled_from([value + " ", value + "x", value.replace(" ", "  "), value.upper(), value[:-1],
                                     value.replace("and", "or"), value.replace("<", "<=")]))
    return value


def _mutate(document: Any, draw: st.DrawFn, *, valid_leaning: bool) -> None:
    paths = node_paths(document)
    if not paths:
        return
    # A depth first, then a place at that depth: keys of sections and entries are hit as often as
    # the many leaves of texts and lists.
    depth = draw(st.sampled_from(sorted({len(p) for p in paths})))
    path = draw(st.sampled_from([p for p in paths if len(p) == depth]))
    parent, key = _get(document, path[:-1]), path[-1]
    kinds = ["change"] * 4 + ["delete", "swap", "duplicate", "exceptions"]
    if not valid_leaning:
        kinds += ["rename", "replace", "replace", "add", "exceptions"]
    kind = draw(st.sampled_from(kinds))
    if kind == "change":
        parent[key] = _changed_scalar(parent[key], draw)
    elif kind == "delete":
        del parent[key]
    elif kind == "rename" and isinstance(parent, dict) and isinstance(key, str):
        value = parent.pop(key)
        parent[_misspell(key, draw)] = value
    elif kind == "replace":
        parent[key] = copy.deepcopy(draw(st.sampled_from(STRANGE_VALUES)))
    elif kind == "add" and isinstance(parent[key], dict):
        parent[key][draw(st.sampled_from(PLAUSIBLE_KEYS))] = copy.deepcopy(draw(st.sampled_from(STRANGE_VALUES)))
    elif kind == "swap" and isinstance(parent, list) and isinstance(key, int) and len(parent) > 1:
        other = draw(st.integers(0, len(parent) - 1))
        parent[key], parent[other] = parent[other], parent[key]
    elif kind == "duplicate" and isinstance(parent, list) and isinstance(key, int):
        parent.insert(draw(st.integers(0, len(parent))), copy.deepcopy(parent[key]))
    elif kind == "exceptions":
        _exceptions(document, draw)


def _exceptions(document: Any, draw: st.DrawFn) -> None:
    """Make rules exceptions to each other, often in a cycle."""
    rules = document.get("rules") if isinstance(document, dict) else None
    if not isinstance(rules, list) or not rules:
        return
    chosen = draw(st.lists(st.integers(0, len(rules) - 1), min_size=1, max_size=4))
    for here, there in zip(chosen, [*chosen[1:], chosen[0]], strict=True):
        if isinstance(rules[here], dict) and isinstance(rules[there], dict):
            rules[here]["unntak_fra"] = rules[there].get("id")


@st.composite
def mutated_sources(draw: st.DrawFn, sources: list[Path], *, valid_leaning: bool = False, least: int = 1,
                    most: int = 3) -> tuple[Path, str]:
    """A shipped source with `least` to `most` mutations, as YAML text."""
    path = draw(st.sampled_from(sources))
    document = copy.deepcopy(parsed(path))
    for _ in range(draw(st.integers(least, most))):
        _mutate(document, draw, valid_leaning=valid_leaning)
    return path, dump(document)


class Hang(BaseException):
    """Not an Exception, so that no `except Exception` in the code under test can swallow it."""


@contextmanager
def time_bound(seconds: int) -> Iterator[None]:
    """Fail (Hang) instead of hanging when the block runs longer than `seconds`."""
    def expire(signum: int, _frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
