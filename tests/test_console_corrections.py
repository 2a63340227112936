"""The console shows a correction as what it is: the version page says which version it corrects and why, and the
page of a decision it made says so, with the moment the versions were taken as known at when one was asked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf import struct_pb2

from regelmotor.console.pages import rulesets_timeline
from regelmotor.console.pages.home import in_force
from regelmotor_api.v1 import decision_pb2, decision_pb2_grpc
from tests.console_support import assert_accessible, running_console
from tests.lifecycle_support import cases, seed_directory, sha256, source
from tests.server_process import ServerProcess, running_server

CALLER = [("regelmotor-caller", "test:revisjon")]
PURPOSE = "kontroll av rettelse, sak 2026/7"
REASON = "Aldersgrensen var lest feil; loven er uendret."
MONTHS = ["januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september", "oktober",
          "november", "desember"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A service whose rulesets hold sats 2024.1 and its correction 2024.1.1 (from 2024-06-01), both published."""
    root = seed_directory(tmp_path_factory.mktemp("rulesets"))
    text = source("2024.1.1", "2024-06-01", grense=20, extra=f'supersedes: "2024.1"\ncorrection_reason: "{REASON}"')
    (root / "sats" / "2024.1.1.yaml").write_text(text, encoding="utf-8")
    (root / "sats" / "2024.1.1.cases.yaml").write_text(cases("2024-06-01"), encoding="utf-8")
    with (root / "published.txt").open("a", encoding="utf-8") as record:
        record.write(f"sats 2024.1.1 {sha256(text)}\n")
    with running_server(workers=1, rulesets=root, env={"REGELMOTOR_KNOWN_AT_SETTLE_SECONDS": "0"}) as server:
        yield server


@pytest.fixture(scope="module")
def console_url(service: ServerProcess) -> Iterator[str]:
    with running_console(service.address) as console:
        yield console.url


def _decide(service: ServerProcess, **asked: str) -> decision_pb2.Decision:
    facts = struct_pb2.Struct()
    facts.update({"alder": 19})
    with grpc.insecure_channel(service.address) as channel:
        answer: decision_pb2.Decision = decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(
            decision_pb2.EvaluateRequest(ruleset="sats", as_of="2024-07-01", facts=facts, **asked),
            metadata=CALLER, timeout=30)
    return answer


def _provenance(page: Any, console_url: str, decision_id: str) -> dict[str, str]:
    page.goto(f"{console_url}/revisjon/beslutning/{decision_id}")
    terms = page.locator(".proveniens dt").all_inner_texts()
    return dict(zip(terms, page.locator(".proveniens dd").all_inner_texts(), strict=True))


def test_the_version_page_of_a_correction_names_the_version_it_corrects_and_why(page: Any, console_url: str) -> None:
    page.goto(f"{console_url}/regelsett/sats/2024.1.1")
    terms = page.locator("dl.om-versjonen dt").all_inner_texts()
    shown = dict(zip(terms, page.locator("dl.om-versjonen dd").all_inner_texts(), strict=True))
    assert shown["Retter"].startswith(f"versjon 2024.1: {REASON}")
    assert "gjelder fra publiseringen" in shown["Retter"]
    page.get_by_role("link", name="2024.1", exact=True).click()
    assert page.url == f"{console_url}/regelsett/sats/2024.1"
    assert "Retter" not in page.locator("dl.om-versjonen").inner_text()
    terms = page.locator("dl.om-versjonen dt").all_inner_texts()
    shown = dict(zip(terms, page.locator("dl.om-versjonen dd").all_inner_texts(), strict=True))
    assert shown["Rettet av"].startswith("2024.1.1: rettelsen avgjør i stedet for denne versjonen")
    assert_accessible(page)


def test_the_page_of_a_decision_made_by_a_correction_says_so_and_shows_its_known_at(
        page: Any, console_url: str, service: ServerProcess) -> None:
    corrected = _decide(service, request_id="rettet")
    assert corrected.version == "2024.1.1" and corrected.correction.supersedes == "2024.1"
    known = _decide(service, request_id="kjent-da", known_at=datetime.now(UTC).isoformat())
    page.goto(f"{console_url}/formaal?neste=/revisjon/beslutning/{corrected.decision_id}")
    page.get_by_label("Formål").fill(PURPOSE)
    page.get_by_role("button", name="Bruk dette formålet").click()
    shown = _provenance(page, console_url, corrected.decision_id)
    assert shown["Versjon"].startswith("2024.1.1, en rettelse av versjon 2024.1 (publisert ")
    assert "Slik reglene var kjent" not in shown
    shown = _provenance(page, console_url, known.decision_id)
    assert shown["Versjon"].startswith("2024.1.1, en rettelse av versjon 2024.1")
    moment = datetime.fromisoformat(known.known_at).astimezone(ZoneInfo("Europe/Oslo"))
    expected = f"{moment.day}. {MONTHS[moment.month - 1]} {moment.year} kl. {moment:%H:%M}"
    assert shown["Slik reglene var kjent"] == expected
    assert_accessible(page)


def test_the_time_line_keeps_a_correction_off_the_timeline_and_ends_it_with_the_version_it_corrects() -> None:
    versions = [
        {"version": "1", "state": "published", "gyldig_fra": "2020-01-01", "gyldig_til": ""},
        {"version": "1.1", "state": "published", "gyldig_fra": "2020-01-01", "gyldig_til": "", "supersedes": "1"},
        {"version": "1.2", "state": "proposed", "gyldig_fra": "2021-01-01", "gyldig_til": "2021-06-30",
         "supersedes": "1.1"},
        {"version": "2", "state": "published", "gyldig_fra": "2022-01-01", "gyldig_til": ""},
    ]
    periods = rulesets_timeline.spans(versions)
    assert [(p.version, p.start.isoformat(), p.end.isoformat() if p.end else None, p.supersedes)
            for p in periods] == [
        ("1", "2020-01-01", "2021-12-31", ""),  # the correction starting the same day does not end it
        ("1.1", "2020-01-01", "2021-12-31", "1"),  # as long as 1 governs
        ("1.2", "2021-01-01", "2021-06-30", "1.1"),  # its own gyldig_til
        ("2", "2022-01-01", None, "")]
    assert in_force(versions, date(2021, 3, 1)) == "1.1"  # the correction, not the version it corrects
    assert in_force(versions, date(2023, 3, 1)) == "2"


def test_the_overview_says_which_version_a_correction_corrects(page: Any, console_url: str) -> None:
    page.goto(f"{console_url}/regelsett")
    row = page.locator("tr", has=page.get_by_role("link", name="2024.1.1", exact=True))
    assert "retter 2024.1" in row.inner_text()
    assert "så lenge 2024.1 gjelder" in row.inner_text()
    assert "retter 2024.1" in (page.locator("svg desc").first.text_content() or "")
    page.goto(f"{console_url}/")
    assert "2024.1.1" in page.locator("main").inner_text()  # in force today on the start page
    assert_accessible(page)
