"""What changed between two ruleset versions, in terms a reviewer reads, and nothing left out.

A version's sha256 is taken over its canonical document (`Ruleset.canonical`), so the diff is taken
over the same document: two versions with different hashes always differ by at least one line, and
every difference between the documents is a line. Readable summaries come first (a rule's condition,
a parameter's values, a fact's type); whatever a summary does not show (a description, `internal`,
`values_from`, a parameter's hjemmel, spacing inside a condition) is listed by its path:
`~ outcomes.utfall.internal: false → true`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import Ruleset

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "(not set)"})()
_SHOWN_CHARS = 160


@dataclass
class RulesetDiff:
    a: str
    b: str
    metadata: list[str] = field(default_factory=list)
    rules_added: list[str] = field(default_factory=list)
    rules_removed: list[str] = field(default_factory=list)
    rules_changed: dict[str, list[str]] = field(default_factory=dict)
    parameters: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    hjemler: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any([self.metadata, self.rules_added, self.rules_removed, self.rules_changed, self.parameters,
                        self.facts, self.derived, self.outcomes, self.tables, self.hjemler, self.constraints])

    def lines(self) -> list[str]:
        out = [f"--- {self.a}", f"+++ {self.b}"]
        for title, items in (("metadata", self.metadata), ("facts (input schema)", self.facts),
                             ("parameters", self.parameters), ("tables", self.tables),
                             ("derived values", self.derived), ("outcomes", self.outcomes),
                             ("hjemler", self.hjemler), ("constraints", self.constraints)):
            if items:
                out.append(f"{title}:")
                out.extend(f"  {item}" for item in items)
        if self.rules_added or self.rules_removed or self.rules_changed:
            out.append("rules:")
            out.extend(f"  + {r}" for r in self.rules_added)
            out.extend(f"  - {r}" for r in self.rules_removed)
            for rule_id, changes in self.rules_changed.items():
                out.append(f"  ~ {rule_id}")
                out.extend(f"      {c}" for c in changes)
        if self.empty:
            out.append("no differences in meaning (the canonical contents, and so the sha256, are the same)")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def diff_rulesets(a: Ruleset, b: Ruleset) -> RulesetDiff:
    result = RulesetDiff(f"{a.key} ({a.source_path})", f"{b.key} ({b.source_path})")
    doc_a, doc_b = a.canonical, b.canonical
    for key in sorted(doc_a.keys() | doc_b.keys()):
        old, new = doc_a.get(key, MISSING), doc_b.get(key, MISSING)
        if key == "rules":
            _rules(result, old, new)
        elif key == "tables":
            result.tables = _section("tables", old, new, _table)
        elif key == "constraints":
            result.constraints = _keyed_section(key, "constraint", old, new, _CONSTRAINT.compare)
        elif key in _ENTRIES:
            describer = _ENTRIES[key]
            setattr(result, key, _section(key, old, new, describer.compare))
        elif _json(old) != _json(new):
            shown_old, shown_new = _plain(old), _plain(new)
            if shown_old == shown_new:
                shown_old, shown_new = _pair(old, new)
            result.metadata.append(f"{key}: {shown_old} → {shown_new}")
    return result


# --- rendering ----------------------------------------------------------------------------------


def _json(value: Any) -> str:
    """The canonical JSON text of a value, exactly as the sha256 sees it."""
    if value is MISSING:
        return "(not set)"
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _plain(value: Any) -> str:
    """A value as an author wrote it: text without quotes, anything else as JSON."""
    return _clip(value) if isinstance(value, str) else _clip(_json(value))


def _pair(old: Any, new: Any) -> tuple[str, str]:
    """Two values as JSON, cut around where they first differ so that the difference stays visible."""
    text_old, text_new = _json(old), _json(new)
    if len(text_old) <= _SHOWN_CHARS and len(text_new) <= _SHOWN_CHARS:
        return text_old, text_new
    same = next((i for i, (x, y) in enumerate(zip(text_old, text_new, strict=False)) if x != y),
                min(len(text_old), len(text_new)))
    start = max(0, same - 40)
    lead = "…" if start else ""
    return lead + _clip(text_old[start:]), lead + _clip(text_new[start:])


def generic(path: str, old: Any, new: Any, out: list[str]) -> None:
    """One line per difference between two canonical values, each named by its path."""
    if _json(old) == _json(new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            generic(f"{path}.{key}", old.get(key, MISSING), new.get(key, MISSING), out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (item_old, item_new) in enumerate(zip(old, new, strict=True)):
            generic(f"{path}[{index}]", item_old, item_new, out)
    elif old is MISSING:
        out.append(f"+ {path}: {_pair(old, new)[1]}")
    elif new is MISSING:
        out.append(f"- {path}: {_pair(old, new)[0]}")
    else:
        shown_old, shown_new = _pair(old, new)
        out.append(f"~ {path}: {shown_old} → {shown_new}")


# --- entries of a section -----------------------------------------------------------------------


Render = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class _Part:
    """Keys of an entry that its summary shows, and how."""

    keys: tuple[str, ...]
    render: Render


@dataclass(frozen=True)
class _Entries:
    kind: str
    section: str
    parts: tuple[_Part, ...]
    normalise: Callable[[Any], Any] = lambda entry: entry

    def summary(self, entry: Mapping[str, Any]) -> str:
        return " ".join(text for text in (part.render(entry) for part in self.parts) if text)

    def compare(self, name: str, old: Any, new: Any) -> list[str]:
        if _json(old) == _json(new):
            return []
        entry_old, entry_new = self.normalise(old), self.normalise(new)
        if old is MISSING:
            return [f"+ {self.kind} {name}: {self._summary_of(entry_new)}"]
        if new is MISSING:
            return [f"- {self.kind} {name}"]
        out: list[str] = []
        if isinstance(entry_old, dict) and isinstance(entry_new, dict):
            hidden = [key for key in sorted(entry_old.keys() | entry_new.keys())
                      if _json(entry_old.get(key, MISSING)) != _json(entry_new.get(key, MISSING))
                      and not self._shows(key, entry_old, entry_new)]
            if len(hidden) < len(_differing(entry_old, entry_new)):
                out.append(f"~ {self.kind} {name}: {self.summary(entry_old)} → {self.summary(entry_new)}")
            for key in hidden:
                generic(f"{self.section}.{name}.{key}", entry_old.get(key, MISSING), entry_new.get(key, MISSING), out)
        if not out:  # the entries differ in form only (a derived value as text or as `expr:`)
            generic(f"{self.section}.{name}", old, new, out)
        return out

    def _summary_of(self, entry: Any) -> str:
        return self.summary(entry) if isinstance(entry, dict) else _plain(entry)

    def _shows(self, key: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Whether the summary line shows the change of `key`: the summary depends on it, on one side
        or the other (a change that does not touch the summary is listed by its path instead)."""
        part = next((p for p in self.parts if key in p.keys), None)
        if part is None or part.render(old) == part.render(new):
            return False
        return part.render(_with(old, key, new)) != part.render(old) or \
            part.render(_with(new, key, old)) != part.render(new)


