"""Reviewing a proposed version: who proposed it and when, its sha256, what it would have changed in the logged
decisions (AnalyseImpact, read with the person's purpose), and the decision: approve (naming the sha256 seen, and
each hjemmel not verified) or reject (with a reason)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from regelmotor_api.v1 import ruleset_pb2

from ..api import console_api
from ..charts import BarChart, Series, chart_svg, chart_table
from ..errors import ApiProblem
from ..formatting import kroner, norsk_tall
from ..money import kroner_outcomes
from ..person import current_person
from ..purpose import current_purpose
from . import rulesets_stored
from .lifecycle_draft import MAX_NAME_CHARS
from .lifecycle_words import refusal

MAX_REASON_CHARS = 2000  # the API's bound on a rejection's reason
EXAMPLES = 5
IMPACT_SECONDS = 120.0  # reading a large log again takes longer than one ordinary call


# One outcome field of the impact report as the page shows it: field, changed, table and chart (Markup; empty for
# amounts), sum_before, sum_after, sum_change (formatted; empty for values that are not numbers), examples.
Outcome = dict[str, Any]


def _shown(value: Any) -> str:
    if value is True:
        return "ja"
    if value is False:
        return "nei"
    if value is None:
        return "(ingen verdi)"
    if isinstance(value, list):  # a list outcome (mangler): its values as a person writes them
        return ", ".join(_shown(v) for v in value) or "(tom liste)"
    return str(value)


def _cross_table(field: str, transitions: list[dict[str, Any]]) -> BarChart:
    """Old values down, new values across, the number of decisions in each cell."""
    before = list(dict.fromkeys(_shown(t.get("before")) for t in transitions))
    after = list(dict.fromkeys(_shown(t.get("after")) for t in transitions))
    counts = {(_shown(t.get("before")), _shown(t.get("after"))): int(t["count"]) for t in transitions}
    series = tuple(Series(f"etter: {new}", tuple(float(counts.get((old, new), 0)) for old in before))
                   for new in after)
    return BarChart(f"«{field}» før og etter: antall beslutninger (rader: før, kolonner: etter)", tuple(before),
                    series, category_heading="Før")


def _kroner_fields(name: str) -> frozenset[str]:
    """The outcomes the ruleset's served version describes as kroner (money.py's one rule). A proposed version's
    schema is not read outside the service's sandbox, so the version in force speaks for both sides."""
    api = console_api()
    try:
        served = api.call(api.rulesets.GetRuleset, ruleset_pb2.GetRulesetRequest(name=name),
                          current_person().metadata())
    except ApiProblem:  # no version in force (a first proposal): the amounts are shown as plain numbers
        return frozenset()
    return kroner_outcomes(served.get("outcome_schema") or {})


def _amount(field: str, value: str | Decimal, in_kroner: frozenset[str]) -> str:
    if value == "":
        return ""
    return kroner(value) if field in in_kroner else norsk_tall(value)


def _change(before: str, after: str) -> Decimal | str:
    try:
        return Decimal(after) - Decimal(before)
    except InvalidOperation:  # a sum the API left empty: nothing to subtract
        return ""


