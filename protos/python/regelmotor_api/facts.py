"""Reading a facts file (JSON or YAML) into the JSON values an EvaluateRequest carries.

`regelmotor-client evaluate` and `regelmotor evaluate` both read facts through this, so one file
gives the same facts whichever way it goes. The API takes dates as text ``YYYY-MM-DD`` and datetimes
as ISO 8601 text with a ``T`` and their UTC offset; YAML writes both unquoted, so they are turned into
exactly that text here. Anything the API could not carry faithfully is refused with the place it
was found, rather than sent in a form the server misreads or refuses: a datetime without an offset,
an impossible date (2025-02-30), a number that is not finite or a whole number beyond what the
API's double-precision numbers hold exactly, duplicate keys, keys that YAML reads as something other
than text (``on:`` is true), YAML aliases, merge keys and tags, and files too large or too deep.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Protocol, TypeAlias

import yaml

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
Facts: TypeAlias = dict[str, JsonValue]

MAX_FACTS_BYTES = 4 * 1024 * 1024  # the server's default largest request
MAX_DEPTH = 32  # nesting of mappings and lists; facts are flat records with lists
LARGEST_EXACT_INTEGER = 2**53  # protobuf's Struct carries every number as a double
STDIN = "-"

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_YAML + name for name in ("null", "bool", "int", "float", "str", "timestamp"))


@dataclass
class FactsFileError(ValueError):
    """A facts file that cannot be read as API facts: where (file, line, column, key path) and why."""

    source: str
    reason: str
    line: int | None = None
    column: int | None = None
    path: tuple[str | int, ...] = ()

    def __str__(self) -> str:
        place = self.source if self.line is None else f"{self.source}:{self.line}:{self.column}"
        return f"{place}: {field_path(self.path)}: {self.reason}" if self.path else f"{place}: {self.reason}"


def field_path(path: tuple[str | int, ...]) -> str:
    """``individuelle_forhold[2]``: the way the server names a fact in its field violations."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def read_facts(source: str | Path, *, stdin: IO[Any] | None = None, max_bytes: int = MAX_FACTS_BYTES) -> Facts:
    """The facts in the file `source` ("-": standard input, or `stdin` when given), JSON or YAML."""
    name = "<stdin>" if str(source) == STDIN else str(source)
    if str(source) == STDIN:
        stream = stdin if stdin is not None else sys.stdin
        raw = getattr(stream, "buffer", stream).read(max_bytes + 1)
    else:
        try:
            with Path(source).open("rb") as file:
                raw = file.read(max_bytes + 1)
        except OSError as exc:
            raise FactsFileError(name, f"cannot read the facts file: {exc.strerror or exc}") from None
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise FactsFileError(name, f"the facts file is larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FactsFileError(name, f"not UTF-8 text (byte {exc.start})") from None
    return parse_facts(text, name)


def parse_facts(text: str, source: str = "<facts>") -> Facts:
    """Facts from JSON or YAML text. A text that parses as JSON is read as JSON (YAML 1.1 would read
    the JSON number 1e5 as text); a file named *.json must be JSON."""
    if source.lower().endswith(".json"):
        return _from_json(text, source)
    if text.lstrip().startswith("{"):
        try:
            return _from_json(text, source)
        except _NotJson:
            pass
    return _from_yaml(text, source)


def _top(value: JsonValue, source: str) -> Facts:
    if not isinstance(value, dict):
        kind = "empty" if value is None else f"a {_kind(value)}"
        raise FactsFileError(source, f"the facts file is {kind}; expected a mapping of fact names to values")
    return value


def _kind(value: object) -> str:
    return {list: "list", str: "text", bool: "boolean", int: "number", float: "number"}.get(type(value), "value")


# ---- JSON


class _NotJson(FactsFileError):
    pass


def _from_json(text: str, source: str) -> Facts:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in pairs:
            if key in found:
                raise FactsFileError(source, f"duplicate key {key!r}")
            found[key] = value
        return found

    def no_constant(name: str) -> None:
        raise FactsFileError(source, f"{name} is not a number the API can carry")

    try:
        data = json.loads(text, object_pairs_hook=unique, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise _NotJson(source, f"not valid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise FactsFileError(source, f"nested deeper than {MAX_DEPTH} levels") from None
    except FactsFileError:
        raise
    except ValueError:  # the one left: an integer of more digits than Python converts (4300)
        raise FactsFileError(source, "a number has too many digits to be read") from None
    return _top(_checked(data, (), source), source)


def _checked(value: Any, path: tuple[str | int, ...], source: str) -> JsonValue:
    """`value` from json.loads, with the checks the YAML reader makes on the same values."""
    if len(path) > MAX_DEPTH:
        raise FactsFileError(source, f"nested deeper than {MAX_DEPTH} levels", path=path)
    if isinstance(value, dict):
        return {key: _checked(item, (*path, key), source) for key, item in value.items()}
    if isinstance(value, list):
        return [_checked(item, (*path, index), source) for index, item in enumerate(value)]
    problem = _number_problem(value)
    if problem:
        raise FactsFileError(source, problem, path=path)
    return value  # type: ignore[no-any-return]


def _number_problem(value: object) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a number the API can carry"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > LARGEST_EXACT_INTEGER:
        return (f"{value} is larger than the API's numbers hold exactly (2^53); "
                "send it as text if it is an identifier")
    return None


# ---- YAML


class _Mark(Protocol):
    """Where PyYAML found something (0-based); its pure-Python and C parsers have a Mark class each."""

    line: int
    column: int


class _Refused(Exception):
    def __init__(self, reason: str, mark: _Mark | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mark = mark


class _FactsLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and nesting beyond MAX_DEPTH while composing, before either
    can multiply the document (a billion laughs) or exhaust the stack."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise _Refused("YAML aliases (*name) are not allowed in facts; write the value out", self._next_mark())
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", self._next_mark())
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _next_mark(self) -> _Mark | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        return event.start_mark


def _from_yaml(text: str, source: str) -> Facts:
    loader = _FactsLoader(text)
    try:
        node = loader.get_single_node()
        return _top(_YamlFacts(loader, source).value(node, ()) if node is not None else None, source)
    except _Refused as exc:
        raise _placed(source, exc.reason, exc.mark) from None
    except yaml.MarkedYAMLError as exc:
        raise _placed(source, f"not valid YAML: {exc.problem}", exc.problem_mark) from None
    except yaml.YAMLError as exc:  # e.g. a control character the YAML reader refuses
        raise FactsFileError(source, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _placed(source: str, reason: str, mark: _Mark | None, path: tuple[str | int, ...] = ()) -> FactsFileError:
    if mark is None:
        return FactsFileError(source, reason, path=path)
    return FactsFileError(source, reason, mark.line + 1, mark.column + 1, path)


def _shown(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


@dataclass
class _YamlFacts:
    loader: _FactsLoader
    source: str

    def refuse(self, reason: str, node: yaml.Node, path: tuple[str | int, ...]) -> FactsFileError:
        return _placed(self.source, reason, node.start_mark, path)

    def value(self, node: yaml.Node, path: tuple[str | int, ...]) -> JsonValue:
        if isinstance(node, yaml.MappingNode):
            if node.tag != _YAML + "map":
                raise self.refuse(f"the YAML tag {_shown(node.tag)} is not allowed in facts", node, path)
            out: dict[str, JsonValue] = {}
            for key_node, value_node in node.value:
                key = self.key(key_node, path)
                if key in out:
                    raise self.refuse(f"duplicate key {key!r}", key_node, path)
                out[key] = self.value(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _YAML + "seq":
                raise self.refuse(f"the YAML tag {_shown(node.tag)} is not allowed in facts", node, path)
            return [self.value(item, (*path, index)) for index, item in enumerate(node.value)]
        return self.scalar(node, path)

    def key(self, node: yaml.Node, path: tuple[str | int, ...]) -> str:
        if node.tag == _YAML + "merge":
            raise self.refuse("YAML merge keys (<<) are not allowed in facts; write the keys out", node, path)
        if not isinstance(node, yaml.ScalarNode) or node.tag != _YAML + "str":
            shown = node.value if isinstance(node, yaml.ScalarNode) else "a mapping or list"
            raise self.refuse(f"the key {shown!r} is not read as text by YAML; put it in quotes", node, path)
        return str(node.value)

    def scalar(self, node: yaml.Node, path: tuple[str | int, ...]) -> JsonValue:
        if node.tag not in _SCALAR_TAGS:
            raise self.refuse(f"the YAML tag {_shown(node.tag)} is not allowed in facts", node, path)
        try:
            value = self.loader.construct_object(node, deep=True)
        except Exception as exc:  # PyYAML's constructors fail in many ways on explicitly tagged text
            if node.tag == _YAML + "timestamp" and isinstance(exc, ValueError):
                raise self.refuse(f"impossible date {node.value!r}", node, path) from None
            raise self.refuse(f"cannot read {node.value!r} as {_shown(node.tag)}", node, path) from None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise self.refuse(f"the datetime {node.value!r} needs a UTC offset, e.g. 2025-03-04T13:05:00+01:00",
                                  node, path)
            return value.isoformat()
        if isinstance(value, date):
            return value.isoformat()
        problem = _number_problem(value)
        if problem:
            raise self.refuse(problem, node, path)
        return value  # type: ignore[no-any-return]
