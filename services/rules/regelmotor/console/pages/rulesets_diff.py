"""A DiffRulesets answer laid out side by side: for each change, what it is, the older version's side and the
newer one's, grouped in the sections a reviewer reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# DiffRulesetsResponse's groups, in reading order, with their Norwegian headings.
SECTIONS = (("metadata", "Om versjonen"), ("parameters", "Parametere"), ("facts", "Fakta (inndata)"),
            ("derived", "Avledede verdier"), ("outcomes", "Utfall"), ("tables", "Tabeller"),
            ("hjemler", "Hjemler"), ("constraints", "Kontroller av inndata"))


@dataclass(frozen=True)
class Change:
    what: str
    before: str  # "": not in the older version
    after: str  # "": not in the newer version


@dataclass(frozen=True)
class Section:
    heading: str
    changes: tuple[Change, ...]


def change_of(line: str) -> Change:
    """`~ path: a → b`, `+ path: b`, `- path: a` or `key: a → b` as one row."""
    mark, body = (line[0], line[2:]) if line[:2] in ("+ ", "- ", "~ ") else ("~", line)
    what, _, rest = body.partition(": ")
    if mark == "+":
        return Change(what, "", rest or "(lagt til)")
    if mark == "-":
        return Change(what, rest or "(fjernet)", "")
    before, arrow, after = rest.partition(" → ")
    return Change(what, before, after) if arrow else Change(what, "", rest)


def sections(diff: dict[str, Any]) -> list[Section]:
    """The sections with changes, rules first: added, removed and changed, then the other groups."""
    rules = [Change(rule, "", "Ny regel") for rule in diff["rules_added"]]
    rules += [Change(rule, "Regelen finnes", "Fjernet") for rule in diff["rules_removed"]]
    for changed in diff["rules_changed"]:
        rules += [Change(f"{changed['rule_id']}: {c.what}", c.before, c.after)
                  for c in map(change_of, changed["changes"])]
    found = [Section("Regler", tuple(rules))] if rules else []
    found += [Section(heading, tuple(change_of(line) for line in diff[key])) for key, heading in SECTIONS
              if diff[key]]
    return found
