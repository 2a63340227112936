"""Unary Evaluate against its floor, and the other service-level goals of issue 13, measured in one run.

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/floor.py [--seconds S] [--rounds R] [--json FILE]

Three servers run side by side for the whole run, each in its own process:
- the floor (`bench/floor_server.py`): a minimal grpc.aio server with the service's grpcio, server options and limit
  of concurrent calls, answering every Evaluate with the same pre-serialised bytes: a real Decision of the service,
  the one of median size among the answers to the bundled cases (taken from the service at the start);
- the service (`regelmotor serve --port 0 --drafts --workers N`, `tests/server_process.py`) with its decision log on
  (SQLite, the default, in a temporary data directory; `--decision-log off` to compare), N = `--workers` (default 2);
- the same service with one engine worker, for the scaling goal.
The clients are `bench/grpc_load.py`'s: `--client-processes` processes (default 2), each with its own channel and
blocking threads, so the client is not one GIL; they send the bundled cases' requests, each call with a request_id
of its own (`bench/decision_log_load.py`), since the log would answer a repeated request_id from the stored record.
The floor gets the same requests and ignores them.

In each of `--rounds` rounds (default 3), the servers are measured in turn (the order flipping each round, so the
shared machine's drift falls on all of them) at each concurrency (calls in flight, default 1, 4, 16); the one-worker
service at the highest concurrency only; then one EvaluateStream run of `--stream-requests` on the service. Figures
are medians over the rounds. Printed, each with the goal of issue 13:
- unary Evaluate calls/s ÷ the floor's calls/s, at each concurrency (goal ≥ 0.5);
- CPU of the service's front process per unary Evaluate (utime + stime from /proc/<pid>/stat, read by psutil over
  each measured window, divided by the calls in it; goal ≤ 0.25 ms);
- unary calls/s with N workers ÷ with one worker, at the highest concurrency (goal ≥ 1.4 for N = 2);
- EvaluateStream decisions/s ÷ the best unary calls/s (the best concurrency's median; keep ≥ 1.5).
The service's per-caller limit (REGELMOTOR_MAX_CALLS_PER_CALLER, default 64 calls in progress) is above every
concurrency used here; a call it refused would count as an error.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench import grpc_load as load  # noqa: E402  (needs the paths above)
from bench.decision_log_load import UniqueRequests, check_unique_ids, with_request_id  # noqa: E402
from bench.floor_server import FloorServer  # noqa: E402

GOALS = {"evaluate_over_floor": 0.5, "front_cpu_ms_per_call": 0.25, "workers_scaling": 1.4,
         "stream_over_unary": 1.5}


def typical_decision(address: str, payloads: list[bytes]) -> bytes:
    """The service's answer of median size among its answers to `payloads` (each sent once, with an id of its
    own); sending them also warms the service up."""
    import grpc

    answers: list[bytes] = []
    with grpc.insecure_channel(address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(load.EVALUATE)
        for number, payload in enumerate(payloads):
            answers.append(call(with_request_id(payload, f"floor-typical-{os.getpid()}-{number}"), timeout=60))
    answers.sort(key=len)
    return answers[len(answers) // 2]


@dataclass
class Run:
    target: str  # "floor", "service" or "service, 1 worker"
    round: int
    concurrency: int
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    calls: int
    front_cpu_ms_per_call: float
    cpu_percent: dict[str, float] = field(default_factory=dict)


@dataclass
class StreamRun:
    round: int
    decisions: int
    errors: int
    seconds: float
    decisions_per_s: float
    in_order: bool
    cpu_percent: dict[str, float] = field(default_factory=dict)


def unary_run(name: str, server: Any, payloads: list[bytes], number: int, concurrency: int,
              args: argparse.Namespace) -> Run:
    sent = multiprocessing.get_context("spawn").Value("q", 0)
    result = load.measure_unary(server, "evaluate", UniqueRequests(payloads, sent), "processes", concurrency,
                                args.client_processes, args.warmup, args.seconds)
    front_ms = 10 * result.cpu_percent.get("front", 0.0) / result.calls_per_s if result.calls_per_s else float("nan")
    run = Run(name, number, concurrency, result.calls_per_s, result.p50_ms, result.p99_ms, result.errors,
              result.calls, round(front_ms, 3), result.cpu_percent)
    print(f"  round {number} {name:<18} {concurrency:>3} in flight {run.calls_per_s:>7.0f} calls/s  p50 "
          f"{run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  errors {run.errors}  front CPU {front_ms:.3f} ms/call  "
          f"CPU% front/workers/clients/other {load.cpu_text(result.cpu_percent)}", flush=True)
    return run


def stream_run(server: Any, payloads: list[bytes], number: int, args: argparse.Namespace) -> StreamRun:
    sent = multiprocessing.get_context("spawn").Value("q", 0)
    result = load.measure_stream(server, UniqueRequests(payloads, sent), 1, args.stream_requests)
    run = StreamRun(number, result.decisions, result.errors, result.seconds, result.decisions_per_s, result.in_order,
                    result.cpu_percent)
    print(f"  round {number} EvaluateStream x1: {run.decisions} decisions in {run.seconds:.2f} s = "
          f"{run.decisions_per_s:.0f}/s  errors {run.errors}  in order {run.in_order}  "
          f"CPU% front/workers/clients/other {load.cpu_text(result.cpu_percent)}", flush=True)
    return run


def median_rate(runs: list[Run], target: str, concurrency: int) -> float:
    return statistics.median(r.calls_per_s for r in runs if r.target == target and r.concurrency == concurrency)


def summary(runs: list[Run], streams: list[StreamRun], args: argparse.Namespace) -> dict[str, Any]:
    top = max(args.concurrency)
    over_floor = {c: median_rate(runs, "service", c) / median_rate(runs, "floor", c) for c in args.concurrency}
    per_round = {c: [s.calls_per_s / f.calls_per_s for s, f in zip(
        [r for r in runs if r.target == "service" and r.concurrency == c],
        [r for r in runs if r.target == "floor" and r.concurrency == c], strict=True) if f.calls_per_s]
        for c in args.concurrency}
    service = [r for r in runs if r.target == "service"]
    front = sum(r.front_cpu_ms_per_call * r.calls for r in service) / max(1, sum(r.calls for r in service))
    floor_runs = [r for r in runs if r.target == "floor"]
    floor_front = sum(r.front_cpu_ms_per_call * r.calls for r in floor_runs) / max(1, sum(r.calls for r in floor_runs))
    best_unary = max(median_rate(runs, "service", c) for c in args.concurrency)
    stream = statistics.median(s.decisions_per_s for s in streams) if streams else float("nan")
    return {
        "evaluate_over_floor": {str(c): round(v, 3) for c, v in over_floor.items()},
        "evaluate_over_floor_per_round": {str(c): [round(v, 3) for v in values] for c, values in per_round.items()},
        "front_cpu_ms_per_call": round(front, 3), "floor_front_cpu_ms_per_call": round(floor_front, 3),
        "workers_scaling": round(median_rate(runs, "service", top) / median_rate(runs, "service, 1 worker", top), 3),
        "best_unary_per_s": round(best_unary, 1), "stream_per_s": round(stream, 1),
        "stream_over_unary": round(stream / best_unary, 3),
        "errors": sum(r.errors for r in runs) + sum(s.errors for s in streams),
    }


def goal_lines(figures: dict[str, Any], args: argparse.Namespace) -> list[str]:
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    top = max(args.concurrency)
    lines = ["| figure (issue 13) | measured | goal | |", "|---|---|---|---|"]
    for concurrency, ratio in figures["evaluate_over_floor"].items():
        lines.append(f"| unary Evaluate ÷ floor calls/s, {concurrency} in flight | {ratio:.2f} (per round "
                     f"{', '.join(f'{v:.2f}' for v in figures['evaluate_over_floor_per_round'][concurrency])}) "
                     f"| ≥ {GOALS['evaluate_over_floor']} | {verdict(ratio >= GOALS['evaluate_over_floor'])} |")
    front = figures["front_cpu_ms_per_call"]
    lines.append(f"| CPU of the front process per unary Evaluate | {front:.3f} ms (the floor's: "
                 f"{figures['floor_front_cpu_ms_per_call']:.3f} ms) | ≤ {GOALS['front_cpu_ms_per_call']} ms "
                 f"| {verdict(front <= GOALS['front_cpu_ms_per_call'])} |")
    scaling = figures["workers_scaling"]
    lines.append(f"| unary calls/s, {args.workers} workers ÷ 1 worker, {top} in flight | {scaling:.2f} "
                 f"| ≥ {GOALS['workers_scaling']} | {verdict(scaling >= GOALS['workers_scaling'])} |")
    stream = figures["stream_over_unary"]
    lines.append(f"| EvaluateStream decisions/s ÷ best unary calls/s | {stream:.2f} ({figures['stream_per_s']:.0f} ÷ "
                 f"{figures['best_unary_per_s']:.0f}) | ≥ {GOALS['stream_over_unary']} "
                 f"| {verdict(stream >= GOALS['stream_over_unary'])} |")
    return lines


def cpu_ms_per_call(runs: list[Run], target: str, concurrency: int) -> dict[str, float]:
    """Median CPU per call of each part (front, workers, clients, other) of `target`'s runs at `concurrency`:
    its share of the machine over the window (percent of one core) divided by the calls answered."""
    mine = [r for r in runs if r.target == target and r.concurrency == concurrency and r.calls_per_s]
    parts = ("front", "workers", "clients")  # "other": processes that are not the benchmark's
    return {part: statistics.median(10 * r.cpu_percent.get(part, 0.0) / r.calls_per_s for r in mine)
            for part in parts}


def budget_lines(runs: list[Run], args: argparse.Namespace) -> list[str]:
    """Why the throughput goals hold or not, in CPU: at the highest concurrency both servers keep the cores busy,
    so calls/s ≈ cores ÷ (CPU per call of everything on the machine). The ratios that CPU allows are printed beside
    the measured ones; a goal above its ceiling cannot be met on this machine by any scheduling, only by spending
    less CPU per call."""
    top = max(args.concurrency)
    cores = os.cpu_count() or 1
    floor = cpu_ms_per_call(runs, "floor", top)
    service = cpu_ms_per_call(runs, "service", top)
    single = cpu_ms_per_call(runs, "service, 1 worker", top)
    if not floor or not service or not single:
        return []
    lines = [f"CPU per call at {top} in flight, ms (median; what {cores} cores must pay for each answered call):", "",
             "| target | front (server) | engine workers | clients | all |", "|---|---|---|---|---|"]
    for name, parts in (("floor", floor), ("service", service), ("service, 1 worker", single)):
        lines.append(f"| {name} | {parts.get('front', 0):.3f} | {parts.get('workers', 0):.3f} | "
                     f"{parts.get('clients', 0):.3f} | {sum(parts.values()):.3f} |")
    floor_all, service_all = sum(floor.values()), sum(service.values())
    single_rate = median_rate(runs, "service, 1 worker", top)
    ceiling_ratio = floor_all / service_all
    measured_ratio = median_rate(runs, "service", top) / median_rate(runs, "floor", top)
    ceiling_scaling = cores * 1000 / service_all / single_rate
    allowed = floor_all / GOALS["evaluate_over_floor"] - service.get("clients", 0.0)
    lines += ["", "| figure | measured | ceiling at this CPU per call | goal |", "|---|---|---|---|",
              f"| unary Evaluate ÷ floor, {top} in flight | {measured_ratio:.2f} "
              f"| {ceiling_ratio:.2f} (floor's {floor_all:.3f} ÷ service's {service_all:.3f} ms) | ≥ "
              f"{GOALS['evaluate_over_floor']}: needs front + workers ≤ {allowed:.3f} ms per call, now "
              f"{service.get('front', 0) + service.get('workers', 0):.3f} |",
              f"| {args.workers} workers ÷ 1 worker, {top} in flight | "
              f"{median_rate(runs, 'service', top) / single_rate:.2f} | {ceiling_scaling:.2f} ({cores} cores ÷ "
              f"{service_all:.3f} ms = {cores * 1000 / service_all:.0f} calls/s, ÷ one worker's {single_rate:.0f}) "
              f"| ≥ {GOALS['workers_scaling']} |",
              f"| front CPU per call | {service.get('front', 0):.3f} ms | the floor server's own: "
              f"{floor.get('front', 0):.3f} ms | ≤ {GOALS['front_cpu_ms_per_call']} ms |"]
    return lines


def rates_table(runs: list[Run], args: argparse.Namespace) -> list[str]:
    lines = ["| target | in flight | calls/s, median (per round) | p50 ms (median) | p99 ms (median) "
             "| front CPU ms/call (median) | errors |", "|---|---|---|---|---|---|---|"]
    for target in ("floor", "service", "service, 1 worker"):
        for concurrency in args.concurrency:
            mine = [r for r in runs if r.target == target and r.concurrency == concurrency]
            if not mine:
                continue
            lines.append(f"| {target} | {concurrency} | {statistics.median(r.calls_per_s for r in mine):.0f} "
                         f"({', '.join(f'{r.calls_per_s:.0f}' for r in mine)}) | "
                         f"{statistics.median(r.p50_ms for r in mine):.2f} | "
                         f"{statistics.median(r.p99_ms for r in mine):.2f} | "
                         f"{statistics.median(r.front_cpu_ms_per_call for r in mine):.3f} | "
                         f"{sum(r.errors for r in mine)} |")
    return lines


def measure_all(args: argparse.Namespace, payloads: list[bytes]) -> tuple[list[Run], list[StreamRun], int]:
    from tests.server_process import running_server

    env = {"REGELMOTOR_DECISION_LOG": args.decision_log}
    runs: list[Run] = []
    streams: list[StreamRun] = []
    with ExitStack() as stack:
        service = stack.enter_context(running_server(workers=args.workers, env=env))
        single = stack.enter_context(running_server(workers=1, env=env))
        payloads = load.check_requests(service.address, load.Requests(payloads, b"", {}, 0)).evaluate
        load.check_requests(single.address, load.Requests(payloads, b"", {}, 0))  # the warm-up of the other
        answer = typical_decision(service.address, payloads)
        floor = stack.enter_context(FloorServer.start(answer))
        print(f"floor answers {len(answer)} bytes (the median Decision of {len(payloads)} bundled cases); "
              f"service on {service.address} ({args.workers} workers), one-worker service on {single.address}; "
              f"decision log {args.decision_log}",
              flush=True)
        top = max(args.concurrency)
        for number in range(1, args.rounds + 1):
            for concurrency in args.concurrency:
                targets: list[tuple[str, Any]] = [("floor", floor), ("service", service)]
                if concurrency == top:
                    targets.append(("service, 1 worker", single))
                turn = (number - 1) % len(targets)
                for name, server in targets[turn:] + targets[:turn]:
                    runs.append(unary_run(name, server, payloads, number, concurrency, args))
            streams.append(stream_run(service, payloads, number, args))
    return runs, streams, len(answer)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured window of each unary run (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured lead-in of each unary run (default 0.5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the servers (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="engine workers of the service (default 2)")
    parser.add_argument("--concurrency", type=load.positive_ints, default=[1, 4, 16],
                        help="calls in flight, comma-separated (default 1,4,16); the highest is the scaling one")
    parser.add_argument("--client-processes", type=int, default=2, help="load client processes (default 2)")
    parser.add_argument("--stream-requests", type=int, default=3000,
                        help="requests of each round's EvaluateStream run (default 3000)")
    parser.add_argument("--decision-log", choices=("sqlite", "off"), default="sqlite",
                        help="the services' decision log (default sqlite, as issue 13 asks; off to compare)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds: at least 1")

    requests = load.build_requests(ROOT / "rulesets")
    check_unique_ids(requests.evaluate[0])
    began = time.monotonic()
    print(f"Regelmotor unary floor: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{date.today().isoformat()}; {args.rounds} rounds of {args.seconds:g} s windows", flush=True)
    idle_load = load.machine_load()
    print(f"machine load before start: {idle_load:.0f}% of one core busy", flush=True)
    runs, streams, answer_bytes = measure_all(args, requests.evaluate)
    figures = summary(runs, streams, args)
    print()
    print("\n".join(goal_lines(figures, args)))
    print()
    print("\n".join(rates_table(runs, args)))
    print()
    print("\n".join(budget_lines(runs, args)))
    if figures["errors"]:
        print(f"WARNING: {figures['errors']} calls or stream items failed")
    print(f"total {time.monotonic() - began:.0f} s")
    if args.json:
        report = {
            **load.report_head(args, idle_load),
            "floor_answer_bytes": answer_bytes, "goals": GOALS, "summary": figures,
            "runs": [asdict(r) for r in runs], "streams": [asdict(s) for s in streams],
        }
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
