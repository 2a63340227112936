"""/revisjon/statistikk: how many decisions a ruleset gave per day, by the value of one outcome (CountDecisions),
as a chart and a table."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import render_template

from regelmotor_api.v1 import audit_pb2

from ..api import console_api
from ..errors import ApiProblem
from ..formatting import OSLO
from ..person import current_person
from ..purpose import keep_purpose
from . import audit_chart
from .audit_forms import STATISTICS_FIELDS, Form, decision_filter, empty_form, place_problem, read_form

DEFAULT_DAYS = 30
DEFAULT_OUTCOME = "utfall"  # the headline outcome of the bundled rulesets


def _page(form: Form, status: int = 200, answer: dict[str, object] | None = None,
          days: tuple[date, date] | None = None) -> tuple[str, int]:
    chart = table = None
    if answer is not None and days is not None:
        counts = answer.get("counts")
        chart, table = audit_chart.build(counts if isinstance(counts, list) else [], *days)
    return render_template("revisjon_statistikk.html", skjema=form, diagram=chart, tabell=table), status


def show_statistics() -> tuple[str, int]:
    today = datetime.now(OSLO).date()
    return _page(empty_form(STATISTICS_FIELDS, fra=(today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
                            til=today.isoformat(), utfall=DEFAULT_OUTCOME))


def count() -> tuple[str, int]:
    form = read_form(STATISTICS_FIELDS)
    wanted = decision_filter(form)
    wanted.ClearField("outcome_field")  # counted by, not filtered on
    for name, problem in (("regelsett", "Velg regelsettet som skal telles."),
                          ("fra", "Velg den første dagen."), ("til", "Velg den siste dagen.")):
        if not form.values[name] and name not in form.errors:
            form.errors[name] = problem
    if form.errors:
        return _page(form, 400)
    api = console_api()
    try:
        answer = api.call(api.audit.CountDecisions, audit_pb2.CountDecisionsRequest(
            filter=wanted, outcome_field=form.values["utfall"], formaal=form.purpose), current_person().metadata())
    except ApiProblem as problem:
        if place_problem(form, problem):
            return _page(form, 400)
        raise
    keep_purpose(form.purpose)
    days = (date.fromisoformat(form.values["fra"]), date.fromisoformat(form.values["til"]))
    return _page(form, answer=answer, days=days)
