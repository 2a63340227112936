"""Whether a value is an amount in Norwegian kroner (shown 29 612 kr), read from the ruleset's own declarations:
a parameter's `unit` (NOK), an outcome's description («Beløp i NOK …»; outcomes declare no unit). One rule for
every page: the explanation tree, the version's document and the impact report say the same of the same field.
Never guessed from a field's name: `dognpris` could as well count days."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The words a ruleset uses for Norwegian kroner: as a whole unit, or as a word in a description.
_KRONER = re.compile(r"\b(NOK|kroner|kr)\b")


def is_kroner_unit(unit: str | None) -> bool:
    """A parameter's unit that is Norwegian kroner (NOK, kr, kroner)."""
    return bool(_KRONER.fullmatch((unit or "").strip()))


def kroner_outcomes(outcome_schema: Mapping[str, Any]) -> frozenset[str]:
    """The outcome fields an outcome schema (GetRuleset's `outcome_schema`) describes as amounts in kroner."""
    properties = outcome_schema.get("properties") or {}
    if not isinstance(properties, Mapping):
        return frozenset()
    return frozenset(name for name, schema in properties.items()
                     if isinstance(schema, Mapping) and _KRONER.search(str(schema.get("description") or "")))
