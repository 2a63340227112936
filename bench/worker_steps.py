"""An engine worker's steps, each timed alone, in process, over every bundled case that expects a decision.

Not a test: it prints one line of figures, µs of thread CPU time per decision, each the best of `--repeats`
runs over all cases (CPU time rather than wall time, and the best run, because the development machine is
shared: other processes slow a run down, they seldom make it cheaper):

- evaluate: `Regelmotor.run` (validation, derived values, every engine round);
- head+wire: `Evaluation.head` and `wire.decision_bytes`, the answer as the worker writes it;
- decision: `Evaluation.decision`, the Decision dataclasses (the library's and the CLI's answer);
- handler: `EvaluationHandler.evaluate_batch` in batches of 32, the worker's whole work (no decision log);
- handler+sqlite: the same for a caller, each batch appended to a SQLite decision log in a temporary
  directory by the handler itself, as an engine worker does (the CPU of the append counts; waiting for the
  disk's fsync does not).

It uses only what every version of the service since 2026-12-02 offers, so the same file can time two trees
for a comparison: run it from a neutral place with PYTHONPATH set to each tree in turn, interleaved
(BENCHMARKS.md, 2026-12-06, the layers):

    PYTHONPATH=$T/services/rules:$T/protos/python:$T python bench/worker_steps.py --root $T [--repeats 15]

`--explanation fired|none` (trees since issue 13) asks the handler's requests for that explanation level, and
writes head+wire at it; without it, the requests are as they always were (the full explanation).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import Case, load_cases
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository
from regelmotor.server import wire
from regelmotor.server.handler import EvaluationHandler
from regelmotor.server.telemetry import tracer_provider
from regelmotor.store import DecisionLog, open_log
from regelmotor_api.v1 import decision_pb2 as pb

ROOT = Path(__file__).resolve().parents[1]
BATCH = 32


def best(work: Callable[[], None], repeats: int, count: int) -> float:
    """µs of thread CPU time per item of the best of `repeats` runs, after one run to warm the caches."""
    work()
    fastest = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        work()
        fastest = min(fastest, time.thread_time() - start)
    return fastest / count * 1e6


def appending_handler(motor: Regelmotor, log: DecisionLog) -> EvaluationHandler:
    """A handler that appends its decisions to `log` itself, in the terms of the tree being timed: its part of
    the recording plan (since 2026-12-06), or the handler's `log` argument before that."""
    tracer = tracer_provider().get_tracer("regelmotor.engine")
    try:
        from regelmotor.server.recording import RecordingPlan
    except ImportError:
        before: dict[str, Any] = {"log": log}
        return EvaluationHandler(motor, tracer, **before)
    return EvaluationHandler(motor, tracer, recording=RecordingPlan.for_log(log).engine_side(log))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree whose rulesets/ to use")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--explanation", choices=["full", "fired", "none"])
    args = parser.parse_args()
    level: dict[str, Any] = {}
    if args.explanation:
        level = {"explanation": getattr(pb, f"EXPLANATION_LEVEL_{args.explanation.upper()}")}
    rulesets = args.root / "rulesets"
    motor = Regelmotor(RulesetRepository.load(rulesets, include_drafts=True))
    cases: list[tuple[str, str, Case]] = []
    for name in motor.repository.names():
        for ruleset in motor.repository.all_versions(name):
            version = ruleset.meta.version
            cases += [(name, version, case) for case in load_cases(rulesets / name / f"{version}{CASES_SUFFIX}",
                                                                  ruleset) if case.expect_error is None]
    requests = [pb.EvaluateRequest(ruleset=name, version=version, as_of=case.as_of.isoformat(), facts=case.facts,
                                   **level).SerializeToString() for name, version, case in cases]
    written = {"level": int(level["explanation"])} if level else {}
    evaluations = [motor.run(name, case.facts, as_of=case.as_of, version=version) for name, version, case in cases]
    handler = EvaluationHandler(motor, tracer_provider().get_tracer("regelmotor.engine"))
    items = list(enumerate(requests))

    def evaluate() -> None:
        for name, version, case in cases:
            motor.run(name, case.facts, as_of=case.as_of, version=version)

    def head_wire() -> None:
        for evaluation in evaluations:
            wire.decision_bytes(evaluation, evaluation.head("d"), request_id="r", trace_id="t", **written)

    def decision() -> None:
        for evaluation in evaluations:
            evaluation.decision("d")

    def whole() -> None:
        for start in range(0, len(items), BATCH):
            handler.evaluate_batch(items[start:start + BATCH])

    with tempfile.TemporaryDirectory(prefix="regelmotor-bench-") as folder:
        log = open_log(Path(folder) / "decisions.db")
        recording = appending_handler(motor, log)

        def recorded() -> None:
            for start in range(0, len(items), BATCH):
                replies = recording.evaluate_batch(items[start:start + BATCH], caller="bench")
                assert all(reply.decision is not None for reply in replies)

        steps = {"evaluate": evaluate, "head+wire": head_wire, "decision": decision, "handler": whole,
                 "handler+sqlite": recorded}
        try:
            print(" ".join(f"{name}={best(work, args.repeats, len(cases)):.1f}" for name, work in steps.items()))
        finally:
            log.close()


if __name__ == "__main__":
    main()
