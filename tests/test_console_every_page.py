"""Every page of the console a person can reach by its links passes axe-core (WCAG 2.1 A and AA) and answers
without an error: the pages are found by following the links from the start page, as a person would, so a page
added later is checked without a test of its own. One page per route (the same template with other data is the
same page), and the answers of the forms a person submits most (a decision tried, an auditor's search)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from werkzeug.exceptions import NotFound

from regelmotor_client import RegelmotorClient
from tests.console_support import assert_accessible, running_console
from tests.server_process import ServerProcess, running_server

CASE_FACTS = {"utskrivningsklar_dato": "2024-03-04", "sektor": "somatikk", "innlagt": "2024-02-26T14:00:00+01:00",
              "forventet_behov_kommunale_tjenester": True, "varsel_innlagt": "2024-02-27T09:00:00+01:00",
              "problemstillinger_innleggelse_avklart": True, "ovrige_problemstillinger_avklart": True,
              "uavklarte_problemstillinger_begrunnet": True, "funksjonsniva_vurdert": True,
              "lege_vurdert_utskrivningsklar": True, "melding_utskrivningsklar": "2024-03-04T11:00:00+01:00",
              "kommune_svar": "kan_ikke_ta_imot", "kommune_klar_dato": "2024-03-08", "bostedskommune": "0301",
              "oppholdskommune": "4601"}


@pytest.fixture(scope="module")
def service() -> Iterator[ServerProcess]:
    with running_server(workers=1) as server:
        with RegelmotorClient(server.address) as client:
            client.evaluate("utskrivningsklar", CASE_FACTS, as_of="2024-04-01", request_id="hver-side-1")
        yield server


@pytest.fixture(scope="module")
def console(service: ServerProcess) -> Iterator[Any]:
    with running_console(service.address) as running:
        yield running


def _links(page: Any) -> list[str]:
    return [str(href) for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")]


def test_every_page_reached_by_links_passes_axe(page: Any, console: Any) -> None:
    base = console.url
    page.goto(base + "/formaal?neste=/")
    page.get_by_label("Formål").fill("kontroll av universell utforming")
    page.get_by_role("button", name="Bruk dette formålet").click()
    routes = console.app.url_map.bind("localhost")
    checked: dict[str, str] = {}
    queue, seen = ["/"], set()
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        try:
            rule = routes.match(urlsplit(path).path, return_rule=True)[0].rule
        except NotFound:
            rule = "(no route) " + path
        answer = page.goto(base + path)
        assert answer is not None and answer.status < 400, (path, answer.status if answer else None)
        if rule not in checked:
            assert_accessible(page)
            checked[rule] = path
        for link in _links(page):
            target = urlsplit(urljoin(base + path, link))
            if f"{target.scheme}://{target.netloc}" == base and "logg-ut" not in target.path:
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    expected = {"/", "/regelsett", "/regelsett/<name>/<version>", "/regelsett/<name>/<version>/prov",
                "/regelsett/<name>/diff", "/regelsett/<name>/utkast", "/revisjon/", "/revisjon/logg",
                "/revisjon/tilgang", "/revisjon/statistikk"}
    assert expected <= set(checked), sorted(set(expected) - set(checked))


def test_the_answers_of_the_forms_pass_axe(page: Any, console: Any) -> None:
    base = console.url
    page.goto(base + "/formaal?neste=/revisjon/")
    page.get_by_label("Formål").fill("kontroll av universell utforming")
    page.get_by_role("button", name="Bruk dette formålet").click()
    page.get_by_label("Regelsett").fill("utskrivningsklar")
    page.get_by_role("button", name="Søk", exact=True).click()
    assert page.locator("a[href^='/revisjon/beslutning/']").count() >= 1
    assert_accessible(page)
    page.locator("a[href^='/revisjon/beslutning/']").first.click()
    assert_accessible(page)
    page.get_by_role("button", name="Spill av beslutningen").click()
    assert "identisk" in page.locator("main").inner_text().lower()
    assert_accessible(page)
    page.goto(base + "/regelsett/utskrivningsklar/2019.1/prov")
    first_case = page.locator("#tilfelle option").nth(1).get_attribute("value")
    page.goto(base + f"/regelsett/utskrivningsklar/2019.1/prov?tilfelle={first_case}")
    page.get_by_role("button", name="Prøv beslutningen").click()
    assert "Hvorfor" in page.locator("main").inner_text()
    assert_accessible(page)
