"""The console shows a value resting on a secondary source in Norwegian, in a real browser: «Prøv en beslutning» of a
stay charged in 2025 says before the rules that the decision uses a value resting on a secondary source, and marks
the 2025 rate where the parameters are listed; the same stay on 2019.1, and a stay wholly in 2024, say nothing of
it; the auditor's page of a recorded decision shows the mark too; and the version page lists the mark beside the
value. Every page passes axe (WCAG 2.1 AA)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from regelmotor_api.v1 import decision_pb2, decision_pb2_grpc
from tests.console_support import assert_accessible, running_console
from tests.server_process import ServerProcess, running_server

CALLER = [("regelmotor-caller", "test:sekundaerkilde")]
PURPOSE = "kontroll av døgnpris 2025"
# The case's name in 2019.1, and the start of its name in 2019.1.1.
OVER_NEW_YEAR = "opphold over nyttår 2024–2025 prises med to satser"
MARK = "hviler på sekundærkilde: Sykepleien 01/2026"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ServerProcess, str]]:
    """The service in a child process, and the console's address in front of it."""
    with running_server(workers=1) as server, running_console(server.address) as console:
        yield server, console.url


@pytest.fixture
def console_url(served: tuple[ServerProcess, str]) -> str:
    return served[1]


def _try_case(page: Any, console_url: str, version: str, starts_with: str) -> None:
    """Open «Prøv en beslutning» of the version, fill the form from the bundled case and decide."""
    page.goto(f"{console_url}/regelsett/utskrivningsklar/{version}/prov")
    chooser = page.get_by_label("Fyll ut fra et testtilfelle")
    [name] = [text for text in chooser.locator("option").all_inner_texts() if text.startswith(starts_with)]
    chooser.select_option(name)
    page.get_by_role("button", name="Fyll ut skjemaet").click()
    page.get_by_role("button", name="Prøv beslutningen").click()
    page.wait_for_selector(".forklaring")


def _parameter_rows(page: Any) -> list[tuple[str, str | None]]:
    """Each parameter row: its «Gyldig fra» cell and the source it is marked with (None: unmarked). Read as text
    content: the table may be folded away (an unmarked decision's is)."""
    return [((row.locator("td").nth(2).text_content() or "").strip(), row.get_attribute("data-sekundaerkilde"))
            for row in page.locator("details.tabell tbody tr:has(code)").all()
            if row.locator("th code").text_content() == "dognpris"]


def test_a_stay_charged_in_2025_says_its_rate_rests_on_a_secondary_source(page: Any, console_url: str) -> None:
    _try_case(page, console_url, "2019.1.1", OVER_NEW_YEAR)
    note = page.locator(".forklaring").get_by_role("note")
    assert "Beslutningen bruker en parameterverdi som hviler på sekundærkilde" in note.inner_text()
    assert MARK in note.inner_text() and "1. januar 2025" in note.inner_text()
    # The note comes before the rules, so no reader of the explanation misses it.
    assert page.evaluate("""() => {
        const note = document.querySelector('div.sekundaerkilde'), rules = document.querySelector('ul.regeltre');
        return Boolean(note.compareDocumentPosition(rules) & Node.DOCUMENT_POSITION_FOLLOWING);
    }""")
    parameters = page.locator("details.tabell", has_text="Parametere")
    assert parameters.get_attribute("open") is not None  # opened when a value is marked
    assert "1 hviler på sekundærkilde" in parameters.locator("summary").inner_text()
    rows = _parameter_rows(page)
    assert [(fra, source is not None) for fra, source in rows] == [("1. januar 2024", False), ("1. januar 2025", True)]
    assert (rows[1][1] or "").startswith("Sykepleien 01/2026")
    assert MARK in parameters.locator("tbody tr").nth(1).inner_text()
    assert_accessible(page)


@pytest.mark.parametrize(("version", "case"), [
    ("2019.1", OVER_NEW_YEAR), ("2019.1.1", "somatikk 2024, kommunen kan ikke ta imot")])
def test_the_corrected_version_and_a_stay_wholly_in_2024_say_nothing_of_it(page: Any, console_url: str,
                                                                         version: str, case: str) -> None:
    _try_case(page, console_url, version, case)
    assert page.locator("div.sekundaerkilde").count() == 0
    assert "sekundærkilde" not in page.locator(".forklaring").inner_text()
    rows = _parameter_rows(page)
    assert rows and all(source is None for _, source in rows)
    assert page.locator("details.tabell", has_text="Parametere").get_attribute("open") is None
    assert_accessible(page)


def test_the_auditors_page_of_a_recorded_decision_shows_the_mark(page: Any, console_url: str,
                                                                 served: tuple[ServerProcess, str]) -> None:
    facts = struct_pb2.Struct()
    facts.update({"utskrivningsklar_dato": "2025-03-03", "sektor": "somatikk", "innlagt": "2025-02-24T14:00:00+01:00",
                  "forventet_behov_kommunale_tjenester": True, "varsel_innlagt": "2025-02-25T09:00:00+01:00",
                  "problemstillinger_innleggelse_avklart": True, "ovrige_problemstillinger_avklart": True,
                  "uavklarte_problemstillinger_begrunnet": True, "funksjonsniva_vurdert": True,
                  "lege_vurdert_utskrivningsklar": True, "melding_utskrivningsklar": "2025-03-03T11:00:00+01:00",
                  "kommune_svar": "kan_ikke_ta_imot", "kommune_klar_dato": "2025-03-07", "oppholdskommune": "4601"})
    with grpc.insecure_channel(served[0].address) as channel:
        decision = decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(decision_pb2.EvaluateRequest(
            ruleset="utskrivningsklar", as_of="2025-04-01", facts=facts), metadata=CALLER, timeout=30)
    assert decision.explanation.parameters[0].sekundaerkilde
    page.goto(f"{console_url}/formaal?neste=/revisjon/beslutning/{decision.decision_id}")
    page.get_by_label("Formål").fill(PURPOSE)
    page.get_by_role("button", name="Bruk dette formålet").click()
    assert MARK in page.locator(".forklaring").get_by_role("note").inner_text()
    assert [source is not None for _, source in _parameter_rows(page)] == [True]
    assert_accessible(page)


def test_the_version_page_lists_the_mark_beside_the_value(page: Any, console_url: str) -> None:
    page.goto(f"{console_url}/regelsett/utskrivningsklar/2019.1.1")
    table = page.locator("section.parameter", has=page.locator("#parameter-dognpris")).locator("table")
    cells = table.locator("tbody td:last-child").all_inner_texts()
    notes = dict(zip(table.locator("tbody th").all_inner_texts(), cells, strict=True))
    assert notes["1. januar 2025"].startswith("Hviler på sekundærkilde: Sykepleien 01/2026")
    assert notes["1. januar 2024"] == "—"
    assert_accessible(page)
