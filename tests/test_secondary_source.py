"""A parameter value resting on a secondary source (`sekundaerkilde`): every decision that reads it carries the mark
in its explanation, and nothing else changes - not the value, not a decision that reads no marked value. And the
correction utskrivningsklar 2019.1.1, which marks the 2025 døgnpris so: it decides as 2019.1 does (same outcomes,
same rules, same refusals) and differs only in the mark and in its references to the 2012 text."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regelmotor.cli.main import main
from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import Case, load_cases, parse_cases, run_case
from regelmotor.core.decision import Decision, decision_from_dict
from regelmotor.core.document import describe
from regelmotor.core.errors import InvalidFacts, ParameterValueMissing, RegelmotorError, RulesetInvalid
from regelmotor.core.evaluator import Evaluator
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository
from regelmotor.server import wire
from regelmotor.server.convert import decision_to_proto
from regelmotor_api.v1 import decision_pb2 as pb
from tests.conftest import BUNDLED_RULESETS, ruleset_text
from tests.strategies import facts_for

MOTOR = Regelmotor(RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True))
CORRECTED, CORRECTION = "2019.1", "2019.1.1"
YEAR_2025 = (date(2025, 1, 1), date(2026, 1, 1))
OSLO = ZoneInfo("Europe/Oslo")
SOURCE = "Avisen 3/2021: «satsen er 12 i år»"

# A daily rate summed over the days of a stay, its 2021 value resting on a secondary source.
RATES = """\
facts:
  fra: {{type: date, required: true}}
  til: {{type: date, required: true}}
parameters:
  sats:
    type: int
    unit: NOK
    source: Tabellen
    values:
      - {{gyldig_fra: 2020-01-01, value: 10}}
      - {{gyldig_fra: 2021-01-01, value: 12{mark}}}
      - {{gyldig_fra: 2022-01-01, value: 13}}
derived:
  sum: parameter_sum_days('sats', fra, til)
rules:
  - {{id: r1, title: Summen, hjemmel: h1, when: fra < til, then: {{belop: =sum}}}}
outcomes:
  belop: {{type: int}}
