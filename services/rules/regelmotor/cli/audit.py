"""`regelmotor audit list | show | replay | verify | export | access`: an auditor's reads of the decision log over the
gRPC API (the AuditService), as the person the token names, each with its purpose (formål), which the service
records in its access log before it answers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import grpc
import yaml
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc_status import rpc_status

from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc

from .audit_input import (
    OneLineErrors,
    Unusable,
    access_filter,
    add_access_options,
    add_filter_options,
    add_purpose_option,
    decision_filter,
    misplaced,
    purpose,
)
from .audit_output import (
    ACCESS_COLUMNS,
    COLUMNS,
    access_rows,
    plain,
    replay_text,
    show_text,
    table,
    table_rows,
    verify_text,
)

EXIT_OK, EXIT_FINDING, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_STATUS = """exit status:
  0  done (the chain is whole, the replay is identical)
  1  a finding: the replay differs from the record, or the chain is broken (the first problem is printed)
  2  an option, file or variable cannot be used (it is named); nothing was sent
  3  the service refused the read: its code and the field it names (e.g. INVALID_ARGUMENT formaal: a missing
     purpose, PERMISSION_DENIED: the token lacks the audit role, NOT_FOUND: no such decision)
  4  the service could not be reached, or did not answer in time
130  interrupted (Ctrl-C)
Errors are one line on standard error; --json output on standard output is never mixed with them."""

# How long a read may take before the service counts as not answering; checking the whole chain reads every record.
READ_SECONDS = 120.0
VERIFY_SECONDS = 3600.0
PAGE_MAX = 500
DEFAULT_LIMIT = 50

Metadata = list[tuple[str, str]]
Work = Callable[[grpc.Channel, Metadata], int]


def as_json(message: Message) -> dict[str, Any]:
    """A message in its JSON form, every field present (a default too), names as in the .proto."""
    found: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True,
                                                      always_print_fields_with_no_presence=True)
    return found


def _say(text: str) -> None:
    print(f"regelmotor: {' '.join(text.split())}", file=sys.stderr)


def _refused(error: grpc.RpcError, address: str) -> int:
    """The service's refusal (or no answer) as one line; the exit status it means."""
    from regelmotor_client import decision_error

    assert isinstance(error, grpc.Call)
    code = error.code()
    answered = rpc_status.from_call(error) is not None  # a refusal carries the service's status; no answer does not
    if code is grpc.StatusCode.UNAVAILABLE and not answered:
        _say(f"cannot reach the service at {address} (is it running? give --address or REGELMOTOR_ADDRESS)")
        return EXIT_UNREACHABLE
    if code is grpc.StatusCode.DEADLINE_EXCEEDED and not answered:
        _say(f"the service at {address} did not answer in time")
        return EXIT_UNREACHABLE
    refusal = decision_error(error)
    fields = "; ".join(f"{name}: {reason}" for name, reason in refusal.field_violations.items())
    reason = f" {refusal.reason}" if refusal.reason else ""
    hint = " (give it with --purpose TEXT or REGELMOTOR_PURPOSE)" if "formaal" in refusal.field_violations else ""
    _say(f"the service refused: {refusal.code}{reason}: {fields or refusal.message}{hint}")
    return EXIT_REFUSED


def _run(args: argparse.Namespace, work: Work) -> int:
    """Connect as the options say and do the work; every failure becomes one line and an exit status."""
    from regelmotor_client import ClientConfigError

    from .lifecycle import service_client

    refused = misplaced(args)
    if refused is not None:
        _say(refused)
        return EXIT_USAGE
    try:
        client = service_client(args)  # a token only over TLS or to this machine
        with client.channel as channel:
            return work(channel, client.call_metadata())
    except ClientConfigError as error:
        _say(f"--{error.parameter.replace('_', '-')}: {error.problem}")
        return EXIT_USAGE
    except (Unusable, json_format.ParseError) as error:
        _say(str(error))
        return EXIT_USAGE
    except grpc.RpcError as error:
        return _refused(error, args.address)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`| head`): what it wanted was written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _filter(args: argparse.Namespace) -> apb.DecisionFilter:
    return json_format.ParseDict(decision_filter(args), apb.DecisionFilter())


