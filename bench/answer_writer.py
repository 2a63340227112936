"""The answer writer alone (`Evaluation.head` + `wire.decision_bytes`), per ruleset version and explanation level:
µs of thread CPU time per decision and the answer's size. Not a test: it prints one line per version and level.

Two sets of evaluations, made before any timing:
- cases: the bundled cases that expect a decision, written over and over (best of `--repeats` passes): what
  bench/worker_steps.py's head+wire times, where every value recurs, so every cache of encoded parts is warm;
- fresh (`--fresh N`): N other decisions, the bundled cases with every date moved by the same random number of
  days (-200..200; birth dates by up to 3000 more) and as_of with them, written once each, in blocks of 50, after
  `--warm` more such decisions were written to fill the caches as a long-running worker's are: values that
  recur as in real traffic (codes, booleans, ages, dates of the same months) and values it has never seen.
  Each block is timed for every level in turn (the order turning each block); the figure is the median block.

It runs on any tree since 2026-12-02 (a tree without explanation levels times FULL only), so two trees can be
compared by running it from a neutral place with PYTHONPATH set to each tree in turn, interleaved:

    PYTHONPATH=$T/services/rules:$T/protos/python:$T python bench/answer_writer.py --root $T [--fresh 1000]

`--once LEVEL --written K` makes the warm and the fresh decisions as above, writes the warm ones and then the
first K fresh ones once at that level, and prints nothing: for counting instructions, which a shared machine does
not disturb, with `valgrind --tool=callgrind` (the count with `--written N` minus the count with `--written 0`,
over N: the same decisions are made in both runs, only the writing differs):

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/answer_writer.py \
        --root $T --only rett-til-helsehjelp@2024.07 --fresh 500 --once full --written 500   # and --written 0
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.worker_steps import best  # µs of thread CPU per item, best of the repeats

from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import Case, load_cases
from regelmotor.core.errors import RegelmotorError
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository
from regelmotor.server import wire

ROOT = Path(__file__).resolve().parents[1]
LEVELS = {"full": getattr(wire, "FULL", None), "fired": getattr(wire, "FIRED", None),
          "none": getattr(wire, "NONE", None)}
BLOCK = 50


def _shifted(value: Any, days: int) -> Any:
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return (date.fromisoformat(value) + timedelta(days=days)).isoformat()
        except ValueError:
            return value
    return value


def fresh_evaluations(motor: Regelmotor, name: str, version: str, cases: list[Case], count: int,
                      rng: random.Random) -> list[Any]:
    """`count` decisions on the cases' facts with their dates moved (see the module docstring)."""
    found: list[Any] = []
    while len(found) < count:
        case = rng.choice(cases)
        days = rng.randint(-200, 200)
        facts = {k: _shifted(v, days + (rng.randint(-3000, 3000) if "fodsel" in k else 0))
                 for k, v in case.facts.items()}
        try:
            found.append(motor.run(name, facts, as_of=case.as_of + timedelta(days=days + rng.randint(0, 30)),
                                   version=version))
        except RegelmotorError:
            continue  # moved out of the version's validity, or a date the facts refuse
    return found


def _level(level: str) -> dict[str, Any]:
    """The writer's level argument (none on a tree without levels, which writes FULL)."""
    return {} if LEVELS["fired"] is None else {"level": LEVELS[level]}


def writer(level: str) -> Callable[[list[Any]], None]:
    extra = _level(level)

    def write(evaluations: list[Any]) -> None:
        for evaluation in evaluations:
            wire.decision_bytes(evaluation, evaluation.head("d"), request_id="r", trace_id="t" * 32, **extra)
    return write


def fresh_medians(levels: list[str], evaluations: list[Any]) -> dict[str, float]:
    times: dict[str, list[float]] = {level: [] for level in levels}
    for index, start in enumerate(range(0, len(evaluations) - BLOCK + 1, BLOCK)):
        block = evaluations[start:start + BLOCK]
        for level in levels if index % 2 == 0 else list(reversed(levels)):
            began = time.thread_time()
            writer(level)(block)
            times[level].append((time.thread_time() - began) / BLOCK * 1e6)
    return {level: statistics.median(found) if found else float("nan") for level, found in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree whose rulesets/ to use")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--fresh", type=int, default=0, help="fresh decisions per version (0: none)")
    parser.add_argument("--warm", type=int, default=2000, help="fresh decisions written first, untimed")
    parser.add_argument("--only", help="one version, e.g. rett-til-helsehjelp@2024.07")
    parser.add_argument("--once", choices=list(LEVELS), help="write the fresh decisions once at LEVEL, quietly")
    parser.add_argument("--written", type=int, default=0, help="with --once: how many fresh decisions to write")
    args = parser.parse_args()
    rulesets = args.root / "rulesets"
    motor = Regelmotor(RulesetRepository.load(rulesets, include_drafts=True))
    levels = ["full"] if LEVELS["fired"] is None else list(LEVELS)
    rng = random.Random(13)
    for name in motor.repository.names():
        for ruleset in motor.repository.all_versions(name):
            if args.only and ruleset.key != args.only:
                continue
            version = ruleset.meta.version
            cases = [c for c in load_cases(rulesets / name / f"{version}{CASES_SUFFIX}", ruleset)
                     if c.expect_error is None]
            if not cases:
                continue
            warm = fresh_evaluations(motor, name, version, cases, args.warm if args.fresh or args.once else 0, rng)
            fresh = fresh_evaluations(motor, name, version, cases, args.fresh, rng)
            if args.once:
                writer(args.once)(warm)
                writer(args.once)(fresh[:args.written])
                continue
            evaluations = [motor.run(name, c.facts, as_of=c.as_of, version=version) for c in cases]
            for level in levels:
                writer(level)(warm)
            medians = fresh_medians(levels, fresh)
            for level in levels:
                size = statistics.mean(len(wire.decision_bytes(e, e.head("d"), **_level(level))) for e in evaluations)
                write, written = writer(level), evaluations
                cases_us = best(lambda: write(written), args.repeats, len(written))  # noqa: B023 (called here)
                print(f"{ruleset.key} {level}: bytes={size:.0f} cases={cases_us:.1f} fresh={medians[level]:.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
