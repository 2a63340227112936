"""The console's ruleset pages for policy staff: every ruleset's versions on a time line with a table beside it,
a version as its document reads (rules with hjemmel links, parameters with their dates, the cases run by the
service, what they leave untested, the history), and two versions side by side. Real service, real console,
real browser; expected values come from the bundled files and from the API, not from the pages."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import grpc
import pytest

from regelmotor.console.api import ConsoleApi, Metadata
from regelmotor.console.pages import rulesets_timeline, rulesets_version
from regelmotor.console.settings import ConsoleSettings
from regelmotor.core.loader import load_ruleset_file
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.conftest import ROOT
from tests.console_support import assert_accessible, running_console, tab_to
from tests.server_process import ServerProcess, running_server

BUNDLED = ROOT / "rulesets"


@pytest.fixture(scope="module")
def service() -> Iterator[ServerProcess]:
    with running_server(workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def rulesets(service: ServerProcess) -> Iterator[rpb_grpc.RulesetServiceStub]:
    with grpc.insecure_channel(service.address) as channel:
        yield rpb_grpc.RulesetServiceStub(channel)


@pytest.fixture(scope="module")
def console_url(service: ServerProcess) -> Iterator[str]:
    with running_console(service.address) as console:
        yield console.url


def _main_text(page: Any) -> str:
    return " ".join(page.locator("main").inner_text().split())


def test_the_overview_shows_each_ruleset_on_a_time_line_with_a_table(page: Any, console_url: str,
                                                                     rulesets: rpb_grpc.RulesetServiceStub) -> None:
    page.goto(console_url + "/")
    page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name="Regelsett").click()
    assert page.url == console_url + "/regelsett"
    listed = rulesets.ListRulesets(rpb.ListRulesetsRequest(), timeout=10).rulesets
    for summary in listed:
        section = page.locator(f"section[aria-labelledby='sett-{summary.name}']")
        drawing = section.locator("svg[role='img']")
        assert (drawing.locator("title").text_content() or "").startswith(f"Tidslinje for {summary.name}")
        assert drawing.locator("rect.tl-stolpe").count() == len(summary.versions)
        rows = section.locator("table tbody tr")
        assert rows.count() == len(summary.versions)
        assert rows.locator("th a").all_inner_texts() == [v.version for v in summary.versions]
    rett = page.locator("section[aria-labelledby='sett-rett-til-helsehjelp'] table tbody tr")
    row = [" ".join(rett.nth(i).inner_text().split()) for i in range(rett.count())]
    assert row[0].endswith("Publisert 1. november 2015 30. juni 2024")
    # A correction governs the days of the version it corrects: 2015.11.1 ends with 2015.11, 2024.07.1 runs on with
    # 2024.07, and neither ends the version it corrects.
    assert row[1].startswith("2015.11.1 ")
    assert row[1].endswith("Publisert retter 2015.11 1. november 2015 30. juni 2024")
    assert row[2].startswith("2024.07 ") and row[2].endswith("1. juli 2024 til en ny versjon tar over")
    assert row[3].startswith("2024.07.1 ")
    assert row[3].endswith("Publisert retter 2024.07 1. juli 2024 så lenge 2024.07 gjelder")
    desc = page.locator("#tl-rett-til-helsehjelp-beskrivelse").text_content() or ""
    assert ("Versjon 2024.07 (publisert) gjelder fra 1. juli 2024 og til videre. Versjon 2024.07.1 (publisert, "
            "retter 2024.07) gjelder fra 1. juli 2024 og til videre.") in desc
    assert "Versjon 2015.11 (publisert) gjelder fra 1. november 2015 til og med 30. juni 2024." in desc
    # The newest of each ruleset is open, and so is a correction of it (for as long as the version it corrects).
    open_corrections = sum(1 for summary in listed for v in summary.versions if v.supersedes and not v.gyldig_til)
    assert page.locator("rect.tl-stolpe.tl-published + path.tl-pil").count() == len(listed) + open_corrections
    assert_accessible(page)


def test_a_version_page_reads_like_its_document(page: Any, console_url: str,
                                                rulesets: rpb_grpc.RulesetServiceStub) -> None:
    ruleset = load_ruleset_file(BUNDLED / "utskrivningsklar" / "2019.1.yaml")
    page.goto(console_url + "/regelsett/utskrivningsklar/2019.1")
    assert page.locator("h1").inner_text() == ruleset.meta.title
    assert page.locator(".om-versjonen .sjekksum").inner_text() == ruleset.sha256
    assert "fra 1. januar 2019 til en ny versjon tar over" in _main_text(page)
    # Every rule, with its hjemmel linked to the text it cites (lovdata) where the ruleset gives the address.
    assert page.locator("section.regel").count() == len(ruleset.rules)
    rule = next(r for r in ruleset.rules if any("lovdata.no" in (ruleset.hjemler[h].url or "") for h in r.hjemmel))
    cited = next(ruleset.hjemler[h] for h in rule.hjemmel if "lovdata.no" in (ruleset.hjemler[h].url or ""))
    link = page.locator(f"#regel-{rule.id} dd a", has_text=cited.cite())
    assert link.first.get_attribute("href") == cited.url
    assert rule.condition_text in page.locator(f"#regel-{rule.id}").inner_text()
    # A parameter's values with the days they apply from.
    dognpris = page.locator("section.parameter[aria-labelledby='parameter-dognpris'] tbody tr")
    values = ruleset.parameters["dognpris"].values
    assert dognpris.count() == len(values)
    assert dognpris.nth(0).locator("th").inner_text() == "1. januar 2012"
    amount = re.sub(r"[\u00a0\u202f]", " ", dognpris.nth(0).locator("td").nth(0).inner_text())
    assert amount == f"{values[0].value:,} kr".replace(",", " ")  # 4 000 kr
    assert dognpris.nth(1).locator("td").nth(0).inner_text() == "ingen verdi"  # a declared gap (2013)
    assert dognpris.nth(len(values) - 1).locator("th").inner_text() == (
        f"1. januar {values[-1].gyldig_fra.year}")
    # The cases as the service runs them now.
    answer = rulesets.GetRuleset(rpb.GetRulesetRequest(name="utskrivningsklar", version="2019.1"), timeout=10)
    tested = rulesets.TestRuleset(rpb.TestRulesetRequest(source=answer.source, cases=answer.cases, coverage=True),
                                  timeout=60)
    rows = page.locator("table.tester tbody tr")
    assert rows.count() == len(tested.results) > 0
    assert page.locator("table.tester .ok", has_text="Bestått").count() == tested.passed
    assert f"{tested.passed} av {tested.passed + tested.failed} tilfeller bestått" in _main_text(page)
    assert not tested.coverage.rules_not_fired
    assert "Alle regler og unntak slår til i minst ett tilfelle" in _main_text(page)
    # Its history, and the places where the other pages of a version are reached.
    assert "Lagt inn regelmotor (first start)" in " ".join(page.locator("#historikk + table").inner_text().split())
    actions = page.locator("p.handlinger a")
    assert {a: actions.get_by_text(a).get_attribute("href") for a in ("Prøv en beslutning", "Nytt utkast")} == {
        "Prøv en beslutning": "/regelsett/utskrivningsklar/2019.1/prov",
        "Nytt utkast": "/regelsett/utskrivningsklar/utkast?fra=2019.1"}
    assert_accessible(page)
    # The version before it: 2012.1's correction 2012.1.1, which decided the days before 2019.1 took over.
    page.get_by_role("link", name="Sammenlign med forrige versjon (2012.1.1)").click()
    assert page.url.endswith("/regelsett/utskrivningsklar/diff?fra=2012.1.1&til=2019.1")


def test_a_proposed_then_rejected_version_shows_who_did_what_and_why(
        page: Any, console_url: str, rulesets: rpb_grpc.RulesetServiceStub) -> None:
    source = (BUNDLED / "prioriterte-pasientgrupper" / "2024.1.yaml").read_text(encoding="utf-8")
    cases = (BUNDLED / "prioriterte-pasientgrupper" / "2024.1.cases.yaml").read_text(encoding="utf-8")
    first_case = cases[: cases.index("  - name:", cases.index("  - name:") + 1)]
    proposed = rulesets.ProposeRuleset(rpb.ProposeRulesetRequest(
        source=source.replace('version: "2024.1"', 'version: "2099.1"'),
        cases=first_case.replace('expect_version: "2024.1"', 'expect_version: "2099.1"')), timeout=60)
    assert proposed.accepted, proposed.diagnostics
    rulesets.RejectRuleset(rpb.RejectRulesetRequest(name="prioriterte-pasientgrupper", version="2099.1",
                                                    reason="Gjelder fra feil dato"), timeout=10)
    page.goto(console_url + "/regelsett")
    row = page.locator("section[aria-labelledby='sett-prioriterte-pasientgrupper'] tbody tr", has_text="2099.1")
    assert "Avvist" in row.inner_text()
    row.get_by_role("link", name="2099.1").click()
    history = page.locator("#historikk + table tbody tr")
    assert [history.nth(i).locator("td").nth(0).inner_text() for i in range(history.count())] == [
        "Foreslått", "Avvist"]
    assert history.nth(1).locator("td").nth(2).inner_text() == "Gjelder fra feil dato"
    assert history.nth(0).locator("td").nth(1).inner_text() == proposed.version.proposed_by != ""
    assert "brukes ikke av tjenesten" in _main_text(page)  # not served, but its text shown (test_console_proposed)
    assert 'version: "2099.1"' in page.locator("ol.kildetekst").first.inner_text()
    assert page.locator(".om-versjonen .sjekksum").inner_text() == proposed.version.sha256
    assert_accessible(page)


def test_two_versions_side_by_side_chosen_with_the_keyboard(page: Any, console_url: str,
                                                            rulesets: rpb_grpc.RulesetServiceStub) -> None:
    page.goto(console_url + "/regelsett/utskrivningsklar/diff")
    # The two newest: 2019.1 and its correction 2019.1.1.
    assert page.locator("#fra").input_value() == "2019.1" and page.locator("#til").input_value() == "2019.1.1"
    tab_to(page, "#til")
    page.keyboard.press("ArrowUp")  # the same version as "fra": refused, with the field named
    assert page.locator("#til").input_value() == "2019.1"
    tab_to(page, "form.sammenlign button")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"til=2019\.1$"))
    assert page.locator("#til").get_attribute("aria-invalid") == "true"
    assert page.locator("#til-feil").inner_text().startswith("Velg en annen versjon")
    assert_accessible(page)
    tab_to(page, "#fra")
    page.keyboard.press("ArrowUp")
    tab_to(page, "form.sammenlign button")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"fra=2012\.1\.1&til=2019\.1"))  # one up from 2019.1: 2012.1's correction
    diff = rulesets.DiffRulesets(rpb.DiffRulesetsRequest(name="utskrivningsklar", version_a="2012.1.1",
                                                         version_b="2019.1"), timeout=10)
    rules = page.locator("table.side-om-side", has=page.locator("caption", has_text="Regler"))
    added = rules.locator("tbody tr", has=page.locator("td", has_text=re.compile("^Ny regel$")))
    assert added.locator("th").all_inner_texts() == list(diff.rules_added) and diff.rules_added
    assert added.first.locator("td").all_inner_texts() == ["—", "Ny regel"]  # the older side has none
    removed = rules.locator("tbody tr", has=page.locator("td", has_text=re.compile("^Fjernet$")))
    assert removed.locator("th").all_inner_texts() == list(diff.rules_removed)
    assert removed.first.locator("td").all_inner_texts() == ["Regelen finnes", "Fjernet"]
    meta = page.locator("table.side-om-side", has=page.locator("caption", has_text="Om versjonen"))
    row = meta.locator("tbody tr", has=page.locator("th", has_text=re.compile("^gyldig_fra$")))
    assert row.locator("td").all_inner_texts() == ["2012-01-01", "2019-01-01"]
    assert_accessible(page)


@pytest.mark.parametrize(("path", "status", "said"), [
    ("/regelsett/finnes-ikke/1", 404, "Tjenesten har ikke noe regelsett som heter «finnes-ikke»"),
    ("/regelsett/utskrivningsklar/1999.9", 404,
     "Regelsettet «utskrivningsklar» har ingen versjon «1999.9». Versjonene er: 2012.1, 2012.1.1, 2019.1, 2019.1.1."),
    ("/regelsett/" + "x" * 300 + "/1", 404, "Det finnes ikke noe regelsett med et så langt navn."),
    ("/regelsett/finnes-ikke/diff", 404, "Tjenesten har ikke noe regelsett som heter «finnes-ikke»"),
    ("/regelsett/utskrivningsklar/diff?fra=2019.1&til=2019.1", 400,
     "Til versjon: Velg en annen versjon enn den du sammenligner med"),
    ("/regelsett/utskrivningsklar/diff?fra=nei&til=2019.1", 400,
     "Fra versjon: Velg en versjon fra listen: regelsettet har ingen versjon «nei»."),
])
def test_bad_input_is_said_in_norwegian(page: Any, console_url: str, path: str, status: int, said: str) -> None:
    answer = page.goto(console_url + path)
    assert answer is not None and answer.status == status
    assert said in _main_text(page)
    assert "Traceback" not in page.content()


def test_bad_input_pages_pass_axe(page: Any, console_url: str) -> None:
    page.goto(console_url + "/regelsett/utskrivningsklar/1999.9")
    assert page.locator("h1").inner_text() == "Fant ikke det du ba om"
    assert_accessible(page)


@pytest.fixture(scope="module")
def thinly_tested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service without a decision log over a copy of the bundled rulesets in which one version keeps only its
    first case and another has no cases file, and the console beside it."""
    root = tmp_path_factory.mktemp("rulesets") / "rulesets"
    shutil.copytree(BUNDLED, root)
    cases = root / "prioriterte-pasientgrupper" / "2024.1.cases.yaml"
    text = cases.read_text(encoding="utf-8")
    cases.write_text(text[: text.index("  - name:", text.index("  - name:") + 1)], encoding="utf-8")
    (root / "utskrivningsklar" / "2012.1.cases.yaml").unlink()
    with running_server(workers=1, rulesets=root, env={"REGELMOTOR_DECISION_LOG": "off"}) as server, \
            running_console(server.address) as console:
        yield console.url