def _audit(channel: grpc.Channel) -> apb_grpc.AuditServiceStub:
    return apb_grpc.AuditServiceStub(channel)  # type: ignore[no-untyped-call]


def _headline_field(channel: grpc.Channel, metadata: Metadata, ruleset: str, version: str) -> str | None:
    """The outcome a ruleset version names as its `headline` (from its source, if the token may read rulesets)."""
    stub = rpb_grpc.RulesetServiceStub(channel)  # type: ignore[no-untyped-call]
    try:
        answer = stub.GetRuleset(rpb.GetRulesetRequest(name=ruleset, version=version), metadata=metadata,
                                 timeout=READ_SECONDS)
        source = yaml.safe_load(answer.source)
    except (grpc.RpcError, yaml.YAMLError):
        return None  # then the table shows every outcome field
    field = source.get("headline") if isinstance(source, dict) else None
    return field if isinstance(field, str) else None


def _headlines(channel: grpc.Channel, metadata: Metadata, decisions: list[dict[str, Any]]) -> dict[str, str | None]:
    """Each listed decision's headline outcome field, asked once per ruleset version."""
    fields: dict[tuple[str, str], str | None] = {}
    for decision in decisions:
        key = (decision.get("ruleset", ""), decision.get("version", ""))
        if key not in fields:
            fields[key] = _headline_field(channel, metadata, *key)
    return {d["decision_id"]: fields[(d.get("ruleset", ""), d.get("version", ""))] for d in decisions}


def _pages(call: Callable[..., Any], request: Any, items: str, limit: int, metadata: Metadata,
           ) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """A paged listing's `items` a page at a time, up to `limit` (0: all); with each page, whether more remain."""
    remaining = limit if limit > 0 else None
    while True:
        request.page_size = PAGE_MAX if remaining is None else min(PAGE_MAX, remaining)
        page = call(request, metadata=metadata, timeout=READ_SECONDS)
        found = [plain(json_format.MessageToDict(item, preserving_proto_field_name=True))
                 for item in getattr(page, items)]
        if remaining is not None:
            remaining -= len(found)
        more = bool(page.next_page_token)
        if not more or remaining == 0:
            yield found, more
            return
        yield found, False
        request.page_token = page.next_page_token


def _listing(args: argparse.Namespace, pages: Iterator[tuple[list[dict[str, Any]], bool]],
             ) -> tuple[list[dict[str, Any]], bool]:
    """Every page's items (with --json printed as JSON lines, a page as it comes), and whether more remain."""
    shown: list[dict[str, Any]] = []
    more = False
    for page, more_after in pages:
        more = more_after
        if args.json:
            for item in page:
                print(json.dumps(item, ensure_ascii=False))
        shown += page
    return shown, more


def _counted(count: int, noun: str, more: bool, limit: int) -> str:
    return f"\n{count} {noun}" + (f"; flere finnes (--limit {limit}: vis flere med --limit N, alle med --limit 0)"
                                  if more else "")


def _limit_refused(args: argparse.Namespace) -> bool:
    if args.limit >= 0:
        return False
    _say("--limit: must be 0 (all) or more")
    return True


def cmd_list(args: argparse.Namespace) -> int:
    if _limit_refused(args):
        return EXIT_USAGE

    def work(channel: grpc.Channel, metadata: Metadata) -> int:
        request = apb.ListDecisionsRequest(filter=_filter(args), formaal=purpose(args))
        shown, more = _listing(args, _pages(_audit(channel).ListDecisions, request, "decisions", args.limit,
                                            metadata))
        if not args.json:
            headlines = _headlines(channel, metadata, shown)
            print(table(COLUMNS, table_rows(shown, headlines)) if shown else "Ingen beslutninger passer til søket.")
            print(_counted(len(shown), "beslutning(er)", more, args.limit))
        return EXIT_OK

    return _run(args, work)


