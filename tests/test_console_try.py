"""Prøv en beslutning: the form made from each current version's input schema, filled in from a bundled case,
gives the decision the API gives for the same facts (outcome and rules fired), with a tree whose marks count
what the decision says; a refused value is shown at its field in the API's words; the keyboard alone will do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from werkzeug.datastructures import MultiDict

from regelmotor.console.pages.fact_form import field_of_violation, fields_from_schema, read_facts, typed_from_facts
from regelmotor.core.cases import load_cases
from regelmotor.core.json_schema import input_schema
from regelmotor.core.loader import load_ruleset_file
from regelmotor_api.v1 import decision_pb2, decision_pb2_grpc, ruleset_pb2, ruleset_pb2_grpc
from regelmotor_client import decision_error
from tests.conftest import ROOT
from tests.console_support import assert_accessible, running_console, tab_to
from tests.server_process import ServerProcess, running_server

CALLER = [("regelmotor-caller", "test:prov")]
OSLO = ZoneInfo("Europe/Oslo")


@pytest.fixture(scope="module")
def service() -> Iterator[ServerProcess]:
    with running_server(workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def console_url(service: ServerProcess) -> Iterator[str]:
    with running_console(service.address) as console:
        yield console.url


@pytest.fixture(scope="module")
def channel(service: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(service.address) as opened:
        yield opened


def _current_versions(channel: grpc.Channel) -> list[tuple[str, str]]:
    """Each served ruleset's current version: published and with no end date."""
    stub = ruleset_pb2_grpc.RulesetServiceStub(channel)
    listed = stub.ListRulesets(ruleset_pb2.ListRulesetsRequest(), metadata=CALLER, timeout=30)
    return sorted((r.name, v.version) for r in listed.rulesets for v in r.versions
                  if v.status == "published" and not v.gyldig_til)


def _richest_case(name: str, version: str) -> dict[str, Any]:
    """The bundled case of the version with the most facts (so the most kinds of field are filled in)."""
    cases = yaml.safe_load((ROOT / "rulesets" / name / f"{version}.cases.yaml").read_text(encoding="utf-8"))
    return max(cases["cases"], key=lambda case: len(case["facts"]))


def _as_json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    return value


def _fill(page: Any, name: str, value: Any) -> None:
    """Fill in one fact as a person would, whatever kind of field the form made for it."""
    target = page.locator(f"#felt-{name}")
    tag = target.evaluate("element => element.tagName.toLowerCase()")
    if tag == "fieldset":  # a list of choices: one check box each
        for item in value:
            target.locator(f'input[value="{item}"]').check()
    elif tag == "textarea":
        target.fill("\n".join(str(item) for item in value))
    elif tag == "select":
        target.select_option({True: "ja", False: "nei"}.get(value, value) if isinstance(value, bool) else value)
    elif isinstance(value, datetime):  # <input type="datetime-local">: Norwegian time, no offset
        target.fill(value.astimezone(OSLO).strftime("%Y-%m-%dT%H:%M:%S"))
    else:
        target.fill(_as_json(value) if isinstance(value, date) else str(value))


