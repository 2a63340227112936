"""Prøv en beslutning: the facts of one ruleset version as a form made from its input schema, evaluated on that
very version (Evaluate with version and as_of, full explanation), the decision shown with its explanation tree.
A refusal from the API is shown at the field it names, with what was typed kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, render_template, request
from google.protobuf import struct_pb2

from regelmotor.core.cases import Case, parse_cases
from regelmotor.core.errors import RulesetInvalid
from regelmotor_api.v1 import decision_pb2, ruleset_pb2

from ..api import console_api
from ..errors import ApiProblem
from ..formatting import OSLO
from ..money import kroner_outcomes
from ..person import current_person
from .fact_form import (
    FactField,
    all_names,
    described_by,
    field_of_violation,
    fields_from_schema,
    read_facts,
    typed_from_facts,
)

blueprint = Blueprint("prov", __name__)

MAX_NAME_CHARS = 200  # a ruleset's name or version in the path: the API's own bound
AS_OF = "as_of"
MAX_AS_OF_CHARS = 32  # a date is 10; a longer text is refused here, not echoed back whole
CASE = "tilfelle"  # the query parameter naming a test case to fill the form from
MAX_CASE_CHARS = 200
AS_OF_FIELD = FactField(name=AS_OF, label="Vurderingsdato", kind="date", required=True, form_name=AS_OF,
                        help="Datoen beslutningen gjelder for. Til vanlig i dag.")


@blueprint.app_template_filter("beskrevet_av")
def _described_by(field: FactField, problem: str | None) -> str:
    return described_by(field, problem)


def _ruleset(name: str, version: str) -> dict[str, Any]:
    if len(name) > MAX_NAME_CHARS or len(version) > MAX_NAME_CHARS:
        abort(404)
    api = console_api()
    return api.call(api.rulesets.GetRuleset, ruleset_pb2.GetRulesetRequest(name=name, version=version),
                    current_person().metadata())


def _problem_links(problems: dict[str, str], fields: list[FactField]) -> list[tuple[str, str, str]]:
    """(label, element id, reason) for the summary at the top; an id "" for a problem with no field."""
    labels = {f.name: (f.label, f.element_id) for f in _flat(fields)}
    labels[AS_OF] = (AS_OF_FIELD.label, AS_OF_FIELD.element_id)
    return [(*labels.get(name, (name or "Forespørselen", "")), reason) for name, reason in problems.items()]


def _flat(fields: list[FactField]) -> list[FactField]:
    return [leaf for f in fields for leaf in (_flat(list(f.children)) if f.children else [f])]


def bundled_cases(ruleset: dict[str, Any]) -> list[Case]:
    """The version's own test cases (GetRuleset's `cases`, YAML read by the core's safe reader); none when it has
    none or they cannot be read (the version page says why)."""
    try:
        return parse_cases(str(ruleset.get("cases") or ""), "cases") if ruleset.get("cases") else []
    except RulesetInvalid:
        return []


def _page(ruleset: dict[str, Any], fields: list[FactField], **shown: Any) -> str:
    problems: dict[str, str] = shown.pop("problems", {})
    shown.setdefault("tilfelle", "")
    shown.setdefault("tilfelle_feil", "")
    return render_template("prov_skjema.html", tilfeller=[case.name for case in bundled_cases(ruleset)],
                           navn=ruleset["ruleset"]["name"],
                           versjon=ruleset["version"]["version"], tittel=ruleset["version"]["title"], felter=fields,
                           problemer=problems, problemlenker=_problem_links(problems, fields),
                           kroner=kroner_outcomes(ruleset.get("outcome_schema") or {}), as_of_felt=AS_OF_FIELD, **shown)


def _today() -> str:
    return datetime.now(OSLO).date().isoformat()


@blueprint.get("/regelsett/<name>/<version>/prov")
def form(name: str, version: str) -> str:
    """The empty form; with `?tilfelle=<name>`, filled from that test case of the version (made-up facts, so
    its name may stand in a URL)."""
    ruleset = _ruleset(name, version)
    fields = fields_from_schema(ruleset.get("input_schema") or {})
    wanted = request.args.get(CASE, "")[:MAX_CASE_CHARS]
    if not wanted:
        return _page(ruleset, fields, skrevet={AS_OF: _today()}, beslutning=None, problem=None)
    chosen = [case for case in bundled_cases(ruleset) if case.name == wanted]
    if not chosen:
        return _page(ruleset, fields, skrevet={AS_OF: _today()}, beslutning=None, problem=None, tilfelle=wanted,
                     tilfelle_feil=f"Versjonen har ikke noe testtilfelle som heter «{wanted}». Velg et fra listen.")
    typed = typed_from_facts(fields, chosen[0].facts)
    return _page(ruleset, fields, skrevet={**typed, AS_OF: chosen[0].as_of.isoformat()}, beslutning=None,
                 problem=None, tilfelle=wanted)


def _api_problems(problem: ApiProblem, fields: list[FactField]) -> dict[str, str]:
    """The API's field violations keyed by the form field they are about ("" for the rest)."""
    names = all_names(fields) | {AS_OF}
    problems: dict[str, str] = {}
    for api_field, reason in problem.fields.items():
        name, item = field_of_violation(api_field, names)
        key = name if name is not None else ""
        text = item + reason if name is not None else f"{api_field}: {reason}"
        problems[key] = f"{problems[key]} {text}" if key in problems else text
    return problems


@blueprint.post("/regelsett/<name>/<version>/prov")
def evaluate(name: str, version: str) -> tuple[str, int] | str:
    ruleset = _ruleset(name, version)
    fields = fields_from_schema(ruleset.get("input_schema") or {})
    filled = read_facts(fields, request.form)
    as_of = request.form.get(AS_OF, "").strip()  # the API names a date that is no date (field as_of)
    if len(as_of) > MAX_AS_OF_CHARS:
        filled.problems[AS_OF] = "Skriv vurderingsdatoen som en dato, for eksempel 2026-04-16."
        as_of = as_of[:MAX_AS_OF_CHARS]
    kept = {"skrevet": {**filled.typed, AS_OF: as_of}}
    if filled.problems:
        return _page(ruleset, fields, problems=filled.problems, beslutning=None, problem=None, **kept), 400
    facts = struct_pb2.Struct()
    facts.update(filled.facts)
    asked = decision_pb2.EvaluateRequest(ruleset=name, version=version, as_of=as_of,
                                         facts=facts, explanation=decision_pb2.EXPLANATION_LEVEL_FULL)
    api = console_api()
    try:
        decision = api.call(api.decisions.Evaluate, asked, current_person().metadata())
    except ApiProblem as problem:
        return _page(ruleset, fields, problems=_api_problems(problem, fields), beslutning=None, problem=problem,
                     **kept), problem.http_status
    return _page(ruleset, fields, beslutning=decision, problem=None, **kept)