def test_the_rules_no_case_fires_are_named(page: Any, thinly_tested: str) -> None:
    ruleset = load_ruleset_file(BUNDLED / "prioriterte-pasientgrupper" / "2024.1.yaml")
    page.goto(thinly_tested + "/regelsett/prioriterte-pasientgrupper/2024.1")
    assert page.locator("table.tester tbody tr").count() == 1
    fired = set(page.locator("table.tester tbody tr td").last.inner_text().split(", "))
    named = page.locator("ul.dekning li", has_text="Regler som ikke slår til").locator("a").all_inner_texts()
    expected = [r.id for r in ruleset.rules if r.id not in fired and not r.unntak_fra]
    assert named == expected and named
    assert page.locator(f"ul.dekning a[href='#regel-{named[0]}']").count() == 1
    assert "ingen historikk" in _main_text(page)  # no store: no lifecycle to show
    assert_accessible(page)
    page.goto(thinly_tested + "/regelsett")
    assert "Tjenesten fører ingen historikk" in _main_text(page)
    assert page.locator("svg[role='img']").count() == 3
    assert_accessible(page)


def test_a_version_without_cases_says_so(page: Any, thinly_tested: str) -> None:
    page.goto(thinly_tested + "/regelsett/utskrivningsklar/2012.1")
    assert "Testtilfeller (0) Versjonen har ingen testtilfeller." in _main_text(page)
    assert page.locator("table.tester").count() == 0 and page.get_by_role("alert").count() == 0
    assert page.locator("section.regel").count() == len(
        load_ruleset_file(BUNDLED / "utskrivningsklar" / "2012.1.yaml").rules)


