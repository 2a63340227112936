"""The `regelmotor` command: tools for ruleset authors, evaluation from the shell, and the service."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import CaseResult, load_cases, run_case
from regelmotor.core.coverage import coverage
from regelmotor.core.diff import diff_rulesets
from regelmotor.core.errors import LifecycleRefused, RegelmotorError, RulesetInvalid
from regelmotor.core.format_schema import SCHEMA_FILES, schema_text
from regelmotor.core.loader import load_ruleset_file
from regelmotor.core.model import Ruleset, Status
from regelmotor.core.repository import CASES_SUFFIX, PUBLISHED_FILE, RulesetRepository, read_published
from regelmotor_api.facts import FactsFileError, read_facts

from .audit import add_audit
from .console import add_console, start_beside, stop_beside
from .coverage import render_coverage
from .database import add_database
from .health import add_health
from .remote import add_impact
from .render import render_decision


def default_rulesets_dir() -> Path:
    """REGELMOTOR_RULESETS, else the rulesets bundled at the root of the source tree."""
    configured = os.environ.get("REGELMOTOR_RULESETS")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[4] / "rulesets"


def _repository(path: Path, only: set[str] | None = None) -> RulesetRepository:
    """The rulesets under `path`: a rulesets root (`<root>/<name>/<version>.yaml`) or one ruleset's folder."""
    if only is None and path.is_dir() and any(p for p in path.glob("*.yaml")) and not any(path.glob("*/*.yaml")):
        return RulesetRepository.load(path.parent, include_drafts=True, only={path.name})
    return RulesetRepository.load(path, include_drafts=True, only=only)


def cmd_validate(args: argparse.Namespace) -> int:
    """Loading reads, checks and compiles each version: what validates, the engine can run."""
    path = Path(args.path)
    if path.is_dir():
        repo = _repository(path)
        loaded = [ruleset for name in repo.names() for ruleset in repo.all_versions(name)]
        summary = f"ok: {len(loaded)} ruleset version(s) in {path}"
    else:
        ruleset = load_ruleset_file(path)
        loaded = [ruleset]
        summary = f"ok: {ruleset.key} sha256 {ruleset.sha256}"
    warnings = [warning for ruleset in loaded for warning in ruleset.warnings]
    for warning in warnings:
        print(warning)
    print(summary + (f", with {len(warnings)} warning(s)" if warnings else ""))
    return 0


def _cases_path(version_file: str) -> Path:
    return Path(version_file[: -len(".yaml")] + CASES_SUFFIX)


def cmd_test(args: argparse.Namespace) -> int:
    target = Path(args.path) if args.path else default_rulesets_dir()
    # A single version file (or its cases file) runs just that version's cases.
    only = target.resolve() if target.is_file() else None
    candidate = _candidate(target) if only else None
    if candidate is not None:
        print(f"{candidate.key} er ikke publisert ennå: testes alene, slik `ruleset propose` tester den")
        repo = RulesetRepository(include_drafts=True, alone=True)
        repo.add(candidate)
    else:  # one version file loads just its own ruleset's versions, so another broken ruleset cannot block it
        repo = _repository(target.parent.parent, {target.parent.name}) if only else _repository(target)
    if not repo.versions:
        print(f"no ruleset versions found under {target}", file=sys.stderr)
        return 1
    motor = Regelmotor(repo)
    total = failed = 0
    for name in repo.names():
        for ruleset in repo.all_versions(name):
            cases_path = _cases_path(ruleset.source_path)
            if only and only not in (Path(ruleset.source_path).resolve(), cases_path.resolve()):
                continue
            if not cases_path.exists():
                print(f"{ruleset.key}: no cases file ({cases_path.name})")
                continue
            results = [run_case(motor, ruleset, case) for case in load_cases(cases_path, ruleset)]
            total += len(results)
            failed += _print_failures(ruleset, cases_path, results)
            if args.coverage:
                print("\n".join(render_coverage(ruleset, coverage(ruleset, results))))
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


