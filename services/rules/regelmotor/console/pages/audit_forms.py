"""The auditor's search forms: what was typed, read into the API's filters, and the API's refusals put back at the
form's own fields in Norwegian. Every search is a POST (a fødselsnummer never goes into a URL)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import request
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from regelmotor_api.v1 import audit_pb2

from ..api import ConsoleApi
from ..errors import ApiProblem
from ..formatting import OSLO, norsk_tall
from ..person import current_person
from ..purpose import current_purpose, keep_purpose

MAX_TEXT = 200  # every text field of a search form; the API has its own bounds as well

DECISION_FIELDS = ("fra", "til", "regelsett", "versjon", "utfall", "verdi", "kaller", "fodselsnummer")
ACCESS_FIELDS = ("fra", "til", "leser", "beslutning", "formaal_inneholder", "metode")
STATISTICS_FIELDS = ("fra", "til", "regelsett", "versjon", "utfall")

# The API's field names -> the form's (the API names the field it refuses).
_FORM_FIELD = {
    "filter.recorded_from": "fra", "filter.recorded_to": "til", "filter.ruleset": "regelsett",
    "filter.version": "versjon", "filter.outcome_field": "utfall", "filter.outcome_value": "verdi",
    "filter.caller": "kaller", "filter.national_id": "fodselsnummer", "formaal": "formaal",
    "filter.at_from": "fra", "filter.at_to": "til", "filter.reader": "leser", "filter.decision_id": "beslutning",
    "filter.formaal_contains": "formaal_inneholder", "filter.method": "metode", "outcome_field": "utfall",
}
# The API's reasons (English, for programs) as a person reads them; a reason not here is shown as it came.
_REASONS = (
    ("must be 11 digits", "Fødselsnummeret må ha 11 sifre."),
    ("check digits do not match", "Kontrollsifrene stemmer ikke; sjekk at fødselsnummeret er skrevet riktig."),
    ("date part is not a real date", "De seks første sifrene er ikke en dato; sjekk fødselsnummeret."),
    ("synthetic test numbers", "Syntetiske testnumre kan ikke brukes her."),
    ("required with outcome_field", "Skriv verdien utfallet skal ha."),
    ("must be 3 to 500 characters", "Formålet må være minst 3 tegn."),
    ("required: say why you read", "Skriv hvorfor du slår opp, for eksempel saksnummeret."),
    ("control characters", "Feltet kan ikke ha linjeskift eller tabulatorer."),
    ("at most 400 days", "Perioden kan være høyst 400 dager."),
    ("too many different values", "Utfallet har for mange ulike verdier til å telles per dag; velg et annet "
                                  "utfall eller en kortere periode."),
    ("not a token from this service", "Sidene er utløpt; søk på nytt."),
)


@dataclass
class Form:
    """What was typed into a search form (the purpose too), and the problems found, by the form's field name."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def purpose(self) -> str:
        return self.values.get("formaal", "")


def read_form(names: Iterable[str]) -> Form:
    """The posted fields (stripped), with the purpose; a text over MAX_TEXT characters is an error at its field."""
    values = {name: request.form.get(name, "").strip() for name in (*names, "formaal")}
    form = Form(values)
    for name, text in values.items():
        if len(text) > MAX_TEXT:
            form.errors[name] = f"Feltet kan ha høyst {MAX_TEXT} tegn, ikke {norsk_tall(len(text))}."
    if not values["formaal"]:
        form.errors["formaal"] = "Skriv hvorfor du slår opp, for eksempel saksnummeret."
    return form


def empty_form(names: Iterable[str], **values: str) -> Form:
    """A form not yet sent: the purpose from the session, other fields as given."""
    return Form({**{name: "" for name in names}, **values, "formaal": current_purpose() or ""})


def _day(form: Form, name: str) -> date | None:
    text = form.values.get(name, "")
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        form.errors[name] = "Skriv en dato som 2026-04-16 (år-måned-dag)."
        return None


