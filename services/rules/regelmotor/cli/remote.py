"""`regelmotor ruleset` commands that ask a running service over its gRPC API (the RulesetService), as policy
staff do from their own machine: `impact` (what a candidate version would change in the logged decisions).

Exit status, as the lifecycle commands' (regelmotor.cli.lifecycle; 1, "the proposal did not pass", does not occur):
0 the report was printed; 2 the arguments or files are unusable or were refused as invalid (INVALID_ARGUMENT:
the field is printed), or the service could not be reached; 3 the service refused or failed the request (the
error is printed: a missing role, an unknown ruleset or version, ...)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

import grpc
from google.protobuf import json_format, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from regelmotor.core.calendar_no import OSLO
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc

EXIT_STATUS = ("exit status: 0 the report was printed; 2 arguments or file unusable or refused as invalid (the "
               "field is printed), or the service unreachable; 3 the service refused the request (its reason is "
               "printed)")
# Refusals of what the command sent, or no answer: exit status 2, as the lifecycle commands' (cli/lifecycle.py).
_NOT_DONE = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
PROGRESS_WIDTH = 30


class Unusable(Exception):
    """An argument or file the command cannot use (exit status 2)."""


def add_impact(actions: Any) -> None:
    """The `ruleset impact` sub-command."""
    p = actions.add_parser("impact", help="what a candidate version would change in the logged decisions "
                                          "(asks a running service)", epilog=EXIT_STATUS)
    candidate = p.add_mutually_exclusive_group(required=True)
    candidate.add_argument("file", nargs="?", help="the candidate version's YAML file")
    candidate.add_argument("--version", help="a version kept in the service's store (e.g. a proposed one), instead "
                                             "of a file")
    p.add_argument("--ruleset", required=True, help="the ruleset whose logged decisions are analysed")
    p.add_argument("--from", dest="start", help="the decisions dated from this day (YYYY-MM-DD, inclusive): the "
                                                "date each was decided for (as_of), which chose its version")
    p.add_argument("--to", dest="end", help="... to this day (YYYY-MM-DD, inclusive)")
    p.add_argument("--recorded-from", help="the decisions logged from this day (YYYY-MM-DD, Oslo time) or moment "
                                           "(ISO 8601 with offset)")
    p.add_argument("--recorded-to", help="... to this day, inclusive (YYYY-MM-DD), or moment, exclusive "
                                         "(ISO 8601 with offset)")
    p.add_argument("--known-at", default="", metavar="MOMENT",
                   help="compare with the rules as known at this moment (ISO 8601 with offset): only decisions "
                        "logged by then, each against what the versions published by then decide")
    p.add_argument("--formaal", required=True, help="why the logged decisions are read (recorded in the access log)")
    p.add_argument("--examples", type=int, default=0, help="examples per outcome field (default 5, at most 50)")
    from .lifecycle import connection_options

    connection_options(p)  # --address, --tls, --ca-file, a token (scope ruleset:author), --json
    p.set_defaults(func=cmd_impact)


def _day(text: str | None, option: str) -> str:
    if text is None:
        return ""
    try:
        day: date | None = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or day.isoformat() != text:
        raise Unusable(f"{option}: {text!r} is not a date YYYY-MM-DD")
    return text


def _window(args: argparse.Namespace) -> apb.DecisionFilter:
    chosen = apb.DecisionFilter()
    if args.recorded_from is not None:
        chosen.recorded_from.CopyFrom(_stamp(_moment(args.recorded_from, end=False)))
    if args.recorded_to is not None:
        chosen.recorded_to.CopyFrom(_stamp(_moment(args.recorded_to, end=True)))
    return chosen


def _moment(text: str, *, end: bool) -> datetime:
    """A day (Oslo time; the end day inclusive) or an ISO 8601 moment with its offset."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) == 10:
        return datetime.combine(day + timedelta(days=1) if end else day, time(), OSLO)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Unusable(f"{'--recorded-to' if end else '--recorded-from'}: {text!r} is neither YYYY-MM-DD nor "
                       "ISO 8601") from None
    if moment.tzinfo is None:
        raise Unusable(f"{'--recorded-to' if end else '--recorded-from'}: {text!r} needs a UTC offset (e.g. +01:00 "
                       "or Z)")
    return moment


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(moment)
    return result


def local_caller() -> str:
    """Who the command says it is to a service without authentication (heard only with tokens off): the user's
    login name, USER."""
    return os.environ.get("USER") or "regelmotor-cli"