def _candidate(target: Path) -> Ruleset | None:
    """The version a file holds when it says `status: published` but is not recorded in published.txt: a text to
    propose, which the service tests alone (its own cases, pinned to it), so it is tested the same way here."""
    version_file = target if not target.name.endswith(CASES_SUFFIX) else Path(
        str(target)[: -len(CASES_SUFFIX)] + ".yaml")
    ruleset = load_ruleset_file(version_file)
    if ruleset.meta.status is not Status.PUBLISHED:
        return None
    recorded = read_published(version_file.parent.parent).get(ruleset.key)
    return ruleset if recorded != ruleset.sha256 else None


def _print_failures(ruleset: Ruleset, cases_path: Path, results: list[CaseResult]) -> int:
    """Prints each failed case with what differed; returns how many failed."""
    failed = 0
    for result in results:
        if result.passed:
            continue
        failed += 1
        print(f"FAIL {ruleset.key} {cases_path}:{result.case.line} {result.case.name}")
        for failure in result.failures:
            print(f"    {failure}")
        if result.decision is not None:
            print(f"    fired: {', '.join(result.decision.fired_rules) or '(none)'}; "
                  f"applied: {', '.join(result.decision.applied_rules) or '(none)'}")
    return failed


def cmd_diff(args: argparse.Namespace) -> int:
    result = diff_rulesets(load_ruleset_file(args.a), load_ruleset_file(args.b))
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(result.lines()))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    path = Path(args.path)
    ruleset = load_ruleset_file(path)
    if ruleset.meta.status is not Status.PUBLISHED:
        print(f"{ruleset.key} has status {ruleset.meta.status.value}; set `status: published` first", file=sys.stderr)
        return 1
    root = path.parent.parent
    published = read_published(root)
    recorded = published.get(ruleset.key)
    if recorded == ruleset.sha256:
        print(f"{ruleset.key} is already published with sha256 {ruleset.sha256}")
        return 0
    if recorded is not None:
        print(f"{ruleset.key} was published with another content; make a new version", file=sys.stderr)
        return 1
    with (root / PUBLISHED_FILE).open("a", encoding="utf-8") as out:
        out.write(f"{ruleset.meta.name} {ruleset.meta.version} {ruleset.sha256}\n")
    print(f"published {ruleset.key} sha256 {ruleset.sha256}")
    return 0


