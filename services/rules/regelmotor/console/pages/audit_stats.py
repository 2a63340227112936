"""/revisjon/statistikk: how many decisions a ruleset gave per day, by the value of one outcome (CountDecisions),
as a chart and a table."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import render_template
from markupsafe import Markup

from regelmotor_api.v1 import audit_pb2

from ..api import console_api
from ..charts import BarChart, Series, at_most, chart_legend, chart_svg, chart_table
from ..formatting import OSLO, norsk_dato, norsk_tall
from .audit_forms import STATISTICS_FIELDS, Form, decision_filter, empty_form, read_form, read_with_purpose
from .audit_words import in_words

DEFAULT_DAYS = 30
DEFAULT_OUTCOME = "utfall"  # the headline outcome of the bundled rulesets
MAX_DAYS = 400  # the API's own bound on a period


def per_day(counts: list[dict[str, Any]], first: date, last: date, outcome: str) -> BarChart:
    """CountDecisions' rows (day, value, count) as a stacked bar per day of first to last, a piece per value of
    the outcome, the most frequent first (those past the palette together as «andre verdier»)."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    found: dict[str, dict[str, int]] = {}
    for row in counts:
        words = in_words(row.get("value"))
        found.setdefault(words, {})[row["day"]] = found.get(words, {}).get(row["day"], 0) + int(row["count"])
    order = sorted(found, key=lambda w: (-sum(found[w].values()), w))
    series = [Series(w, tuple(float(found[w].get(d.isoformat(), 0)) for d in days)) for w in order]
    return BarChart(f"Beslutninger per dag fordelt på {outcome}", tuple(norsk_dato(d) for d in days),
                    at_most(series), category_heading="Dag", stacked=True,
                    labels=tuple(f"{d.day}.{d.month}." for d in days), most_categories=MAX_DAYS)


def _page(form: Form, status: int = 200, answer: dict[str, object] | None = None,
          days: tuple[date, date] | None = None) -> tuple[str, int]:
    shown: dict[str, Markup | int] = {}
    if answer is not None and days is not None:
        counts = answer.get("counts")
        chart = per_day(counts if isinstance(counts, list) else [], *days, form.values["utfall"])
        shown = {"diagram": chart_svg(chart, legend=False), "forklaring": chart_legend(chart),
                 "tabell": chart_table(chart, lambda v: norsk_tall(int(v)), sums=True, omit_empty=True),
                 "antall": int(sum(sum(s.values) for s in chart.series))}
    return render_template("revisjon_statistikk.html", skjema=form, **shown), status


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
    answer = read_with_purpose(form, api, api.audit.CountDecisions, audit_pb2.CountDecisionsRequest(
        filter=wanted, outcome_field=form.values["utfall"], formaal=form.purpose))
    if answer is None:
        return _page(form, 400)
    days = (date.fromisoformat(form.values["fra"]), date.fromisoformat(form.values["til"]))
    return _page(form, answer=answer, days=days)
