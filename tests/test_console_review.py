"""The console against hostile input: every GET page of the app, walked with odd path parameters and query
strings, answers a Norwegian page with a 4xx/5xx (never a 500 or a traceback); the same with the service stopped."""

from __future__ import annotations

import http.client
import itertools
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from datetime import date, timedelta
from typing import Any

import grpc
import pytest
import yaml
from flask import Flask
from google.protobuf import struct_pb2

from regelmotor.console.app import create_app
from regelmotor.console.charts import BarChart, Series, chart_legend, chart_svg, chart_table
from regelmotor.console.security import MAX_BODY_BYTES
from regelmotor.console.settings import ConsoleSettings
from regelmotor_api.v1 import audit_pb2, audit_pb2_grpc, decision_pb2, decision_pb2_grpc
from tests.conftest import ROOT
from tests.console_support import running_console
from tests.server_process import ServerProcess, running_server

# What a person (or an attacker) might put where a name, version or id belongs.
HOSTILE = {
    "lang": "x" * 5000,
    "kontrolltegn": "a%00b%1bc%0d%0aSet-Cookie:%20x=1",
    "ikke-utf8": "%ff%fe%c3%28",
    "skript": "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "sti": "..%2F..%2Fetc%2Fpasswd",
    "ukjent": "finnes-ikke-9.9.9",
    "tomt-mellomrom": "%20",
}
# The same in every query parameter a page reads (unknown ones are ignored).
QUERY = ("neste={v}&fra={v}&til={v}&utfall={v}&fra_dato={v}&til_dato={v}&tilfelle={v}&code={v}&state={v}"
         "&error={v}&side={v}")
TRACE = re.compile(r"Traceback|File \"/|werkzeug\.|jinja2\.|Exception|Error:")


@pytest.fixture(scope="module")
def service() -> Iterator[ServerProcess]:
    with running_server(workers=1) as server:
        yield server


def _app(address: str) -> Flask:
    app = create_app(ConsoleSettings(api_address=address), base_url="http://127.0.0.1")
    app.testing = False  # errors are handled as in production, not raised into the test
    return app


def _get_routes(app: Flask) -> list[str]:
    return sorted(rule.rule for rule in app.url_map.iter_rules() if "GET" in (rule.methods or set()))


def _fill(rule: str, value: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?[a-z_]+>", value, rule)


def _not_a_norwegian_page(status: int, text: str) -> bool:
    """A 500, a trace, or an answer that is neither a redirect nor a page of the console (a stopped service is a
    503 page: the right answer)."""
    redirect = 300 <= status < 400 or status == 204  # 204: no content (the console has no icon), nothing to read
    return status == 500 or bool(TRACE.search(text)) or (not redirect and 'lang="nb"' not in text)


def _walk(app: Flask, purpose: bool) -> list[str]:
    wrong: list[str] = []
    client = app.test_client()
    if purpose:
        with client.session_transaction() as kept:
            kept["formaal"] = "Sak 2026/1234, kontroll"
    for rule in _get_routes(app):
        for label, value in HOSTILE.items():
            # All parameters odd, and a real ruleset with the rest odd (reaching past the name's lookup).
            for filled in {_fill(rule, value), _fill(rule.replace("<name>", "rett-til-helsehjelp"), value)}:
                answer = client.get(filled + "?" + QUERY.format(v=value))
                text = answer.get_data(as_text=True)
                if _not_a_norwegian_page(answer.status_code, text):
                    wrong.append(f"{filled[:80]} [{label}]: {answer.status_code} {text[:200]!r}")
    return wrong


def _assert_walked(app: Flask) -> None:
    for purpose in (False, True):
        wrong = _walk(app, purpose)
        assert not wrong, "\n".join(wrong)


def test_every_get_page_answers_hostile_input_in_norwegian(service: ServerProcess) -> None:
    _assert_walked(_app(service.address))


def test_every_get_page_answers_a_stopped_service_in_norwegian() -> None:
    _assert_walked(_app("127.0.0.1:1"))


def test_the_walk_covers_every_page_with_a_parameter(service: ServerProcess) -> None:
    routes: Any = _get_routes(_app(service.address))
    assert {"/regelsett/<name>/<version>", "/revisjon/beslutning/<decision_id>", "/formaal"} <= set(routes)


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "//evil.example",
                                    "/\\evil.example", "https://evil.example/", "/ /evil.example"])
