"""YAML reading that remembers where every value came from.

Policy authors need errors with a line number, so the document is composed into PyYAML nodes and
built by hand: each mapping, list and scalar is recorded with its 1-based line and column. Duplicate
keys and impossible dates (2025-02-30) are reported, never silently accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass
class Located:
    """A parsed document plus the position of every node, keyed by its path from the root."""

    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path) -> tuple[int, int]:
        """The closest known position of `path` (falls back to its parents)."""
        probe = tuple(path)
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (1, 1))


class YamlProblem(ValueError):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


_constructor = yaml.SafeLoader("")


def load_located(text: str) -> Located:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlProblem(f"not valid YAML: {exc.problem}", line, column) from None
    located = Located(None)
    if node is None:
        located.data = None
        return located
    located.data = _build(node, (), located.positions)
    return located


def _build(node: yaml.Node, path: Path, positions: dict[Path, tuple[int, int]]) -> Any:
    positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
        # YAML merge keys (`<<: *base`) let cases share facts; the mapping's own keys override them.
        _constructor.flatten_mapping(node)
        merged = len(node.value) - own
        out: dict[str, Any] = {}
        own_keys: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = _scalar(key_node)
            if not isinstance(key, (str, int, date)):
                raise YamlProblem("mapping keys must be plain text", *_pos(key_node))
            text_key = key.isoformat() if isinstance(key, date) else str(key)
            if index >= merged:
                if text_key in own_keys:
                    raise YamlProblem(f"duplicate key {text_key!r}", *_pos(key_node))
                own_keys.add(text_key)
            out[text_key] = _build(value_node, (*path, text_key), positions)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, index), positions) for index, item in enumerate(node.value)]
    return _scalar(node)


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise YamlProblem("expected a plain value here", *_pos(node))
    try:
        value = _constructor.construct_object(node, deep=True)
    except (ValueError, yaml.constructor.ConstructorError) as exc:
        if node.tag == "tag:yaml.org,2002:timestamp":
            raise YamlProblem(f"impossible date {node.value!r}", *_pos(node)) from None
        raise YamlProblem(f"cannot read value {node.value!r}: {exc}", *_pos(node)) from None
    if isinstance(value, datetime) and value.tzinfo is None and "T" in str(node.value):
        raise YamlProblem(f"datetime {node.value!r} needs a UTC offset, e.g. +01:00", *_pos(node))
    return value
