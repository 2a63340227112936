"""The auditor's page of one recorded decision: asked for a purpose first, then its provenance as recorded in the
log, the facts, the explanation tree with amounts in kroner and Norwegian dates, and a replay (keyboard alone)
that says the decision is identical and the answer's hash matches."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import grpc
import pytest
import requests
import yaml
from google.protobuf import json_format, struct_pb2

from regelmotor_api.v1 import audit_pb2, audit_pb2_grpc, decision_pb2, decision_pb2_grpc
from tests.conftest import ROOT
from tests.console_support import assert_accessible, running_console, tab_to
from tests.server_process import ServerProcess, running_server

CALLER = [("regelmotor-caller", "test:revisjon")]
PURPOSE = "tilsynssak 2024/118"
MONTHS = ["januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september", "oktober",
          "november", "desember"]


@pytest.fixture(scope="module")
def service() -> Iterator[ServerProcess]:
    with running_server(workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def console_url(service: ServerProcess) -> Iterator[str]:
    with running_console(service.address) as console:
        yield console.url


def _first_case() -> dict[str, Any]:
    """The first bundled case of utskrivningsklar 2019.1: four days to pay for, 22 980 kr."""
    cases = yaml.safe_load((ROOT / "rulesets" / "utskrivningsklar" / "2019.1.cases.yaml").read_text("utf-8"))
    first: dict[str, Any] = cases["cases"][0]
    return first


def _decide_and_read(service: ServerProcess, request_id: str) -> dict[str, Any]:
    """A decision made through the API, and the log's record of it (GetDecision)."""
    case = _first_case()
    facts = struct_pb2.Struct()
    facts.update({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in case["facts"].items()})
    with grpc.insecure_channel(service.address) as channel:
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        decision = decisions.Evaluate(decision_pb2.EvaluateRequest(
            ruleset="utskrivningsklar", version="2019.1", as_of=case["as_of"].isoformat(), facts=facts,
            request_id=request_id), metadata=CALLER, timeout=30)
        audit = audit_pb2_grpc.AuditServiceStub(channel)
        record = audit.GetDecision(audit_pb2.GetDecisionRequest(decision_id=decision.decision_id, formaal=PURPOSE),
                                   metadata=CALLER, timeout=30)
    return json_format.MessageToDict(record, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


@pytest.fixture(scope="module")
def recorded(service: ServerProcess) -> dict[str, Any]:
    return _decide_and_read(service, "revisjon-test-1")


def _norsk_tid(stamp: str) -> str:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(ZoneInfo("Europe/Oslo"))
    return f"{moment.day}. {MONTHS[moment.month - 1]} {moment.year} kl. {moment:%H:%M}"


def _provenance(page: Any) -> dict[str, str]:
    terms = page.locator(".proveniens dt").all_inner_texts()
    return dict(zip(terms, page.locator(".proveniens dd").all_inner_texts(), strict=True))


def _plain(text: str) -> str:
    return re.sub(r"\s", " ", text)  # Babel groups digits and joins "kr" with (narrow) no-break spaces


def test_without_a_purpose_the_page_asks_for_one_and_comes_back(page: Any, console_url: str,
                                                               recorded: dict[str, Any]) -> None:
    path = f"/revisjon/beslutning/{recorded['decision']['decision_id']}"
    page.goto(console_url + path)
    assert page.url.startswith(console_url + "/formaal?neste=")
    page.get_by_label("Formål").fill(PURPOSE)
    page.get_by_role("button", name="Bruk dette formålet").click()
    assert page.url == console_url + path
    assert page.get_by_role("heading", level=1).inner_text() == "Beslutning"
    assert PURPOSE in page.locator("main").inner_text()


@pytest.mark.parametrize(("back", "expected"), [
    ("{path}", "{path}"), ("https://andre.example/revisjon", "/"), ("//andre.example/x", "/"), ("", "/")])
def test_a_replay_without_a_purpose_asks_for_one_and_comes_back_to_the_decision_page(
        console_url: str, recorded: dict[str, Any], back: str, expected: str) -> None:
    """A POST cannot be repeated by a redirect: the purpose page leads back to the page the form was on (a path on
    this console only, never another site)."""
    path = f"/revisjon/beslutning/{recorded['decision']['decision_id']}"
    with requests.Session() as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get(f"{console_url}/formaal", timeout=30).text)
        assert token is not None
        asked = browser.post(f"{console_url}{path}/spill-av", data={"csrf_token": token.group(1),
                             "tilbake": back.format(path=path)}, allow_redirects=False, timeout=30)
        assert asked.status_code == 302
        location = urlsplit(asked.headers["Location"])
        assert location.path == "/formaal" and parse_qs(location.query)["neste"] == [expected.format(path=path)]
        given = browser.post(f"{console_url}/formaal", data={"csrf_token": token.group(1), "formaal": PURPOSE,
                             "neste": expected.format(path=path)}, allow_redirects=False, timeout=30)
        assert given.status_code == 302 and urlsplit(given.headers["Location"]).path == expected.format(path=path)


