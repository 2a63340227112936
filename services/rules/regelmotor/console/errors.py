"""What the console shows when the API refuses or fails: plain Norwegian, the field named, never a trace."""

from __future__ import annotations

from dataclasses import dataclass, field

from regelmotor.core.errors import RegelmotorError

# gRPC status names -> what a person is told (the API's own message follows, naming the field).
_STATUS_TEXT = {
    "INVALID_ARGUMENT": "Tjenesten avviste det som ble sendt inn",
    "FAILED_PRECONDITION": "Handlingen kan ikke gjøres nå",
    "NOT_FOUND": "Fant ikke det du ba om",
    "ALREADY_EXISTS": "Dette finnes allerede",
    "PERMISSION_DENIED": "Du har ikke tilgang til dette",
    "UNAUTHENTICATED": "Du må logge inn på nytt",
    "RESOURCE_EXHAUSTED": "Tjenesten har for mye å gjøre akkurat nå; prøv igjen om litt",
    "DEADLINE_EXCEEDED": "Tjenesten svarte ikke i tide; prøv igjen",
    "UNAVAILABLE": "Regelmotor-tjenesten svarer ikke; prøv igjen om litt",
}

_HTTP_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 409, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
                "PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401, "RESOURCE_EXHAUSTED": 429,
                "DEADLINE_EXCEEDED": 504, "UNAVAILABLE": 503}


@dataclass
class ApiProblem(RegelmotorError):
    """An API call that did not succeed, as the console shows it."""

    code: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def headline(self) -> str:
        return _STATUS_TEXT.get(self.code, "Noe gikk galt i Regelmotor-tjenesten")

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS.get(self.code, 502)

    @property
    def detail(self) -> str:
        """The API's own words, except for failures on its side, whose text is not for the person."""
        return "" if self.code in ("INTERNAL", "UNKNOWN", "DATA_LOSS") else self.message


class FormProblem(RegelmotorError):
    """Input the console refuses before calling the API (a field left empty, a date that is no date)."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field_name = field_name
        self.reason = reason


class ExportBrokenOff(RegelmotorError):
    """A download the API stopped answering mid-stream: the response is cut off (the browser shows a failed
    download). Carries no text: it ends in the web server's log, and the API's message may name a person."""