def test_the_purpose_form_never_leads_to_another_site(target: str) -> None:
    app = _app("127.0.0.1:1")
    app.config["WTF_CSRF_ENABLED"] = False  # the redirect is what is tested here; CSRF has its own test below
    answer = app.test_client().post("/formaal", data={"formaal": "Sak 2026/1234", "neste": target})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/"


def test_the_purpose_form_returns_to_a_page_of_the_console() -> None:
    app = _app("127.0.0.1:1")
    app.config["WTF_CSRF_ENABLED"] = False
    answer = app.test_client().post("/formaal", data={"formaal": "Sak 2026/1234", "neste": "/revisjon/logg?a=1"})
    assert answer.headers["Location"] == "/revisjon/logg?a=1"


def test_every_post_without_a_csrf_token_is_refused_in_norwegian() -> None:
    app = _app("127.0.0.1:1")
    client = app.test_client()
    posts = [rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or set())]
    assert len(posts) >= 9
    for rule in posts:
        answer = client.post(_fill(rule.rule, "rett-til-helsehjelp"), data={"formaal": "Sak 1", "neste": "/"})
        assert answer.status_code == 400, rule.rule
        assert "Skjemaet er for gammelt eller kom ikke fra konsollet" in answer.get_data(as_text=True), rule.rule