def cmd_access(args: argparse.Namespace) -> int:
    if _limit_refused(args):
        return EXIT_USAGE

    def work(channel: grpc.Channel, metadata: Metadata) -> int:
        request = apb.ListAccessLogRequest(filter=json_format.ParseDict(access_filter(args), apb.AccessLogFilter()),
                                           formaal=purpose(args))
        shown, more = _listing(args, _pages(_audit(channel).ListAccessLog, request, "entries", args.limit, metadata))
        if not args.json:
            print(table(ACCESS_COLUMNS, access_rows(shown)) if shown else "Ingen oppslag passer til søket.")
            print(_counted(len(shown), "oppslag", more, args.limit))
        return EXIT_OK

    return _run(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    def work(channel: grpc.Channel, metadata: Metadata) -> int:
        stub = _audit(channel)
        answer = stub.GetDecision(apb.GetDecisionRequest(decision_id=args.decision_id, formaal=purpose(args)),
                                  metadata=metadata, timeout=READ_SECONDS)
        found = as_json(answer)
        print(json.dumps(plain(found), ensure_ascii=False, indent=2) if args.json else show_text(found))
        return EXIT_OK

    return _run(args, work)


def cmd_replay(args: argparse.Namespace) -> int:
    def work(channel: grpc.Channel, metadata: Metadata) -> int:
        stub = _audit(channel)
        answer = stub.ReplayDecision(apb.ReplayDecisionRequest(decision_id=args.decision_id, formaal=purpose(args)),
                                     metadata=metadata, timeout=READ_SECONDS)
        found = as_json(answer)
        print(json.dumps(plain(found), ensure_ascii=False, indent=2) if args.json else replay_text(found))
        return EXIT_OK if answer.identical else EXIT_FINDING

    return _run(args, work)


def cmd_verify(args: argparse.Namespace) -> int:
    def work(channel: grpc.Channel, metadata: Metadata) -> int:
        stub = _audit(channel)
        # The service answers once, at the end, so a terminal gets a line saying what goes on, cleared after.
        waiting = sys.stderr.isatty()
        if waiting:
            sys.stderr.write("kontrollerer hele kjeden …")
            sys.stderr.flush()
        try:
            answer = stub.VerifyLog(apb.VerifyLogRequest(formaal=purpose(args)), metadata=metadata,
                                    timeout=VERIFY_SECONDS)
        finally:
            if waiting:
                sys.stderr.write("\r\033[K")
        found = as_json(answer)
        if not answer.HasField("checkpoint"):
            found.pop("checkpoint", None)
        print(json.dumps(found, ensure_ascii=False, indent=2) if args.json else verify_text(found))
        return EXIT_OK if answer.ok else EXIT_FINDING

    return _run(args, work)


def _open_output(path: str | None) -> TextIO:
    """The export's file, readable by its owner only (it holds health data), or standard output."""
    if path is None:
        return sys.stdout
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise Unusable(f"--output: cannot write {path} ({exc.strerror or exc})") from None
    return open(descriptor, "w", encoding="utf-8")  # closed by the caller


def _progress(args: argparse.Namespace) -> Any:
    """A counting bar on standard error, only when that is a terminal and the lines do not go to it as well."""
    from tqdm import tqdm

    shown = sys.stderr.isatty() and (args.output is not None or not sys.stdout.isatty())
    # A terminal that has not told its size (0 by 0) would get no bar at all: then 80 by 24.
    size = os.get_terminal_size(sys.stderr.fileno()) if shown else os.terminal_size((80, 24))
    return tqdm(desc="eksporterer", unit=" beslutninger", file=sys.stderr, disable=not shown, leave=shown,
                ncols=size.columns or 80, nrows=size.lines or 24)


def cmd_export(args: argparse.Namespace) -> int:
    def work(channel: grpc.Channel, metadata: Metadata) -> int:
        stub = _audit(channel)
        request = apb.ExportDecisionsRequest(filter=_filter(args), formaal=purpose(args))
        out = _open_output(args.output)
        count = 0
        try:
            with _progress(args) as bar:
                for item in stub.ExportDecisions(request, metadata=metadata):
                    out.write(item.json_line.rstrip("\n") + "\n")
                    count += 1
                    bar.update()
        except BaseException:
            if args.output is not None:  # half an export would read as all there is
                out.close()
                os.unlink(args.output)
            raise
        if args.output is None:
            out.flush()
            return EXIT_OK
        out.close()
        print(json.dumps({"exported": count, "output": args.output}) if args.json
              else f"eksportert: {count} beslutning(er) til {args.output}")
        return EXIT_OK

    return _run(args, work)


def _common(parser: argparse.ArgumentParser) -> None:
    from .lifecycle import connection_options

    add_purpose_option(parser)
    connection_options(parser)  # --address, --tls, --ca-file, a token (the audit role), --json


def add_audit(sub: Any) -> None:
    """`regelmotor audit` and its sub-commands."""
    formatter = argparse.RawDescriptionHelpFormatter
    audit = sub.add_parser("audit", help="find, read, replay and verify recorded decisions (asks a running service)",
                           description=__doc__, epilog=EXIT_STATUS, formatter_class=formatter)
    actions = audit.add_subparsers(dest="action", required=True, parser_class=OneLineErrors)
    p = actions.add_parser("list", help="the recorded decisions that match, newest first", epilog=EXIT_STATUS,
                           formatter_class=formatter, description="A table of the matching decisions; with --json, "
                           "one JSON object per line.")
    add_filter_options(p)
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                   help=f"show at most this many (default {DEFAULT_LIMIT}; 0: all, fetched a page at a time)")
    _common(p)
    p.set_defaults(func=cmd_list)
    p = actions.add_parser("show", help="one decision: where it came from, its facts and its explanation tree",
                           epilog=EXIT_STATUS, formatter_class=formatter)
    p.add_argument("decision_id")
    _common(p)
    p.set_defaults(func=cmd_show)
    p = actions.add_parser("replay", help="evaluate a decision's facts again with its ruleset version and compare "
                                          "(exit 1 when it differs)", epilog=EXIT_STATUS, formatter_class=formatter)
    p.add_argument("decision_id")
    _common(p)
    p.set_defaults(func=cmd_replay)
    p = actions.add_parser("verify", help="check the hash chain of the whole log (exit 1 when broken)",
                           epilog=EXIT_STATUS, formatter_class=formatter)
    _common(p)
    p.set_defaults(func=cmd_verify)
    p = actions.add_parser("export", help="the matching decisions as JSON lines, oldest first", epilog=EXIT_STATUS,
                           formatter_class=formatter, description="Each line: a recorded decision (summary, facts, "
                           "decision). A progress bar goes to standard error, only on a terminal.")
    add_filter_options(p)
    p.add_argument("--output", metavar="FILE", help="write the lines to FILE (created readable by you only) instead "
                                                   "of standard output")
    _common(p)
    p.set_defaults(func=cmd_export)
    p = actions.add_parser("access", help="the access log: who read what in the decision log, when and why, newest "
                                          "first", epilog=EXIT_STATUS, formatter_class=formatter,
                           description="A table of the recorded reads (this one included: reading the access log is "
                           "itself recorded); with --json, one JSON object per line.")
    add_access_options(p)
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                   help=f"show at most this many (default {DEFAULT_LIMIT}; 0: all, fetched a page at a time)")
    _common(p)
    p.set_defaults(func=cmd_access)
