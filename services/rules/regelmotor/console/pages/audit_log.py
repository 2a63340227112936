"""/revisjon/logg: is the decision log intact (VerifyLog)? /revisjon/tilgang: who read what, when and why
(ListAccessLog), searched with a POST form like the decisions."""

from __future__ import annotations

from typing import Any

from flask import render_template

from regelmotor_api.v1 import audit_pb2

from ..api import console_api
from ..person import current_person
from ..purpose import current_purpose
from .audit_forms import (
    ACCESS_FIELDS,
    Form,
    access_filter,
    empty_form,
    hidden_values,
    page_token,
    read_form,
    read_with_purpose,
)
from .audit_words import METHODS, asked_in_words

PAGE_SIZE = 50

# What each kind of damage VerifyLog reports means, for a person.
_DAMAGE = {
    "altered": "Posten er endret etter at den ble skrevet.",
    "removed": "En post er fjernet fra loggen.",
    "inserted": "En post er satt inn i loggen i ettertid.",
    "reordered": "Postene står ikke lenger i den rekkefølgen de ble skrevet.",
    "truncated": "Loggen er kortere enn det siste signerte kontrollpunktet viser: poster er fjernet fra slutten.",
    "rehashed": "Loggen er skrevet om og kjedet på nytt etter det siste signerte kontrollpunktet.",
    "access log altered": "Tilgangsloggen er endret: en rad er fjernet eller endret i ettertid.",
    "cut invalid": "Poster er slettet under et oppbevaringskutt som tjenesten ikke har signert.",
}


def verification() -> str:
    api = console_api()
    answer = api.call(api.audit.VerifyLog, audit_pb2.VerifyLogRequest(formaal=current_purpose() or ""),
                      current_person().metadata())
    problem = answer.get("first_problem")
    damage = _DAMAGE.get(problem["kind"], "Loggen er ikke slik den ble skrevet.") if problem else ""
    return render_template("revisjon_logg.html", svar=answer, problem=problem, skade=damage)


def _page(form: Form, status: int = 200, answer: dict[str, Any] | None = None) -> tuple[str, int]:
    rows = [{**entry, "handling": METHODS.get(entry["method"], entry["method"]),
             "spurt": asked_in_words(entry.get("detail") or {})} for entry in (answer or {}).get("entries", [])]
    return render_template("revisjon_tilgang.html", skjema=form, treff=rows if answer is not None else None,
                           neste=(answer or {}).get("next_page_token", ""), metoder=METHODS,
                           skjult=hidden_values(form, ACCESS_FIELDS)), status


def show_access() -> tuple[str, int]:
    return _page(empty_form(ACCESS_FIELDS))


def search_access() -> tuple[str, int]:
    form = read_form(ACCESS_FIELDS)
    wanted = access_filter(form)
    if form.values["metode"] and form.values["metode"] not in METHODS:
        form.errors["metode"] = "Velg en av handlingene i listen."
    if form.errors:
        return _page(form, 400)
    api = console_api()
    answer = read_with_purpose(form, api, api.audit.ListAccessLog, audit_pb2.ListAccessLogRequest(
        filter=wanted, formaal=form.purpose, page_size=PAGE_SIZE, page_token=page_token()))
    return _page(form, 400) if answer is None else _page(form, answer=answer)
