"""The auditor's console pages (/revisjon…) against the real service (a child process) with decisions made through
the API here, in Debian's chromium: searches find exactly what the API finds, the fødselsnummer stays out of every
URL and every log line, the export is the same decisions, and each page passes axe-core and works by keyboard."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from regelmotor.console.charts import OTHERS, PALETTE
from regelmotor.console.formatting import OSLO, norsk_dato, norsk_tall
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.console_support import assert_accessible, running_console, tab_to
from tests.grpc_support import VALID_FACTS, request
from tests.identity_numbers import FODSELSNUMRE
from tests.server_process import ServerProcess, running_server

NATIONAL_ID = FODSELSNUMRE[5]
PURPOSE = "tilsynssak 2026/konsoll-41"
FACT_VARIANTS = [VALID_FACTS, {**VALID_FACTS, "forventet_nytte": False}, {**VALID_FACTS, "kostnad_rimelig": False}]
MADE_COUNT = 27  # more than one page of 25


class Captured(logging.Handler):
    """Every log record of this process (the console runs in it), formatted, for the check that no number leaks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__}")


@pytest.fixture(scope="module")
def service() -> Iterator[ServerProcess]:
    with running_server(workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def made(service: ServerProcess) -> list[dict[str, Any]]:
    """The decisions made for this module: two for NATIONAL_ID, the others without a number, outcomes varied."""
    decisions = []
    with grpc.insecure_channel(service.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        for index in range(MADE_COUNT):
            extra = {"national_id": NATIONAL_ID} if index in (3, 11) else {}
            answer = stub.Evaluate(request(FACT_VARIANTS[index % 3], request_id=f"konsoll-{index}", **extra),
                                   metadata=[("regelmotor-caller", f"dips-{index % 2}")], timeout=30)
            decisions.append({"id": answer.decision_id, "outcome": json_format.MessageToDict(answer.outcome),
                              "national_id": bool(extra)})
    return decisions


@pytest.fixture(scope="module")
def logs() -> Iterator[Captured]:
    captured = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(captured)
    root.setLevel(logging.DEBUG)
    try:
        yield captured
    finally:
        root.removeHandler(captured)
        root.setLevel(level)


@pytest.fixture(scope="module")
def console_url(service: ServerProcess, made: list[dict[str, Any]], logs: Captured) -> Iterator[str]:
    with running_console(service.address) as console:
        yield console.url


@pytest.fixture
def urls(page: Any) -> list[str]:
    """Every URL the page asks for (the check that no fødselsnummer is ever in one)."""
    seen: list[str] = []
    page.on("request", lambda asked: seen.append(asked.url))
    return seen


def _api_ids(service: ServerProcess, **fields: Any) -> list[str]:
    """The decisions the API itself lists for a filter (newest first), every page."""
    ids: list[str] = []
    token = ""
    with grpc.insecure_channel(service.address) as channel:
        stub = apb_grpc.AuditServiceStub(channel)
        while True:
            answer = stub.ListDecisions(apb.ListDecisionsRequest(filter=apb.DecisionFilter(**fields), formaal=PURPOSE,
                                                                 page_token=token, page_size=500),
                                        metadata=[("regelmotor-caller", "test-kontroll")], timeout=30)
            ids += [d.decision_id for d in answer.decisions]
            token = answer.next_page_token
            if not token:
                return ids


def _give_purpose(page: Any, console_url: str, path: str, purpose: str = PURPOSE) -> None:
    """Open an audit page: it asks for the purpose first, then comes back to the page."""
    page.goto(console_url + path)
    assert "/formaal" in page.url, "an audit page must ask for the purpose first"
    page.get_by_label("Formål").fill(purpose)
    page.get_by_role("button", name="Bruk dette formålet").click()
    assert page.url.rstrip("/").endswith(path.rstrip("/")), page.url


def _found_ids(page: Any) -> list[str]:
    found: list[str] = page.locator("main table tbody td:last-child a").all_inner_texts()
    return found


def test_a_search_by_ruleset_finds_exactly_the_decisions_made_a_page_at_a_time(
        page: Any, console_url: str, service: ServerProcess, made: list[dict[str, Any]], urls: list[str]) -> None:
    _give_purpose(page, console_url, "/revisjon/")
    assert page.get_by_label("Formål med oppslaget").input_value() == PURPOSE  # prefilled from the session
    assert_accessible(page)
    page.get_by_label("Regelsett").fill("rett-til-helsehjelp")
    page.get_by_role("button", name="Søk", exact=True).click()
    first = _found_ids(page)
    assert len(first) == 25
    assert_accessible(page)
    row = page.locator("main table tbody tr").first
    newest = made[-1]
    assert row.locator("td").nth(0).inner_text() == _recorded_words(service, newest["id"])
    assert f"utfall: {newest['outcome']['utfall']}" in row.locator("td").nth(3).inner_text()
    assert row.locator("a").get_attribute("href") == f"/revisjon/beslutning/{newest['id']}"
    page.get_by_role("button", name="Neste side").click()
    second = _found_ids(page)
    assert first + second == _api_ids(service, ruleset="rett-til-helsehjelp")
    assert set(first + second) == {d["id"] for d in made}
    assert page.get_by_role("button", name="Neste side").count() == 0
    page.get_by_label("Regelsett").fill("utskrivningsklar")
    page.get_by_role("button", name="Søk", exact=True).click()
    assert _found_ids(page) == [] and "Ingen beslutninger passer" in page.locator("main").inner_text()
    assert not [url for url in urls if "helsehjelp" in url or "utskrivningsklar" in url], urls  # searches are POSTs


def _recorded_words(service: ServerProcess, decision_id: str) -> str:
    with grpc.insecure_channel(service.address) as channel:
        answer = apb_grpc.AuditServiceStub(channel).GetDecision(
            apb.GetDecisionRequest(decision_id=decision_id, formaal=PURPOSE),
            metadata=[("regelmotor-caller", "test-kontroll")], timeout=30)
    moment = answer.summary.recorded_at.ToDatetime(UTC).astimezone(OSLO)
    return f"{norsk_dato(moment)} kl. {moment:%H:%M}"


def test_a_search_by_national_id_finds_its_decisions_and_the_number_is_in_no_url(
        page: Any, console_url: str, service: ServerProcess, made: list[dict[str, Any]], urls: list[str]) -> None:
    _give_purpose(page, console_url, "/revisjon/")
    page.get_by_label("Fødselsnummer").fill(NATIONAL_ID)
    page.get_by_role("button", name="Søk", exact=True).click()
    found = _found_ids(page)
    assert found == _api_ids(service, national_id=NATIONAL_ID)
    assert set(found) == {d["id"] for d in made if d["national_id"]} and len(found) == 2
    assert_accessible(page)
    assert urls and not any(NATIONAL_ID in url for url in urls)


def test_an_invalid_national_id_is_shown_at_its_field(page: Any, console_url: str,
                                                      made: list[dict[str, Any]]) -> None:
    _give_purpose(page, console_url, "/revisjon/")
    page.get_by_label("Fødselsnummer").fill("12345678901")
    page.get_by_role("button", name="Søk", exact=True).click()
    field = page.locator("#fodselsnummer")
    assert field.get_attribute("aria-invalid") == "true"
    assert "fodselsnummer-feil" in (field.get_attribute("aria-describedby") or "")
    assert page.locator("#fodselsnummer-feil").inner_text() == ("Kontrollsifrene stemmer ikke; sjekk at "
                                                                 "fødselsnummeret er skrevet riktig.")
    assert page.get_by_role("alert").locator("a[href='#fodselsnummer']").count() == 1
    assert_accessible(page)
    page.get_by_label("Fødselsnummer").fill("")
    page.get_by_label("Verdi").fill("rett")  # a value without the outcome it is the value of
    page.get_by_role("button", name="Søk", exact=True).click()
    assert page.locator("#utfall").get_attribute("aria-invalid") == "true"
    assert page.locator("#utfall-feil").inner_text().startswith("Skriv hvilket utfall verdien gjelder")
    page.get_by_label("Utfall", exact=True).fill("utfall")
    page.get_by_role("button", name="Søk", exact=True).click()
    assert page.locator("[aria-invalid='true']").count() == 0
    assert set(_found_ids(page)) == {d["id"] for d in made if d["outcome"]["utfall"] == "rett"} != set()


def test_the_export_is_the_same_decisions_as_json_lines(page: Any, console_url: str, service: ServerProcess,
                                                         made: list[dict[str, Any]]) -> None:
    _give_purpose(page, console_url, "/revisjon/")
    page.get_by_label("Kaller").fill("dips-1")
    page.get_by_role("button", name="Søk", exact=True).click()
    shown = _found_ids(page)
    with page.expect_response(lambda answer: answer.url.endswith("/revisjon/eksport")) as responded, \
            page.expect_download() as downloading:
        page.get_by_role("button", name="Last ned alle treff som JSON-linjer").click()
    headers = responded.value.headers
    assert headers["content-type"].startswith("application/x-ndjson")
    assert headers["content-disposition"].startswith("attachment")
    lines = [json.loads(line) for line in Path(downloading.value.path()).read_text(encoding="utf-8").splitlines()]
    assert [line["decision_id"] for line in lines] == list(reversed(shown))  # oldest first
    assert {line["decision_id"] for line in lines} == {d["id"] for d in made[1::2]}
    assert all(line["caller"] == "dips-1" for line in lines)


def test_the_log_verification_says_ok_and_how_many_were_checked(page: Any, console_url: str,
                                                                made: list[dict[str, Any]]) -> None:
    _give_purpose(page, console_url, "/revisjon/logg")
    status = page.locator(".revisjon-status").inner_text()
    assert "Loggen er i orden" in status and f"{norsk_tall(len(made))} poster er kontrollert" in status
    assert_accessible(page)


def test_the_access_log_shows_this_tests_own_reads_with_their_purpose(page: Any, console_url: str) -> None:
    purpose = f"tilgangskontroll {datetime.now(UTC):%H%M%S%f}"
    _give_purpose(page, console_url, "/revisjon/", purpose)
    page.get_by_label("Regelsett").fill("rett-til-helsehjelp")
    page.get_by_role("button", name="Søk", exact=True).click()
    page.get_by_role("link", name="Tilgangsloggen").click()
    assert page.get_by_label("Formål med oppslaget").input_value() == purpose
    page.get_by_label("Formålet inneholder").fill(purpose.upper())
    page.get_by_role("button", name="Søk i tilgangsloggen").click()
    rows = page.locator("main table tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    # Newest first: this very listing, then the search made above, each with the purpose.
    assert len(texts) == 2, texts
    assert "Leste tilgangsloggen" in texts[0] and "Søkte i beslutninger" in texts[1]
    assert all(purpose in text for text in texts) and "regelsett: rett-til-helsehjelp" in texts[1]
    assert_accessible(page)


def test_the_statistics_count_the_decisions_made_per_day_and_outcome(page: Any, console_url: str,
                                                                    made: list[dict[str, Any]]) -> None:
    _give_purpose(page, console_url, "/revisjon/statistikk")
    assert_accessible(page)
    page.get_by_label("Regelsett").fill("rett-til-helsehjelp")
    page.get_by_role("button", name="Tell beslutninger").click()
    table = page.locator(".revisjon-statistikk table.diagramtabell")
    values = table.locator("thead th").all_inner_texts()[1:-1]
    today = norsk_dato(datetime.now(OSLO).date())
    row = table.locator("tbody tr", has=page.locator(f"th:text-is('{today}')"))
    counts = row.locator("td").all_inner_texts()
    expected = Counter(str(d["outcome"]["utfall"]) for d in made)
    assert dict(zip(values, counts[:-1], strict=True)) == {value: norsk_tall(n) for value, n in expected.items()}
    assert counts[-1] == norsk_tall(len(made))
    assert page.locator("svg[role='img'] rect").count() == len(expected)  # one stacked piece per value today
    legend = page.locator(".diagramforklaring").inner_text()
    assert all(f"{value}: {norsk_tall(n)}" in legend for value, n in expected.items())
    assert_accessible(page)


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_every_chart_colour_has_aa_contrast_against_white_and_differs_from_the_others() -> None:
    colours = [*PALETTE, OTHERS]
    assert all((1.05) / (_luminance(c) + 0.05) >= 4.5 for c in colours), colours
    assert len(set(colours)) == len(colours)


def test_the_keyboard_alone_can_search(page: Any, console_url: str, made: list[dict[str, Any]]) -> None:
    _give_purpose(page, console_url, "/revisjon/")
    tab_to(page, "#regelsett")
    page.keyboard.type("rett-til-helsehjelp")
    tab_to(page, "form.revisjon-skjema button[type='submit']")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert len(_found_ids(page)) == 25
    tab_to(page, "form:has(input[name='side']) button")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert len(_found_ids(page)) == len(made) - 25


def test_the_national_id_is_in_no_log_line_of_the_console_or_the_service(
        console_url: str, logs: Captured, service: ServerProcess) -> None:
    """Last in this module: it stops the service to read its whole log."""
    # The console logs little (errors, by type); that a line of its loggers would be caught here is shown first.
    logging.getLogger("regelmotor.console.pages").debug("probe")
    assert any(line.startswith("probe ") for line in logs.lines), "the console's log is not captured"
    assert not [line for line in logs.lines if NATIONAL_ID in line]
    written = service.logs()
    assert written and NATIONAL_ID not in written