def _value(field: str, value: Any, in_kroner: frozenset[str]) -> str:
    """An example's value: a number as a Norwegian reads it (JSON gives 17235.0 for 17 235), else as `_shown`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = Decimal(int(value)) if float(value).is_integer() else Decimal(str(value))
        return _amount(field, number, in_kroner)
    return _shown(value)


def _outcome(report: dict[str, Any], in_kroner: frozenset[str]) -> Outcome:
    field = report["field"]
    table = chart = ""
    if report["transitions"]:
        crossed = _cross_table(field, report["transitions"])
        table, chart = chart_table(crossed, lambda v: norsk_tall(int(v))), chart_svg(crossed)
    examples = [{"decision_id": e["decision_id"], "as_of": e["as_of"],
                 "before": _value(field, e.get("before"), in_kroner),
                 "after": _value(field, e.get("after"), in_kroner), "first_rule": e["first_rule"]}
                for e in report["examples"][:EXAMPLES]]
    before, after = report["sum_before"], report["sum_after"]
    change = _change(before, after)
    shown_change = _amount(field, change, in_kroner)
    if isinstance(change, Decimal) and change > 0:
        shown_change = "+" + shown_change
    return {"field": field, "changed": int(report["changed"]), "table": table, "chart": chart,
            "sum_before": _amount(field, before, in_kroner), "sum_after": _amount(field, after, in_kroner),
            "sum_change": shown_change,
            "examples": examples}


def _window() -> dict[str, str]:
    """The days of the decisions to analyse, as the person chose them (YYYY-MM-DD; the API checks them)."""
    return {"fra_dato": request.args.get("fra_dato", "")[:10], "til_dato": request.args.get("til_dato", "")[:10]}


def _impact(name: str, version: str, purpose: str) -> tuple[dict[str, Any] | None, list[Outcome], str]:
    """The report and its outcomes, or why there is none (in plain words)."""
    api = console_api()
    window = _window()
    asked = ruleset_pb2.AnalyseImpactRequest(stored=ruleset_pb2.VersionRef(name=name, version=version), ruleset=name,
                                             formaal=purpose, max_examples=EXAMPLES, as_of_from=window["fra_dato"],
                                             as_of_to=window["til_dato"])
    try:
        answers = list(api.stream(api.rulesets.AnalyseImpact, asked, current_person().metadata(),
                                  timeout=max(api.timeout, IMPACT_SECONDS)))
    except ApiProblem as problem:
        words = refusal(problem)
        return None, [], f"{words} {problem.detail}".strip()
    reports = [a["report"] for a in answers if a.get("report")]
    if not reports:
        return None, [], "Tjenesten svarte uten rapport."
    report = reports[-1]
    in_kroner = _kroner_fields(name)
    return report, [_outcome(o, in_kroner) for o in report["outcomes"]], ""


def _named(name: str, version: str) -> tuple[str, str]:
    if not 0 < len(name) <= MAX_NAME_CHARS or not 0 < len(version) <= MAX_NAME_CHARS:
        raise ApiProblem("INVALID_ARGUMENT", f"navn og versjon kan være høyst {MAX_NAME_CHARS} tegn")
    return name, version


def _page(name: str, version: str, *, refused: ApiProblem | None = None, errors: dict[str, str] | None = None,
          reason: str = "", outcome: str = "") -> str:
    api = console_api()
    history = api.call(api.rulesets.GetRulesetHistory, ruleset_pb2.GetRulesetHistoryRequest(name=name),
                       current_person().metadata())
    stored = next((v for v in history["versions"] if v["version"] == version), None)
    if stored is None:
        raise ApiProblem("NOT_FOUND", f"Regelsettet {name} har ingen versjon {version} i lageret.",
                         {"version": "finnes ikke"}, "NO_SUCH_VERSION")
    proposal = next((e for e in reversed(history["events"])
                     if e["version"] == version and e["action"] == "proposed"), None)
    purpose = current_purpose()
    report: dict[str, Any] | None = None
    outcomes: list[Outcome] = []
    impact_problem = ""
    if purpose is not None and stored["state"] == "proposed":
        report, outcomes, impact_problem = _impact(name, version, purpose)
    events = [e for e in history["events"] if e["version"] == version]
    # The text under review exactly as stored, and what it changes (both read by the service, in its sandbox).
    content = api.call(api.rulesets.GetRuleset, ruleset_pb2.GetRulesetRequest(name=name, version=version),
                       current_person().metadata())
    comparison = rulesets_stored.compare(api, current_person().metadata(), history["versions"], content,
                                         request.args.get("mot", "")[:MAX_NAME_CHARS])
    return render_template(
        "behandling_behandle.html", navn=name, versjon=stored, forslag=proposal, formaal=purpose, hendelser=events,
        vindu=_window(),
        rapport=report, utfall_felt=outcomes, rapportproblem=impact_problem, avvist=refused,
        avvist_tekst=refusal(refused) if refused else "", feil=errors or {}, grunn=reason, utfall=outcome,
        her=url_for("behandling.behandle", name=name, version=version), innhold=content, sammenligning=comparison,
        testing=rulesets_stored.run_stored_cases(api, current_person().metadata(), content))


def show(name: str, version: str) -> str:
    name, version = _named(name, version)
    return _page(name, version, outcome=request.args.get("utfall", "")[:20])


def _refused_page(name: str, version: str, problem: ApiProblem, reason: str = "") -> tuple[str, int]:
    if problem.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN"):
        raise problem
    return _page(name, version, refused=problem, reason=reason), problem.http_status


def approve(name: str, version: str) -> Response | tuple[str, int]:
    name, version = _named(name, version)
    sha256 = request.form.get("sha256", "")[:64]
    if request.form.get("bekreft") != "ja":
        errors = {"bekreft": "Kryss av for at du har sett gjennom versjonen med denne sha256 før du godkjenner."}
        return _page(name, version, errors=errors), 400
    acknowledged = [h[:MAX_NAME_CHARS] for h in request.form.getlist("kvitter")][:100]
    api = console_api()
    try:
        api.call(api.rulesets.ApproveRuleset,
                 ruleset_pb2.ApproveRulesetRequest(name=name, version=version, sha256=sha256,
                                                   acknowledge_unverified=acknowledged),
                 current_person().metadata())
    except ApiProblem as problem:
        return _refused_page(name, version, problem)
    return redirect(url_for("behandling.behandle", name=name, version=version, utfall="godkjent"), code=303)


def reject(name: str, version: str) -> Response | tuple[str, int]:
    name, version = _named(name, version)
    reason = request.form.get("grunn", "").strip()
    problem_text = ""
    if not reason:
        problem_text = "Skriv hvorfor du avviser forslaget. Forfatteren ser begrunnelsen i historikken."
    elif len(reason) > MAX_REASON_CHARS:
        problem_text = f"Begrunnelsen kan være høyst {MAX_REASON_CHARS} tegn, ikke {len(reason)}."
    if problem_text:
        return _page(name, version, errors={"grunn": problem_text}, reason=reason), 400
    api = console_api()
    try:
        api.call(api.rulesets.RejectRuleset,
                 ruleset_pb2.RejectRulesetRequest(name=name, version=version, reason=reason),
                 current_person().metadata())
    except ApiProblem as problem:
        return _refused_page(name, version, problem, reason)
    return redirect(url_for("behandling.behandle", name=name, version=version, utfall="avvist"), code=303)
