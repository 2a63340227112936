"""Editing a draft in the browser: a version's source and cases in two text areas, checked (ValidateRuleset,
then TestRuleset with coverage) or proposed (ProposeRuleset); each problem is listed and shown under its line
in a numbered copy of the text, and the person's text stays in the text areas."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from regelmotor_api.v1 import ruleset_pb2

from ..api import console_api
from ..errors import ApiProblem, FormProblem
from ..person import current_person
from .lifecycle_words import case_findings, findings, numbered, refusal

MAX_TEXT_CHARS = 1_000_000  # the API takes a source of at most 1 MiB
MAX_NAME_CHARS = 200


def _bounded_name(name: str) -> str:
    if not 0 < len(name) <= MAX_NAME_CHARS:
        raise FormProblem("name", f"regelsettets navn kan være høyst {MAX_NAME_CHARS} tegn")
    return name


def _form_text(field: str, label: str) -> str:
    text = request.form.get(field, "")
    if len(text) > MAX_TEXT_CHARS:
        raise FormProblem(field, f"{label} kan være høyst {MAX_TEXT_CHARS:,} tegn, ikke {len(text):,}"
                          .replace(",", "\u00a0"))
    return text.replace("\r\n", "\n")  # browsers send CRLF; the lines must be the ones the person sees


def show(name: str) -> str:
    api = console_api()
    version = request.args.get("fra", "")[:MAX_NAME_CHARS]
    answer = api.call(api.rulesets.GetRuleset,
                      ruleset_pb2.GetRulesetRequest(name=_bounded_name(name), version=version),
                      current_person().metadata())
    # `cases` comes with GetRuleset once the API sends it; until then the cases box starts empty.
    return _page(name, answer.get("version", {}).get("version", version), answer.get("source", ""),
                 str(answer.get("cases", "")))


_NOT_THE_PERSONS = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN")  # the service's trouble: its own page


def submit(name: str) -> Response | tuple[str, int] | str:
    source = _form_text("kilde", "Regelsettet")
    cases = _form_text("tilfeller", "Testtilfellene")
    origin = request.form.get("fra", "")[:MAX_NAME_CHARS]
    name = _bounded_name(name)
    try:
        if request.form.get("handling") == "foresla":
            return _propose(name, origin, source, cases)
        return _check(name, origin, source, cases)
    except ApiProblem as problem:
        if problem.code in _NOT_THE_PERSONS:
            raise
        # A refusal of what the person wrote: said above the text areas, which keep their text.
        return _page(name, origin, source, cases, refused=problem), problem.http_status


def _check(name: str, origin: str, source: str, cases: str) -> str:
    api = console_api()
    who = current_person().metadata()
    validated = api.call(api.rulesets.ValidateRuleset, ruleset_pb2.ValidateRulesetRequest(source=source), who)
    tested: dict[str, Any] = {}
    if validated["valid"]:
        tested = api.call(api.rulesets.TestRuleset,
                          ruleset_pb2.TestRulesetRequest(source=source, cases=cases, coverage=True), who)
    return _page(name, origin, source, cases, checked=True, source_diagnostics=validated["diagnostics"],
                 valid=validated["valid"], tested=tested)


def _propose(name: str, origin: str, source: str, cases: str) -> Response | str:
    api = console_api()
    answer = api.call(api.rulesets.ProposeRuleset, ruleset_pb2.ProposeRulesetRequest(source=source, cases=cases),
                      current_person().metadata())
    stored = answer["version"]
    if answer["accepted"]:
        return redirect(url_for("behandling.behandle", name=stored["name"], version=stored["version"],
                                utfall="foreslatt"), code=303)
    return _page(name, origin, source, cases, checked=True, proposing=True,
                 source_diagnostics=answer["diagnostics"], valid=not answer["diagnostics"], tested=answer["test"])


def _page(name: str, origin: str, source: str, cases: str, *, checked: bool = False, proposing: bool = False,
          source_diagnostics: list[dict[str, Any]] | None = None, valid: bool = False,
          tested: dict[str, Any] | None = None, refused: ApiProblem | None = None) -> str:
    in_source = findings(source_diagnostics or [])
    tested = tested or {}
    in_cases = findings(tested.get("diagnostics", [])) + case_findings(tested.get("results", []))
    in_cases.sort(key=lambda f: (f.line, f.column))
    return render_template(
        "behandling_utkast.html", navn=name, fra=origin, kilde=source, tilfeller=cases, sjekket=checked,
        foreslag=proposing, gyldig=valid, test=tested, feil_i_kilde=in_source, feil_i_tilfeller=in_cases,
        kildelinjer=numbered(source, in_source), tilfellelinjer=numbered(cases, in_cases),
        avvist=refused, avvist_tekst=refusal(refused) if refused else "")