def _stamp(day: date) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.combine(day, time(0), tzinfo=OSLO))
    return stamp


def period(form: Form) -> tuple[timestamp_pb2.Timestamp | None, timestamp_pb2.Timestamp | None]:
    """The form's `fra` and `til` dates as the times the API filters by: from the start of `fra` to the end of `til`,
    both whole days in Oslo."""
    first, last = _day(form, "fra"), _day(form, "til")
    if first is not None and last is not None and last < first:
        form.errors["til"] = "Til-datoen kan ikke være før fra-datoen."
    return (None if first is None else _stamp(first)), (None if last is None else _stamp(last + timedelta(days=1)))


def _outcome_value(text: str) -> struct_pb2.Value:
    """A typed value as JSON when it is JSON (true, 3, "x"), else as the text itself (rett)."""
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = text
    return json_format.ParseDict(value, struct_pb2.Value())


def decision_filter(form: Form) -> audit_pb2.DecisionFilter:
    """The DecisionFilter a decision search form asks for (date errors added to the form)."""
    start, stop = period(form)
    values = form.values
    made = audit_pb2.DecisionFilter(ruleset=values["regelsett"], version=values["versjon"],
                                    outcome_field=values.get("utfall", ""), caller=values.get("kaller", ""),
                                    national_id=values.get("fodselsnummer", ""))
    if values.get("verdi"):
        made.outcome_value.CopyFrom(_outcome_value(values["verdi"]))
        if not values.get("utfall"):  # the API would not filter on a value of no outcome: say so instead
            form.errors["utfall"] = "Skriv hvilket utfall verdien gjelder, for eksempel utfall."
    if start is not None:
        made.recorded_from.CopyFrom(start)
    if stop is not None:
        made.recorded_to.CopyFrom(stop)
    return made


def access_filter(form: Form) -> audit_pb2.AccessLogFilter:
    """The AccessLogFilter an access-log search form asks for (date errors added to the form)."""
    start, stop = period(form)
    values = form.values
    made = audit_pb2.AccessLogFilter(reader=values["leser"], decision_id=values["beslutning"],
                                     formaal_contains=values["formaal_inneholder"], method=values["metode"])
    if start is not None:
        made.at_from.CopyFrom(start)
    if stop is not None:
        made.at_to.CopyFrom(stop)
    return made


def norwegian_reason(reason: str) -> str:
    for fragment, text in _REASONS:
        if fragment in reason:
            return text
    return f"Tjenesten avviste verdien: {reason}"


def place_problem(form: Form, problem: ApiProblem) -> bool:
    """Put an API refusal at the form's fields; False when it names no field of the form (then it is shown as the
    console's error page)."""
    if problem.code != "INVALID_ARGUMENT":
        return False
    placed = {_FORM_FIELD[name]: norwegian_reason(reason) for name, reason in problem.fields.items()
              if name in _FORM_FIELD and _FORM_FIELD[name] in form.values}
    if not placed and "page_token" in problem.fields:
        placed = {"formaal": norwegian_reason(problem.fields["page_token"])}
    form.errors.update(placed)
    return bool(placed)


def page_token() -> str:
    """The next page's token a «Neste side» form carries (the API refuses one that is not its own)."""
    return request.form.get("side", "")[:500]


def read_with_purpose(form: Form, api: ConsoleApi, method: Callable[..., Message],
                      asked: Message) -> dict[str, Any] | None:
    """The answer to an audit read (`method` of `api.audit`, with the form's purpose in `asked`); the purpose is
    then kept for the next reads. None when the API refused a field of the form: its reason is at that field."""
    try:
        answer = api.call(method, asked, current_person().metadata())
    except ApiProblem as problem:
        if place_problem(form, problem):
            return None
        raise
    keep_purpose(form.purpose)
    return answer


def hidden_values(form: Form, names: Iterable[str]) -> Mapping[str, str]:
    """The fields a "Neste side" or export form carries again, as sent."""
    return {name: form.values.get(name, "") for name in (*names, "formaal")}