"""


def _rates(mark: bool) -> Evaluator:
    text = RATES.format(mark=f', sekundaerkilde: "{SOURCE}"' if mark else "")
    return Evaluator(load_ruleset_text(ruleset_text(text), "test.yaml"))


def _reads(decision: Decision) -> list[tuple[str, str | None]]:
    return [(p.gyldig_fra, p.sekundaerkilde) for p in decision.explanation.parameters]


def test_each_read_of_the_marked_value_carries_the_source_and_no_other_read_does() -> None:
    decision = _rates(mark=True).run({"fra": "2020-12-30", "til": "2022-01-03"}, date(2022, 2, 1)).decision("d")
    assert decision.outcome["belop"] == 2 * 10 + 365 * 12 + 2 * 13  # the value itself is the same
    assert _reads(decision) == [("2020-01-01", None), ("2021-01-01", SOURCE), ("2022-01-01", None)]
    # The plain form names the source on the marked read only, and reads back as the same decision.
    plain = decision.to_dict()["explanation"]["parameters"]
    assert ["sekundaerkilde" in p for p in plain] == [False, True, False]
    assert plain[1]["sekundaerkilde"] == SOURCE
    again = decision_from_dict(json.loads(json.dumps(decision.to_dict())))
    assert again == decision and again.content_sha256 == decision.content_sha256


def test_a_decision_reading_no_marked_value_is_what_it_was_without_the_mark() -> None:
    facts, as_of = {"fra": "2020-03-01", "til": "2020-03-05"}, date(2020, 4, 1)
    marked, unmarked = _rates(mark=True).run(facts, as_of), _rates(mark=False).run(facts, as_of)
    # The versions differ (the mark is part of the version's content), so their sha256 does; nothing else does.
    first, second = marked.decision("d").to_dict(), unmarked.decision("d").to_dict()
    assert first.pop("ruleset_sha256") != second.pop("ruleset_sha256")
    assert first == second
    written = {}
    for name, evaluation in (("marked", marked), ("unmarked", unmarked)):
        answer = pb.Decision.FromString(wire.decision_bytes(evaluation, evaluation.head("d"), request_id="r",
                                                            trace_id="ab" * 16))
        answer.ClearField("ruleset_sha256")
        written[name] = answer.SerializeToString(deterministic=True)
    assert written["marked"] == written["unmarked"]


def test_the_answer_writer_writes_the_mark_as_the_protobuf_library_does_at_every_level() -> None:
    evaluation = _rates(mark=True).run({"fra": "2020-12-31", "til": "2021-01-02"}, date(2021, 2, 1))
    decision = evaluation.decision("d")
    for level in wire.LEVELS:
        written = pb.Decision.FromString(wire.decision_bytes(evaluation, evaluation.head("d"), request_id="r",
                                                             trace_id="ab" * 16, level=level))
        assert written == decision_to_proto(decision, request_id="r", trace_id="ab" * 16, level=level)
        if level != wire.NONE:
            marks = [[f.name for f, _ in p.ListFields() if f.name == "sekundaerkilde"]
                     for p in written.explanation.parameters]
            assert marks == [[], ["sekundaerkilde"]]  # written for the marked read only
            assert written.explanation.parameters[1].sekundaerkilde == SOURCE


@pytest.mark.parametrize(("value", "message"), [
    ('{gyldig_fra: 2021-01-01, value: null, sekundaerkilde: "Avisen"}', "sekundaerkilde is for a value"),
    ('{gyldig_fra: 2021-01-01, value: 12, sekundaerkilde: "  "}', "sekundaerkilde must name the source"),
    ("{gyldig_fra: 2021-01-01, value: 12, sekundaerkilde: true}", "`sekundaerkilde` of parameter value must be text"),
    ("{gyldig_fra: 2021-01-01, value: 12, sekundaerkjelde: Avisen}", "unknown key 'sekundaerkjelde'"),
])
def test_a_mark_on_no_value_an_empty_mark_or_a_misspelt_key_is_refused_with_its_line(value: str,
                                                                                     message: str) -> None:
    text = ruleset_text(RATES.format(mark="").replace("{gyldig_fra: 2021-01-01, value: 12}", value))
    with pytest.raises(RulesetInvalid, match=message) as refused:
        load_ruleset_text(text, "test.yaml")
    assert refused.value.diagnostics[0].line == text.splitlines().index(f"      - {value}") + 1


# --- the cases file ----------------------------------------------------------------------------------------------


def _rates_case(expected: str) -> Case:
    ruleset = _rates(mark=True).ruleset
    [case] = parse_cases(f"""cases:
  - {{name: over nyttår, as_of: 2021-02-01, facts: {{fra: 2020-12-31, til: 2021-01-02}}, expect: {{belop: 22}},
     expect_sekundaerkilde: {expected}}}
