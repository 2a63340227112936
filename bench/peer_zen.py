"""In-process decision cost against a compiled peer: GoRules zen-engine (Rust, PyPI `zen-engine`) deciding
`prioriterte-pasientgrupper` 2024.1 as a JDM graph with its trace on, against Regelmotor deciding the same with
its full explanation.

Not a test: it prints figures. Needs the `bench` extra (`pip install -e '.[bench]'`). Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/peer_zen.py [--seconds S] [--rounds R] [--json FILE]

First it checks that the two agree on EVERY bundled case of that version (`2024.1.cases.yaml`): the same groups
in the same order, the same `store_og_sammensatte_behov`, the same set of rules fired (zen's: the matched rows
of its two rule tables, read from its trace), and both refusing the cases with invalid facts. It also checks
the worker path's answer (the Decision bytes) says the same. Any difference stops the run with the cases named.

Then, in rounds (the order turning each round, so the shared machine's drift falls on every side), it times,
over the cases that expect a decision, µs per decision in wall time and in process CPU time:
- zen: `ZenEngine.evaluate(key, context, {"trace": True})`, the graph of `bench/zen_graph.py` given by a loader
  as one `ZenDecisionContent` (compiled once, as GoRules' documentation advises for speed; `ZenDecision.evaluate`
  on a decision made with `create_decision` measured about twice as slow here, so it is not the figure);
- ours, decision: `Regelmotor.evaluate` (validation, derived values, every engine round, the full explanation
  as the `Decision` dataclasses), as `bench/engine.py` times it;
- ours, worker path: `EvaluationHandler.evaluate` on the serialised EvaluateRequest, answering the serialised
  Decision (no decision log), as an engine worker does (`bench/worker_steps.py`).
The figures are the medians over the rounds; the goal of issue 13 is ours ≤ 0.8× zen.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.zen_graph import GROUP_TABLE, NEEDS_TABLE, REFUSAL, build_graph  # noqa: E402
from google.protobuf import json_format  # noqa: E402  (needs the paths above)

from regelmotor.core.api import Regelmotor  # noqa: E402
from regelmotor.core.cases import Case, load_cases  # noqa: E402
from regelmotor.core.errors import RegelmotorError  # noqa: E402
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository  # noqa: E402
from regelmotor.core.types import to_json_value  # noqa: E402
from regelmotor.server.handler import EvaluationHandler  # noqa: E402
from regelmotor.server.telemetry import tracer_provider  # noqa: E402
from regelmotor_api.v1 import decision_pb2 as pb  # noqa: E402

NAME, VERSION = "prioriterte-pasientgrupper", "2024.1"
GOAL = 0.8  # ours <= GOAL x zen


@dataclass(frozen=True)
class Answer:
    """What a decision says that both engines can say: None for a refusal (invalid facts)."""

    groups: tuple[str, ...]
    large_needs: bool
    fired: frozenset[str]

    def __str__(self) -> str:
        return f"grupper={list(self.groups)} store={self.large_needs} fired={sorted(self.fired)}"


class ZenPeer:
    """The graph in a zen engine whose loader hands out the one compiled content."""

    KEY = "prioriterte-pasientgrupper-2024.1.json"

    def __init__(self, graph: dict[str, Any]) -> None:
        import zen

        content = zen.ZenDecisionContent(json.dumps(graph))
        self.engine = zen.ZenEngine({"loader": lambda _key: content})

    def evaluate(self, context: dict[str, Any], *, trace: bool) -> Any:
        return self.engine.evaluate(self.KEY, context, {"trace": trace})


def zen_answer(peer: ZenPeer, context: dict[str, Any]) -> Answer | None:
    try:
        response = peer.evaluate(context, trace=True)
    except RuntimeError:  # the input schema refused the facts
        return None
    result = response["result"]
    if result.get(REFUSAL):
        return None
    fired: set[str] = set()
    for node in response["trace"].values():
        if node["name"] in (GROUP_TABLE, NEEDS_TABLE):
            matched = node.get("traceData") or []
            for row in matched if isinstance(matched, list) else [matched]:  # collect: a list; first: one row
                fired.add(row["rule"]["_id"])
    return Answer(tuple(result["grupper"]), bool(result["store_og_sammensatte_behov"]), frozenset(fired))


def our_answer(motor: Regelmotor, case: Case) -> Answer | None:
    try:
        decision = motor.evaluate(NAME, case.facts, as_of=case.as_of, version=VERSION)
    except RegelmotorError:
        return None
    return Answer(tuple(decision.outcome["grupper"]), bool(decision.outcome["store_og_sammensatte_behov"]),
                  frozenset(decision.fired_rules))


def worker_answer(handler: EvaluationHandler, request: bytes) -> Answer | None:
    reply = handler.evaluate(request)
    if reply.decision is None:
        return None
    decision = pb.Decision.FromString(reply.decision)
    outcome = json_format.MessageToDict(decision.outcome)
    return Answer(tuple(outcome["grupper"]), bool(outcome["store_og_sammensatte_behov"]),
                  frozenset(rule.id for rule in decision.explanation.rules if rule.fired))


def zen_context(case: Case) -> dict[str, Any]:
    """The facts as a hospital system sends them (JSON: dates as ISO text), with the assessment date."""
    return {"as_of": case.as_of.isoformat(), **to_json_value(case.facts)}


def request_bytes(case: Case) -> bytes:
    return pb.EvaluateRequest(ruleset=NAME, version=VERSION, as_of=case.as_of.isoformat(),
                              facts=to_json_value(case.facts)).SerializeToString()


def check_agreement(cases: list[Case], peer: ZenPeer, motor: Regelmotor, handler: EvaluationHandler) -> int:
    """Stop the run unless zen, our decision and our worker path agree on every case; the number of refusals."""
    differences: list[str] = []
    refused = 0
    for case in cases:
        zen = zen_answer(peer, zen_context(case))
        ours = our_answer(motor, case)
        worker = worker_answer(handler, request_bytes(case))
        if zen != ours or worker != ours:
            differences.append(f"  line {case.line} {case.name!r}:\n    zen    {zen}\n    ours   {ours}\n"
                               f"    worker {worker}")
        refused += ours is None
    if differences:
        raise SystemExit(f"zen and Regelmotor disagree on {len(differences)} of {len(cases)} cases:\n"
                         + "\n".join(differences))
    return refused


def per_decision(work: Callable[[], int], seconds: float) -> tuple[float, float]:
    """µs per decision (wall, process CPU) of `work` (one pass, returning its decisions), repeated for `seconds`."""
    work()  # warm
    decisions = 0
    wall, cpu = time.perf_counter(), time.process_time()
    deadline = wall + seconds
    while time.perf_counter() < deadline:
        decisions += work()
    return ((time.perf_counter() - wall) / decisions * 1e6, (time.process_time() - cpu) / decisions * 1e6)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per side and round (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the order of the sides turning (default 5)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    motor = Regelmotor(RulesetRepository.load(ROOT / "rulesets", include_drafts=True))
    ruleset = motor.repository.get(NAME, VERSION)
    cases = load_cases(ROOT / "rulesets" / NAME / f"{VERSION}{CASES_SUFFIX}", ruleset)
    peer = ZenPeer(build_graph(ruleset))
    handler = EvaluationHandler(motor, tracer_provider().get_tracer("regelmotor.engine"))
    refused = check_agreement(cases, peer, motor, handler)
    print(f"zen-engine {metadata.version('zen-engine')} and Regelmotor agree on all {len(cases)} cases of "
          f"{NAME} {VERSION} ({len(cases) - refused} decisions: groups, store_og_sammensatte_behov and the rules "
          f"fired; {refused} invalid facts refused by both); the worker path's Decision says the same", flush=True)

    valid = [case for case in cases if case.expect_error is None]
    contexts = [zen_context(case) for case in valid]
    requests = [request_bytes(case) for case in valid]
    def zen_pass() -> int:
        for context in contexts:
            peer.evaluate(context, trace=True)
        return len(contexts)

    def decision_pass() -> int:
        for case in valid:
            motor.evaluate(NAME, case.facts, as_of=case.as_of, version=VERSION)
        return len(valid)

    def worker_pass() -> int:
        for request in requests:
            handler.evaluate(request)
        return len(requests)

    sides = {"zen (trace on)": zen_pass, "ours: decision": decision_pass, "ours: worker path": worker_pass}
    runs: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {date.today()}; "
          f"{len(valid)} cases, {args.rounds} rounds of {args.seconds:g} s per side", flush=True)
    names = list(sides)
    for number in range(args.rounds):
        for side in names[number % len(names):] + names[:number % len(names)]:
            wall, cpu = per_decision(sides[side], args.seconds)
            runs[side].append((wall, cpu))
            print(f"  round {number + 1} {side:<18} {wall:7.1f} µs wall  {cpu:7.1f} µs CPU", flush=True)
    medians = {side: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
               for side, values in runs.items()}
    zen_wall, zen_cpu = medians["zen (trace on)"]
    print()
    print("| side | µs per decision, wall (median) | CPU | × zen, wall | × zen, CPU |")
    print("|---|---|---|---|---|")
    for side, (wall, cpu) in medians.items():
        print(f"| {side} | {wall:.1f} | {cpu:.1f} | {wall / zen_wall:.2f} | {cpu / zen_cpu:.2f} |")
    ratio = medians["ours: decision"][1] / zen_cpu
    print(f"ours (decision, full explanation) / zen (trace on), CPU: {ratio:.2f} (goal <= {GOAL}: "
          f"{'met' if ratio <= GOAL else 'NOT met'})")
    if args.json:
        report = {"date": date.today().isoformat(), "zen_engine": metadata.version("zen-engine"),
                  "cases": len(cases), "decisions_timed": len(valid), "settings": vars(args) | {"json": str(args.json)},
                  "runs_us": {side: [{"wall": w, "cpu": c} for w, c in values] for side, values in runs.items()},
                  "median_us": {side: {"wall": w, "cpu": c} for side, (w, c) in medians.items()},
                  "ours_over_zen_cpu": round(ratio, 3), "goal": GOAL}
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
