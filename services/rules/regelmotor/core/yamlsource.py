"""YAML reading that remembers where every value came from, within fixed limits.

Policy authors need errors with a line number, so the document is composed into PyYAML nodes and
built by hand: each mapping, list and scalar is recorded with its 1-based line and column. Duplicate
keys and impossible dates (2025-02-30) are reported, never silently accepted.

Sources come from callers (ValidateRuleset, TestRuleset, DiffRulesets), so reading is bounded:
at most MAX_SOURCE_CHARS characters, MAX_NODES values and MAX_DEPTH levels of nesting. A ruleset
may not use anchors, aliases or merge keys: a few hundred bytes of aliases can expand to billions of
values. Cases files may (shared facts with `<<: *base`), but every value an alias expands to counts
towards MAX_NODES, so an alias bomb is refused after MAX_NODES values, not after filling memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path as FilePath
from typing import Any

import yaml

from .errors import SourceProblem

Path = tuple[str | int, ...]

# The largest bundled file is about 50 kB, 2,600 values and 7 levels deep; these leave room for a
# national ruleset with a large code table while keeping one read well under a second.
MAX_SOURCE_CHARS = 1_000_000
MAX_NODES = 100_000
MAX_DEPTH = 50
# Whole numbers must fit the 64-bit integers of durable_rules and of the decision log.
MAX_INT = 2**63 - 1

_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_SCALARS = (str, bool, int, float, date, type(None))


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


class YamlProblem(SourceProblem):
    """Not valid YAML, or beyond the limits of a source."""


def read_source(file: FilePath) -> str:
    """A source file's text; reads at most one character more than a source may hold."""
    try:
        with file.open(encoding="utf-8") as stream:
            return stream.read(MAX_SOURCE_CHARS + 1)
    except OSError as exc:
        raise YamlProblem(f"cannot read file: {exc.strerror or exc}", 1, 1) from None
    except UnicodeDecodeError as exc:
        raise YamlProblem(f"the file is not UTF-8 text (byte {exc.start + 1})", 1, 1) from None


def load_located(text: str, *, allow_aliases: bool = True) -> Located:
    """Parse one YAML document within the limits; `allow_aliases=False` for ruleset sources."""
    if len(text) > MAX_SOURCE_CHARS:
        raise YamlProblem(f"the source is {len(text):,} characters; at most {MAX_SOURCE_CHARS:,} are allowed", 1, 1)
    node = _compose(text, allow_aliases)
    located = Located(None)
    if node is not None:
        located.data = _Builder(located.positions, allow_aliases).build(node, ())
    return located


class _BoundedLoader(yaml.SafeLoader):
    """Composes nodes while counting them and their depth, refusing anchors when asked to."""

    def __init__(self, text: str, allow_aliases: bool) -> None:
        super().__init__(text)
        self.allow_aliases = allow_aliases
        self.node_count = 0
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if not self.allow_aliases and (isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None)):
            raise YamlProblem("anchors and aliases are not allowed in a ruleset", *_mark(event.start_mark))
        self.node_count += 1
        if self.node_count > MAX_NODES:
            raise YamlProblem(f"the source holds more than {MAX_NODES:,} values", *_mark(event.start_mark))
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise YamlProblem(f"values are nested more than {MAX_DEPTH} levels deep", *_mark(event.start_mark))
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _compose(text: str, allow_aliases: bool) -> yaml.Node | None:
    try:
        loader = _BoundedLoader(text, allow_aliases)
    except yaml.reader.ReaderError as exc:  # a control character, checked before parsing
        raise YamlProblem(f"not valid YAML: {exc.reason} {_character(exc.character)}",
                          *_offset_position(text, exc.position)) from None
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlProblem(f"not valid YAML: {exc.problem or exc.context}", *_mark(mark)) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"not valid YAML: {exc}", 1, 1) from None
    finally:
        loader.dispose()


class _Builder:
    """Builds Python values from nodes, counting every value an alias expands to."""

    def __init__(self, positions: dict[Path, tuple[int, int]], allow_aliases: bool) -> None:
        self.positions = positions
        self.allow_aliases = allow_aliases
        self.built = 0
        # A constructor per document: it caches every node it constructed.
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.built += 1
        if self.built > MAX_NODES:
            raise YamlProblem(f"the aliases in this source expand to more than {MAX_NODES:,} values", *_pos(node))
        self.positions[path] = _pos(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return _scalar(node, self.constructor)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        own: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._merge(key_node, value_node, path, merged)
                continue
            key = _key(key_node, self.constructor)
            if key in own:
                raise YamlProblem(f"duplicate key {_short(key)}", *_pos(key_node))
            own[key] = self.build(value_node, (*path, key))
        self.positions[path] = _pos(node)  # a merged mapping recorded its own place under `path`
        # The mapping's own keys override merged ones (YAML merge keys).
        return {**merged, **own}

    def _merge(self, key_node: yaml.Node, value_node: yaml.Node, path: Path, merged: dict[str, Any]) -> None:
        if not self.allow_aliases:
            raise YamlProblem("merge keys (<<) are not allowed in a ruleset", *_pos(key_node))
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise YamlProblem("a merge key (<<) takes a mapping or a list of mappings", *_pos(source))
            for key, value in self._mapping(source, path).items():
                merged.setdefault(key, value)  # of several merged mappings, the first wins


def _key(node: yaml.Node, constructor: yaml.constructor.SafeConstructor) -> str:
    key = _scalar(node, constructor)
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    if isinstance(key, date) and not isinstance(key, datetime):
        return key.isoformat()
    raise YamlProblem(f"mapping keys must be text, not {_short(key)}", *_pos(node))


def _scalar(node: yaml.Node, constructor: yaml.constructor.SafeConstructor) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise YamlProblem("expected a plain value here", *_pos(node))
    try:
        value = constructor.construct_object(node, deep=True)
    except (ValueError, OverflowError, yaml.constructor.ConstructorError) as exc:
        if node.tag == "tag:yaml.org,2002:timestamp":
            raise YamlProblem(f"impossible date {_short(node.value)}", *_pos(node)) from None
        reason = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else str(exc)
        raise YamlProblem(f"cannot read value {_short(node.value)}: {_clip(str(reason))}", *_pos(node)) from None
    if isinstance(value, datetime) and value.tzinfo is None:
        raise YamlProblem(f"datetime {_short(node.value)} needs a UTC offset, e.g. +01:00", *_pos(node))
    if not isinstance(value, _PLAIN_SCALARS):
        raise YamlProblem(f"unsupported value of type {node.tag}", *_pos(node))
    if isinstance(value, float) and not math.isfinite(value):
        raise YamlProblem(f"numbers must be finite, not {_short(node.value)}", *_pos(node))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise YamlProblem(f"the number {_clip(node.value)} is too large (at most {MAX_INT})", *_pos(node))
    return value


def _pos(node: yaml.Node) -> tuple[int, int]:
    return _mark(node.start_mark)


def _mark(mark: yaml.Mark | None) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _character(character: Any) -> str:
    code = ord(character) if isinstance(character, str) and len(character) == 1 else character
    return f"(U+{code:04X})" if isinstance(code, int) else ""


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: Any) -> str:
    """A value for a message, cut short: a source may hold very long scalars."""
    return _clip(repr(value))