def test_the_decision_page_shows_the_record_and_replays_it_identically(page: Any, console_url: str,
                                                                       recorded: dict[str, Any]) -> None:
    decision = recorded["decision"]
    page.goto(f"{console_url}/formaal?neste=/revisjon/beslutning/{decision['decision_id']}")
    page.get_by_label("Formål").fill(PURPOSE)
    page.get_by_role("button", name="Bruk dette formålet").click()

    shown = _provenance(page)
    summary = recorded["summary"]
    assert shown["Regelsett"] == "utskrivningsklar" and shown["Versjon"] == "2019.1"
    assert shown["Versjonens sha256"] == recorded["ruleset_sha256"] == decision["ruleset_sha256"]
    assert shown["Motor"] == recorded["engine_version"]
    assert shown["Sporings-id"] == recorded["trace_id"] and len(recorded["trace_id"]) == 32
    assert shown["Registrert"] == _norsk_tid(summary["recorded_at"])
    assert shown["Spurt av"] == "test:revisjon" and shown["Forespørselens id"] == "revisjon-test-1"
    assert shown["Loggpostens kontrollsum"] == summary["hash"]  # the word the log's check page uses
    assert shown["Forrige posts kontrollsum"] == recorded["prev_hash"]
    assert shown["Versjonen valgt etter"] == "faktumet «utskrivningsklar_dato»: 4. mars 2024"
    assert shown["Svarets sha256"] == recorded["answer_sha256"]
    facts = dict(zip(page.locator("table.fakta tbody th").all_inner_texts(),
                     page.locator("table.fakta tbody td").all_inner_texts(), strict=True))
    assert set(facts) == set(recorded["facts"])
    assert facts["utskrivningsklar_dato"] == "4. mars 2024" and facts["sektor"] == "somatikk"
    assert _plain(page.locator('.utfall dd[data-felt="belop"]').inner_text()) == "22 980 kr"
    assert page.locator("li.regel").count() == len(decision["explanation"]["rules"])
    assert_accessible(page)

    tab_to(page, "form[action$='/spill-av'] button")
    page.keyboard.press("Enter")
    result = page.get_by_role("status")
    assert "Avspillingen er identisk" in result.inner_text()
    assert "Svarets sha256 stemmer" in result.inner_text()
    assert page.locator("li.regel").count() == len(decision["explanation"]["rules"])
    assert_accessible(page)


def test_an_unknown_decision_is_said_in_plain_words(page: Any, console_url: str, recorded: dict[str, Any]) -> None:
    page.goto(f"{console_url}/formaal?neste=/revisjon/beslutning/finnes-ikke")
    page.get_by_label("Formål").fill(PURPOSE)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Bruk dette formålet").click()
    assert navigation.value is not None and navigation.value.status == 404
    assert "Fant ikke det du ba om" in page.locator("main").inner_text()
    assert recorded["decision"]["decision_id"] not in page.content()


def test_a_replay_of_altered_facts_shows_each_difference(page: Any, console_url: str, service: ServerProcess) -> None:
    """Someone changed a recorded decision's facts in the log's database: the replay decides otherwise, and the page
    shows each differing path with the recorded and the replayed value, as the API reports them."""
    decision_id = _decide_and_read(service, "revisjon-test-2")["decision"]["decision_id"]
    with closing(sqlite3.connect(service.data_dir / "decisions.db")) as database, database:
        database.execute("DROP TRIGGER decisions_no_update")  # as one with access to the database file could
        (text,) = database.execute("SELECT facts FROM decisions WHERE decision_id = ?", (decision_id,)).fetchone()
        altered = {**json.loads(text), "kommune_klar_dato": "2024-03-11"}  # three more days to pay for
        database.execute("UPDATE decisions SET facts = ? WHERE decision_id = ?", (json.dumps(altered), decision_id))
    with grpc.insecure_channel(service.address) as channel:
        replayed = audit_pb2_grpc.AuditServiceStub(channel).ReplayDecision(
            audit_pb2.ReplayDecisionRequest(decision_id=decision_id, formaal=PURPOSE), metadata=CALLER, timeout=30)
    assert not replayed.identical and "outcome.belop" in {d.path for d in replayed.differences}

    page.goto(f"{console_url}/formaal?neste=/revisjon/beslutning/{decision_id}")
    page.get_by_label("Formål").fill(PURPOSE)
    page.get_by_role("button", name="Bruk dette formålet").click()
    page.get_by_role("button", name="Spill av beslutningen").click()
    result = page.get_by_role("status")
    assert "Avspillingen er ikke identisk" in result.inner_text()
    assert "Svarets sha256 stemmer ikke" in result.inner_text()
    rows = {row.locator("th").inner_text(): [json.loads(cell) for cell in row.locator("td").all_inner_texts()]
            for row in result.locator("tbody tr").all()}
    assert rows == {d.path: [json_format.MessageToDict(d.recorded), json_format.MessageToDict(d.replayed)]
                    for d in replayed.differences}
    assert rows["outcome.belop"] == [22980, 7 * 5745]
    assert_accessible(page)
