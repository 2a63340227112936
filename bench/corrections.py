"""Publish the bundled corrections through the lifecycle, with an impact report of each over a generated log.

Run from the repository root (it rewrites files in rulesets/ and docs/rulesets/ only when --write is given):

    PYTHONPATH=services/rules:protos/python:clients/python:. python bench/corrections.py [--decisions N] [--write]

What it does, against a real `regelmotor serve` (tests/server_process.py, one engine worker) on a fresh SQLite store:

1. The service starts from rulesets/ without the corrections (every version with `supersedes`): the state before
   any of them was published.
2. The decision log is filled with N decisions per corrected ruleset (default 10 000), made by the service from
   requests varied from the bundled cases (bench/varied_decisions.py, a fixed seed: the same requests every run),
   one stream per ruleset, logged as a hospital's would be.
3. Each correction, parents first, is proposed by one person ("anna"), its impact analysed as known at that moment
   (AnalyseImpact with known_at: every logged decision compared with what the rules in force then decide), and
   approved by another ("bjorn"), naming the sha256 and acknowledging the hjemler it marks as not verified; then
   the service serves it.
4. The store is written out with `regelmotor ruleset export`, and that is what rulesets/ must hold: with --write the
   export replaces rulesets/ (a no-op when nothing differs) and docs/rulesets/ is regenerated from it
   (`regelmotor ruleset doc`); each impact report is written to
   docs/rulesets/<ruleset>/rettelser/<version>-virkning.md. Without --write it says what differs.

The service runs without tokens: the two people are named by the `regelmotor-caller` header, so four eyes hold as
far as this script is honest (docs/ruleset-lifecycle.md). Reports leave out what changes between runs (decision
ids, moments), so a second run with the same rulesets writes the same files.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT / "clients" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import grpc  # noqa: E402  (needs the paths above)
from bench.correction_report import render  # noqa: E402
from bench.varied_decisions import varied_requests  # noqa: E402
from google.protobuf import json_format, struct_pb2  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402

from regelmotor.cli.document import write_documents  # noqa: E402
from regelmotor.cli.main import main as regelmotor  # noqa: E402
from regelmotor.core.model import Ruleset  # noqa: E402
from regelmotor.core.repository import CASES_SUFFIX, PUBLISHED_FILE, RulesetRepository  # noqa: E402
from regelmotor_api.v1 import decision_pb2 as pb  # noqa: E402
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc  # noqa: E402
from regelmotor_api.v1 import ruleset_pb2 as rpb  # noqa: E402
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc  # noqa: E402

AUTHOR = [("regelmotor-caller", "anna")]
APPROVER = [("regelmotor-caller", "bjorn")]
HOSPITAL = [("regelmotor-caller", "sykehus-generert")]
PURPOSE = "virkning av rettelse før godkjenning (bench/corrections.py)"
SEED = 2026


@dataclass(frozen=True)
class Published:
    ruleset: Ruleset
    report: rpb.ImpactReport
    logged: int
    added_facts: list[str]


def added_facts(rulesets: Path, correction: Ruleset) -> list[str]:
    """The facts `correction` takes that the version it corrects does not."""
    corrected = RulesetRepository.load(rulesets).get(correction.meta.name, correction.meta.supersedes or "")
    return [name for name in correction.facts if name not in corrected.facts]


def corrections(rulesets: Path) -> list[Ruleset]:
    """The versions that correct another, parents before the corrections of them."""
    repository = RulesetRepository.load(rulesets)
    found = [r for name in repository.names() for r in repository.all_versions(name) if r.meta.supersedes]

    def depth(ruleset: Ruleset) -> int:
        parent = repository.get(ruleset.meta.name, ruleset.meta.supersedes or "")
        return 1 + depth(parent) if parent.meta.supersedes else 0

    return sorted(found, key=lambda r: (r.meta.name, depth(r), r.meta.version))


def before_corrections(rulesets: Path, target: Path, left_out: list[Ruleset]) -> Path:
    """A copy of `rulesets` without the versions in `left_out` (nor their lines in published.txt)."""
    shutil.copytree(rulesets, target)
    for ruleset in left_out:
        base = target / ruleset.meta.name / ruleset.meta.version
        Path(f"{base}.yaml").unlink()
        Path(f"{base}{CASES_SUFFIX}").unlink(missing_ok=True)
    keys = {(r.meta.name, r.meta.version) for r in left_out}
    record = target / PUBLISHED_FILE
    lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
    record.write_text("".join(line for line in lines if tuple(line.split()[:2]) not in keys), encoding="utf-8")
    return target


def log_decisions(channel: grpc.Channel, rulesets: Path, name: str, count: int) -> int:
    """`count` varied requests of `name` decided and logged through one stream; how many were decided."""
    def requests() -> Iterator[pb.EvaluateRequest]:
        for number, varied in enumerate(varied_requests(rulesets, name, count, SEED)):
            facts = struct_pb2.Struct()
            facts.update(varied.facts)
            yield pb.EvaluateRequest(ruleset=name, as_of=varied.as_of, facts=facts,
                                     request_id=f"generert-{name}-{number}", explanation=pb.EXPLANATION_LEVEL_NONE)

    answers = pb_grpc.DecisionServiceStub(channel).EvaluateStream(requests(), metadata=HOSPITAL, timeout=3600)
    decided = sum(1 for answer in answers if answer.WhichOneof("result") == "decision")
    if decided != count:
        raise RuntimeError(f"{name}: {count - decided} of {count} generated requests were not decided")
    return decided


def publish(channel: grpc.Channel, rulesets: Path, ruleset: Ruleset) -> rpb.ImpactReport:
    """Propose, analyse (as known now, before the approval) and approve one correction; wait until it is served."""
    stub = rpb_grpc.RulesetServiceStub(channel)
    meta = ruleset.meta
    base = rulesets / meta.name / meta.version
    proposal = stub.ProposeRuleset(rpb.ProposeRulesetRequest(
        source=Path(f"{base}.yaml").read_text(encoding="utf-8"),
        cases=Path(f"{base}{CASES_SUFFIX}").read_text(encoding="utf-8")), metadata=AUTHOR, timeout=120)
    if not proposal.accepted:
        raise RuntimeError(f"{ruleset.key} was not accepted: {proposal}")
    asked = rpb.AnalyseImpactRequest(stored=rpb.VersionRef(name=meta.name, version=meta.version), ruleset=meta.name,
                                     formaal=PURPOSE, known_at=datetime.now(UTC).isoformat(), max_examples=5)
    reports: list[rpb.ImpactReport] = [a.report for a in stub.AnalyseImpact(asked, metadata=AUTHOR, timeout=3600)
                                       if a.WhichOneof("item") == "report"]
    stub.ApproveRuleset(rpb.ApproveRulesetRequest(
        name=meta.name, version=meta.version, sha256=proposal.version.sha256,
        acknowledge_unverified=list(proposal.version.unverified_hjemler)), metadata=APPROVER, timeout=60)
    deadline = time.monotonic() + 60
    while meta.version not in {v.version for v in stub.GetRuleset(rpb.GetRulesetRequest(name=meta.name),
                                                                  metadata=AUTHOR, timeout=30).ruleset.versions}:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ruleset.key} was approved but not served within 60 s")
        time.sleep(0.2)
    return reports[0]


def differences(left: Path, right: Path) -> list[str]:
    """Files that differ between two rulesets directories, or are in only one of them."""
    found: list[str] = []

    def walk(compared: filecmp.dircmp[str], prefix: str) -> None:
        found.extend(prefix + n for n in compared.left_only + compared.right_only + compared.diff_files)
        for name, sub in compared.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right), "")
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=10_000, help="generated decisions per corrected ruleset")
    parser.add_argument("--rulesets", type=Path, default=ROOT / "rulesets")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "rulesets")
    parser.add_argument("--write", action="store_true", help="write rulesets/ and docs/rulesets/ from the store")
    args = parser.parse_args(argv)
    todo = corrections(args.rulesets)
    if not todo:
        print("no corrections (versions with supersedes) under", args.rulesets)
        return 1
    names = sorted({r.meta.name for r in todo})
    with tempfile.TemporaryDirectory(prefix="regelmotor-corrections-") as work:
        start = before_corrections(args.rulesets, Path(work) / "before", todo)
        # known_at is the moment just before each approval: this script waits for each publication to be served.
        # One engine worker: the log then holds the decisions in the order they were asked, so the examples a report
        # picks (the first in log order) are the same each run.
        server = ServerProcess(workers=1, drafts=False, rulesets=start, env={"REGELMOTOR_KNOWN_AT_SETTLE_SECONDS": "0"})
        published: list[Published] = []
        try:
            with grpc.insecure_channel(server.address) as channel:
                logged = {}
                for name in names:
                    began = time.perf_counter()
                    logged[name] = log_decisions(channel, start, name, args.decisions)
                    print(f"{name}: {logged[name]} decisions logged in {time.perf_counter() - began:.1f} s")
                for ruleset in todo:
                    report = publish(channel, args.rulesets, ruleset)
                    published.append(Published(ruleset, report, logged[ruleset.meta.name],
                                               added_facts(args.rulesets, ruleset)))
                    print(f"{ruleset.key}: {report.changed} of {report.analysed} decisions change "
                          f"({report.decided} decided by {ruleset.meta.supersedes} on its days), "
                          f"{report.refused} refused")
        finally:
            server.terminate()
        exported = Path(work) / "exported"
        if regelmotor(["ruleset", "export", str(exported), "--store", str(server.data_dir / "decisions.db")]) != 0:
            raise RuntimeError("ruleset export failed")
        differ = differences(args.rulesets, exported)
        print("rulesets/ and the store's export:", "identical" if not differ else f"differ in {differ}")
        if args.write:
            shutil.rmtree(args.rulesets)
            shutil.copytree(exported, args.rulesets)
            write_documents(args.rulesets, args.docs)
            for item in published:
                meta = item.ruleset.meta
                target = args.docs / meta.name / "rettelser" / f"{meta.version}-virkning.md"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(render(item.ruleset, item.report, item.logged, SEED, item.added_facts),
                                  encoding="utf-8")
                print("wrote", target)
        for item in published:
            print(json_format.MessageToJson(item.report, preserving_proto_field_name=True, indent=None)[:300])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