def _with(entry: dict[str, Any], key: str, source: dict[str, Any]) -> dict[str, Any]:
    """`entry` with `key` as in `source` (absent if it is absent there)."""
    changed = dict(entry)
    if key in source:
        changed[key] = source[key]
    else:
        changed.pop(key, None)
    return changed


def _differing(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [key for key in old.keys() | new.keys() if _json(old.get(key, MISSING)) != _json(new.get(key, MISSING))]


def _section(name: str, old: Any, new: Any, compare: Callable[[str, Any, Any], list[str]]) -> list[str]:
    """Entry by entry for a mapping section; by path when the section itself differs in form."""
    out: list[str] = []
    entries_old = old if isinstance(old, dict) else {}
    entries_new = new if isinstance(new, dict) else {}
    for key in sorted(entries_old.keys() | entries_new.keys()):
        out += compare(key, entries_old.get(key, MISSING), entries_new.get(key, MISSING))
    if not out:  # e.g. `tables: {}` against no tables
        generic(name, old, new, out)
    return out


def _field(key: str, label: str = "") -> _Part:
    prefix = f"{label} " if label else ""
    return _Part((key,), lambda entry: f"{prefix}{_plain(entry[key])}" if key in entry else "")


def _flag(key: str) -> _Part:
    return _Part((key,), lambda entry: key if entry.get(key) is True else "")


def _type_text(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type")
    if kind == "enum" and "values_from" in spec:
        return f"enum (the keys of table {_plain(spec['values_from'])})"
    if kind == "enum" and isinstance(spec.get("values"), list):
        return "enum (" + ", ".join(_plain(v) for v in spec["values"]) + ")"
    if kind == "list" and isinstance(spec.get("items"), dict):
        return f"list of {_type_text(spec['items'])}"
    return _plain(kind)


def _expression(key: str, label: str = "") -> _Part:
    prefix = f"{label} " if label else ""
    return _Part((key,), lambda entry: prefix + " ".join(str(entry[key]).split()) if key in entry else "")


def _parameter_values(entry: Mapping[str, Any]) -> str:
    values = entry.get("values")
    if not isinstance(values, list):
        return _plain(values)
    shown = []
    for item in values:
        if not isinstance(item, dict):
            shown.append(_plain(item))
            continue
        note = f" ({item['note']})" if "note" in item else ""
        note += f" [sekundærkilde: {item['sekundaerkilde']}]" if "sekundaerkilde" in item else ""
        shown.append(f"{_plain(item.get('gyldig_fra', MISSING))}: {_plain(item.get('value', MISSING))}{note}")
    return ", ".join(shown)


def _citation(entry: Mapping[str, Any]) -> str:
    parts = [_plain(entry.get("navn") or entry.get("kilde", MISSING))]
    for key, label in (("kapittel", "kap. {}"), ("paragraf", "§ {}"), ("ledd", "{}. ledd"),
                       ("punktum", "{}. punktum"), ("bokstav", "bokstav {}")):
        if entry.get(key):
            parts.append(label.format(_plain(entry[key])))
    return " ".join(parts) + ("" if entry.get("verified") is True else " (ikke verifisert)")


_TYPE = _Part(("type", "values", "values_from", "items"), _type_text)
_ENTRIES: dict[str, _Entries] = {entries.section: entries for entries in (
    _Entries("fact", "facts", (_TYPE, _flag("required"), _field("default", "default"), _field("min", "min"),
                               _field("max", "max"), _field("pattern", "pattern"), _field("max_items", "max_items"),
                               _field("max_length", "max_length"))),
    _Entries("parameter", "parameters", (_Part(("values",), _parameter_values), _field("unit"))),
    _Entries("outcome", "outcomes", (_TYPE, _field("combine", "combine"), _field("default", "default"))),
    _Entries("hjemmel", "hjemler", (
        _Part(("navn", "kilde", "kapittel", "paragraf", "ledd", "punktum", "bokstav", "verified"), _citation),
        _field("i_kraft", "i_kraft"), _field("url", "url"))),
    _Entries("derived", "derived", (_expression("expr"),),
             normalise=lambda entry: {"expr": entry} if isinstance(entry, str) else entry),
)}
_CONSTRAINT = _Entries("constraint", "constraints", (
    _expression("when", "when"), _Part(("field", "message"),
                                       lambda c: f"→ {_plain(c.get('field'))}: {_plain(c.get('message'))}")))


# --- keyed lists: rules, constraints, table rows ------------------------------------------------


def _keyed(items: Any, key: str) -> dict[str, dict[str, Any]] | None:
    """A list of mappings by their `key` (text), in list order; None when it is not one."""
    if items is MISSING or items is None:
        return {}
    if not isinstance(items, list):
        return None
    keyed: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get(key), (str, int)) or str(item[key]) in keyed:
            return None
        keyed[str(item[key])] = item
    return keyed


def _order_line(label: str, old: list[str], new: list[str]) -> list[str]:
    """A line when the order changed beyond removals and additions at the end."""
    kept, before = set(new), set(old)
    expected = [key for key in old if key in kept] + [key for key in new if key not in before]
    return [] if new == expected else [f"{label}: {', '.join(old)} → {', '.join(new)}"]


def _rules(result: RulesetDiff, old: Any, new: Any) -> None:
    rules_old, rules_new = _keyed(old, "id"), _keyed(new, "id")
    if rules_old is None or rules_new is None:
        generic("rules", old, new, result.metadata)
        return
    result.rules_added = [r for r in rules_new if r not in rules_old]
    result.rules_removed = [r for r in rules_old if r not in rules_new]
    # Order matters: `collect` outcomes list values in rule order.
    result.metadata += _order_line("rule order", list(rules_old), list(rules_new))
    for rule_id in rules_old:
        if rule_id in rules_new and _json(rules_old[rule_id]) != _json(rules_new[rule_id]):
            result.rules_changed[rule_id] = _rule_changes(rules_old[rule_id], rules_new[rule_id])
    if not (result.rules_added or result.rules_removed or result.rules_changed) and _json(old) != _json(new):
        generic("rules", old, new, result.metadata)  # e.g. `rules: []` against no rules


def _rule_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes: list[str] = []
    for key in sorted(_differing(old, new), key=lambda k: (_RULE_KEY_ORDER.get(k, len(_RULE_KEY_ORDER)), k)):
        value_old, value_new = old.get(key, MISSING), new.get(key, MISSING)
        shown_old, shown_new = _pair(value_old, value_new)
        if key == "when" and isinstance(value_old, str) and isinstance(value_new, str):
            readable = " ".join(value_old.split()), " ".join(value_new.split())
            if readable[0] != readable[1]:
                shown_old, shown_new = readable
        changes.append(f"{key}: {shown_old} → {shown_new}")
    return changes


_RULE_KEY_ORDER = {key: index for index, key in enumerate((
    "when", "then", "title", "hjemmel", "unntak_fra", "prioritet", "manuell_vurdering", "begrunnelse"))}


def _keyed_section(section: str, kind: str, old: Any, new: Any,
                   compare: Callable[[str, Any, Any], list[str]]) -> list[str]:
    entries_old, entries_new = _keyed(old, "id"), _keyed(new, "id")
    out: list[str] = []
    if entries_old is None or entries_new is None:
        generic(section, old, new, out)
        return out
    out += _order_line(f"{kind} order", list(entries_old), list(entries_new))
    for key in [*entries_old, *(k for k in entries_new if k not in entries_old)]:
        out += compare(key, entries_old.get(key, MISSING), entries_new.get(key, MISSING))
    if not out:
        generic(section, old, new, out)
    return out


def _table(name: str, old: Any, new: Any) -> list[str]:
    if _json(old) == _json(new):
        return []
    if old is MISSING or new is MISSING:
        return [f"{'+' if old is MISSING else '-'} table {name}"]
    out: list[str] = []
    key = old.get("key") if isinstance(old, dict) and isinstance(new, dict) else None
    if not isinstance(key, str) or key != new.get("key"):  # rows cannot be matched by their key
        generic(f"tables.{name}", old, new, out)
        return out
    rows_old, rows_new = _keyed(old.get("rows"), key), _keyed(new.get("rows"), key)
    if rows_old is None or rows_new is None:
        generic(f"tables.{name}.rows", old.get("rows", MISSING), new.get("rows", MISSING), out)
    else:
        out += _order_line(f"~ {name} row order", list(rows_old), list(rows_new))
        for row in [*rows_old, *(k for k in rows_new if k not in rows_old)]:
            row_old, row_new = rows_old.get(row, MISSING), rows_new.get(row, MISSING)
            if row_old is MISSING:
                out.append(f"+ {name} row {row}: {_pair(row_old, row_new)[1]}")
            elif row_new is MISSING:
                out.append(f"- {name} row {row}")
            elif _json(row_old) != _json(row_new):
                shown_old, shown_new = _pair(row_old, row_new)
                out.append(f"~ {name} row {row}: {shown_old} → {shown_new}")
    for part in sorted((old.keys() | new.keys()) - {"rows"}):
        generic(f"tables.{name}.{part}", old.get(part, MISSING), new.get(part, MISSING), out)
    if not out:  # e.g. `rows: []` against no rows
        generic(f"tables.{name}", old, new, out)
    return out
