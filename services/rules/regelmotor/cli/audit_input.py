"""What `regelmotor audit` reads from its user: the filters of a search (as the API's DecisionFilter in its JSON
form), the purpose of the read, and a patient's identity number - from a file, a prompt or standard input, never
from the command line, where every user of the machine sees it (`ps`) and the shell history keeps it."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NoReturn

from regelmotor.core.calendar_no import OSLO

# An identity number is 11 digits; a file or a line much longer than that is not one (and is not read whole).
NATIONAL_ID_MAX_CHARS = 64
PURPOSE_VARIABLE = "REGELMOTOR_PURPOSE"


class Unusable(Exception):
    """An argument, file or variable the command cannot use: nothing was sent (exit status 2)."""


def purpose(args: argparse.Namespace) -> str:
    """--purpose, else REGELMOTOR_PURPOSE; empty when neither is given: the service then refuses the read naming
    `formaal` (it alone decides what a purpose must be)."""
    given: str | None = args.purpose
    return given if given is not None else os.environ.get(PURPOSE_VARIABLE, "")


def moment(text: str, option: str, *, end: bool) -> str:
    """A day (Oslo time; an end day counts whole, so the moment is the next midnight) or an ISO 8601 moment with
    its UTC offset, as the RFC 3339 text (UTC) a Timestamp's JSON form is."""
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise Unusable(f"{option}: {text!r} is not a date YYYY-MM-DD") from None
        found = _in_range(lambda: datetime.combine(day + timedelta(days=1) if end else day, time(), OSLO), text,
                          option)
    else:
        try:
            found = datetime.fromisoformat(text)
        except ValueError:
            raise Unusable(f"{option}: {text!r} is neither a date YYYY-MM-DD nor an ISO 8601 time") from None
        if found.tzinfo is None:
            raise Unusable(f"{option}: {text!r} needs a UTC offset (e.g. 2026-04-20T09:30:00+02:00, or Z)")
    return _in_range(lambda: found.astimezone(UTC), text, option).isoformat().replace("+00:00", "Z")


def _in_range(make: Callable[[], datetime], text: str, option: str) -> datetime:
    try:
        return make()
    except OverflowError:
        raise Unusable(f"{option}: {text!r} is outside the times the log can hold (years 1 to 9999)") from None


def outcome(text: str) -> tuple[str, Any]:
    """FIELD=VALUE: the value as JSON when it parses as JSON (true, 42, "text", null), else as the text itself."""
    field, sep, raw = text.partition("=")
    if not sep or not field.strip():
        raise Unusable(f"--outcome: {text!r} is not FIELD=VALUE (e.g. --outcome utfall=rett)")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return field.strip(), value


def _read_limited(stream: Any, source: str) -> str:
    text = str(stream.read(NATIONAL_ID_MAX_CHARS + 1))
    if len(text) > NATIONAL_ID_MAX_CHARS:
        raise Unusable(f"{source}: holds more than an identity number (at most {NATIONAL_ID_MAX_CHARS} characters)")
    return text.strip()


def national_id(args: argparse.Namespace) -> str:
    """The identity number from --national-id-file (a path, or - for standard input) or --national-id-prompt;
    empty when neither is given. Its form is checked by the service (which names `filter.national_id`)."""
    if args.national_id_prompt:
        if not sys.stdin.isatty():
            raise Unusable("--national-id-prompt: needs a terminal; use --national-id-file - to read standard input")
        number = getpass.getpass("Fødselsnummer (vises ikke): ").strip()
        source = "--national-id-prompt"
    elif args.national_id_file == "-":
        if sys.stdin.isatty():  # typed there, the number would show on the screen
            raise Unusable("--national-id-file -: standard input is a terminal, where the number shows as it is "
                           "typed; use --national-id-prompt")
        number = _read_limited(sys.stdin, "--national-id-file -")
        source = "--national-id-file -"
    elif args.national_id_file:
        try:
            with open(args.national_id_file, encoding="utf-8") as handle:
                number = _read_limited(handle, "--national-id-file")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a text file"
            raise Unusable(f"--national-id-file: cannot read {args.national_id_file} ({reason})") from None
        source = "--national-id-file"
    else:
        return ""
    if not number:
        raise Unusable(f"{source}: no identity number was given")
    return number


def decision_filter(args: argparse.Namespace) -> dict[str, Any]:
    """The options as a DecisionFilter in its JSON form (field names as in audit.proto)."""
    chosen: dict[str, Any] = {}
    if args.start is not None:
        chosen["recorded_from"] = moment(args.start, "--from", end=False)
    if args.end is not None:
        chosen["recorded_to"] = moment(args.end, "--to", end=True)
    for name in ("ruleset", "version", "caller"):
        if getattr(args, name):
            chosen[name] = getattr(args, name)
    if args.outcome is not None:
        chosen["outcome_field"], chosen["outcome_value"] = outcome(args.outcome)
    number = national_id(args)
    if number:
        chosen["national_id"] = number
    return chosen