class _FailingExport(audit_pb2_grpc.AuditServiceServicer):
    """A real gRPC AuditService whose export breaks after the first line, as a service stopping mid-stream does."""

    def ExportDecisions(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        yield audit_pb2.ExportDecisionsResponse(json_line='{"decision_id": "a"}')
        context.abort(grpc.StatusCode.UNAVAILABLE, f"store went away while reading for {request.filter.national_id}")


@pytest.fixture(scope="module")
def failing_api() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    audit_pb2_grpc.add_AuditServiceServicer_to_server(_FailingExport(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def test_an_export_broken_mid_stream_is_a_failed_download_and_logged_without_personal_data(
        failing_api: str, caplog: pytest.LogCaptureFixture) -> None:
    national_id = "01017012345"
    with running_console(failing_api) as console:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(console.url + "/formaal") as form:
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.read().decode())
        assert token is not None
        opener.open(console.url + "/formaal", data=urllib.parse.urlencode(
            {"csrf_token": token.group(1), "formaal": "Sak 2026/1234", "neste": "/formaal"}).encode()).close()
        body = urllib.parse.urlencode({"csrf_token": token.group(1), "formaal": "Sak 2026/1234",
                                       "fodselsnummer": national_id}).encode()
        caplog.set_level(logging.INFO)
        with opener.open(console.url + "/revisjon/eksport", data=body) as answer:
            assert answer.headers["Cache-Control"] == "no-store"
            with pytest.raises(http.client.IncompleteRead, match="bytes read"):
                answer.read()  # the browser shows the download as failed, not as a complete file
    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "eksport" in logged.lower() or "export" in logged.lower()
    assert "UNAVAILABLE" in logged
    assert national_id not in logged


# Every field any POST form of the console reads, and facts of the bundled ruleset's form.
POSTED_FIELDS = ("formaal", "neste", "tilbake", "fra", "til", "regelsett", "versjon", "utfall", "verdi", "kaller",
                 "fodselsnummer", "leser", "beslutning", "formaal_inneholder", "metode", "side", "kilde",
                 "tilfeller", "handling", "sha256", "bekreft", "kvitter", "grunn", "as_of", "fakta.fodselsdato",
                 "fakta.tilstand", "fakta.forventet_nytte", "fakta.klinisk_frist_uker")
POSTED = {"tomt": None, "lang": b"x" * 20_000, "kontrolltegn": b"a\x00b\x1b\r\nc", "ikke-utf8": b"\xff\xfe\xc3\x28",
          "halv-json": b'{"a": [1, 2', "stort-tall": b"1e999"}


def test_every_post_form_answers_hostile_fields_in_norwegian(service: ServerProcess) -> None:
    _assert_posts_answered(_app(service.address))


def test_every_post_form_answers_a_stopped_service_in_norwegian() -> None:
    _assert_posts_answered(_app("127.0.0.1:1"))


def _assert_posts_answered(app: Flask) -> None:
    app.config["WTF_CSRF_ENABLED"] = False  # what is posted is tested here; the CSRF check has its own test
    client = app.test_client()
    with client.session_transaction() as kept:
        kept["formaal"] = "Sak 2026/1234, kontroll"
    wrong = []
    for rule in [r for r in app.url_map.iter_rules() if "POST" in (r.methods or set())]:
        path = rule.rule.replace("<name>", "rett-til-helsehjelp").replace("<version>", "2024.07")
        path = path.replace("<decision_id>", "00000000-0000-0000-0000-000000000000")
        for label, value in POSTED.items():
            body = b"" if value is None else b"&".join(
                name.encode() + b"=" + urllib.parse.quote_from_bytes(value).encode() for name in POSTED_FIELDS)
            answer = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
            text = answer.get_data(as_text=True)
            if _not_a_norwegian_page(answer.status_code, text):
                wrong.append(f"{rule.rule} [{label}]: {answer.status_code} {text[:200]!r}")
    assert not wrong, "\n".join(wrong)


def test_an_error_page_with_nothing_more_to_say_has_no_empty_alert() -> None:
    answer = _app("127.0.0.1:1").test_client().get("/finnes-ikke")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 404
    assert "<h1>Siden finnes ikke</h1>" in text
    assert 'role="alert"' not in text  # a screen reader would announce «Hva skjedde» and then nothing


@pytest.fixture(scope="module")
def overview(service: ServerProcess) -> str:
    return _app(service.address).test_client().get("/regelsett").get_data(as_text=True)


def test_the_ruleset_overview_says_what_picks_a_version_in_words(overview: str) -> None:
    assert "Versjonen velges etter vurderingsdatoen." in overview  # prioriterte-pasientgrupper names no fact
    assert "Versjonen velges etter faktumet «ansiennitetsdato»." in overview
    assert "as_of" not in overview


def test_a_search_sent_after_the_session_ended_is_answered_with_its_own_purpose(service: ServerProcess) -> None:
    app = _app(service.address)
    app.config["WTF_CSRF_ENABLED"] = False  # the purpose is tested here; CSRF has its own test above
    client = app.test_client()  # a fresh session: no purpose kept
    answer = client.post("/revisjon/", data={"formaal": "Sak 2026/1234", "regelsett": "rett-til-helsehjelp"})
    assert answer.status_code == 200  # not sent to /formaal, which would lose the search
    assert "<h1>Søk i beslutninger</h1>" in answer.get_data(as_text=True)
    assert client.get("/formaal").get_data(as_text=True).count('value="Sak 2026/1234"') == 1  # kept for later



@pytest.mark.parametrize(("area", "source", "cases"), [
    ("kilde", "name: rett-til-helsehjelp\nversion: [\n", ""),
    ("tilfeller", None, "- ikke: et tilfelle\n"),
])
def test_a_draft_with_problems_ties_its_text_area_to_them(service: ServerProcess, area: str, source: str | None,
                                                           cases: str) -> None:
    if source is None:  # the bundled version, valid, so its cases are checked
        source = (ROOT / "rulesets" / "rett-til-helsehjelp" / "2024.07.yaml").read_text(encoding="utf-8")
    app = _app(service.address)
    app.config["WTF_CSRF_ENABLED"] = False  # the page's markup is tested here
    html = app.test_client().post("/regelsett/rett-til-helsehjelp/utkast", data={
        "kilde": source, "tilfeller": cases, "handling": "sjekk"}).get_data(as_text=True)
    tag = re.search(rf'<textarea id="{area}"[^>]*>', html)
    assert tag is not None and 'aria-invalid="true"' in tag.group(0)
    described = re.search(r'aria-describedby="([^"]*)"', tag.group(0))
    assert described is not None and f"{area}-feil" in described.group(1).split()
    problems = re.search(rf'<div class="problem"[^>]*id="{area}-feil"[^>]*>(.*?)</div>', html, re.DOTALL)
    assert problems is not None and "<li>" in problems.group(1)


def test_a_chart_escapes_every_name_it_is_given() -> None:
    """Outcome values, ruleset and outcome names come from people: none may become markup in the SVG or table."""
    hostile = '<script>alert(1)</script>" onload="x'
    chart = BarChart(hostile, (hostile,), (Series(hostile, (3.0,)),), category_heading=hostile, labels=(hostile,))
    for drawn in (chart_svg(chart), chart_legend(chart), chart_table(chart, sums=True)):
        assert "<script>" not in drawn and '" onload="' not in drawn
        assert "&lt;script&gt;" in drawn


def test_the_explanation_says_how_values_were_combined_in_words() -> None:
    app = _app("127.0.0.1:1")
    decision = {"ruleset": "r", "version": "1", "as_of": "2026-04-16", "outcome": {"belop": 3},
                "explanation": {"rules": [], "outcomes": [{"name": "belop", "value": 3, "combine": "max",
                                                          "from_rules": ["r1"]}]}}
    with app.test_request_context("/"):
        html = app.jinja_env.from_string('{% from "_forklaring.html" import forklaring %}{{ forklaring(d) }}'
                                         ).render(d=decision)
    assert "<td>største verdi</td>" in html
    assert "<td>max</td>" not in html


def test_a_form_just_over_the_bound_gets_the_consoles_norwegian_page() -> None:
    with running_console("127.0.0.1:1") as console:
        body = urllib.parse.urlencode({"formaal": "x" * (MAX_BODY_BYTES + 1000)}).encode()
        with pytest.raises(urllib.error.HTTPError, match="413") as refused:
            urllib.request.urlopen(console.url + "/formaal", data=body, timeout=30)
        text = refused.value.read().decode()
    assert 'lang="nb"' in text and "Det som ble sendt inn er for stort" in text


# The pages a person opens, with real data (a purpose kept, so the auditor's pages show their forms).
PAGES = ("/", "/formaal", "/regelsett", "/regelsett/rett-til-helsehjelp/2024.07", "/regelsett/rett-til-helsehjelp/diff",
         "/regelsett/rett-til-helsehjelp/2024.07/prov", "/regelsett/rett-til-helsehjelp/utkast", "/revisjon/",
         "/revisjon/logg", "/revisjon/tilgang", "/revisjon/statistikk", "/finnes-ikke")


def _structure_problems(html: str) -> list[str]:
    """Headings that skip a level, fields without a label, tables without a caption or scoped headers (axe's
    WCAG rules leave heading order to «best practice», and a label may be missing where a title stands in)."""
    found = []
    levels = [int(level) for level in re.findall(r"<h([1-6])[\s>]", html)]
    if not levels or levels[0] != 1 or levels.count(1) != 1:
        found.append(f"one h1 first: {levels}")
    found += [f"h{b} after h{a}" for a, b in itertools.pairwise(levels) if b > a + 1]
    labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        if 'type="hidden"' in tag or ('type="checkbox"' in tag and "<fieldset" not in html):
            continue
        element_id = re.search(r'\bid="([^"]+)"', tag)
        if element_id is None or element_id.group(1) not in labelled:
            found.append(f"no label: {tag[:80]}")
    for table in re.findall(r"<table\b.*?</table>", html, flags=re.DOTALL):
        if "<caption" not in table:
            found.append(f"no caption: {table[:80]}")
        found += [f"th without scope: {th[:60]}" for th in re.findall(r"<th\b[^>]*>", table) if "scope=" not in th]
    return found


def test_every_page_has_its_headings_in_order_labels_and_captions(service: ServerProcess) -> None:
    client = _app(service.address).test_client()
    with client.session_transaction() as kept:
        kept["formaal"] = "Sak 2026/1234, kontroll"
    problems = {path: _structure_problems(client.get(path).get_data(as_text=True)) for path in PAGES}
    assert not {path: found for path, found in problems.items() if found}


def _decide(address: str) -> None:
    """The first bundled case of utskrivningsklar 2019.1, decided through the API (so it is logged today)."""
    case = yaml.safe_load((ROOT / "rulesets" / "utskrivningsklar" / "2019.1.cases.yaml").read_text("utf-8"))
    first = case["cases"][0]
    facts = struct_pb2.Struct()
    facts.update({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in first["facts"].items()})
    with grpc.insecure_channel(address) as channel:
        decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(decision_pb2.EvaluateRequest(
            ruleset="utskrivningsklar", version="2019.1", as_of=first["as_of"].isoformat(), facts=facts),
            metadata=[("regelmotor-caller", "test:gjennomgang")], timeout=30)


def test_the_auditors_answers_have_their_headings_in_order_labels_and_captions(service: ServerProcess) -> None:
    app = _app(service.address)
    app.config["WTF_CSRF_ENABLED"] = False  # the pages' markup is tested here
    client = app.test_client()
    _decide(service.address)  # a decision in the log: the answers have rows, tables and a chart
    today = date.today()
    searched = {"formaal": "Sak 2026/1234", "regelsett": "utskrivningsklar", "utfall": "utfall",
                "fra": (today - timedelta(days=3)).isoformat(), "til": today.isoformat()}
    without_outcome = {name: value for name, value in searched.items() if name != "utfall"}  # a search needs a value
    answered = {path: client.post(path, data=without_outcome if path == "/revisjon/" else searched).get_data(
        as_text=True) for path in ("/revisjon/", "/revisjon/tilgang", "/revisjon/statistikk")}
    assert all("<tbody>" in html for html in answered.values())  # each answer has rows to check
    problems = {path: _structure_problems(html) for path, html in answered.items()}
    assert not {path: found for path, found in problems.items() if found}


@pytest.mark.parametrize(("method", "path"), [("GET", "/innlogging/tilbake?code=1&state=2"), ("POST", "/logg-ut")])
def test_the_logins_own_pages_do_not_exist_without_login(method: str, path: str) -> None:
    app = _app("127.0.0.1:1")
    app.config["WTF_CSRF_ENABLED"] = False
    answer = app.test_client().open(path, method=method)
    assert answer.status_code == 404  # not «Innloggingen lyktes ikke» on a console that has no login
    assert "<h1>Siden finnes ikke</h1>" in answer.get_data(as_text=True)


def test_every_link_of_the_auditors_answers_stays_under_the_consoles_own_path(service: ServerProcess) -> None:
    """Behind a proxy that serves the console at /konsoll, a link written as /revisjon/… would leave it."""
    app = _app(service.address)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    _decide(service.address)
    searched = {"formaal": "Sak 2026/1234", "regelsett": "utskrivningsklar"}
    for path in ("/revisjon/", "/revisjon/tilgang"):
        html = client.post(path, data=searched, base_url="http://127.0.0.1/konsoll").get_data(as_text=True)
        assert "/revisjon/beslutning/" in html or path != "/revisjon/"  # the search lists the decision
        links = re.findall(r'(?:href|action)="(/[^"]*)"', html)
        assert links and [link for link in links if not link.startswith("/konsoll/")] == []