def test_the_time_line_ends_each_version_where_the_next_takes_over_and_draws_open_ones_to_the_edge() -> None:
    versions = [
        {"version": "1", "state": "retired", "gyldig_fra": "2015-01-01", "gyldig_til": "",
         "retired_from": "2016-07-01"},
        {"version": "2", "state": "published", "gyldig_fra": "2018-01-01", "gyldig_til": ""},
        {"version": "3", "state": "proposed", "gyldig_fra": "2030-01-01", "gyldig_til": ""},
        {"version": "4", "state": "published", "gyldig_fra": "2020-01-01", "gyldig_til": "2024-12-31"},
    ]
    periods = rulesets_timeline.spans(versions)
    assert [(p.version, p.start.isoformat(), p.end.isoformat() if p.end else None) for p in periods] == [
        ("1", "2015-01-01", "2016-06-30"),  # retired before the next version starts
        ("2", "2018-01-01", "2019-12-31"),  # until the next published one takes over
        ("4", "2020-01-01", "2024-12-31"),
        ("3", "2030-01-01", None)]  # a proposal does not end where nothing follows it
    drawn = rulesets_timeline.draw(periods, today=date(2026, 6, 1))
    first, second, _, proposal = drawn.bars
    assert first.x == drawn.labels and not first.open_ended  # the axis starts on 1 January of the first start
    assert first.x + first.width < second.x  # the gap between 2016 and 2018 shows
    assert proposal.open_ended and proposal.x + proposal.width == drawn.width - 10
    assert [t.year for t in drawn.ticks] == list(range(2016, 2031, 2))  # 16 years: every other one
    assert drawn.labels < drawn.today_x < proposal.x
    assert drawn.height == 8 + 4 * drawn.row + rulesets_timeline.AXIS