NATIONAL_ID_HELP = ("An identity number is never taken as a command-line argument: every user of this machine "
                    "can read a running command's arguments (ps) and the shell keeps them in its history.")


NOT_AN_ARGUMENT = ("an identity number is never taken on the command line (every user of this machine can read it "
                   "with ps, and the shell history keeps it): give it with --national-id-file PATH, "
                   "--national-id-file - (standard input) or --national-id-prompt")
_IDENTITY_NUMBER = re.compile(r"\d{6}\s?\d{5}")


def hidden_numbers(text: str) -> str:
    """`text` with anything that could be an identity number (11 digits) hidden."""
    return _IDENTITY_NUMBER.sub("<11 digits, not shown>", text)


class OneLineErrors(argparse.ArgumentParser):
    """A parser whose refusal is one line, with any identity number in it hidden."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {hidden_numbers(message)} (see --help)\n")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:  # type: ignore[override]
        """Refuse what is left over here, rather than in the parser above, which would repeat it whole."""
        parsed, left = super().parse_known_args(args, namespace)
        if left:
            self.error(f"unrecognized arguments: {' '.join(left)}")
        return parsed, left


def misplaced(args: argparse.Namespace) -> str | None:
    """Why the arguments cannot be used when an identity number was given as an option."""
    if getattr(args, "national_id_argument", None) is not None:
        return f"--national-id: {NOT_AN_ARGUMENT}"
    return None


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The options of a search (list, export): the API's DecisionFilter."""
    parser.add_argument("--from", dest="start", metavar="WHEN",
                        help="recorded from this day (YYYY-MM-DD, Oslo time) or time (ISO 8601 with offset)")
    parser.add_argument("--to", dest="end", metavar="WHEN",
                        help="recorded up to this day, inclusive (YYYY-MM-DD), or before this time (ISO 8601)")
    parser.add_argument("--ruleset", help="the ruleset's name, e.g. rett-til-helsehjelp")
    parser.add_argument("--version", help="the ruleset version, e.g. 2024.07")
    parser.add_argument("--outcome", metavar="FIELD=VALUE",
                        help="an outcome field and its value (JSON when it parses as JSON, else text), "
                             "e.g. utfall=rett")
    parser.add_argument("--caller", help="the system or person that asked for the decision")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--national-id-file", metavar="PATH",
                       help="a file holding the patient's identity number (fødselsnummer, D- or H-number), or - "
                            "to read it from standard input. " + NATIONAL_ID_HELP)
    given.add_argument("--national-id-prompt", action="store_true",
                       help="ask for the patient's identity number on the terminal (not shown as you type)")
    parser.add_argument("--national-id", dest="national_id_argument", help=argparse.SUPPRESS)  # refused, see misplaced


def access_filter(args: argparse.Namespace) -> dict[str, Any]:
    """The options of `access` as an AccessLogFilter in its JSON form (field names as in audit.proto)."""
    chosen: dict[str, Any] = {}
    if args.start is not None:
        chosen["at_from"] = moment(args.start, "--from", end=False)
    if args.end is not None:
        chosen["at_to"] = moment(args.end, "--to", end=True)
    for option, name in (("reader", "reader"), ("decision", "decision_id"), ("method", "method"),
                         ("purpose_contains", "formaal_contains")):
        if getattr(args, option):
            chosen[name] = getattr(args, option)
    return chosen


def add_access_options(parser: argparse.ArgumentParser) -> None:
    """The options of `access`: the API's AccessLogFilter."""
    parser.add_argument("--from", dest="start", metavar="WHEN",
                        help="read from this day (YYYY-MM-DD, Oslo time) or time (ISO 8601 with offset)")
    parser.add_argument("--to", dest="end", metavar="WHEN",
                        help="read up to this day, inclusive (YYYY-MM-DD), or before this time (ISO 8601)")
    parser.add_argument("--reader", help="who read, exactly as recorded (the token's identity)")
    parser.add_argument("--decision", metavar="DECISION_ID", help="reads of this one decision (show, replay, ...)")
    parser.add_argument("--method", help="reads by this call, e.g. GetDecision, ListDecisions, ExportDecisions")
    parser.add_argument("--purpose-contains", metavar="TEXT",
                        help="reads whose purpose (formål) contains this text, ignoring case")


def add_purpose_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--purpose", "--formaal", dest="purpose", metavar="TEXT",
                        help=f"why you read the log (formål), e.g. \"tilsynssak 2024/118\": required, recorded in "
                             f"the access log ({PURPOSE_VARIABLE})")
