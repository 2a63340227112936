"""One rule for «is this amount in kroner» (console/money.py), checked on the bundled rulesets: the outcomes and
parameters they declare as kroner, and nothing guessed from a field's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from regelmotor.console.money import is_kroner_unit, kroner_outcomes
from regelmotor.core.json_schema import outcome_schema
from regelmotor.core.loader import load_ruleset_file

RULESETS = Path(__file__).resolve().parent.parent / "rulesets"
BUNDLED = sorted(p for p in RULESETS.glob("*/*.yaml") if not p.name.endswith(".cases.yaml"))

# What a person reading the bundled rulesets finds: utskrivningsklar pays an amount (belop) at a price per day
# (dognpris); the other rulesets give deadlines and priorities, never money.
KRONER = {"utskrivningsklar": ({"belop"}, {"dognpris"}),
          "rett-til-helsehjelp": (set(), set()), "prioriterte-pasientgrupper": (set(), set())}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_bundled_rulesets_declare_which_outcomes_and_parameters_are_kroner(path: Path) -> None:
    ruleset = load_ruleset_file(path)
    outcomes, parameters = KRONER[path.parent.name]
    assert kroner_outcomes(outcome_schema(ruleset)) == outcomes
    assert {p.name for p in ruleset.parameters.values() if is_kroner_unit(p.unit)} == parameters


def test_every_bundled_ruleset_is_in_the_table() -> None:
    assert {p.parent.name for p in BUNDLED} == set(KRONER)


def test_a_name_alone_makes_no_amount_and_only_whole_words_count() -> None:
    schema = {"properties": {"dognpris": {"type": "integer", "description": "Antall døgn."},
                             "belop": {"type": "integer"},
                             "sum": {"type": "integer", "description": "Summen i kroner."},
                             "kode": {"type": "string", "description": "Kode for kravet."}}}
    assert kroner_outcomes(schema) == {"sum"}  # "kravet" holds "kr", but not as a word
    assert kroner_outcomes({"properties": "ikke et skjema"}) == frozenset()
    assert [is_kroner_unit(u) for u in ("NOK", " kr ", "kroner", "virkedager", "NOKK", "", None)] == [
        True, True, True, False, False, False, False]
