"""The three shipped rulesets: their contract (fact and outcome names hospital systems rely on), every
test case written beside them, and their generated documents."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from regelmotor.cli.document import stale_documents
from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import Case, load_cases, run_case
from regelmotor.core.model import Ruleset
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository
from tests.conftest import BUNDLED_RULESETS, ROOT

MOTOR = Regelmotor(RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True))

CONTRACT: dict[str, tuple[set[str], set[str], dict[str, str]]] = {
    "rett-til-helsehjelp": (
        {"ansiennitetsdato", "fodselsdato", "fagomrade", "forventet_nytte", "kostnad_rimelig", "tilstand",
         "tilstand_avklart", "individuelle_forhold", "klinisk_frist_uker", "mistanke_alvorlig_sykdom",
         "psykisk_lidelse_eller_rus", "vurdert_dato", "helsehjelp_startet_dato", "pasient_avtalt_ikke_varsle_helfo",
         "vurderingsdato"},
        {"rett_til_nodvendig_helsehjelp", "vurderingsfrist", "vurderingsfrist_brutt", "rask_vurdering",
         "veiledende_frist_uker", "frist_start_helsehjelp", "frist_gjelder", "frist_kilde", "fristbrudd",
         "varsle_helfo", "utfall"},
        {"2015.11": "2015-11-01", "2015.11.1": "2015-11-01", "2024.07": "2024-07-01", "2024.07.1": "2024-07-01"},
    ),
    "utskrivningsklar": (
        {"sektor", "innlagt", "forventet_behov_kommunale_tjenester", "varsel_innlagt",
         "problemstillinger_innleggelse_avklart", "ovrige_problemstillinger_avklart",
         "uavklarte_problemstillinger_begrunnet", "funksjonsniva_vurdert", "lege_vurdert_utskrivningsklar",
         "samarbeidsmote_innkalt", "videre_oppfolging_avklart", "utskrivningsklar_dato", "melding_utskrivningsklar",
         "kommune_svar", "kommune_klar_dato", "reinnlagt_dato", "utskrevet_dato", "beregn_til_dato",
         "bostedskommune", "oppholdskommune"},
        {"utskrivningsklar", "mangler", "varsel_innlagt_rettidig", "betalingsplikt", "betalingsplikt_fra",
         "betalingsplikt_til", "betalingsdogn", "belop", "betalende_kommune", "utfall"},
        {"2012.1": "2012-01-01", "2012.1.1": "2012-01-01", "2019.1": "2019-01-01", "2019.1.1": "2019-01-01"},
    ),
    "prioriterte-pasientgrupper": (
        {"fodselsdato", "diagnoser", "funksjonsniva", "clinical_frailty_scale",
         "behov_omfattende_langvarige_tjenester", "gravid", "fodsel_dato"},
        {"grupper", "store_og_sammensatte_behov"},
        {"2020.1": "2020-01-01", "2024.1": "2024-03-01", "2020.1.1": "2020-01-01", "2024.1.1": "2024-03-01"},
    ),
}

# What a correction adds to its ruleset's contract (facts, public outcomes); the names above stay in every version.
_PRIORITERTE_RETTING = ({"kontakt_psykisk_helsevern", "langvarige_eller_sammensatte_behov"},
                        {"grunnlag_alvorlige_psykiske_lidelser"})
# The rett-til-helsehjelp corrections add the hospital's finding that it cannot give care within the frist.
_RETT_RETTING: tuple[set[str], set[str]] = (
    {"kan_ikke_gi_helsehjelp_innen_frist", "kan_ikke_gi_helsehjelp_dato"}, set())
ADDED_BY_CORRECTION: dict[str, tuple[set[str], set[str]]] = {
    "prioriterte-pasientgrupper@2020.1.1": _PRIORITERTE_RETTING,
    "prioriterte-pasientgrupper@2024.1.1": _PRIORITERTE_RETTING,
    "rett-til-helsehjelp@2015.11.1": _RETT_RETTING,
    "rett-til-helsehjelp@2024.07.1": _RETT_RETTING,
}


def _versions() -> list[Ruleset]:
    return [r for name in MOTOR.repository.names() for r in MOTOR.repository.all_versions(name)]


def _cases() -> list[tuple[Ruleset, Case]]:
    found: list[tuple[Ruleset, Case]] = []
    for ruleset in _versions():
        cases_path = Path(ruleset.source_path[: -len(".yaml")] + CASES_SUFFIX)
        found.extend((ruleset, case) for case in load_cases(cases_path, ruleset))
    return found


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_contract_names_and_versions(name: str) -> None:
    facts, outcomes, versions = CONTRACT[name]
    shipped = MOTOR.repository.all_versions(name)
    assert {r.meta.version: r.meta.gyldig_fra.isoformat() for r in shipped} == versions
    for ruleset in shipped:
        added_facts, added_outcomes = ADDED_BY_CORRECTION.get(ruleset.key, (set(), set()))
        assert set(ruleset.facts) == facts | added_facts, ruleset.key
        public = {o for o, spec in ruleset.outcomes.items() if not spec.internal}
        assert public == outcomes | added_outcomes, ruleset.key


@pytest.mark.parametrize("ruleset", _versions(), ids=lambda r: r.key)
def test_each_version_has_30_cases_and_every_rule_a_hjemmel(ruleset: Ruleset) -> None:
    cases_path = Path(ruleset.source_path[: -len(".yaml")] + CASES_SUFFIX)
    assert len(load_cases(cases_path, ruleset)) >= 30
    for rule in ruleset.rules:
        assert rule.hjemmel, rule.id


@pytest.mark.parametrize(("ruleset", "case"), CASES, ids=[f"{r.key}: {c.name}" for r, c in CASES])
def test_case(ruleset: Ruleset, case: Case) -> None:
    result = run_case(MOTOR, ruleset, case)
    assert result.passed, "\n".join(result.failures)


def test_committed_ruleset_documents_are_current() -> None:
    stale = stale_documents(BUNDLED_RULESETS, ROOT / "docs" / "rulesets")
    assert stale == [], f"out of date: {stale}; run `regelmotor ruleset doc` and commit"


def test_a_changed_ruleset_makes_its_document_stale(tmp_path: Path) -> None:
    import shutil

    rulesets = tmp_path / "rulesets"
    shutil.copytree(BUNDLED_RULESETS, rulesets)
    shutil.copytree(ROOT / "docs" / "rulesets", tmp_path / "docs")
    # A correction (no published correction corrects it: a published correction must correct a published version).
    path = rulesets / "utskrivningsklar" / "2012.1.1.yaml"
    # A correction is a new draft; the published record no longer names that version.
    path.write_text(path.read_text(encoding="utf-8").replace("value: 5981", "value: 5982")
                    .replace("status: published", "status: draft"), encoding="utf-8")
    record = rulesets / "published.txt"
    record.write_text("".join(line for line in record.read_text(encoding="utf-8").splitlines(keepends=True)
                              if not line.startswith("utskrivningsklar 2012.1.1 ")), encoding="utf-8")
    assert stale_documents(rulesets, tmp_path / "docs") == [Path("utskrivningsklar/2012.1.1.md")]


def test_each_correction_is_listed_right_after_the_version_it_corrects() -> None:
    for name in MOTOR.repository.names():
        listed = [r.meta.version for r in MOTOR.repository.all_versions(name)]
        for ruleset in MOTOR.repository.all_versions(name):
            if ruleset.meta.supersedes is not None:
                assert listed.index(ruleset.meta.version) == listed.index(ruleset.meta.supersedes) + 1, listed


def test_every_shipped_version_is_published_and_recorded() -> None:
    published = (BUNDLED_RULESETS / "published.txt").read_text(encoding="utf-8").split()
    for ruleset in _versions():
        assert ruleset.meta.status.value == "published", ruleset.key
        assert ruleset.sha256 in published, ruleset.key


# A case of a rett-til-helsehjelp correction that the corrected version answers differently says so at the end of its
# name, «(2024.07 gir varsle_helfo false)»: what the corrected version answers to the same facts, without the facts
# it does not know. Every other case of the correction it answers alike.
DIFFERS = re.compile(r"\((?P<version>[^()]+) gir (?P<outcome>\w+) (?P<value>[^()]+)\)$")
CORRECTION_CASES = [(r, c) for r, c in CASES if r.meta.name == "rett-til-helsehjelp" and r.meta.supersedes
                    and c.expect_error is None]


@pytest.mark.parametrize(("ruleset", "case"), CORRECTION_CASES,
                         ids=[f"{r.key}: {c.name}" for r, c in CORRECTION_CASES])
def test_a_correction_case_names_what_the_corrected_version_answers_differently(ruleset: Ruleset, case: Case) -> None:
    assert ruleset.meta.supersedes is not None
    corrected = MOTOR.repository.get(ruleset.meta.name, ruleset.meta.supersedes)
    known = {name: value for name, value in case.facts.items() if name in corrected.facts}
    differs = DIFFERS.search(case.name)
    if differs is None:
        expect = case.expect
    else:
        assert differs["version"] == corrected.meta.version
        outcome, value = differs["outcome"], yaml.safe_load(differs["value"])
        assert case.expect[outcome] != value, "the correction's own answer is the one named as the old"
        expect = {outcome: value}
    asked = dataclasses.replace(case, facts=known, expect=expect, fired=None, expect_version=None)
    result = run_case(MOTOR, corrected, asked)
    assert result.passed, "\n".join(result.failures)


def test_the_rett_til_helsehjelp_corrections_have_cases_that_differ_and_cases_that_agree() -> None:
    for key in ("rett-til-helsehjelp@2015.11.1", "rett-til-helsehjelp@2024.07.1"):
        names = [case.name for ruleset, case in CORRECTION_CASES if ruleset.key == key]
        differ = [name for name in names if DIFFERS.search(name)]
        agree_with_new_facts = [case.name for ruleset, case in CORRECTION_CASES if ruleset.key == key
                                and case.facts.get("kan_ikke_gi_helsehjelp_innen_frist") is True
                                and not DIFFERS.search(case.name)]
        assert len(differ) >= 3 and len(agree_with_new_facts) >= 3, key
