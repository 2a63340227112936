"""What an approver sees of a proposed version in the console: on its review page, what it changes against the
version it follows (side by side, read by the service in its sandbox) and its whole text; on its version page, the
text as stored with line numbers, its cases run by the service, and, once rejected, the reason. Real service with
its SQLite store and authentication off, real console, real browser; the versions are proposed over gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.console_support import assert_accessible, running_console, tab_to
from tests.lifecycle_support import cases, seed_directory, source
from tests.server_process import ServerProcess, running_server

# 2025.1 raises the age limit of the rule `voksen` from 18 (the served 2024.1) to 21; 2026.1 (rejected) lowers it.
PROPOSED = source("2025.1", "2025-01-01", grense=21).replace("rules:", "# grensen heves til 21 år\nrules:")
REJECTED = source("2026.1", "2026-01-01", grense=16)
REASON = "16 år er for lavt: loven sier 18"
SOURCE_LIST = "ol.kildetekst[aria-label^='Teksten i versjon']"  # the version's text (the cases' text is another)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    rulesets = seed_directory(tmp_path_factory.mktemp("proposed") / "rulesets")
    with running_server(workers=1, rulesets=rulesets) as server, grpc.insecure_channel(server.address) as channel:
        stub = rpb_grpc.RulesetServiceStub(channel)
        for text, fra in ((PROPOSED, "2025-01-01"), (REJECTED, "2026-01-01")):
            answer = stub.ProposeRuleset(rpb.ProposeRulesetRequest(source=text, cases=cases(fra)),
                                         metadata=(("regelmotor-caller", "forfatter"),), timeout=60)
            assert answer.accepted, answer
        stub.RejectRuleset(rpb.RejectRulesetRequest(name="sats", version="2026.1", reason=REASON),
                           metadata=(("regelmotor-caller", "godkjenner"),), timeout=30)
        yield server


@pytest.fixture(scope="module")
def console_url(service: ServerProcess) -> Iterator[str]:
    with running_console(service.address) as console:
        yield console.url


def _changes(page: Any) -> list[list[str]]:
    """The rows of the side-by-side tables: what, the older side, the newer side."""
    rows = page.locator(".sammenligning table.side-om-side tbody tr")
    return [[" ".join(cell.split()) for cell in rows.nth(i).locator("th, td").all_inner_texts()]
            for i in range(rows.count())]


def _source_lines(page: Any, list_selector: str) -> list[str]:
    return [line.rstrip() for line in page.locator(f"{list_selector} li").all_inner_texts()]


def test_the_review_page_shows_the_changes_against_the_served_version_and_the_whole_text(
        page: Any, console_url: str) -> None:
    page.goto(console_url + "/regelsett/sats/2025.1/behandle")
    assert page.locator("#endringer-tittel").inner_text() == "Endringer i teksten fra 2024.1 til 2025.1"
    assert ["voksen: when", "alder >= 18", "alder >= 21"] in _changes(page)
    # The whole text as stored, line for line (the comment the sha256 ignores included).
    page.locator("details.hele-teksten summary").click()
    assert _source_lines(page, "details.hele-teksten ol.kildetekst") == [
        line.rstrip() for line in PROPOSED.splitlines()]
    tested = " ".join(page.locator(".testsum").inner_text().split())
    assert "Testtilfellene kjørt av tjenesten nå: 1 av 1 bestått" in tested
    assert_accessible(page)

    # Compare with another version, with the keyboard alone: the rejected 2026.1.
    tab_to(page, "#mot")
    page.keyboard.press("ArrowDown")  # the choices: 2024.1, then 2026.1
    tab_to(page, ".sammenligning button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**mot=2026.1**")
    assert ["voksen: when", "alder >= 16", "alder >= 21"] in _changes(page)
    assert page.locator("#bekreft").count() == 1  # still the review page, ready to approve
    assert_accessible(page)


def test_the_page_of_a_proposed_version_shows_its_text_its_changes_and_its_cases_run_by_the_service(
        page: Any, console_url: str) -> None:
    page.goto(console_url + "/regelsett/sats/2025.1")
    assert "kan ikke vises" not in page.locator("main").inner_text()
    assert _source_lines(page, SOURCE_LIST) == [line.rstrip() for line in PROPOSED.splitlines()]
    assert ["voksen: when", "alder >= 18", "alder >= 21"] in _changes(page)
    results = page.locator("table.tester tbody tr")
    assert results.count() == 1
    assert [" ".join(c.split()) for c in results.first.locator("th, td").all_inner_texts()] == [
        "voksen", "2", "Bestått", "voksen"]
    assert "1 av 1 tilfeller bestått" in page.locator(".testsum").inner_text()
    assert_accessible(page)

    # A version to compare with that the ruleset does not have: said at the field, the predecessor compared.
    page.goto(console_url + "/regelsett/sats/2025.1?mot=2099.9")
    assert page.locator("#mot").get_attribute("aria-invalid") == "true"
    assert "ingen annen versjon «2099.9»" in page.locator("#mot-feil").inner_text()
    assert ["voksen: when", "alder >= 18", "alder >= 21"] in _changes(page)
    assert_accessible(page)


def test_a_rejected_version_still_shows_its_text_with_the_reason(page: Any, console_url: str) -> None:
    page.goto(console_url + "/regelsett/sats/2026.1")
    refusal = page.locator("section.avvisning")
    assert REASON in refusal.inner_text() and "godkjenner" in refusal.inner_text()
    assert "when: alder >= 16" in [line.strip() for line in _source_lines(page, SOURCE_LIST)]
    # It follows 2025.1 by date, but 2025.1 was never served: compared with the served 2024.1.
    assert ["voksen: when", "alder >= 18", "alder >= 16"] in _changes(page)
    assert_accessible(page)
