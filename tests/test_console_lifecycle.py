"""The console's lifecycle pages (blueprint `behandling`) over the real service with authentication off: a draft
edited in the browser, checked (problems at their lines) and proposed; a second person reviews the proposal with
its impact on decisions made in this test, and approves it (then the service serves it) or rejects it (with a
reason). Two consoles run as two people: the local console names its user to the API (`konsoll:<user>`), and the
user is the one the console process runs as (LOGNAME), set here for each console as it starts."""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from regelmotor.console.charts import BarChart, Series, chart_svg, chart_table
from regelmotor.console.serve import ConsoleServer
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.console_support import assert_accessible, running_console, tab_to
from tests.grpc_support import struct
from tests.lifecycle_support import cases, seed_directory, sha256, source
from tests.server_process import ServerProcess, running_server

ANNA, BJORN = "anna", "bjorn"
SHOWN = {True: "ja", False: "nei", None: "(ingen verdi)"}  # how the page names a bool outcome's values


# Beside `sats`: a ruleset whose outcome is an amount in kroner, the price of the days of a stay.
DOGNPRIS = """\
name: dognpris
version: "{version}"
title: Døgnpris {version}
status: published
gyldig_fra: {fra}
hjemler:
  h1:
    kilde: FOR-2011-11-18-1115
    verified: true
parameters:
  pris:
    type: int
    unit: NOK
    hjemmel: h1
    source: Helsedirektoratet
    description: Pris per døgn.
    values:
      - {{gyldig_fra: 2024-01-01, value: {pris}}}
facts:
  fra: {{type: date, required: true}}
  til: {{type: date, required: true}}
derived:
  belop_beregnet:
    expr: parameter_sum_days('pris', fra, til)
rules:
  - id: pris-for-dognene
    title: Pris for døgnene
    hjemmel: h1
    when: til > fra
    then: {{belop: =belop_beregnet}}
outcomes:
  belop:
    type: int
    combine: unique
    description: Beløp i NOK for døgnene (console/money.py reads kroner from here).
"""
DOGNPRIS_CASES = """\
cases:
  - name: tre døgn
    as_of: {fra}
    facts: {{fra: {fra}, til: {til}}}
    expect: {{belop: {belop}}}
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    rulesets = seed_directory(tmp_path_factory.mktemp("lifecycle") / "rulesets")
    first = DOGNPRIS.format(version="2024.1", fra="2024-01-01", pris=5745)
    (rulesets / "dognpris").mkdir()
    (rulesets / "dognpris" / "2024.1.yaml").write_text(first, encoding="utf-8")
    with (rulesets / "published.txt").open("a", encoding="utf-8") as published:
        published.write(f"dognpris 2024.1 {sha256(first)}\n")
    with running_server(workers=1, rulesets=rulesets) as server:
        yield server


@contextmanager
def _console_as(user: str, address: str) -> Iterator[ConsoleServer]:
    """A console whose process user is `user` (getpass reads LOGNAME first), as a second person's would be."""
    kept = {name: os.environ.get(name) for name in ("LOGNAME", "USER")}
    os.environ["LOGNAME"] = os.environ["USER"] = user
    try:
        with running_console(address) as console:
            for name, value in kept.items():
                os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
            yield console
    finally:
        for name, value in kept.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


@pytest.fixture(scope="module")
def anna(service: ServerProcess) -> Iterator[str]:
    with _console_as(ANNA, service.address) as console:
        yield console.url


@pytest.fixture(scope="module")
def bjorn(service: ServerProcess) -> Iterator[str]:
    with _console_as(BJORN, service.address) as console:
        yield console.url