def test_a_correction_is_not_on_the_time_line_and_ends_with_the_version_it_corrects() -> None:
    # (version, gyldig_fra, gyldig_til, supersedes), all published, as the history lists them.
    stored = [("2019.1.1", "2019-01-01", "", "2019.1"), ("2019.1", "2019-01-01", "", ""),
              ("2012.1", "2012-01-01", "2018-12-31", ""), ("2024.1.1", "2024-07-01", "", "2024.1"),
              ("2024.1", "2024-01-01", "", "")]
    periods = rulesets_timeline.spans([{"version": v, "state": "published", "gyldig_fra": fra, "gyldig_til": til,
                                        "supersedes": corrects} for v, fra, til, corrects in stored])
    assert [(p.version, p.start.isoformat(), p.end.isoformat() if p.end else None) for p in periods] == [
        ("2012.1", "2012-01-01", "2018-12-31"),
        ("2019.1", "2019-01-01", "2023-12-31"),  # not ended by its correction, which starts the same day
        ("2019.1.1", "2019-01-01", "2023-12-31"),  # as long as the version it corrects governs
        ("2024.1", "2024-01-01", None),  # not ended by its correction from 1 July
        ("2024.1.1", "2024-07-01", None)]


def test_a_versions_cases_are_run_by_the_service_once_for_the_same_texts(service: ServerProcess) -> None:
    # The version page runs the cases through the service's sandbox (130-200 ms for rett-til-helsehjelp): the
    # answer for the same texts is kept, and changed cases are run anew.
    api = ConsoleApi(ConsoleSettings(api_address=service.address))
    asked: list[str] = []
    real_call = api.call

    def counted(method: Any, request: Any, metadata: Metadata, **options: Any) -> dict[str, Any]:
        asked.append(type(request).__name__)
        return real_call(method, request, metadata, **options)

    api.call = counted  # type: ignore[method-assign]
    metadata: Metadata = [("regelmotor-caller", "konsoll:test")]
    served = api.call(api.rulesets.GetRuleset, rpb.GetRulesetRequest(name="rett-til-helsehjelp", version="2024.07"),
                      metadata)
    # Texts of this test's own (a comment added): other tests in this process have opened the version already.
    answer = {**served, "cases": served["cases"] + f"\n# {uuid.uuid4()}\n"}
    document = rulesets_version.document_of(answer)
    first = rulesets_version.run_cases(api, metadata, answer, document)
    again = rulesets_version.run_cases(api, metadata, answer, document)
    assert again == first and first.passed == len(document.cases) > 1
    assert asked.count("TestRulesetRequest") == 1
    cases = answer["cases"]
    fewer = {**answer, "cases": cases[: cases.index("  - name:", cases.index("  - name:") + 1)]}
    shorter = rulesets_version.run_cases(api, metadata, fewer, rulesets_version.document_of(fewer))
    assert asked.count("TestRulesetRequest") == 2 and shorter.passed == 1
    api.close()