""", "test.cases.yaml", ruleset)
    return case


@pytest.mark.parametrize(("expected", "failures"), [
    ("[sats]", []),
    ("[]", ["parameters resting on a secondary source differ: expected [], read ['sats']"]),
])
def test_a_case_checks_which_parameters_read_rest_on_a_secondary_source(expected: str, failures: list[str]) -> None:
    ruleset = _rates(mark=True).ruleset
    repository = RulesetRepository(include_drafts=True)
    repository.add(ruleset, "")
    assert run_case(Regelmotor(repository), ruleset, _rates_case(expected)).failures == failures


def test_a_case_naming_no_parameter_of_the_version_is_refused() -> None:
    with pytest.raises(RulesetInvalid, match="no parameter 'dognpris' in test@1"):
        _rates_case("[dognpris]")


def test_expect_version_is_met_by_a_correction_of_the_version_expected() -> None:
    """With 2019.1.1 published, facts of 2024 select it in 2019.1's place: a case of 2019.1 expecting 2019.1 passes,
    one expecting the version before does not."""
    corrected = MOTOR.repository.get("utskrivningsklar", CORRECTED)
    [case] = [c for c in _cases(CORRECTED) if c.expect_version == CORRECTED][:1]
    assert MOTOR.choose("utskrivningsklar", case.facts, as_of=case.as_of)[0].meta.version == CORRECTION
    assert run_case(MOTOR, corrected, case).passed
    wrong = Case(case.name, case.line, case.as_of, case.facts, case.expect, expect_version="2012.1")
    assert run_case(MOTOR, corrected, wrong).failures == [f"version: expected 2012.1, the facts select {CORRECTION}"]
    # The correction tested alone, as a proposal is: the version it corrects is not beside it, yet is what it
    # decides in place of.
    correction = MOTOR.repository.get("utskrivningsklar", CORRECTION)
    alone = RulesetRepository(include_drafts=True, alone=True)
    alone.add(correction, MOTOR.repository.source(correction))
    for expected, failures in ((CORRECTION, []), (CORRECTED, []),
                               ("2012.1", [f"version: expected 2012.1, the facts select {CORRECTION}"])):
        asked = Case(case.name, case.line, case.as_of, case.facts, case.expect, expect_version=expected)
        assert run_case(Regelmotor(alone), correction, asked).failures == failures


# --- utskrivningsklar 2019.1.1 -----------------------------------------------------------------------------------


def _cases(version: str) -> list[Case]:
    return load_cases(BUNDLED_RULESETS / "utskrivningsklar" / f"{version}{CASES_SUFFIX}",
                      MOTOR.repository.get("utskrivningsklar", version))


def _charges_a_day_in_2025(outcome: dict[str, Any]) -> bool:
    """Read from the outcome alone: a day from betalingsplikt_fra up to betalingsplikt_til lies in 2025."""
    if not outcome["betalingsdogn"]:
        return False
    first, end = date.fromisoformat(outcome["betalingsplikt_fra"]), date.fromisoformat(outcome["betalingsplikt_til"])
    return first < YEAR_2025[1] and end > YEAR_2025[0]


def _both(facts: Any, as_of: date) -> tuple[Decision, Decision] | type[RegelmotorError]:
    """The decisions of 2019.1 and 2019.1.1 on the same facts, or the kind of refusal both give."""
    found: list[Decision | type[RegelmotorError]] = []
    for version in (CORRECTED, CORRECTION):
        try:
            found.append(MOTOR.evaluate("utskrivningsklar", facts, as_of=as_of, version=version))
        except RegelmotorError as refused:
            found.append(type(refused))
    before, after = found
    if isinstance(before, Decision) and isinstance(after, Decision):
        return before, after
    assert before == after, f"{CORRECTED}: {before}, {CORRECTION}: {after}"
    assert isinstance(before, type)
    return before


def _assert_same_but_for_the_mark(before: Decision, after: Decision) -> None:
    assert (after.outcome, after.fired_rules, after.manuell_vurdering) == (
        before.outcome, before.fired_rules, before.manuell_vurdering)
    assert [(p.name, p.on, p.gyldig_fra, p.value) for p in after.explanation.parameters] == [
        (p.name, p.on, p.gyldig_fra, p.value) for p in before.explanation.parameters]
    assert not any(p.sekundaerkilde for p in before.explanation.parameters)
    marked = [p for p in after.explanation.parameters if p.sekundaerkilde]
    assert all(p.gyldig_fra == "2025-01-01" and p.value == 5981 and "Sykepleien 01/2026" in (p.sekundaerkilde or "")
               for p in marked)
    assert bool(marked) is _charges_a_day_in_2025(after.outcome)


def test_every_case_of_the_correction_decides_as_2019_1_and_is_marked_when_it_charges_a_day_in_2025() -> None:
    marked = unmarked_2025 = 0
    for case in _cases(CORRECTION):
        both = _both(case.facts, case.as_of)
        if isinstance(both, type):
            assert case.expect_error is not None, case.name
            continue
        before, after = both
        _assert_same_but_for_the_mark(before, after)
        is_marked = any(p.sekundaerkilde for p in after.explanation.parameters)
        marked += is_marked
        unmarked_2025 += not is_marked and case.as_of.year == 2025
        # The name says when 2019.1 answers otherwise (without the mark).
        assert ("(2019.1 uten merket)" in case.name) is is_marked, case.name
    assert marked >= 5 and unmarked_2025 >= 2


def test_a_stay_over_new_year_2024_2025_marks_the_2025_read_only() -> None:
    [case] = [c for c in _cases(CORRECTION) if c.name.startswith("opphold over nyttår 2024–2025")]
    decision = MOTOR.evaluate("utskrivningsklar", case.facts, as_of=case.as_of, version=CORRECTION)
    assert [(p.on, p.value, p.sekundaerkilde is not None) for p in decision.explanation.parameters] == [
        ("2024-12-30", 5745, False), ("2025-01-01", 5981, True)]
    assert decision.outcome["belop"] == 2 * 5745 + 2 * 5981


@st.composite
def _stays(draw: st.DrawFn) -> tuple[dict[str, Any], date]:
    """Facts of a patient declared ready in 2024-2025 (mostly meeting every condition, mostly notified in time),
    with a stay that ends, or is billed to, up to 70 days later or is open; and an as_of after the readiness."""
    ruleset = MOTOR.repository.get("utskrivningsklar", CORRECTION)
    mostly = st.integers(0, 4).map(lambda n: n != 2)  # not 0 or 4: hypothesis draws the bounds often
    conditions = ("problemstillinger_innleggelse_avklart", "ovrige_problemstillinger_avklart",
                  "uavklarte_problemstillinger_begrunnet", "funksjonsniva_vurdert", "lege_vurdert_utskrivningsklar",
                  "samarbeidsmote_innkalt", "videre_oppfolging_avklart")
    facts = draw(facts_for(ruleset, always=frozenset(conditions)))
    if draw(mostly):
        facts.update(dict.fromkeys(conditions, True))
    ready = draw(st.dates(date(2024, 6, 1), date(2025, 12, 31)))
    admitted = datetime(ready.year, ready.month, ready.day, 10, tzinfo=OSLO) - timedelta(days=draw(st.integers(1, 40)))
    facts["utskrivningsklar_dato"] = ready.isoformat()
    facts["innlagt"] = admitted.isoformat()
    facts["varsel_innlagt"] = (admitted + timedelta(hours=draw(st.integers(-2, 30)))).isoformat()
    if draw(mostly):
        facts["melding_utskrivningsklar"] = datetime(ready.year, ready.month, ready.day, draw(st.integers(0, 23)),
                                                     tzinfo=OSLO).isoformat()
    else:
        facts.pop("melding_utskrivningsklar", None)
    facts["kommune_svar"] = draw(st.sampled_from(["kan_ikke_ta_imot", "kan_ikke_ta_imot", "ikke_svart", "kan_ta_imot"]))
    for end in ("kommune_klar_dato", "reinnlagt_dato", "utskrevet_dato", "beregn_til_dato"):
        facts.pop(end, None)
        if draw(st.integers(0, 3)) == 0:
            facts[end] = (ready + timedelta(days=draw(st.integers(0, 70)))).isoformat()
    return facts, draw(st.dates(ready, date(2026, 6, 1)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stay=_stays())
def test_on_random_stays_the_correction_changes_no_outcome_and_marks_exactly_the_stays_charged_in_2025(
        stay: tuple[dict[str, Any], date]) -> None:
    both = _both(*stay)
    if isinstance(both, type):
        assert both in (InvalidFacts, ParameterValueMissing)
        return
    _assert_same_but_for_the_mark(*both)


def test_only_the_references_to_the_2012_text_are_newly_verified() -> None:
    """What the second verification pass confirms (HOD's 2012 letters: § 13 second ledd, § 9 holds the conditions,
    § 10 the notice) is verified, as the 2012 text; every reference to the current text stays unverified."""
    before = MOTOR.repository.get("utskrivningsklar", CORRECTED)
    after = MOTOR.repository.get("utskrivningsklar", CORRECTION)
    verified = {key for key, h in after.hjemler.items() if h.verified}
    added = {"forskrift-2012-betalingsplikt-inntrer", "forskrift-2012-vilkar", "forskrift-2012-melding"}
    assert verified == {key for key, h in before.hjemler.items() if h.verified} | added
    assert {(after.hjemler[key].paragraf, after.hjemler[key].ledd) for key in added} == {
        ("13", 2), ("9", None), ("10", None)}
    for key in added:
        hjemmel = after.hjemler[key]
        assert hjemmel.i_kraft == date(2012, 1, 1) and hjemmel.url and "regjeringen.no" in hjemmel.url
    current = [h for h in after.hjemler.values() if h.kilde == "FOR-2011-11-18-1115" and h.i_kraft == date(2019, 1, 1)]
    assert current and not any(h.verified for h in current)
    # Each rule citing the current § 13 second ledd, § 9 or § 10 cites the verified 2012 text beside it, except the
    # doctor's judgement (vilkar-lege), which the 2012 letters do not confirm.
    for rule in after.rules:
        for current_key, key in (("forskrift-betalingsplikt-inntrer", "forskrift-2012-betalingsplikt-inntrer"),
                                 ("forskrift-vilkar", "forskrift-2012-vilkar"),
                                 ("forskrift-melding", "forskrift-2012-melding")):
            if current_key in rule.hjemmel and rule.id != "vilkar-lege":
                assert key in rule.hjemmel, rule.id


# --- what people read --------------------------------------------------------------------------------------------


def _evaluate_text(capsys: pytest.CaptureFixture[str], tmp_path: Path, facts: dict[str, Any], *extra: str) -> str:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts), encoding="utf-8")
    assert main(["evaluate", "--ruleset", "utskrivningsklar", "--facts", str(path), "--as-of", "2025-02-01",
                 "--rulesets", str(BUNDLED_RULESETS), *extra]) == 0
    return capsys.readouterr().out


def test_evaluate_prints_the_mark_beside_the_value(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    [case] = [c for c in _cases(CORRECTION) if c.name.startswith("nyttårsaften og første nyttårsdag")]
    shown = _evaluate_text(capsys, tmp_path, case.facts)
    lines = [line for line in shown.splitlines() if line.startswith("  dognpris på ")]
    assert lines[0] == "  dognpris på 2024-12-31: 5745 NOK (gyldig fra 2024-01-01)"
    assert lines[1].startswith("  dognpris på 2025-01-01: 5981 NOK (gyldig fra 2025-01-01) — hviler på "
                               "sekundærkilde: Sykepleien 01/2026")
    assert "hviler på sekundærkilde" not in _evaluate_text(capsys, tmp_path, case.facts, "--version", CORRECTED)


def test_the_document_and_the_diff_show_the_mark(capsys: pytest.CaptureFixture[str]) -> None:
    for version, shown in ((CORRECTED, False), (CORRECTION, True)):
        ruleset = MOTOR.repository.get("utskrivningsklar", version)
        [dognpris] = describe(ruleset, []).parameters
        merknader = {v.gyldig_fra: v.merknad for v in dognpris.values}
        assert (merknader[date(2025, 1, 1)] or "").startswith("Hviler på sekundærkilde: Sykepleien 01/2026") is shown
        assert merknader[date(2024, 1, 1)] is None
    folder = BUNDLED_RULESETS / "utskrivningsklar"
    main(["ruleset", "diff", str(folder / f"{CORRECTED}.yaml"), str(folder / f"{CORRECTION}.yaml")])
    assert "2025-01-01: 5981 [sekundærkilde: Sykepleien 01/2026" in capsys.readouterr().out


def test_the_mark_needs_no_rendering_of_its_own_in_a_title(make_evaluator: Callable[..., Evaluator]) -> None:
    """A title naming a parameter shows its value without the mark (docs/ruleset-format.md says so); the mark is on
    the reads in the explanation."""
    evaluator = make_evaluator(RATES.format(mark=f', sekundaerkilde: "{SOURCE}"').replace(
        "title: Summen", 'title: "Summen av {sats}"'))
    decision = evaluator.run({"fra": "2021-03-01", "til": "2021-03-02"}, date(2021, 4, 1)).decision("d")
    assert decision.explanation.rules[0].title == "Summen av 12"
    assert _reads(decision) == [("2021-01-01", SOURCE)]