@pytest.fixture(scope="module")
def channel(service: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(service.address) as opened:
        yield opened


def _as(user: str) -> list[tuple[str, str]]:
    return [("regelmotor-caller", f"konsoll:{user}")]


def _history(channel: grpc.Channel) -> rpb.GetRulesetHistoryResponse:
    answer: rpb.GetRulesetHistoryResponse = rpb_grpc.RulesetServiceStub(channel).GetRulesetHistory(
        rpb.GetRulesetHistoryRequest(name="sats"), metadata=_as(BJORN), timeout=30)
    return answer


def _propose_through_api(channel: grpc.Channel, version: str, fra: str, *, verified: bool = True) -> str:
    text = source(version, fra, verified=verified)
    answer = rpb_grpc.RulesetServiceStub(channel).ProposeRuleset(
        rpb.ProposeRulesetRequest(source=text, cases=cases(fra)), metadata=_as(ANNA), timeout=60)
    assert answer.accepted, answer
    return text


def _fill_draft(page: Any, text: str, cases_text: str) -> None:
    page.locator("#kilde").fill(text)
    page.locator("#tilfeller").fill(cases_text)


def test_a_broken_source_shows_its_problem_at_its_line_and_keeps_the_text(page: Any, anna: str) -> None:
    page.goto(anna + "/regelsett/sats/utkast?fra=2024.1")
    shown = page.locator("#kilde").input_value()
    assert "version: \"2024.1\"" in shown  # the version's own source, from GetRuleset
    broken = shown.replace("alder >= 18", "alder >=> 18")
    line = broken.splitlines().index("    when: alder >=> 18") + 1
    _fill_draft(page, broken, cases("2024-01-01"))
    page.get_by_role("button", name="Sjekk").click()
    link = page.locator(f"main .funnliste a[href='#linje-{line}']")
    assert link.inner_text().startswith(f"Feil på linje {line}, kolonne")
    marked = page.locator(f"#linje-{line}")
    assert "feillinje" in (marked.get_attribute("class") or "")
    assert marked.locator(".linjefeil").inner_text().startswith(f"Feil på linje {line}")
    assert page.locator(".feillinje").count() == 1  # only the broken line is marked
    assert page.locator("#kilde").input_value() == broken  # the person's text is kept
    assert page.locator("#kilde").get_attribute("aria-invalid") == "true"
    link.click()
    assert page.url.endswith(f"#linje-{line}")
    assert_accessible(page)


def test_a_failing_case_is_listed_at_its_line(page: Any, anna: str) -> None:
    page.goto(anna + "/regelsett/sats/utkast?fra=2024.1")
    _fill_draft(page, source("2029.1", "2029-01-01"), cases("2029-01-01", voksen=False))
    page.get_by_role("button", name="Sjekk").click()
    failed = page.locator("main .funnliste a[href='#tilfelle-linje-2']")
    assert failed.inner_text() == "Tilfellet «voksen» på linje 2 feilet"
    assert "feillinje" in (page.locator("#tilfelle-linje-2").get_attribute("class") or "")
    assert_accessible(page)


def test_the_keyboard_alone_checks_and_proposes_a_new_version(page: Any, anna: str, channel: grpc.Channel) -> None:
    page.goto(anna + "/regelsett/sats/utkast?fra=2024.1")
    text = source("2027.1", "2027-01-01")
    _fill_draft(page, text, cases("2027-01-01"))
    tab_to(page, "button[value=sjekk]")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert "alle testtilfellene besto" in page.get_by_role("status").inner_text()
    assert page.locator("#kilde").input_value() == text
    assert_accessible(page)
    page.locator("#kilde").focus()
    tab_to(page, "button[value=foresla]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/regelsett/sats/2027.1/behandle?utfall=foreslatt")
    assert "Forslaget er lagret" in page.get_by_role("status").inner_text()
    stored = {v.version: v for v in _history(channel).versions}["2027.1"]
    assert (stored.state, stored.proposed_by, stored.sha256) == ("proposed", f"konsoll:{ANNA}", sha256(text))
    assert page.locator("#sha256-verdi").inner_text() == sha256(text)
    assert_accessible(page)


def test_a_version_string_already_used_is_refused_in_plain_words_and_the_text_kept(page: Any, anna: str) -> None:
    page.goto(anna + "/regelsett/sats/utkast?fra=2024.1")
    text = source("2024.1", "2024-01-01", grense=21)  # the version line left as it was
    _fill_draft(page, text, cases("2024-01-01"))
    page.get_by_role("button", name="Foreslå").click()
    assert "Versjonsnummeret er allerede brukt" in page.get_by_role("alert").inner_text()
    assert page.locator("#kilde").input_value() == text
    assert_accessible(page)


def _decide(channel: grpc.Channel, ages: list[int]) -> None:
    stub = pb_grpc.DecisionServiceStub(channel)
    for number, age in enumerate(ages):
        stub.Evaluate(pb.EvaluateRequest(ruleset="sats", as_of="2024-06-01", facts=struct({"alder": age}),
                                         request_id=f"konsekvens-{number}"), metadata=[("regelmotor-caller", "his")],
                      timeout=30)


def _stream_cross_table(channel: grpc.Channel, version: str) -> dict[tuple[str, str], int]:
    asked = rpb.AnalyseImpactRequest(stored=rpb.VersionRef(name="sats", version=version), ruleset="sats",
                                     formaal="kontroll av konsollets rapport")
    answers = list(rpb_grpc.RulesetServiceStub(channel).AnalyseImpact(asked, metadata=_as(BJORN), timeout=120))
    report = answers[-1].report
    (voksen,) = [o for o in report.outcomes if o.field == "voksen"]
    return {(SHOWN[_plain(t.before)], SHOWN[_plain(t.after)]): t.count for t in voksen.transitions}


def _plain(value: struct_pb2.Value) -> bool | None:
    return value.bool_value if value.WhichOneof("kind") == "bool_value" else None


def _page_cross_table(page: Any) -> dict[tuple[str, str], int]:
    table = page.locator("table.diagramtabell").first
    after = [h.removeprefix("etter: ") for h in table.locator("thead th").all_inner_texts()[1:]]
    found = {}
    for row in table.locator("tbody tr").all():
        before = row.locator("th").inner_text()
        for new, cell in zip(after, row.locator("td").all_inner_texts(), strict=True):
            if int(cell):
                found[(before, new)] = int(cell)
    return found


def _served_version(channel: grpc.Channel, as_of: str) -> str:
    decision = pb_grpc.DecisionServiceStub(channel).Evaluate(
        pb.EvaluateRequest(ruleset="sats", as_of=as_of, facts=struct({"alder": 30})),
        metadata=[("regelmotor-caller", "his")], timeout=30)
    return str(decision.version)


def test_the_second_person_sees_the_impact_and_approves_and_the_service_serves_it(
        page: Any, anna: str, bjorn: str, channel: grpc.Channel) -> None:
    _decide(channel, [10, 19, 19, 40])  # under 2025.1 (voksen from 20) the two of 19 lose it
    page.goto(anna + "/regelsett/sats/utkast?fra=2024.1")
    text = source("2025.1", "2025-01-01", grense=20)
    _fill_draft(page, text, cases("2025-01-01"))
    page.get_by_role("button", name="Foreslå").click()
    page.wait_for_url("**/regelsett/sats/2025.1/behandle?utfall=foreslatt")

    page.goto(bjorn + "/regelsett/sats/2025.1/behandle")
    page.get_by_role("link", name="Oppgi formål og vis rapporten").click()
    page.get_by_label("Formål").fill("ny grense for voksen, sak 2025/7")
    page.get_by_role("button", name="Bruk dette formålet").click()
    assert page.url.endswith("/regelsett/sats/2025.1/behandle")
    proposed_by = page.locator("dl.fakta dd").nth(2).inner_text()
    assert proposed_by == f"konsoll:{ANNA}"
    shown = _page_cross_table(page)
    assert shown == _stream_cross_table(channel, "2025.1")
    assert shown[("ja", "(ingen verdi)")] == 2
    assert page.locator("svg.diagram[role=img] rect title").count() >= 3
    assert page.locator("section.konsekvens table").nth(1).locator("tbody tr").count() == 2  # the two examples
    assert_accessible(page)

    page.get_by_label("Jeg har sett gjennom versjonen").check()
    page.get_by_role("button", name="Godkjenn og publiser").click()
    assert "godkjent og publisert" in page.get_by_role("status").inner_text()
    assert {v.version: v.state for v in _history(channel).versions}["2025.1"] == "published"
    deadline = time.monotonic() + 60  # the service reloads its store within seconds; this only bounds a failure
    while _served_version(channel, "2025-06-01") != "2025.1" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _served_version(channel, "2025-06-01") == "2025.1"


def test_the_proposer_cannot_approve_her_own_proposal(page: Any, anna: str, channel: grpc.Channel) -> None:
    text = _propose_through_api(channel, "2028.1", "2028-01-01")
    page.goto(anna + "/regelsett/sats/2028.1/behandle")
    page.get_by_label("Jeg har sett gjennom versjonen").check()
    answer_status: list[int] = []
    page.on("response", lambda r: answer_status.append(r.status) if r.request.method == "POST" else None)
    page.get_by_role("button", name="Godkjenn og publiser").click()
    problem = page.get_by_role("alert")
    assert "Du kan ikke godkjenne ditt eget forslag – en annen må godkjenne det." in problem.inner_text()
    assert answer_status == [409] and "Traceback" not in page.content()
    assert {v.version: v.state for v in _history(channel).versions}["2028.1"] == "proposed"
    assert page.locator("#sha256-verdi").inner_text() == sha256(text)
    assert_accessible(page)


def test_an_approval_without_confirming_the_sha256_is_refused_at_the_field(
        page: Any, bjorn: str, channel: grpc.Channel) -> None:
    _propose_through_api(channel, "2030.1", "2030-01-01")
    page.goto(bjorn + "/regelsett/sats/2030.1/behandle")
    page.get_by_role("button", name="Godkjenn og publiser").click()
    assert page.locator("#bekreft-feil").inner_text().startswith("Kryss av for at du har sett gjennom")
    assert page.locator("#bekreft").get_attribute("aria-invalid") == "true"
    assert {v.version: v.state for v in _history(channel).versions}["2030.1"] == "proposed"


def test_a_rejection_needs_a_reason_which_is_recorded(page: Any, bjorn: str, channel: grpc.Channel) -> None:
    _propose_through_api(channel, "2031.1", "2031-01-01")
    page.goto(bjorn + "/regelsett/sats/2031.1/behandle")
    page.get_by_role("button", name="Avvis forslaget").click()
    assert page.locator("#grunn-feil").inner_text().startswith("Skriv hvorfor du avviser forslaget")
    assert page.locator("#grunn").get_attribute("aria-invalid") == "true"
    assert {v.version: v.state for v in _history(channel).versions}["2031.1"] == "proposed"
    assert_accessible(page)
    page.get_by_label("Begrunnelse").fill("grensen skal ikke endres i 2031")
    page.get_by_role("button", name="Avvis forslaget").click()
    assert "Forslaget er avvist" in page.get_by_role("status").inner_text()
    history = _history(channel)
    assert {v.version: v.state for v in history.versions}["2031.1"] == "rejected"
    (event,) = [e for e in history.events if e.version == "2031.1" and e.action == "rejected"]
    assert (event.who, event.reason) == (f"konsoll:{BJORN}", "grensen skal ikke endres i 2031")


def test_an_approval_naming_another_text_is_refused_in_plain_words(page: Any, bjorn: str,
                                                                   channel: grpc.Channel) -> None:
    _propose_through_api(channel, "2032.1", "2032-01-01")
    page.goto(bjorn + "/regelsett/sats/2032.1/behandle")
    # As if the proposal had changed after the page was read: the form names a sha256 that is not the proposal's.
    page.locator("input[name=sha256]").evaluate("field => { field.value = '0'.repeat(64); }")
    page.get_by_label("Jeg har sett gjennom versjonen").check()
    page.get_by_role("button", name="Godkjenn og publiser").click()
    assert "sha256 stemmer ikke" in page.get_by_role("alert").inner_text()
    assert {v.version: v.state for v in _history(channel).versions}["2032.1"] == "proposed"


def test_a_version_starting_on_the_day_of_a_published_one_is_refused_as_a_timeline_overlap(
        page: Any, bjorn: str, channel: grpc.Channel) -> None:
    _propose_through_api(channel, "2024.2", "2024-01-01")
    page.goto(bjorn + "/regelsett/sats/2024.2/behandle")
    page.get_by_label("Jeg har sett gjennom versjonen").check()
    page.get_by_role("button", name="Godkjenn og publiser").click()
    refused = page.get_by_role("alert").inner_text()
    assert "Versjonens periode passer ikke med de publiserte versjonene" in refused
    assert "starts on the same day as 2024.1" in refused  # the API's own words, after the plain ones
    assert {v.version: v.state for v in _history(channel).versions}["2024.2"] == "proposed"


def test_each_unverified_hjemmel_must_be_acknowledged_and_the_acknowledgement_is_recorded(
        page: Any, bjorn: str, channel: grpc.Channel) -> None:
    _propose_through_api(channel, "2033.1", "2033-01-01", verified=False)
    page.goto(bjorn + "/regelsett/sats/2033.1/behandle")
    page.get_by_label("Jeg har sett gjennom versjonen").check()
    page.get_by_role("button", name="Godkjenn og publiser").click()
    assert "hjemler som ikke er verifisert" in page.get_by_role("alert").inner_text()
    assert {v.version: v.state for v in _history(channel).versions}["2033.1"] == "proposed"
    assert_accessible(page)
    page.get_by_label("Jeg har sett gjennom versjonen").check()
    page.get_by_role("group", name="Hjemler som ikke er verifisert").get_by_label("h1").check()
    page.get_by_role("button", name="Godkjenn og publiser").click()
    assert "godkjent og publisert" in page.get_by_role("status").inner_text()
    history = _history(channel)
    assert {v.version: v.state for v in history.versions}["2033.1"] == "published"
    (approval,) = [e for e in history.events if e.version == "2033.1" and e.action == "approved"]
    assert approval.who == f"konsoll:{BJORN}" and '"acknowledged_unverified": ["h1"]' in approval.detail_json


def _purpose(page: Any, console: str, then: str) -> None:
    page.goto(f"{console}/formaal?neste={then}")
    page.get_by_label("Formål").fill("ny døgnpris, sak 2026/12")
    page.get_by_role("button", name="Bruk dette formålet").click()


def test_changed_amounts_are_summed_in_kroner_for_the_days_chosen(page: Any, bjorn: str,
                                                                  channel: grpc.Channel) -> None:
    decide = pb_grpc.DecisionServiceStub(channel)
    for number, as_of in enumerate(["2024-03-10", "2024-04-10", "2024-05-10", "2025-02-10"]):
        decide.Evaluate(pb.EvaluateRequest(ruleset="dognpris", as_of=as_of, request_id=f"pris-{number}",
                                           facts=struct({"fra": "2024-03-01", "til": "2024-03-04"})),
                        metadata=[("regelmotor-caller", "his")], timeout=30)
    candidate = DOGNPRIS.format(version="2025.1", fra="2025-01-01", pris=5981)
    proposed = rpb_grpc.RulesetServiceStub(channel).ProposeRuleset(rpb.ProposeRulesetRequest(
        source=candidate, cases=DOGNPRIS_CASES.format(fra="2025-01-01", til="2025-01-04", belop=3 * 5981)),
        metadata=_as(ANNA), timeout=60)
    assert proposed.accepted, proposed
    _purpose(page, bjorn, "/regelsett/dognpris/2025.1/behandle")
    page.get_by_label("Fra og med").fill("2024-01-01")
    page.get_by_label("Til og med").fill("2024-12-31")  # the decision made for 2025-02-10 stays out
    page.get_by_role("button", name="Lag rapporten på nytt").click()
    assert "fra_dato=2024-01-01" in page.url
    cells = [" ".join(c.split()) for c in page.locator("table.summer tbody td").all_inner_texts()]
    asked = rpb.AnalyseImpactRequest(stored=rpb.VersionRef(name="dognpris", version="2025.1"), ruleset="dognpris",
                                     formaal="kontroll av konsollets rapport", as_of_from="2024-01-01",
                                     as_of_to="2024-12-31")
    report = list(rpb_grpc.RulesetServiceStub(channel).AnalyseImpact(asked, metadata=_as(BJORN), timeout=120))[-1]
    (belop,) = report.report.outcomes
    assert report.report.analysed == 3
    before, after = int(belop.sum_before), int(belop.sum_after)
    assert (before, after) == (3 * 3 * 5745, 3 * 3 * 5981)

    def kroner(amount: int) -> str:
        return f"{amount:,} kr".replace(",", " ")

    assert cells == [kroner(before), kroner(after), "+" + kroner(after - before)]  # 51 705 kr, 53 829 kr, +2 124 kr
    example = page.locator("section.konsekvens table", has_text="Eksempler").locator("tbody tr").first
    assert [" ".join(c.split()) for c in example.locator("td").all_inner_texts()[2:4]] == [
        kroner(3 * 5745), kroner(3 * 5981)]
    assert_accessible(page)


def test_a_stacked_chart_stacks_its_bars_and_its_table_carries_the_numbers_with_names_escaped() -> None:
    chart = BarChart("Antall <før>", ("a<b", "c"), (Series("x", (1.0, 3.0)), Series("y", (2.0, 0.0))),
                     category_heading="Før", stacked=True)
    svg = ElementTree.fromstring(str(chart_svg(chart)))
    namespace = "{http://www.w3.org/2000/svg}"
    assert svg.get("role") == "img" and svg.get("aria-label") == "Antall <før>"
    bars = [r for r in svg.iter(f"{namespace}rect") if r.find(f"{namespace}title") is not None]
    tops = {r.findtext(f"{namespace}title"): float(r.get("y", "")) for r in bars}
    heights = {r.findtext(f"{namespace}title"): float(r.get("height", "")) for r in bars}
    # "a<b" stacks 1 and 2, "c" has 3 alone: both stacks reach the same height, and y sits on x in "a<b".
    assert tops["a<b, y: 2"] == pytest.approx(tops["c, x: 3"], abs=0.2)  # drawn to a tenth of a pixel
    assert tops["a<b, x: 1"] == pytest.approx(tops["a<b, y: 2"] + heights["a<b, y: 2"], abs=0.2)
    assert heights["c, x: 3"] == pytest.approx(3 * heights["a<b, x: 1"], abs=0.2)
    table = ElementTree.fromstring(str(chart_table(chart)))
    assert table.findtext("caption") == "Antall <før>"
    assert [[cell.text for cell in row] for row in table.iter("tr")] == [
        ["Før", "x", "y"], ["a<b", "1", "2"], ["c", "3", "0"]]
