"""The corrections 2020.1.1 and 2024.1.1 of prioriterte-pasientgrupper decide alvorlige psykiske lidelser og rus,
and the children's group, as the definitions they cite say: checked on random facts against a reading of those
definitions written here in plain Python, without the engine's ICD-10 code (regelmotor.core.icd10) or the
ruleset's expressions.

The definitions (shared/domain law.md §H; the rulesets' notes): Helsedirektoratet (23.01.2024) - 18 years or older,
contact with psykisk helsevern, F20, F25, F30, F31, F32.2/F32.3, F33.2/F33.3 or F60-F69; the local code list of
2020.1 and 2024.1 (F20-F31, F32.2/F32.3, F33.2/F33.3, F60-F61) only under 18 or when the contact is unknown; rus
(dependence, F10.2 ... F19.2) a criterion of its own; 2020's «barn og unge med langvarige og/eller sammensatte
behov» under 21.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from regelmotor.core.api import Regelmotor
from regelmotor.core.errors import InvalidFacts
from regelmotor.core.model import Ruleset
from tests.strategies import period_dates, plausible_facts_for
from tests.test_properties import VERSIONS

OFFICIAL = ("F20", "F25", "F30", "F31", "F32.2", "F32.3", "F33.2", "F33.3", *(f"F6{n}" for n in range(10)))
LOCAL = (*(f"F{n}" for n in range(20, 32)), "F32.2", "F32.3", "F33.2", "F33.3", "F60", "F61")
DEPENDENCE = tuple(f"F1{n}.2" for n in range(10))
APL = "alvorlige_psykiske_lidelser_og_rus"

CORRECTIONS = [(motor, ruleset) for motor, ruleset in VERSIONS
               if ruleset.meta.name == "prioriterte-pasientgrupper" and ruleset.meta.supersedes is not None]


def named(codes: list[str], listed: tuple[str, ...]) -> bool:
    """Some code is a listed category (three characters: the code's first three) or a listed code or below it."""
    return any(code[:3] == item if len(item) == 3 else code.startswith(item) for code in codes for item in listed)


def age(born: date, on: date) -> int:
    """Completed years; born 29 February, a year older on 1 March in other years."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def expected(version: str, facts: dict[str, Any], as_of: date) -> tuple[bool, str | None, bool]:
    """(in the group alvorlige psykiske lidelser og rus, the basis of its psychiatric part, in barn og unge)."""
    years = age(date.fromisoformat(facts["fodselsdato"]), as_of)
    codes = facts.get("diagnoser", [])
    contact = facts.get("kontakt_psykisk_helsevern", "ukjent")
    official = years >= 18 and contact == "ja" and named(codes, OFFICIAL)
    local = (years < 18 or contact == "ukjent") and named(codes, LOCAL)
    basis = "offisiell_definisjon" if official else "lokal_tilnaerming" if local else None
    needs = facts.get("behov_omfattende_langvarige_tjenester", False)
    if version == "2020.1.1":
        needs = needs or facts.get("langvarige_eller_sammensatte_behov", False)
    return official or local or named(codes, DEPENDENCE), basis, years < 21 and needs


def test_the_reading_here_names_codes_as_the_definitions_do() -> None:
    assert named(["F32.20"], OFFICIAL) and named(["F64.0"], OFFICIAL) and named(["F25"], OFFICIAL)
    assert not named(["F22.0", "F32.1", "F70", "F59"], OFFICIAL)
    assert named(["F22.0"], LOCAL) and named(["F61.9"], LOCAL) and not named(["F62", "F32", "F34.1"], LOCAL)
    assert named(["F17.20"], DEPENDENCE) and not named(["F10.1", "F10", "F15.3"], DEPENDENCE)
    assert age(date(2004, 2, 29), date(2022, 2, 28)) == 17 and age(date(2004, 2, 29), date(2022, 3, 1)) == 18


@pytest.mark.parametrize(("motor", "ruleset"), CORRECTIONS, ids=[r.key for _, r in CORRECTIONS])
def test_each_correction_decides_as_the_definitions_read(motor: Regelmotor, ruleset: Ruleset) -> None:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(facts=plausible_facts_for(ruleset, most_codes=8), as_of=period_dates(ruleset))
    def check(facts: dict[str, Any], as_of: date) -> None:
        outcome = motor.evaluate(ruleset.meta.name, facts, as_of=as_of, version=ruleset.meta.version).outcome
        group, basis, child = expected(ruleset.meta.version, facts, as_of)
        assert (APL in outcome["grupper"], outcome["grunnlag_alvorlige_psykiske_lidelser"]) == (group, basis), facts
        assert ("barn_og_unge" in outcome["grupper"]) == child, facts

    check()


def test_there_are_two_corrections_to_check() -> None:
    assert sorted(ruleset.meta.version for _, ruleset in CORRECTIONS) == ["2020.1.1", "2024.1.1"]


# Values of the wrong JSON type for the two new facts: refused naming the fact. (Not in the cases files: the
# console fills its form from every bundled case, and a form cannot hold a bool for an enum, or text for a bool.)
@pytest.mark.parametrize(("motor", "ruleset"), CORRECTIONS, ids=[r.key for _, r in CORRECTIONS])
@pytest.mark.parametrize(("fact", "value"), [("kontakt_psykisk_helsevern", True), ("kontakt_psykisk_helsevern", 1),
                                             ("langvarige_eller_sammensatte_behov", "ja"),
                                             ("langvarige_eller_sammensatte_behov", 1)])
def test_a_new_fact_of_the_wrong_type_is_refused_naming_it(motor: Regelmotor, ruleset: Ruleset, fact: str,
                                                           value: Any) -> None:
    facts = {"fodselsdato": "2007-03-03", "diagnoser": ["F20.0"], fact: value}
    with pytest.raises(InvalidFacts, match=fact) as refused:
        motor.evaluate(ruleset.meta.name, facts, as_of=ruleset.meta.gyldig_fra, version=ruleset.meta.version)
    assert [v.field for v in refused.value.violations] == [fact]
