"""Engine benchmark: decisions per second for each ruleset version under rulesets/, with the full
explanation, against the raw durable_rules cost for the same compiled ruleset and the same facts.

Not a test: it prints figures. Run with `make bench` (or `python bench/engine.py [--seconds S]`).

Figures per version:
- decision: Regelmotor.evaluate (validation, derived values, every engine round, exceptions,
  combine policies, explanation tree), on the version's own test-case facts;
- raw Host: durable_rules' documented API (`Host.assert_fact` + `delete_state`, `_run` disabled,
  no-op actions) on the same compiled engine rulesets with the same encoded facts;
- raw C: the service's own engine calls (`regelmotor.core.engine.fire`: assert, read the fired names, and
  since 2026-12-06 retract the fact from the engine ruleset's one session rather than delete a session).
The goal: decision cost at most 3x the raw Host cost.

It uses only what every version of the core since 2026-12-02 offers, so the same file can time two trees
(PYTHONPATH set to each in turn, interleaved; `--clock cpu` on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from durable import engine as durable_engine

from regelmotor.core import engine
from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import load_cases
from regelmotor.core.evaluator import Evaluator
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository

ROOT = Path(__file__).resolve().parents[1]


class _QuietHost(durable_engine.Host):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.loaded: set[str] = set()  # the engine rulesets set so far

    def _run(self) -> None:  # no timer threads
        return None

    def get_action(self, _action_name: str) -> Callable[[Any], None]:
        return lambda c: None


# What a figure is timed by (--clock): wall time, or this thread's CPU time, which other processes on a shared
# machine disturb far less (they still slow it down through the caches, seldom make it faster).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
_clock = CLOCKS["wall"]


def _rate(func: Callable[[], object], seconds: float) -> tuple[float, float]:
    """Calls per second and median microseconds per call, over about `seconds` (wall time)."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = _clock()
        for _ in range(50):
            func()
        samples.append((_clock() - start) / 50)
    median = statistics.median(samples)
    return 1 / median, median * 1e6


def _engine_facts(evaluator: Evaluator, facts: dict[str, Any], as_of: Any) -> list[tuple[list[str], dict[str, Any]]]:
    """The encoded fact of each round for these facts, exactly as the evaluator asserts them."""
    captured: list[tuple[list[str], dict[str, Any]]] = []
    original = engine.fire

    def capture(names: list[str], fact: dict[str, Any]) -> set[str]:
        captured.append((names, dict(fact)))
        return original(names, fact)

    engine.fire = capture
    try:
        evaluator.run(facts, as_of)
    finally:
        engine.fire = original
    return captured


def bench_version(motor: Regelmotor, host: _QuietHost, name: str, version: str, seconds: float) -> dict[str, Any]:
    ruleset = motor.repository.get(name, version)
    cases_path = Path(ruleset.source_path[: -len(".yaml")] + CASES_SUFFIX)
    cases = [c for c in load_cases(cases_path, ruleset) if c.expect_error is None] if cases_path.exists() else []
    if not cases:
        return {"ruleset": ruleset.key, "skipped": "no cases"}
    evaluator = motor.evaluator(ruleset)
    index = [0]

    def decide() -> None:
        case = cases[index[0] % len(cases)]
        index[0] += 1
        motor.evaluate(name, case.facts, as_of=case.as_of, version=version)

    rounds = [_engine_facts(evaluator, c.facts, c.as_of) for c in cases]
    for round_ in evaluator.compiled.constraints, *evaluator.compiled.rounds:
        for partition in round_.partitions:
            if partition.engine_name not in host.loaded:
                definition = json.loads(json.dumps(partition.definition))
                for rule in definition.values():
                    rule["run"] = "noop"
                host.set_rulesets({partition.engine_name: definition})
                host.loaded.add(partition.engine_name)
    sid = [0]

    def raw_host() -> None:
        for names, fact in rounds[index[0] % len(rounds)]:
            for engine_name in names:
                sid[0] += 1
                host.assert_fact(engine_name, {**fact, "sid": str(sid[0])})
                host.delete_state(engine_name, str(sid[0]))
        index[0] += 1

    def raw_c() -> None:
        for names, fact in rounds[index[0] % len(rounds)]:
            engine.fire(names, fact)
        index[0] += 1

    decision_rate, decision_us = _rate(decide, seconds)
    _, host_us = _rate(raw_host, seconds)
    _, c_us = _rate(raw_c, seconds)
    partitions = sum(len(r.partitions) for r in evaluator.compiled.rounds)
    engine_rules = sum(len(p.definition) for r in evaluator.compiled.rounds for p in r.partitions)
    return {
        "ruleset": ruleset.key, "cases": len(cases), "rounds": len(evaluator.compiled.rounds),
        "engine_rulesets": partitions, "engine_rules": engine_rules,
        "decisions_per_s": round(decision_rate), "decision_us": round(decision_us, 1),
        "raw_host_us": round(host_us, 1), "raw_c_us": round(c_us, 1),
        "ratio_to_raw_host": round(decision_us / host_us, 2), "ratio_to_raw_c": round(decision_us / c_us, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rulesets", default=str(ROOT / "rulesets"))
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per figure")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="time each figure by wall time (the default) or by this thread's CPU time")
    args = parser.parse_args()
    global _clock
    _clock = CLOCKS[args.clock]
    motor = Regelmotor(RulesetRepository.load(args.rulesets, include_drafts=True))
    host = _QuietHost()
    results = [
        bench_version(motor, host, name, ruleset.meta.version, args.seconds)
        for name in motor.repository.names()
        for ruleset in motor.repository.all_versions(name)
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"durable_rules {engine.DURABLE_RULES_VERSION}; one thread")
    header = ("ruleset", "decisions/s", "decision µs", "raw Host µs", "raw C µs", "× raw Host", "× raw C",
              "engine rules")
    print(" | ".join(header))
    for r in results:
        if "skipped" in r:
            print(f"{r['ruleset']} | skipped: {r['skipped']}")
            continue
        print(" | ".join(str(x) for x in (r["ruleset"], r["decisions_per_s"], r["decision_us"], r["raw_host_us"],
                                          r["raw_c_us"], r["ratio_to_raw_host"], r["ratio_to_raw_c"],
                                          f"{r['engine_rules']} in {r['engine_rulesets']} rulesets")))


if __name__ == "__main__":
    main()