def cmd_impact(args: argparse.Namespace) -> int:
    from regelmotor_client import ClientConfigError

    from .lifecycle import service_client

    try:
        message = rpb.AnalyseImpactRequest(
            ruleset=args.ruleset, formaal=args.formaal, max_examples=args.examples, filter=_window(args),
            as_of_from=_day(args.start, "--from"), as_of_to=_day(args.end, "--to"), known_at=args.known_at)
        if args.version is not None:
            message.stored.CopyFrom(rpb.VersionRef(name=args.ruleset, version=args.version))
        else:
            message.source = Path(args.file).read_text(encoding="utf-8")
        client = service_client(args)  # a token only over TLS or to this machine
        metadata = client.call_metadata()
    except ClientConfigError as error:
        print(f"regelmotor: --{error.parameter.replace('_', '-')}: {error.problem}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError, Unusable) as exc:
        print(f"regelmotor: {exc}", file=sys.stderr)
        return 2
    show = sys.stderr.isatty()  # a progress bar on a terminal, never into a pipe or a file
    try:
        with client.channel as channel:
            stub = rpb_grpc.RulesetServiceStub(channel)  # type: ignore[no-untyped-call]
            for item in stub.AnalyseImpact(message, metadata=metadata):
                if item.WhichOneof("item") == "progress" and show:
                    _bar(item.progress, sys.stderr)
                elif item.WhichOneof("item") == "report":
                    if show:
                        sys.stderr.write("\r\033[K")
                    print(json.dumps(json_format.MessageToDict(item.report, preserving_proto_field_name=True),
                                     ensure_ascii=False, indent=2) if args.json else render_report(item.report))
                    return 0
    except grpc.RpcError as error:
        if show:
            sys.stderr.write("\n")
        return _failed(error, args.address)
    print("regelmotor: the service ended the analysis without a report", file=sys.stderr)
    return 3


def _bar(progress: rpb.ImpactProgress, out: TextIO) -> None:
    share = progress.done / progress.total if progress.total else 1.0
    filled = int(share * PROGRESS_WIDTH)
    out.write(f"\r[{'#' * filled}{'.' * (PROGRESS_WIDTH - filled)}] {share:4.0%}  "
              f"{progress.done}/{progress.total} beslutninger")
    out.flush()


def _failed(error: grpc.RpcError, address: str) -> int:
    assert isinstance(error, grpc.Call)
    if error.code() is grpc.StatusCode.UNAVAILABLE and "connect" in (error.details() or "").lower():
        print(f"regelmotor: cannot reach the service at {address}: {error.details()}", file=sys.stderr)
        return 2
    print(f"regelmotor: {error.code().name}: {error.details()}", file=sys.stderr)
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            for violation in bad.field_violations:
                print(f"  {violation.field}: {violation.description}", file=sys.stderr)
    return 2 if error.code() in _NOT_DONE else 3


def _value(value: Any) -> str:
    plain = json_format.MessageToDict(value)
    if isinstance(plain, float) and plain.is_integer():  # a Value holds every number as a double
        plain = int(plain)
    return "–" if plain is None else plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False)


def _number(text: str) -> str:
    return f"{float(text):,.2f}".replace(",", " ").removesuffix(".00") if text else "–"


def render_report(report: rpb.ImpactReport) -> str:
    """The report as readable lines: the changed fields with their cross-table, sums and examples."""
    lines = [f"Konsekvens av {report.ruleset} {report.candidate_version} (sha256 {report.candidate_sha256[:12]}…) "
             f"for {report.analysed} loggførte beslutninger",
             f"  endret: {report.changed}   avvist av kandidaten: {report.refused}   tid: {report.seconds:.1f} s"]
    for example in report.refusals:
        lines.append(f"    avvist {example.decision_id} ({example.as_of}): {example.message}")
    unchanged = []
    for outcome in report.outcomes:
        if not outcome.changed:
            unchanged.append(outcome.field)
            continue
        lines += ["", f"{outcome.field} ({outcome.kind}): {outcome.changed} endret"]
        cells = [(_value(t.before), _value(t.after), t.count) for t in outcome.transitions]
        if cells:
            left = max(len(a) for a, _, _ in cells) + 2
            right = max(len(b) for _, b, _ in cells) + 2
            lines.append(f"  {'før':<{left}}{'etter':<{right}}{'antall':>8}")
            lines += [f"  {a:<{left}}{b:<{right}}{n:>8}" for a, b, n in cells]
        if outcome.sum_before or outcome.sum_after:
            difference = float(outcome.sum_after or 0) - float(outcome.sum_before or 0)
            lines.append(f"  sum før {_number(outcome.sum_before)}, etter {_number(outcome.sum_after)} "
                         f"({'+' if difference >= 0 else '−'}{_number(str(abs(difference)))})")
        for example in outcome.examples:
            rule = f"  (første regel som gir annet: {example.first_rule})" if example.first_rule else ""
            lines.append(f"  f.eks. {example.decision_id} ({example.as_of}): {_value(example.before)} → "
                         f"{_value(example.after)}{rule}")
    if unchanged:
        lines += ["", f"Uendret: {', '.join(unchanged)}"]
    return "\n".join(lines)
