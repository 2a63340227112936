"""Policy staff's reading of rulesets: every ruleset with its versions on a time line, one version as its
document reads (with its cases run and its history), and what changed between two versions.

Only GET: nothing here changes anything, and no URL holds personal data (names and versions of rulesets)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, render_template, request

from regelmotor.core.document import plain_value
from regelmotor.core.limits import MAX_NAME_CHARS
from regelmotor_api.v1 import ruleset_pb2

from ..api import console_api
from ..errors import ApiProblem
from ..person import current_person
from . import rulesets_diff, rulesets_stored, rulesets_timeline, rulesets_version
from .rulesets_words import action_word, selected_by_words, state_word

blueprint = Blueprint("regelsett", __name__)
blueprint.add_app_template_filter(selected_by_words, "valgt_etter")  # the decision page says it too


def _not_found(text: str) -> ApiProblem:
    return ApiProblem("NOT_FOUND", text)


def _checked_name(name: str) -> str:
    if not 0 < len(name) <= MAX_NAME_CHARS:
        raise _not_found("Det finnes ikke noe regelsett med et så langt navn.")
    return name


def _summary(name: str) -> dict[str, Any]:
    """The ruleset as ListRulesets gives it (its served versions), or a Norwegian 404."""
    api = console_api()
    listed = api.call(api.rulesets.ListRulesets, ruleset_pb2.ListRulesetsRequest(), current_person().metadata())
    found: list[dict[str, Any]] = [s for s in listed["rulesets"] if s["name"] == name]
    if found:
        return found[0]
    known = ", ".join(s["name"] for s in listed["rulesets"])
    raise _not_found(f"Tjenesten har ikke noe regelsett som heter «{name}». Regelsettene er: {known}.")


@blueprint.get("/regelsett")
def oversikt() -> str:
    api = console_api()
    metadata = current_person().metadata()
    listed = api.call(api.rulesets.ListRulesets, ruleset_pb2.ListRulesetsRequest(), metadata)
    today = date.today()
    sets = []
    for summary in listed["rulesets"]:
        history = rulesets_version.history_of(api, metadata, summary["name"])
        periods = rulesets_timeline.spans(history["versions"] if history else summary["versions"])
        sets.append({"name": summary["name"], "selected_by": summary["selected_by"], "periods": periods,
                     "timeline": rulesets_timeline.draw(periods, today), "has_history": history is not None})
    return render_template("regelsett_oversikt.html", sett=sets, reload_problem=listed["reload_problem"],
                           today=today, tilstand=state_word)


@blueprint.get("/regelsett/<name>/<version>")
def versjon(name: str, version: str) -> str:
    _checked_name(name)
    if not 0 < len(version) <= MAX_NAME_CHARS:
        raise _not_found("Det finnes ingen versjon med et så langt navn.")
    api = console_api()
    metadata = current_person().metadata()
    history = rulesets_version.history_of(api, metadata, name)
    stored = next((v for v in history["versions"] if v["version"] == version), None) if history else None
    events = [e for e in history["events"] if e["version"] == version] if history else []
    try:
        answer = api.call(api.rulesets.GetRuleset, ruleset_pb2.GetRulesetRequest(name=name, version=version),
                          metadata)
    except ApiProblem as problem:
        if problem.code != "NOT_FOUND":
            raise
        summary = _summary(name)  # a 404 naming the rulesets, when there is no such ruleset
        versions = ", ".join(v["version"] for v in summary["versions"])
        raise _not_found(f"Regelsettet «{name}» har ingen versjon «{version}». Versjonene er: {versions}."
                         ) from None
    if not answer["served"]:  # stored, not served (proposed or rejected): its text, not parsed here
        return rulesets_stored.page(api, metadata, answer, history["versions"] if history else [], stored, events)
    document = rulesets_version.document_of(answer)
    testing = rulesets_version.run_cases(api, metadata, answer, document)
    served = [v["version"] for v in answer["ruleset"]["versions"]]
    position = served.index(version)
    return render_template("regelsett_versjon.html", name=name, version=version, stored=stored,
                           document=document, testing=testing, events=events,
                           previous=served[position - 1] if position > 0 else None,
                           tilstand=state_word, hendelse=action_word, verdi=plain_value,
                           parameterverdi=rulesets_version.parameter_value)


def _diff_problems(chosen: tuple[str, str], versions: list[str]) -> dict[str, str]:
    problems = {}
    for field, value in zip(("fra", "til"), chosen, strict=True):
        if value not in versions:
            shown = value if len(value) <= 40 else value[:40] + "…"
            problems[field] = (f"Velg en versjon fra listen: regelsettet har ingen versjon «{shown}»." if value
                               else "Velg en versjon.")
    if not problems and chosen[0] == chosen[1]:
        problems["til"] = "Velg en annen versjon enn den du sammenligner med: en versjon er lik seg selv."
    return problems


@blueprint.get("/regelsett/<name>/diff")
def diff(name: str) -> tuple[str, int]:
    summary = _summary(_checked_name(name))
    versions = [v["version"] for v in summary["versions"]]
    defaults = (versions[-2], versions[-1]) if len(versions) > 1 else (versions[0], versions[0])
    chosen = (request.args.get("fra", defaults[0]), request.args.get("til", defaults[1]))
    problems = _diff_problems(chosen, versions) if len(versions) > 1 else {}
    sections = None
    if len(versions) > 1 and not problems:
        api = console_api()
        answer = api.call(api.rulesets.DiffRulesets, ruleset_pb2.DiffRulesetsRequest(
            name=name, version_a=chosen[0], version_b=chosen[1]), current_person().metadata())
        sections = rulesets_diff.sections(answer)
    return render_template("regelsett_diff.html", name=name, versions=summary["versions"], chosen=chosen,
                           feil=problems, sections=sections), 400 if problems else 200