def _evaluate(channel: grpc.Channel, name: str, version: str, as_of: str, facts: dict[str, Any]) -> dict[str, Any]:
    message = struct_pb2.Struct()
    message.update({key: _as_json(value) for key, value in facts.items()})
    stub = decision_pb2_grpc.DecisionServiceStub(channel)
    decision = stub.Evaluate(decision_pb2.EvaluateRequest(ruleset=name, version=version, as_of=as_of,
                                                          facts=message), metadata=CALLER, timeout=30)
    return json_format.MessageToDict(decision, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def test_every_current_version_has_a_form_that_passes_axe(page: Any, console_url: str,
                                                          channel: grpc.Channel) -> None:
    versions = _current_versions(channel)
    assert {name for name, _ in versions} >= {"rett-til-helsehjelp", "utskrivningsklar", "prioriterte-pasientgrupper"}
    for name, version in versions:
        page.goto(f"{console_url}/regelsett/{name}/{version}/prov")
        assert page.get_by_role("heading", level=1).inner_text() == "Prøv en beslutning"
        schema = yaml.safe_load((ROOT / "rulesets" / name / f"{version}.yaml").read_text(encoding="utf-8"))
        for fact, spec in schema["facts"].items():  # every fact of the version has its labelled field
            field = page.locator(f"#felt-{fact}")
            assert field.count() == 1, f"{name} {version}: no field for {fact}"
            if spec.get("required"):
                label = page.locator(f'label[for="felt-{fact}"], #felt-{fact} > legend').first
                assert "(må fylles ut)" in label.inner_text()
        assert page.locator("#felt-as_of").input_value() == datetime.now(OSLO).date().isoformat()
        assert_accessible(page)


@pytest.mark.parametrize("name", ["rett-til-helsehjelp", "utskrivningsklar", "prioriterte-pasientgrupper"])
def test_a_bundled_case_filled_in_gives_the_apis_decision(page: Any, console_url: str, channel: grpc.Channel,
                                                          name: str) -> None:
    version = dict(_current_versions(channel))[name]
    case = _richest_case(name, version)
    as_of = case["as_of"].isoformat()
    page.goto(f"{console_url}/regelsett/{name}/{version}/prov")
    page.locator("#felt-as_of").fill(as_of)
    for fact, value in case["facts"].items():
        if value is not None:
            _fill(page, fact, value)
    page.get_by_role("button", name="Prøv beslutningen").click()

    answered = _evaluate(channel, name, version, as_of, case["facts"])
    shown = {cell.get_attribute("data-felt"): json.loads(cell.get_attribute("data-verdi") or "null")
             for cell in page.locator(".utfall dd[data-felt]").all()}
    assert shown == answered["outcome"]
    rules = answered["explanation"]["rules"]
    states = {item.get_attribute("data-regel"): item.get_attribute("data-tilstand")
              for item in page.locator("li.regel").all()}
    assert {rule for rule, state in states.items() if state != "ikke-oppfylt"} == {r["id"] for r in rules if r["fired"]}
    assert {rule for rule, state in states.items() if state == "oppfylt"} == {r["id"] for r in rules if r["applied"]}
    # The marks a person sees, and the words a screen reader says for them, count the decision's rules.
    marks = page.locator("li.regel > details > summary .symbol").all_inner_texts()
    words = page.locator("li.regel > details > summary .visuelt-skjult").all_inner_texts()
    assert marks.count("✓") + marks.count("↷") == sum(r["fired"] for r in rules)
    assert marks.count("✗") == words.count("ikke oppfylt") == sum(not r["fired"] for r in rules)
    assert words.count("oppfylt") == marks.count("✓")
    assert_accessible(page)


@pytest.mark.parametrize("name", ["rett-til-helsehjelp", "utskrivningsklar", "prioriterte-pasientgrupper"])
def test_a_case_chosen_from_the_list_fills_the_form_and_gives_the_apis_decision(
        page: Any, console_url: str, channel: grpc.Channel, name: str) -> None:
    version = dict(_current_versions(channel))[name]
    case = _richest_case(name, version)
    page.goto(f"{console_url}/regelsett/{name}/{version}/prov")
    page.get_by_label("Fyll ut fra et testtilfelle").select_option(case["name"])
    page.get_by_role("button", name="Fyll ut skjemaet").click()
    assert page.get_by_label("Fyll ut fra et testtilfelle").input_value() == case["name"]
    assert page.locator("#felt-as_of").input_value() == case["as_of"].isoformat()
    assert_accessible(page)
    page.get_by_role("button", name="Prøv beslutningen").click()

    answered = _evaluate(channel, name, version, case["as_of"].isoformat(), case["facts"])
    shown = {cell.get_attribute("data-felt"): json.loads(cell.get_attribute("data-verdi") or "null")
             for cell in page.locator(".utfall dd[data-felt]").all()}
    assert shown == answered["outcome"]
    fired = {item.get_attribute("data-regel") for item in page.locator("li.regel").all()
             if item.get_attribute("data-tilstand") != "ikke-oppfylt"}
    assert fired == {r["id"] for r in answered["explanation"]["rules"] if r["fired"]}


def test_an_unknown_case_is_said_at_the_list(page: Any, console_url: str, channel: grpc.Channel) -> None:
    version = dict(_current_versions(channel))["utskrivningsklar"]
    page.goto(f"{console_url}/regelsett/utskrivningsklar/{version}/prov?tilfelle=finnes+ikke")
    chooser = page.get_by_label("Fyll ut fra et testtilfelle")
    assert chooser.get_attribute("aria-invalid") == "true"
    assert "ikke noe testtilfelle som heter «finnes ikke»" in page.locator("#tilfelle-feil").inner_text()
    assert page.locator("#felt-as_of").input_value() == datetime.now(OSLO).date().isoformat()
    assert_accessible(page)


def test_a_refused_value_is_shown_at_its_field_in_the_apis_words(page: Any, console_url: str,
                                                                 channel: grpc.Channel) -> None:
    name = "rett-til-helsehjelp"
    version = dict(_current_versions(channel))[name]
    facts = {"ansiennitetsdato": date(2025, 3, 3), "fodselsdato": date(1980, 1, 2), "fagomrade": "somatikk",
             "forventet_nytte": True, "kostnad_rimelig": True, "klinisk_frist_uker": 500}
    with pytest.raises(grpc.RpcError, match="klinisk_frist_uker") as refused:
        _evaluate(channel, name, version, "2025-03-10", facts)
    reason = decision_error(refused.value).field_violations["klinisk_frist_uker"]

    page.goto(f"{console_url}/regelsett/{name}/{version}/prov")
    page.locator("#felt-as_of").fill("2025-03-10")
    for fact, value in facts.items():
        _fill(page, fact, value)
    page.get_by_role("button", name="Prøv beslutningen").click()
    field = page.locator("#felt-klinisk_frist_uker")
    assert field.get_attribute("aria-invalid") == "true"
    assert "felt-klinisk_frist_uker-feil" in (field.get_attribute("aria-describedby") or "").split()
    assert page.locator("#felt-klinisk_frist_uker-feil").inner_text() == reason
    assert field.input_value() == "500" and page.locator("#felt-fagomrade").input_value() == "somatikk"
    summary = page.get_by_role("alert")
    assert summary.get_by_role("link", name="Klinisk frist uker").get_attribute("href") == "#felt-klinisk_frist_uker"
    assert page.locator(".forklaring").count() == 0
    assert_accessible(page)


def test_the_consoles_own_bounds_are_said_at_the_field(page: Any, console_url: str, channel: grpc.Channel) -> None:
    name = "prioriterte-pasientgrupper"
    version = dict(_current_versions(channel))[name]
    page.goto(f"{console_url}/regelsett/{name}/{version}/prov")
    page.locator("#felt-fodselsdato").fill("1950-05-05")
    page.locator("#felt-diagnoser").fill("\n".join(["E11"] * 101))
    page.get_by_role("button", name="Prøv beslutningen").click()
    assert page.locator("#felt-diagnoser-feil").inner_text() == "Høyst 100 linjer, ikke 101."
    assert page.locator("#felt-diagnoser").get_attribute("aria-invalid") == "true"
    assert_accessible(page)


def test_the_keyboard_alone_fills_in_and_submits(page: Any, console_url: str, channel: grpc.Channel) -> None:
    name = "prioriterte-pasientgrupper"
    version = dict(_current_versions(channel))[name]
    page.goto(f"{console_url}/regelsett/{name}/{version}/prov")
    tab_to(page, "#felt-as_of")
    # A date field takes its parts in the browser's own order (chromium's: mm.dd.åååå, whatever the page's
    # language); 01 02 2025 is a date either way, and what it became says the order for the next one.
    page.keyboard.type("01022025")
    as_of = page.locator("#felt-as_of").input_value()
    assert as_of in ("2025-01-02", "2025-02-01")
    tab_to(page, "#felt-fodselsdato")
    page.keyboard.type("06151940" if as_of == "2025-01-02" else "15061940")
    tab_to(page, "#felt-diagnoser")
    page.keyboard.type("E11")
    page.keyboard.press("Enter")
    page.keyboard.type("I50")
    tab_to(page, "button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector(".forklaring")
    assert page.locator("#felt-fodselsdato").input_value() == "1940-06-15"
    assert page.locator("#felt-diagnoser").input_value() == "E11\nI50"
    assert f"vurdert {'2. januar' if as_of == '2025-01-02' else '1. februar'} 2025" in page.locator(
        ".utfall-innledning").inner_text()
    answered = _evaluate(channel, name, version, as_of,
                         {"fodselsdato": date(1940, 6, 15), "diagnoser": ["E11", "I50"]})
    shown = {cell.get_attribute("data-felt"): json.loads(cell.get_attribute("data-verdi") or "null")
             for cell in page.locator(".utfall dd[data-felt]").all()}
    assert shown == answered["outcome"]


NESTED_SCHEMA = {
    "type": "object", "required": ["henvisning", "fodselsnummer_gitt"],
    "properties": {
        "fodselsnummer_gitt": {"type": "boolean"},
        "henvisning": {"type": "object", "title": "Henvisningen", "required": ["mottatt"], "properties": {
            "mottatt": {"type": "string", "format": "date", "description": "Datoen henvisningen kom."},
            "koder": {"type": "array", "items": {"type": "string"}, "maxItems": 3}}},
        "innlagt": {"type": "string", "format": "date-time"},
        "vekt": {"type": "number"},
    },
}


def test_a_nested_schema_becomes_fieldsets_and_its_facts_come_back_nested() -> None:
    """No bundled ruleset has nested facts yet; a schema that has them gets a fieldset, and the API's
    violation of facts.henvisning.mottatt lands at that field."""
    fields = fields_from_schema(NESTED_SCHEMA)
    assert [f.name for f in fields] == ["henvisning", "fodselsnummer_gitt", "innlagt", "vekt"]
    nested = fields[0]
    assert nested.kind == "object" and nested.label == "Henvisningen"
    assert [(c.name, c.kind, c.required) for c in nested.children] == [("henvisning.mottatt", "date", True),
                                                                        ("henvisning.koder", "list", False)]
    filled = read_facts(fields, MultiDict({"fakta.henvisning.mottatt": "2026-04-16",
                                           "fakta.henvisning.koder": "A1\n\nB2\n", "fakta.fodselsnummer_gitt": "nei",
                                           "fakta.innlagt": "2026-04-16T14:05", "fakta.vekt": "72,5"}))
    assert filled.problems == {}
    assert filled.facts == {"henvisning": {"mottatt": "2026-04-16", "koder": ["A1", "B2"]},
                            "fodselsnummer_gitt": False, "innlagt": "2026-04-16T14:05:00+02:00", "vekt": 72.5}
    names = {"henvisning", "henvisning.mottatt", "henvisning.koder"}
    assert field_of_violation("facts.henvisning.mottatt", names) == ("henvisning.mottatt", "")
    assert field_of_violation("henvisning.koder[1]", names) == ("henvisning.koder", "Nr. 2: ")
    assert field_of_violation("request_id", names) == (None, "")
    too_many = read_facts(fields, MultiDict({"fakta.henvisning.koder": "A\nB\nC\nD"}))
    assert too_many.problems == {"henvisning.koder": "Høyst 3 linjer, ikke 4."}


def _zoneless_time(facts: dict[str, Any]) -> bool:
    return any(isinstance(v, str) and len(v) == 19 and v[10] == "T" for v in facts.values())


def _same_instant(value: Any) -> Any:
    """A date-time text as the moment it names (the form shows Norwegian time, the case may use any offset)."""
    if isinstance(value, str) and len(value) > 19 and value[10] == "T":
        return datetime.fromisoformat(value).timestamp()
    if isinstance(value, dict):
        return {key: _same_instant(item) for key, item in value.items()}
    return [_same_instant(item) for item in value] if isinstance(value, list) else value


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "rulesets").glob("*/*.yaml")
                                        if not p.name.endswith(".cases.yaml")), ids=lambda p: p.parent.name + p.stem)
def test_every_bundled_case_fills_the_form_with_what_reads_back_as_its_facts(path: Any) -> None:
    fields = fields_from_schema(input_schema(load_ruleset_file(path)))
    by_name = {f.name: f for f in fields}
    for case in load_cases(path.with_name(f"{path.stem}.cases.yaml")):
        if _zoneless_time(case.facts):
            continue  # the form's date-time field is Norwegian time: «no zone», an error case's point, it cannot hold
        typed = typed_from_facts(fields, case.facts)
        form = MultiDict([(by_name[name].input_name, item) for name, value in typed.items()
                          for item in (value if isinstance(value, list) else [value])])
        facts = {key: value for key, value in case.facts.items() if value is not None}
        assert _same_instant(read_facts(fields, form).facts) == _same_instant(facts), case.name
