"""The start page as the way in for a person who knows no addresses: from `/`, by clicking links only (and with
the keyboard alone on one path), they reach «Prøv en beslutning» on a ruleset's version in force today, the
review page of a proposal waiting for them, and the auditor's search; the version page's own links work too."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.conftest import ROOT
from tests.console_support import assert_accessible, running_console, tab_to
from tests.lifecycle_support import cases, seed_directory, source
from tests.server_process import ServerProcess, running_server

CALLER = [("regelmotor-caller", "konsoll:anna")]
PURPOSE = "tilsynssak 2026/7"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The bundled rulesets beside `sats` 2024.1, and `sats` 2025.1 proposed through the API."""
    rulesets = seed_directory(tmp_path_factory.mktemp("start") / "rulesets")
    published = (rulesets / "published.txt").read_text(encoding="utf-8")
    for bundled in (p for p in (ROOT / "rulesets").iterdir() if p.is_dir()):
        shutil.copytree(bundled, rulesets / bundled.name)
    published += (ROOT / "rulesets" / "published.txt").read_text(encoding="utf-8")
    (rulesets / "published.txt").write_text(published, encoding="utf-8")
    with running_server(workers=1, rulesets=rulesets) as server:
        with grpc.insecure_channel(server.address) as channel:
            answer = rpb_grpc.RulesetServiceStub(channel).ProposeRuleset(rpb.ProposeRulesetRequest(
                source=source("2025.1", "2025-01-01"), cases=cases("2025-01-01")), metadata=CALLER, timeout=60)
        assert answer.accepted, answer
        yield server


@pytest.fixture(scope="module")
def console_url(service: ServerProcess) -> Iterator[str]:
    with running_console(service.address) as console:
        yield console.url


def _path(page: Any, console_url: str) -> str:
    return str(page.url).removeprefix(console_url)


def test_the_start_page_lists_each_ruleset_with_its_version_in_force_and_the_waiting_proposal(
        page: Any, console_url: str) -> None:
    page.goto(console_url + "/")
    rows = page.locator("table.start-regelsett tbody tr")
    in_force = {rows.nth(i).locator("th").inner_text(): rows.nth(i).locator("td a").first.get_attribute("href")
                for i in range(rows.count())}
    # Today every bundled ruleset's newest version governs (open-ended; for utskrivningsklar, rett-til-helsehjelp and
    # prioriterte-pasientgrupper through their corrections, which decide in the corrected versions' place), and
    # sats 2024.1 (2025.1 is only proposed).
    assert in_force == {"sats": "/regelsett/sats/2024.1", "utskrivningsklar": "/regelsett/utskrivningsklar/2019.1.1",
                        "rett-til-helsehjelp": "/regelsett/rett-til-helsehjelp/2024.07.1",
                        "prioriterte-pasientgrupper": "/regelsett/prioriterte-pasientgrupper/2024.1.1"}
    assert page.locator("ul.start-forslag li").all_inner_texts() == [
        "Behandle forslaget sats 2025.1: Sats 2025.1, foreslått av konsoll:anna, gjelder fra 1. januar 2025"]
    assert_accessible(page)


def test_a_person_clicks_from_the_start_page_to_try_a_decision(page: Any, console_url: str) -> None:
    page.goto(console_url + "/")
    page.get_by_role("link", name="Prøv en beslutning med utskrivningsklar 2019.1.1").click()
    assert _path(page, console_url) == "/regelsett/utskrivningsklar/2019.1.1/prov"
    assert page.get_by_role("heading", level=1).inner_text().startswith("Prøv en beslutning")


def test_the_keyboard_alone_leads_from_the_start_page_to_the_proposals_review(page: Any, console_url: str) -> None:
    page.goto(console_url + "/")
    tab_to(page, "ul.start-forslag a")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert _path(page, console_url) == "/regelsett/sats/2025.1/behandle"
    assert page.get_by_role("button", name="Godkjenn").count() + page.get_by_role("button", name="Avvis").count() > 0


def test_an_auditor_clicks_from_the_start_page_to_the_search_giving_a_purpose_on_the_way(
        page: Any, console_url: str) -> None:
    page.goto(console_url + "/")
    page.get_by_role("link", name="Søk i beslutninger").click()
    page.get_by_label("Formål").fill(PURPOSE)
    page.get_by_role("button", name="Bruk dette formålet").click()
    assert _path(page, console_url) == "/revisjon/"
    assert page.get_by_role("button", name="Søk", exact=True).is_visible()


def test_the_version_pages_links_lead_to_trying_it_and_to_a_new_draft(page: Any, console_url: str) -> None:
    for link, expected in (("Prøv en beslutning", "/regelsett/sats/2024.1/prov"),
                           ("Nytt utkast", "/regelsett/sats/utkast?fra=2024.1")):
        page.goto(console_url + "/")
        page.get_by_role("link", name="Versjon 2024.1 av sats").click()
        assert _path(page, console_url) == "/regelsett/sats/2024.1"
        page.get_by_role("link", name=link, exact=True).click()
        assert _path(page, console_url) == expected
        assert page.locator("main h1").count() == 1 and "feil" not in page.title().lower()


def test_a_proposed_versions_page_leads_to_its_review(page: Any, console_url: str) -> None:
    page.goto(console_url + "/")
    page.get_by_role("link", name="Alle regelsett med versjoner og tidslinjer").click()
    page.locator("table", has=page.locator("caption", has_text="Versjoner av sats")).get_by_role(
        "link", name="2025.1").click()
    assert _path(page, console_url) == "/regelsett/sats/2025.1"
    page.get_by_role("link", name="Behandle forslaget").click()
    assert _path(page, console_url) == "/regelsett/sats/2025.1/behandle"
