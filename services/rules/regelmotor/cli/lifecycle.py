"""`regelmotor ruleset propose | approve | reject | retire | history` (over the gRPC API, as the person the token
names) and `regelmotor ruleset import | export` (the store beside the decision log, and a rulesets directory).

Exit status of the commands over the API (EXIT_STATUS): 0 done; 1 the proposal did not pass (its diagnostics
and failed cases are printed, nothing was stored); 2 the arguments, a file or the token were refused, or the
service could not be reached (nothing was sent or done); 3 the service refused the step (printed with its
reason: FOUR_EYES, SHA256_MISMATCH, HJEMMEL_NOT_VERIFIED, TIMELINE, VERSION_EXISTS, WRONG_STATE,
DECISIONS_PINNED, a missing role, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from regelmotor.core.repository import CASES_SUFFIX, PUBLISHED_FILE, RETIRED_FILE

EXIT_STATUS = ("exit status: 0 done; 1 the proposal did not pass (nothing stored); 2 arguments, file or token "
               "refused, or the service unreachable; 3 the service refused the step (its reason is printed)")


def service_client(args: argparse.Namespace) -> Any:
    """A RegelmotorClient for the options of `connection_options` (it refuses to send a token in the clear
    beyond this machine; ClientConfigError names the option it cannot use)."""
    from regelmotor_client import RegelmotorClient

    from .remote import local_caller

    # Without authentication the service knows the person only by the name sent here (four eyes compare it).
    return RegelmotorClient(args.address, tls=args.tls, ca_file=args.ca_file, token_file=args.token_file,
                            token_env=args.token_env, token_command=args.token_command, caller=local_caller())


def _client(args: argparse.Namespace) -> Any:
    from regelmotor_client import RulesetLifecycle

    return RulesetLifecycle(service_client(args))


def _remote(args: argparse.Namespace, work: Any) -> int:
    from regelmotor_client import ClientConfigError, DecisionError

    try:
        answer = work(_client(args))
    except ClientConfigError as error:
        print(f"regelmotor: --{error.parameter.replace('_', '-')}: {error.problem}", file=sys.stderr)
        return 2
    except DecisionError as error:
        print(f"regelmotor: {error.reason + ': ' if error.reason else ''}{error}", file=sys.stderr)
        return 2 if error.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INVALID_ARGUMENT") else 3
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
    return 0 if answer.get("accepted", True) else 1


def _version_line(v: dict[str, Any]) -> str:
    until = v.get("gyldig_til") or "…"
    extra = f", tilbaketrukket fra {v['retired_from']}" if v.get("retired_from") else ""
    line = f"{v['name']}@{v['version']}  {v['state']}  {v['gyldig_fra']} – {until}{extra}  sha256 {v['sha256']}"
    if v.get("supersedes"):  # a correction: which version it replaces, and why (the law did not change)
        line += f"\n    retter {v['supersedes']}: «{v.get('correction_reason', '')}»"
    if v.get("corrected_by"):
        line += f"\n    rettet av {', '.join(v['corrected_by'])}"
    return line


def cmd_propose(args: argparse.Namespace) -> int:
    path = Path(args.file)
    cases_path = Path(args.cases) if args.cases else Path(str(path)[: -len(".yaml")] + CASES_SUFFIX)
    try:
        source = path.read_text(encoding="utf-8")
        cases = cases_path.read_text(encoding="utf-8") if cases_path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        print(f"regelmotor: cannot read {exc}", file=sys.stderr)
        return 2

    def work(lifecycle: Any) -> dict[str, Any]:
        answer: dict[str, Any] = lifecycle.propose(source, cases)
        if args.json:
            return answer
        for d in answer["diagnostics"]:
            print(f"{path}:{d.get('line', 1)}:{d.get('column', 1)}: {d['message']}", file=sys.stderr)
        for d in answer["test"]["diagnostics"]:
            print(f"{cases_path}:{d.get('line', 1)}:{d.get('column', 1)}: {d['message']}", file=sys.stderr)
        for case in answer["test"]["results"]:
            if not case["passed"]:
                print(f"FAIL {cases_path}:{case['line']} {case['name']}: {'; '.join(case['failures'])}",
                      file=sys.stderr)
        if answer["accepted"]:
            v = answer["version"]
            print(f"foreslått: {_version_line(v)}")
            print(f"en annen godkjenner med: regelmotor ruleset approve {v['name']} {v['version']} "
                  f"--sha256 {v['sha256']}" + "".join(f" --acknowledge {h}" for h in v["unverified_hjemler"]))
        return answer

    return _remote(args, work)


def cmd_approve(args: argparse.Namespace) -> int:
    def work(lifecycle: Any) -> dict[str, Any]:
        answer: dict[str, Any] = lifecycle.approve(args.name, args.version, args.sha256, args.acknowledge)
        if not args.json:
            print(f"publisert: {_version_line(answer['version'])}")
        return answer

    return _remote(args, work)


def cmd_reject(args: argparse.Namespace) -> int:
    def work(lifecycle: Any) -> dict[str, Any]:
        answer: dict[str, Any] = lifecycle.reject(args.name, args.version, args.reason)
        if not args.json:
            print(f"avvist: {_version_line(answer['version'])}")
        return answer

    return _remote(args, work)


def cmd_retire(args: argparse.Namespace) -> int:
    def work(lifecycle: Any) -> dict[str, Any]:
        answer: dict[str, Any] = lifecycle.retire(args.name, args.version, args.from_date, args.reason or "")
        if not args.json:
            print(f"tilbaketrukket: {_version_line(answer['version'])}")
        return answer

    return _remote(args, work)


def cmd_history(args: argparse.Namespace) -> int:
    def work(lifecycle: Any) -> dict[str, Any]:
        answer: dict[str, Any] = lifecycle.history(args.name)
        if not args.json:
            for v in answer["versions"]:
                print(_version_line(v))
            print()
            for e in answer["events"]:
                reason = f"  «{e['reason']}»" if e.get("reason") else ""
                print(f"{e['at']}  {e['who']}  {e['action']}  {e['version']}  sha256 {e['sha256'][:16]}…{reason}")
        return answer

    return _remote(args, work)


# -- the store and a directory ---------------------------------------------------------------------------


def _store(args: argparse.Namespace) -> Any:
    from regelmotor.server.config import Settings
    from regelmotor.server.startup import decision_log

    settings = Settings()
    location = args.store or settings.decision_log
    opened = decision_log(location, settings.data_dir)
    if opened is None:
        raise SystemExit("regelmotor: the decision log is off, so there is no store: give --store")
    return opened


def cmd_import(args: argparse.Namespace) -> int:
    from regelmotor.server.seeding import directory_versions
    from regelmotor.server.startup import load_rulesets
    from regelmotor.store import State

    from .remote import local_caller

    # Recorded as the person the service knows the command line's user by without tokens, so four eyes compare it.
    who = local_caller()
    _, repository = load_rulesets(Path(args.dir), include_drafts=True)
    with _store(args) as log:
        stored = log.rulesets().import_versions(directory_versions(repository), who,
                                                str(Path(args.dir).resolve()), repository.retired)
        retired_now = {s.key: s.retired_from for s in log.rulesets().states()}
    print(f"importert: {len(stored)} versjon(er){': ' + ', '.join(s.key for s in stored) if stored else ''}")
    for state in stored:
        if state.state is State.PROPOSED:
            acknowledge = "".join(f" --acknowledge {h}" for h in state.meta.unverified)
            print(f"proposed: {state.key} (by {who}, not published) — ask an approver: regelmotor ruleset approve "
                  f"{state.name} {state.version} --sha256 {state.sha256}{acknowledge}")
    for key, day in sorted(repository.retired.items()):
        if retired_now.get(key) != day:
            print(f"not retired: {key} (the store held versions already), retire it with: regelmotor ruleset "
                  f"retire {key.replace('@', ' ')} --from {day.isoformat()}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from regelmotor.store import State

    out = Path(args.dir)
    with _store(args) as log:
        texts = log.rulesets().texts()
    published: list[str] = []
    retired: list[str] = []
    for text in texts:
        folder = out / text.state.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{text.state.version}.yaml").write_text(text.source, encoding="utf-8")
        if text.cases:
            (folder / f"{text.state.version}{CASES_SUFFIX}").write_text(text.cases, encoding="utf-8")
        if text.state.state is not State.DRAFT:
            published.append(f"{text.state.name} {text.state.version} {text.state.sha256}\n")
        if text.state.retired_from is not None:
            retired.append(f"{text.state.key} from {text.state.retired_from.isoformat()}\n")
    (out / PUBLISHED_FILE).write_text("".join(published), encoding="utf-8")
    if retired:
        (out / RETIRED_FILE).write_text("".join(retired), encoding="utf-8")
    else:  # an earlier export's record would otherwise retire versions that are published now
        (out / RETIRED_FILE).unlink(missing_ok=True)
    print(f"eksportert: {len(texts)} versjon(er) til {out}")
    return 0


def connection_options(parser: argparse.ArgumentParser) -> None:
    """The options that say where the service is and who calls it (every command that asks the service)."""
    parser.add_argument("--address", default=os.environ.get("REGELMOTOR_ADDRESS", "127.0.0.1:50051"),
                        help="the service (REGELMOTOR_ADDRESS, default 127.0.0.1:50051)")
    parser.add_argument("--tls", action="store_true", help="connect over TLS, trusting the system's CAs")
    parser.add_argument("--ca-file", help="CA certificates (PEM) to trust instead of the system's")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--token-file", help="a file holding your bearer token")
    given.add_argument("--token-env", metavar="NAME", help="an environment variable holding your bearer token")
    given.add_argument("--token-command", metavar="COMMAND", help="a command (no shell) printing your token")
    parser.add_argument("--json", action="store_true", help="print the service's answer as JSON")


def add_commands(ruleset: Any) -> None:
    """The lifecycle commands, under `regelmotor ruleset`."""
    p = ruleset.add_parser("propose", help="propose a version for publication (checked by the service)",
                           epilog=EXIT_STATUS)
    p.add_argument("file", help="the version's YAML file (with status: published)")
    p.add_argument("--cases", help="its cases file (default: <version>.cases.yaml beside it)")
    connection_options(p)
    p.set_defaults(func=cmd_propose)
    p = ruleset.add_parser("approve", help="publish a version someone else proposed", epilog=EXIT_STATUS)
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--sha256", required=True, help="the sha256 of the version you reviewed")
    p.add_argument("--acknowledge", action="append", default=[], metavar="HJEMMEL",
                   help="a hjemmel marked not verified that you knowingly publish (repeat for each)")
    connection_options(p)
    p.set_defaults(func=cmd_approve)
    p = ruleset.add_parser("reject", help="turn a proposed version down", epilog=EXIT_STATUS)
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--reason", required=True, help="why, for the author")
    connection_options(p)
    p.set_defaults(func=cmd_reject)
    p = ruleset.add_parser("retire", help="retire a published version from a date", epilog=EXIT_STATUS)
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--from", dest="from_date", required=True, metavar="YYYY-MM-DD",
                   help="the first day it no longer answers (after every logged decision of it)")
    p.add_argument("--reason")
    connection_options(p)
    p.set_defaults(func=cmd_retire)
    p = ruleset.add_parser("history", help="a ruleset's stored versions and their lifecycle", epilog=EXIT_STATUS)
    p.add_argument("name")
    connection_options(p)
    p.set_defaults(func=cmd_history)
    p = ruleset.add_parser("import", help="store a rulesets directory's versions: into an empty store as they are "
                           "(published, draft, retired); into one holding versions, new ones as proposed by you, "
                           "for another person to approve")
    p.add_argument("dir")
    p.add_argument("--store", help="the store: 'sqlite' (in REGELMOTOR_DATA_DIR) or a postgresql:// DSN "
                                   "(default: REGELMOTOR_DECISION_LOG)")
    p.set_defaults(func=cmd_import)
    p = ruleset.add_parser("export", help="write the store's versions as a rulesets directory")
    p.add_argument("dir")
    p.add_argument("--store", help="as for import")
    p.set_defaults(func=cmd_export)
