"""Latency of unary Evaluate with the decision log on: p50/p99 at one call in flight and at half the maximum rate,
on SQLite and on PostgreSQL (issue 13, point 4; goal p99 ≤ 5 ms at half the maximum rate).

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/latency.py [--seconds S] [--json FILE]

One service per decision log (`regelmotor serve --port 0 --drafts --workers N`, `tests/server_process.py`): SQLite
in its temporary data directory, and a fresh PostgreSQL database made for the run on `--postgres` (default
postgresql://postgres@127.0.0.1:5432, trust authentication) and dropped after it (`--backends` may add `off`, a
service without a log, to see what the log adds). All stay up and are measured in
turn, in three steps per round:
1. one call in flight, closed loop (`bench/grpc_load.py`'s client): p50 and p99;
2. the maximum rate: closed loop with `--max-concurrency` calls in flight (default 16), over the client processes;
3. open loop at half that rate: every call has its time on a fixed schedule (evenly spaced, the client processes
   taking turns), is sent then (or at once, if the client is late), and its latency is counted from its scheduled
   time to its answer. A server that falls behind so delays every later call, and that waiting is in the figures
   (no coordinated omission: a closed-loop client would wait for the slow answer before it sends the next call,
   and hide the queue). The client's own lateness is printed too. `--fractions 0.5,0.25,0.1` adds open loops at
   lower fractions of the maximum: the rate up to which a p99 bound holds, the figure capacity planning needs.
Each call carries a request_id of its own (`bench/decision_log_load.py`): the log answers a repeated one from the
stored record. A call refused or failed counts as an error, not as a latency (REGELMOTOR_MAX_CALLS_PER_CALLER,
default 64 calls in progress, refuses calls beyond it if the service falls far behind).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import date
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench import grpc_load as load  # noqa: E402  (needs the paths above)
from bench.decision_log_load import UniqueRequests, check_unique_ids, postgres_database  # noqa: E402

GOAL_P99_MS = 5.0


@dataclass(frozen=True)
class Schedule:
    """One client process's calls: `count` calls, `interval` seconds apart, the first at `start + phase`, drawing
    the requests from `offset` on."""

    rate_per_process: float
    count: int
    phase: float
    offset: int

    @property
    def interval(self) -> float:
        return 1.0 / self.rate_per_process


def open_loop_client(address: str, payloads: list[bytes], schedule: Schedule, ready: Any, go: EventType, start: Any,
                     results: Any) -> None:
    """A client process sending on a fixed schedule, without waiting for answers; latency from the scheduled time."""
    import grpc

    channel = grpc.insecure_channel(address)
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(load.EVALUATE)
    call(payloads[0], timeout=30)  # connected before the clock starts
    ready.put(os.getpid())
    go.wait()
    first = start.value + schedule.phase
    latencies, lateness = array("d"), array("d")
    errors = [0]
    lock = threading.Lock()
    answered = threading.Semaphore(0)

    def when_answered(scheduled: float) -> Callable[[grpc.Future[Any]], None]:
        def finished(future: grpc.Future[Any]) -> None:
            ended = time.monotonic()
            with lock:
                if future.exception() is None:
                    latencies.append(ended - scheduled)
                else:
                    errors[0] += 1
            answered.release()

        return finished

    for number in range(schedule.count):
        scheduled = first + number * schedule.interval
        pause = scheduled - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        lateness.append(max(0.0, time.monotonic() - scheduled))
        future = call.future(payloads[(schedule.offset + number) % len(payloads)], timeout=30)
        future.add_done_callback(when_answered(scheduled))
    for _ in range(schedule.count):
        answered.acquire(timeout=60)
    with lock:
        results.put((latencies.tobytes(), errors[0], lateness.tobytes()))
    channel.close()


@dataclass
class OpenLoopResult:
    rate: float  # the schedule's calls/s
    calls: int
    errors: int
    achieved_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    client_late_p99_ms: float  # how late the client sent its calls (its own scheduling, not the server)


def measure_open_loop(server: Any, payloads: list[bytes], rate: float, seconds: float,
                      client_processes: int) -> OpenLoopResult:
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    start = context.Value("d", 0.0)
    per_process = rate / client_processes
    count = max(1, round(per_process * seconds))
    children = []
    for number in range(client_processes):
        # Interleaved schedules: together, one call every 1/rate seconds.
        schedule = Schedule(per_process, count, number / rate, number * 104729)
        child = context.Process(target=open_loop_client, args=(server.address, payloads, schedule, ready, go, start,
                                                               results), daemon=True)
        child.start()
        children.append(child)
    for _ in children:
        ready.get(timeout=120)
    start.value = time.monotonic() + 0.2
    go.set()
    latencies, lateness = array("d"), array("d")
    errors = 0
    for _ in children:
        raw, failed, late = results.get(timeout=seconds + 180)
        part, late_part = array("d"), array("d")
        part.frombytes(raw)
        late_part.frombytes(late)
        latencies.extend(part)
        lateness.extend(late_part)
        errors += failed
    elapsed = time.monotonic() - start.value
    for child in children:
        child.join(30)
    ordered = sorted(latencies)
    return OpenLoopResult(round(rate, 1), len(ordered), errors, round(len(ordered) / elapsed, 1),
                          load.percentile_ms(ordered, 50), load.percentile_ms(ordered, 99),
                          load.percentile_ms(ordered, 99.9), round(ordered[-1] * 1000, 2) if ordered else float("nan"),
                          load.percentile_ms(sorted(lateness), 99))


@dataclass
class BackendRound:
    backend: str
    round: int
    c1_p50_ms: float = 0.0
    c1_p99_ms: float = 0.0
    c1_calls_per_s: float = 0.0
    max_per_s: float = 0.0
    max_p99_ms: float = 0.0
    open_loop: OpenLoopResult | None = None  # at half the maximum rate: the goal's
    lighter: list[tuple[float, OpenLoopResult]] = field(default_factory=list)  # --fractions below ½: (fraction, result)
    errors: int = 0


def sent_counter() -> Any:
    return multiprocessing.get_context("spawn").Value("q", 0)


def run_rounds(servers: dict[str, Any], payloads: list[bytes], args: argparse.Namespace) -> list[BackendRound]:
    rounds: list[BackendRound] = []
    for number in range(1, args.rounds + 1):
        order = list(servers)[(number - 1) % len(servers):] + list(servers)[:(number - 1) % len(servers)]
        mine = {name: BackendRound(name, number) for name in order}
        for name in order:  # step 1: one call in flight
            one = load.measure_unary(servers[name], "evaluate", UniqueRequests(payloads, sent_counter()), "processes",
                                     1, 1, args.warmup, args.seconds)
            mine[name].c1_p50_ms, mine[name].c1_p99_ms, mine[name].c1_calls_per_s = one.p50_ms, one.p99_ms, \
                one.calls_per_s
            mine[name].errors += one.errors
            print(f"  round {number} {name:<10} 1 in flight: {one.calls_per_s:.0f} calls/s  p50 {one.p50_ms:.2f} ms  "
                  f"p99 {one.p99_ms:.2f} ms  errors {one.errors}", flush=True)
        for name in order:  # step 2: the maximum rate
            top = load.measure_unary(servers[name], "evaluate", UniqueRequests(payloads, sent_counter()), "processes",
                                     args.max_concurrency, args.client_processes, args.warmup, args.seconds)
            mine[name].max_per_s, mine[name].max_p99_ms = top.calls_per_s, top.p99_ms
            mine[name].errors += top.errors
            print(f"  round {number} {name:<10} {args.max_concurrency} in flight (maximum rate): {top.calls_per_s:.0f} "
                  f"calls/s  p99 {top.p99_ms:.2f} ms  errors {top.errors}  CPU% front/workers/clients/other "
                  f"{load.cpu_text(top.cpu_percent)}", flush=True)
        for fraction in sorted({0.5, *args.fractions}, reverse=True):  # step 3: open loop at half of it (and less)
            for name in order:
                rate = mine[name].max_per_s * fraction
                result = measure_open_loop(servers[name], UniqueRequests(payloads, sent_counter()), rate,
                                           args.open_seconds, args.client_processes)
                if fraction == 0.5:
                    mine[name].open_loop = result
                else:
                    mine[name].lighter.append((fraction, result))
                mine[name].errors += result.errors
                print(f"  round {number} {name:<10} open loop at {rate:.0f}/s ({fraction:g} of max): achieved "
                      f"{result.achieved_per_s:.0f}/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  p99.9 "
                      f"{result.p999_ms:.2f} ms  max {result.max_ms:.1f} ms  errors {result.errors}  client late p99 "
                      f"{result.client_late_p99_ms:.2f} ms", flush=True)
        rounds.extend(mine[name] for name in order)
    return rounds


def table(rounds: list[BackendRound]) -> list[str]:
    lines = ["| decision log | round | 1 in flight: calls/s | p50 ms | p99 ms | max calls/s (its p99 ms) "
             "| open loop at ½ max: calls/s | p50 ms | p99 ms | p99.9 ms | max ms | client late p99 ms | errors "
             "| p99 ≤ 5 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rounds:
        o = r.open_loop
        assert o is not None
        lines.append(f"| {r.backend} | {r.round} | {r.c1_calls_per_s:.0f} | {r.c1_p50_ms:.2f} | {r.c1_p99_ms:.2f} | "
                     f"{r.max_per_s:.0f} ({r.max_p99_ms:.1f}) | {o.rate:.0f} | {o.p50_ms:.2f} | {o.p99_ms:.2f} | "
                     f"{o.p999_ms:.2f} | {o.max_ms:.1f} | {o.client_late_p99_ms:.2f} | {r.errors} | "
                     f"{'met' if o.p99_ms <= GOAL_P99_MS else 'NOT met'} |")
    lighter = [(r, fraction, o) for r in rounds for fraction, o in r.lighter]
    if lighter:
        lines += ["", "| decision log | round | open loop at | calls/s | p50 ms | p99 ms | p99.9 ms | max ms "
                      "| p99 ≤ 5 ms |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r.backend} | {r.round} | {fraction:g} of max | {o.rate:.0f} | {o.p50_ms:.2f} | "
                  f"{o.p99_ms:.2f} | {o.p999_ms:.2f} | {o.max_ms:.1f} | {'yes' if o.p99_ms <= GOAL_P99_MS else 'no'} |"
                  for r, fraction, o in lighter]
    return lines


def fractions(text: str) -> list[float]:
    values = [float(part) for part in text.split(",") if part.strip()]
    if not all(0 < value <= 0.5 for value in values):
        raise argparse.ArgumentTypeError("fractions of the maximum rate in (0, 0.5]")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="window of the closed-loop runs (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured lead-in of closed-loop runs (default 1)")
    parser.add_argument("--open-seconds", type=float, default=10.0,
                        help="length of the open-loop schedule (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="engine workers of each service (default 2)")
    parser.add_argument("--max-concurrency", type=int, default=16,
                        help="calls in flight when measuring the maximum rate (default 16)")
    parser.add_argument("--client-processes", type=int, default=2, help="load client processes (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds over the decision logs (default 1)")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="decision logs (default sqlite,postgresql; off, no log, to compare)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432",
                        help="PostgreSQL server for the throwaway database (default %(default)s)")
    parser.add_argument("--fractions", type=fractions, default=[0.5],
                        help="open-loop rates as fractions of the maximum, comma-separated, at most 0.5 (default "
                             "0.5, the goal's); lower ones show the rate a p99 bound allows")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not backends or not set(backends) <= {"sqlite", "postgresql", "off"} or args.rounds < 1:
        parser.error("--backends: sqlite, postgresql and/or off; --rounds: at least 1")

    from tests.server_process import running_server

    requests = load.build_requests(ROOT / "rulesets")
    check_unique_ids(requests.evaluate[0])
    began = time.monotonic()
    print(f"Regelmotor latency: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{date.today().isoformat()}; decision log on ({', '.join(backends)}), {args.workers} workers", flush=True)
    print(f"machine load before start: {load.machine_load():.0f}% of one core busy", flush=True)
    with ExitStack() as stack:
        servers: dict[str, Any] = {}
        for backend in backends:
            setting = backend if backend in ("sqlite", "off") else stack.enter_context(
                postgres_database(args.postgres, f"regelmotor_latency_{os.getpid()}"))
            servers[backend] = stack.enter_context(running_server(workers=args.workers,
                                                                  env={"REGELMOTOR_DECISION_LOG": setting}))
            checked = load.check_requests(servers[backend].address, requests)  # the warm-up
        rounds = run_rounds(servers, checked.evaluate, args)
    print()
    print("\n".join(table(rounds)))
    print(f"goal: p99 ≤ {GOAL_P99_MS} ms at half the maximum rate; total {time.monotonic() - began:.0f} s")
    if args.json:
        report = {"date": date.today().isoformat(), "settings": {k: str(v) if isinstance(v, Path) else v
                                                                 for k, v in vars(args).items()},
                  "goal_p99_ms": GOAL_P99_MS, "rounds": [asdict(r) for r in rounds]}
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