def cmd_doc(args: argparse.Namespace) -> int:
    from .document import stale_documents, write_documents

    root = Path(args.path) if args.path else default_rulesets_dir()
    out_dir = Path(args.out) if args.out else root.parent / "docs" / "rulesets"
    if args.check:
        stale = stale_documents(root, out_dir)
        for path in stale:
            print(f"out of date: {out_dir / path}", file=sys.stderr)
        if stale:
            print("run `regelmotor ruleset doc` and commit the result", file=sys.stderr)
        return 1 if stale else 0
    for path in write_documents(root, out_dir):
        print(f"wrote {path}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """The JSON Schema of the ruleset (or cases) file format, for an editor: printed, or written to a folder."""
    if args.write_to is None:
        print(schema_text("ruleset-cases.schema.json" if args.cases else "ruleset-format.schema.json"), end="")
        return 0
    folder = Path(args.write_to)
    for file_name in SCHEMA_FILES:
        (folder / file_name).write_text(schema_text(file_name), encoding="utf-8")
        print(f"wrote {folder / file_name}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    motor = Regelmotor(RulesetRepository.load(args.rulesets or default_rulesets_dir(),
                                              include_drafts=args.drafts))
    # The text goes to the engine as it is, which checks it like any `as_of` (an error names the field).
    decision = motor.evaluate(args.ruleset, read_facts(args.facts), as_of=args.as_of, version=args.version)
    if args.json:
        print(json.dumps(decision.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(render_decision(decision))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from regelmotor.server.app import serve
    from regelmotor.server.config import Settings
    from regelmotor.server.startup import StartupError, from_validation, unknown_variables
    from regelmotor.server.telemetry import setup_logging

    overrides: dict[str, Any] = {}
    for key in ("host", "port", "workers", "rulesets"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.drafts:
        overrides["allow_drafts"] = True
    try:
        unknown_variables(os.environ, Settings.model_fields)
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"regelmotor: cannot start: {from_validation(exc)}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"regelmotor: cannot start: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    if args.console is None:
        return serve(settings)
    if settings.port == 0:
        print("regelmotor: cannot start: --console needs the service on a known port, not port 0", file=sys.stderr)
        return 2
    try:
        console = start_beside(args.console, f"{settings.host}:{settings.port}")
    except ValueError as exc:
        print(f"regelmotor: cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        return serve(settings)
    finally:
        stop_beside(console)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="regelmotor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    ruleset = sub.add_parser("ruleset", help="tools for ruleset authors").add_subparsers(dest="action", required=True)
    p = ruleset.add_parser("validate", help="check a ruleset file, or a directory of rulesets")
    p.add_argument("path")
    p.set_defaults(func=cmd_validate)
    p = ruleset.add_parser("test", help="run the test cases beside each ruleset version")
    p.add_argument("path", nargs="?", help="a rulesets directory or one version file (default: bundled)")
    p.add_argument("--coverage", action="store_true",
                   help="also list the rules and exceptions no case fires and the outcome values no case expects")
    p.set_defaults(func=cmd_test)
    p = ruleset.add_parser("diff", help="what changed between two ruleset versions")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_diff)
    p = ruleset.add_parser("doc", help="write a Markdown document per ruleset version (docs/rulesets/)")
    p.add_argument("path", nargs="?", help="rulesets directory (default: the bundled ones)")
    p.add_argument("--out", help="output directory (default: docs/rulesets beside the rulesets directory)")
    p.add_argument("--check", action="store_true", help="only check that the committed documents are current")
    p.set_defaults(func=cmd_doc)
    p = ruleset.add_parser("schema", help="print the JSON Schema of the ruleset file format, for editors")
    p.add_argument("--cases", action="store_true", help="the schema of a cases file instead")
    p.add_argument("--write-to", metavar="DIR", help=f"write both schema files ({', '.join(SCHEMA_FILES)}) to DIR")
    p.set_defaults(func=cmd_schema)
    p = ruleset.add_parser("publish", help=f"record a published version's sha256 in {PUBLISHED_FILE}")
    p.add_argument("path")
    p.set_defaults(func=cmd_publish)
    add_impact(ruleset)
    from .lifecycle import add_commands

    add_commands(ruleset)

    p = sub.add_parser("evaluate", help="evaluate facts and print the explained decision")
    p.add_argument("--ruleset", required=True)
    p.add_argument("--facts", required=True, help="a YAML or JSON file of facts, or - for standard input")
    p.add_argument("--as-of", help="evaluation date YYYY-MM-DD (default: today in Europe/Oslo)")
    p.add_argument("--version", help="pin a version instead of selecting the one in force")
    p.add_argument("--rulesets", help="rulesets directory (default: REGELMOTOR_RULESETS or the bundled ones)")
    p.add_argument("--drafts", action="store_true", help="let draft versions be selected")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("serve", help="start the gRPC service (settings: docs/configuration.md)")
    p.add_argument("--rulesets", help="rulesets directory (REGELMOTOR_RULESETS)")
    p.add_argument("--host", help="address to listen on (REGELMOTOR_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (REGELMOTOR_PORT, default 50051)")
    p.add_argument("--workers", type=int, help="engine worker processes (REGELMOTOR_WORKERS, default: cores)")
    p.add_argument("--drafts", action="store_true", help="let draft versions be selected (REGELMOTOR_ALLOW_DRAFTS)")
    p.add_argument("--console", metavar="HOST:PORT", help="also start the web console there (the README's "
                                                           "start command: 127.0.0.1:8080)")
    p.set_defaults(func=cmd_serve)
    add_console(sub)
    add_audit(sub)
    add_database(sub)
    add_health(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RulesetInvalid as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=sys.stderr)
        return 1
    except FactsFileError as exc:  # the facts file itself, before the ruleset's schema sees it
        print(exc, file=sys.stderr)
        return 1
    except LifecycleRefused as exc:  # the store's state does not allow the step (import): nothing was stored
        print(f"error: {exc.reason}: {exc}", file=sys.stderr)
        return 3
    except RegelmotorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
