"""What answering with hjemmel by reference (each rule's Hjemmel carrying only its id; the texts served once by
RulesetService.GetRuleset) would save, per ruleset version, on the bundled cases. Not a test, and not a feature:
the figures behind the decision not to do it (BENCHMARKS.md, issue 13).

`--hjemmel id` replaces each rule's hjemmel, in the per-version bytes the answer writer joins, by its ids only,
before the first answer is written (a process of its own: the writer keeps each version's bytes for good);
`--hjemmel full` writes answers as the service does. Per version, µs of thread CPU per decision (best of
`--repeats` passes) and bytes:

- bytes: the answer; zstd: its compressed size, as the decision log stores it;
- write: `Evaluation.head` + `wire.decision_bytes` (the texts are pre-serialised per version, so only copying
  them costs anything);
- pack: compressing it for the log (`store.pack_response`);
- pipe: sending it from one process to another over a multiprocessing pipe, as a worker hands it to the front
  (the receiver's acknowledgement included; wall time, so the other process's scheduling counts);
- parse: what a Python client does with it: `Decision.FromString` and `MessageToDict`.

Run each mode in turn, interleaved:

    PYTHONPATH=services/rules:protos/python:. python bench/hjemmel_reference.py --hjemmel full
    PYTHONPATH=services/rules:protos/python:. python bench/hjemmel_reference.py --hjemmel id
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import load_cases
from regelmotor.core.decision import RuleTrace
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository
from regelmotor.server import answer_plan, convert, wire
from regelmotor.store import pack_response
from regelmotor_api.v1 import decision_pb2 as pb

ROOT = Path(__file__).resolve().parents[1]


def by_reference(template: Callable[[str, RuleTrace], pb.RuleTrace]) -> Callable[[str, RuleTrace], pb.RuleTrace]:
    """A rule_template whose hjemmel carries ids only."""
    def only_ids(sha256: str, rule: RuleTrace) -> pb.RuleTrace:
        message = pb.RuleTrace()
        message.CopyFrom(template(sha256, rule))
        ids = [h.id for h in message.hjemmel]
        message.ClearField("hjemmel")
        message.hjemmel.extend([pb.Hjemmel(id=i) for i in ids])
        return message
    return only_ids


def best(work: Callable[[], None], repeats: int, count: int, clock: Callable[[], float] = time.thread_time) -> float:
    work()
    fastest = float("inf")
    for _ in range(repeats):
        start = clock()
        work()
        fastest = min(fastest, clock() - start)
    return fastest / count * 1e6


def _echo(connection: Connection) -> None:
    while (message := connection.recv_bytes()) != b"":
        connection.send_bytes(len(message).to_bytes(4, "little"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hjemmel", choices=["full", "id"], required=True)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    if args.hjemmel == "id":
        answer_plan.rule_template = by_reference(convert.rule_template)  # type: ignore[attr-defined,assignment]
    motor = Regelmotor(RulesetRepository.load(ROOT / "rulesets", include_drafts=True))
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=_echo, args=(theirs,), daemon=True)
    child.start()
    try:
        for name in motor.repository.names():
            for ruleset in motor.repository.all_versions(name):
                version = ruleset.meta.version
                cases = [c for c in load_cases(ROOT / "rulesets" / name / f"{version}{CASES_SUFFIX}", ruleset)
                         if c.expect_error is None]
                evaluations = [motor.run(name, c.facts, as_of=c.as_of, version=version) for c in cases]
                answers = [wire.decision_bytes(e, e.head("d"), request_id="r", trace_id="t" * 32) for e in evaluations]
                figures = measure(evaluations, answers, ours, args.repeats)
                print(f"{ruleset.key} hjemmel={args.hjemmel}: " + " ".join(f"{k}={v}" for k, v in figures.items()),
                      flush=True)
    finally:
        ours.send_bytes(b"")
        child.join(5)


def measure(evaluations: list[Any], answers: list[bytes], pipe: Connection, repeats: int) -> dict[str, str]:
    def write() -> None:
        for evaluation in evaluations:
            wire.decision_bytes(evaluation, evaluation.head("d"), request_id="r", trace_id="t" * 32)

    def pack() -> None:
        for answer in answers:
            pack_response(answer)

    def send() -> None:
        for answer in answers:
            pipe.send_bytes(answer)
            pipe.recv_bytes()

    def parse() -> None:
        for answer in answers:
            json_format.MessageToDict(pb.Decision.FromString(answer), preserving_proto_field_name=True)

    count = len(answers)
    return {
        "bytes": f"{statistics.mean(map(len, answers)):.0f}",
        "zstd": f"{statistics.mean(len(pack_response(a)) for a in answers):.0f}",
        "write": f"{best(write, repeats, count):.1f}", "pack": f"{best(pack, repeats, count):.1f}",
        "pipe": f"{best(send, repeats, count, time.perf_counter):.1f}", "parse": f"{best(parse, repeats, count):.1f}",
    }


if __name__ == "__main__":
    main()
