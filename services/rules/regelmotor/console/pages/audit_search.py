"""/revisjon: the auditor's search for recorded decisions (ListDecisions), a page at a time, and its export as JSON
lines (ExportDecisions). Searches are POSTs: the fødselsnummer goes in the body, never in a URL or a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from flask import Response, render_template, stream_with_context

from regelmotor_api.v1 import audit_pb2

from ..api import console_api
from ..errors import ApiProblem, ExportBrokenOff
from ..person import current_person
from ..purpose import keep_purpose
from .audit_forms import (
    DECISION_FIELDS,
    Form,
    decision_filter,
    empty_form,
    hidden_values,
    page_token,
    place_problem,
    read_form,
    read_with_purpose,
)
from .audit_words import outcome_in_words

log = logging.getLogger("regelmotor.console")

PAGE_SIZE = 25
EXPORT_SECONDS = 600.0  # an export streams the whole search; it may take longer than one page


def _page(form: Form, status: int = 200, answer: dict[str, Any] | None = None) -> tuple[str, int]:
    rows = [{**decision, "utfall_i_ord": outcome_in_words(decision.get("outcome") or {})}
            for decision in (answer or {}).get("decisions", [])]
    return render_template("revisjon_sok.html", skjema=form, treff=rows if answer is not None else None,
                           neste=(answer or {}).get("next_page_token", ""),
                           skjult=hidden_values(form, DECISION_FIELDS)), status


def show_search() -> tuple[str, int]:
    return _page(empty_form(DECISION_FIELDS))


def search() -> tuple[str, int]:
    form = read_form(DECISION_FIELDS)
    wanted = decision_filter(form)
    if form.errors:
        return _page(form, 400)
    api = console_api()
    answer = read_with_purpose(form, api, api.audit.ListDecisions, audit_pb2.ListDecisionsRequest(
        filter=wanted, formaal=form.purpose, page_size=PAGE_SIZE, page_token=page_token()))
    return _page(form, 400) if answer is None else _page(form, answer=answer)


def export() -> Response | tuple[str, int]:
    """The search as JSON lines, streamed as a download; a refused search is shown at its fields instead."""
    form = read_form(DECISION_FIELDS)
    wanted = decision_filter(form)
    if form.errors:
        return _page(form, 400)
    api = console_api()
    lines = api.stream(api.audit.ExportDecisions,
                       audit_pb2.ExportDecisionsRequest(filter=wanted, formaal=form.purpose),
                       current_person().metadata(), timeout=EXPORT_SECONDS)
    try:  # the first line (or the refusal) before the download starts, so a refusal can still be shown as a page
        first = next(lines, None)
    except ApiProblem as problem:
        if place_problem(form, problem):
            return _page(form, 400)
        raise
    keep_purpose(form.purpose)

    def body() -> Iterator[str]:
        if first is None:
            return
        yield first["json_line"] + "\n"
        written = 1
        try:
            for line in lines:
                yield line["json_line"] + "\n"
                written += 1
        except ApiProblem as problem:
            # The status line is sent: the download can only be cut off, which the browser shows as failed. The
            # code and count only: the API's message may echo the filter (a fødselsnummer).
            log.error("export of decisions broken off after %d lines: %s", written, problem.code)
            raise ExportBrokenOff from None

    return Response(stream_with_context(body()), mimetype="application/x-ndjson",
                    headers={"Content-Disposition": 'attachment; filename="beslutninger.jsonl"'})
