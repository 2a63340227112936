"""gRPC load benchmark: the real `regelmotor serve` under load from separate client processes.

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/grpc_load.py [--seconds S] [--workers N] [--json FILE]

What it measures, all against one server started as a child process (`tests/server_process.py`:
`regelmotor serve --port 0 --drafts` with the bundled rulesets, `--workers` engine processes):

- unary `DecisionService.Evaluate` and, in the same run on the same server, the empty RPC
  `grpc.health.v1.Health/Check` (answered by the same gRPC front process without touching the
  engine): calls/s, p50 and p99 latency at each concurrency (total calls in flight), and the
  ratio Evaluate/empty of the call rates (goal >= 0.5);
- in two client layouts: "processes" (the in-flight calls spread over several client processes,
  each with its own channel and blocking threads, so the client is not one GIL) and "one channel"
  (one client process, every thread sharing ONE channel, as a hospital integration engine does);
- `DecisionService.EvaluateStream`: one or a few concurrent bidirectional streams (each in its own
  client process) sharing `--stream-requests` requests; decisions/s against the best unary
  Evaluate rate (goal >= 3x).

Requests are the bundled test cases' facts (every version of every ruleset under rulesets/, cases
that expect an error left out), the version pinned to the case file's version, all mixed. Every
request is checked once through the generated stubs before the load starts; the load itself sends
pre-serialised request bytes and does not parse unary responses (a status other than OK counts
as an error), so the client spends as little CPU as it can on a machine it shares with the server.
CPU use of the server front process, the engine workers, the clients and anything else running on
the machine ("other") is sampled with psutil in each measured window; the bench runs on the same
cores as the server, so a busy machine shows up there.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.auth_tokens import BenchAuth

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

EVALUATE = "/regelmotor.v1.DecisionService/Evaluate"
EVALUATE_STREAM = "/regelmotor.v1.DecisionService/EvaluateStream"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
KINDS = {"evaluate": EVALUATE, "empty": HEALTH_CHECK}
Metadata = tuple[tuple[str, str], ...]  # sent with every call: the bearer token when authentication is on


# ---------------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True)
class Requests:
    evaluate: list[bytes]
    empty: bytes
    per_version: dict[str, int]
    skipped: int


def build_requests(rulesets: Path) -> Requests:
    """Serialised EvaluateRequests from every bundled version's cases, interleaved across versions."""
    from grpc_health.v1 import health_pb2

    from regelmotor.core.cases import load_cases
    from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository
    from regelmotor_api.v1 import decision_pb2

    repository = RulesetRepository.load(rulesets, include_drafts=True)
    lists: list[list[bytes]] = []
    per_version: dict[str, int] = {}
    skipped = 0
    for name in sorted(repository.versions):
        for version in sorted(repository.versions[name]):
            ruleset = repository.get(name, version)
            path = rulesets / name / f"{version}{CASES_SUFFIX}"
            if not path.exists():
                continue
            requests: list[bytes] = []
            for number, case in enumerate(load_cases(path, ruleset)):
                if case.expect_error is not None:
                    skipped += 1
                    continue
                request = decision_pb2.EvaluateRequest(
                    ruleset=name, version=version, as_of=_iso(case.as_of), facts=case.facts,
                    request_id=f"bench-{name}-{version}-{number}")
                requests.append(request.SerializeToString())
            if requests:
                lists.append(requests)
                per_version[f"{name}@{version}"] = len(requests)
    mixed: list[bytes] = []
    for index in range(max((len(r) for r in lists), default=0)):  # round-robin over versions
        mixed.extend(r[index] for r in lists if index < len(r))
    if not mixed:
        raise SystemExit(f"no usable test cases under {rulesets}")
    empty = health_pb2.HealthCheckRequest(service="").SerializeToString()
    return Requests(mixed, empty, per_version, skipped)


def _iso(value: date) -> str:
    return value.isoformat()


def check_requests(address: str, requests: Requests, metadata: Metadata = ()) -> Requests:
    """Send each request once through the generated stubs; keep only those answered with a Decision."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from regelmotor_api.v1 import decision_pb2, decision_pb2_grpc

    kept: list[bytes] = []
    failures: list[str] = []
    with grpc.insecure_channel(address) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]
        for raw in requests.evaluate:
            request = decision_pb2.EvaluateRequest.FromString(raw)
            try:
                decision = stub.Evaluate(request, timeout=30, metadata=metadata or None)
            except grpc.RpcError as exc:
                failures.append(f"{request.request_id}: {exc.code().name} {exc.details()}")
                continue
            if decision.version != request.version or not decision.decision_id:
                failures.append(f"{request.request_id}: answered by {decision.ruleset}@{decision.version}")
                continue
            kept.append(raw)
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest.FromString(requests.empty), timeout=10).status
        if status != health_pb2.HealthCheckResponse.SERVING:
            raise SystemExit(f"health check answered {status}")
    for failure in failures:
        print(f"  left out (not answered with a decision): {failure}", file=sys.stderr)
    if not kept:
        raise SystemExit("no request was answered with a decision")
    return Requests(kept, requests.empty, requests.per_version, requests.skipped + len(failures))


# ---------------------------------------------------------------------------------------------
# Client processes


@dataclass(frozen=True)
class UnaryJob:
    method: str
    payloads: list[bytes]
    threads: int
    warmup: float
    seconds: float
    metadata: Metadata = ()
    options: tuple[tuple[str, str], ...] = ()  # the channel's (bench/scale_out.py: round_robin over instances)


def unary_client(address: str, job: UnaryJob, offset: int, ready: Any, go: EventType, start: Any,
                 results: Any) -> None:
    """A client process: one channel, `job.threads` threads each making blocking calls back to back.

    Calls that start inside the measured window [start + warmup, start + warmup + seconds) count.
    """
    import grpc

    channel = grpc.insecure_channel(address, options=job.options)
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(job.method)  # bytes both ways
    metadata = job.metadata or None
    call(job.payloads[0], timeout=30, metadata=metadata)  # connected before the clock starts
    ready.put(os.getpid())
    go.wait()
    window_start = start.value + job.warmup
    window_end = window_start + job.seconds
    latencies: list[array[float]] = [array("d") for _ in range(job.threads)]
    errors = [0] * job.threads

    def run(number: int) -> None:
        mine = latencies[number]
        payloads = job.payloads
        count = len(payloads)
        index = (offset + number * 7919) % count
        pause = start.value - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        while True:
            began = time.monotonic()
            if began >= window_end:
                return
            try:
                call(payloads[index], timeout=30, metadata=metadata)
            except grpc.RpcError:
                if began >= window_start:
                    errors[number] += 1
                continue
            finally:
                index = (index + 1) % count
            if began >= window_start:
                mine.append(time.monotonic() - began)

    workers = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(job.threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    merged = array("d")
    for part in latencies:
        merged.extend(part)
    results.put((merged.tobytes(), sum(errors)))
    channel.close()


def stream_client(address: str, payloads: list[bytes], count: int, offset: int, ready: Any, go: EventType,
                  results: Any, metadata: Metadata = ()) -> None:
    """A client process with one EvaluateStream: send `count` requests, read every response."""
    import grpc

    from regelmotor_api.v1 import decision_pb2

    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=30)
    call: grpc.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(EVALUATE_STREAM)

    def requests() -> Iterator[bytes]:
        for number in range(count):
            yield payloads[(offset + number) % len(payloads)]

    ready.put(os.getpid())
    go.wait()
    began = time.monotonic()
    decisions = errors = 0
    first_error = ""
    in_order = True
    for expected, raw in enumerate(call(requests(), timeout=600, metadata=metadata or None)):
        response = decision_pb2.EvaluateStreamResponse.FromString(raw)
        in_order = in_order and response.index == expected
        if response.HasField("decision"):
            decisions += 1
        else:
            errors += 1
            first_error = first_error or f"{response.error}"
    results.put((began, time.monotonic(), decisions, errors, in_order, first_error))
    channel.close()


# ---------------------------------------------------------------------------------------------
# CPU sampling


class CpuMeter:
    """CPU used over a window by the server front, the engine workers, the clients (with this process)
    and everything else on the machine ("other": load that is not ours), in percent of one core."""

    def __init__(self, front: int, workers: Sequence[int], clients: Sequence[int]) -> None:
        import psutil

        self._psutil = psutil
        self._groups = {"front": [psutil.Process(front)], "workers": [psutil.Process(p) for p in workers],
                        "clients": [psutil.Process(p) for p in (*clients, os.getpid())]}
        self._before: dict[str, float] = {}
        self._began = 0.0

    def _sample(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for group, processes in self._groups.items():
            total = 0.0
            for process in processes:
                try:
                    times = process.cpu_times()
                except self._psutil.Error:  # a client that has already finished
                    continue
                total += times.user + times.system
            totals[group] = total
        machine = self._psutil.cpu_times()
        totals["busy"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        return totals

    def begin(self) -> None:
        self._before = self._sample()
        self._began = time.monotonic()

    def end(self) -> dict[str, float]:
        after = self._sample()
        elapsed = time.monotonic() - self._began
        used = {group: 100 * (after[group] - self._before.get(group, 0.0)) / elapsed for group in after}
        busy = used.pop("busy")
        used["other"] = max(0.0, busy - sum(used.values()))
        return {group: round(value, 1) for group, value in used.items()}


def machine_load(seconds: float = 1.0) -> float:
    """Percent of one core busy on the whole machine over `seconds` (before our load starts)."""
    import psutil

    before = psutil.cpu_times()
    time.sleep(seconds)
    after = psutil.cpu_times()
    idle = (after.idle - before.idle) + (getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0))
    return round(float(100 * ((sum(after) - sum(before)) - idle) / seconds), 1)


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class UnaryResult:
    kind: str
    layout: str
    concurrency: int
    processes: int
    calls: int
    errors: int
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_percent: dict[str, float] = field(default_factory=dict)


@dataclass
class StreamResult:
    streams: int
    requests: int
    decisions: int
    errors: int
    seconds: float
    decisions_per_s: float
    in_order: bool
    cpu_percent: dict[str, float] = field(default_factory=dict)


def split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


@dataclass
class UnaryClients:
    """Unary client processes, started and connected, waiting for `begin`."""

    processes: list[Any]
    pids: list[int]
    go: EventType
    start: Any  # multiprocessing Value("d"): when the load begins (time.monotonic)
    results: Any

    def begin(self) -> float:
        """Let the clients go; returns when the load begins."""
        self.start.value = time.monotonic() + 0.05
        self.go.set()
        return float(self.start.value)

    def gather(self) -> tuple[list[float], int]:
        """Once every client has finished: the latencies of all their calls in the window, sorted, and the errors."""
        latencies = array("d")
        errors = 0
        for _ in self.processes:
            raw, failed = self.results.get(timeout=120)
            part = array("d")
            part.frombytes(raw)
            latencies.extend(part)
            errors += failed
        for child in self.processes:
            child.join(30)
        return sorted(latencies), errors


def start_unary_clients(address: str, jobs: Sequence[UnaryJob]) -> UnaryClients:
    """A client process per job (`unary_client`), each connected to `address` before this returns."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    start = context.Value("d", 0.0)
    children = []
    for number, job in enumerate(jobs):
        child = context.Process(target=unary_client, args=(address, job, number * 104729, ready, go, start,
                                                           results), daemon=True)
        child.start()
        children.append(child)
    pids = [ready.get(timeout=120) for _ in children]
    return UnaryClients(children, pids, go, start, results)


def measure_unary(server: Any, kind: str, payloads: list[bytes], layout: str, concurrency: int,
                  client_processes: int, warmup: float, seconds: float, metadata: Metadata = ()) -> UnaryResult:
    processes = 1 if layout == "one channel" else max(1, min(concurrency, client_processes))
    clients = start_unary_clients(server.address, [UnaryJob(KINDS[kind], payloads, threads, warmup, seconds, metadata)
                                                   for threads in split_evenly(concurrency, processes)])
    meter = CpuMeter(server.process.pid, server.worker_pids(), clients.pids)
    began = clients.begin()
    time.sleep(max(0.0, began + warmup - time.monotonic()))
    meter.begin()
    time.sleep(max(0.0, began + warmup + seconds - time.monotonic()))
    cpu = meter.end()
    ordered, errors = clients.gather()
    return UnaryResult(kind, layout, concurrency, processes, len(ordered), errors,
                       round(len(ordered) / seconds, 1), percentile_ms(ordered, 50), percentile_ms(ordered, 99),
                       cpu)


def report_head(args: argparse.Namespace, idle_load: object) -> dict[str, object]:
    """The machine and settings every benchmark's --json report starts with."""
    return {"machine": {"arch": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
                        "date": date.today().isoformat(), "load_before_start_percent": idle_load},
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}


def percentile_ms(ordered: Sequence[float], percent: float) -> float:
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return round(ordered[index] * 1000, 2)


def measure_stream(server: Any, payloads: list[bytes], streams: int, count: int,
                   metadata: Metadata = ()) -> StreamResult:
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    children = []
    for number, share in enumerate(split_evenly(count, streams)):
        child = context.Process(target=stream_client, args=(server.address, payloads, share, number * 104729, ready,
                                                            go, results, metadata), daemon=True)
        child.start()
        children.append(child)
    pids = [ready.get(timeout=120) for _ in children]
    meter = CpuMeter(server.process.pid, server.worker_pids(), pids)
    meter.begin()
    go.set()
    answers = [results.get(timeout=900) for _ in children]
    cpu = meter.end()
    for child in children:
        child.join(30)
    began = min(a[0] for a in answers)
    ended = max(a[1] for a in answers)
    decisions = sum(a[2] for a in answers)
    errors = sum(a[3] for a in answers)
    for answer in answers:
        if answer[5]:
            print(f"  stream error result, e.g.: {answer[5]!r}", file=sys.stderr)
    elapsed = ended - began
    return StreamResult(streams, count, decisions, errors, round(elapsed, 3), round(decisions / elapsed, 1),
                        all(a[4] for a in answers), cpu)


# ---------------------------------------------------------------------------------------------
# Output


def _drain(stream: IO[str] | None, counter: list[int]) -> None:
    """Read the server's stderr (one JSON log line per call) so its pipe never fills and blocks it."""
    if stream is None:
        return
    for line in stream:
        counter[0] += 1
        counter[1] += len(line)


def cpu_per_call(runs: Sequence[tuple[dict[str, float], float]]) -> dict[str, float]:
    """Mean CPU milliseconds per call of front, workers and clients over runs of equal length."""
    calls = sum(rate for _, rate in runs) or 1.0
    return {group: round(10 * sum(cpu.get(group, 0.0) for cpu, _ in runs) / calls, 3)
            for group in ("front", "workers", "clients")}


def cpu_ceilings(cost: dict[str, dict[str, float]]) -> dict[str, float]:
    """What the two goal ratios come to when every kind of call saturates the same cores: a rate is then
    cores / CPU per call, so a ratio of rates is the inverse ratio of CPU per call. A measured ratio can
    exceed this only where a run leaves CPU idle (a GIL or a lock is its bound instead)."""
    total = {name: sum(parts.values()) for name, parts in cost.items()}
    evaluate = total["Evaluate"] or float("inf")
    stream = total["stream decision"] or float("inf")
    return {"evaluate_over_empty": round(total["empty"] / evaluate, 3),
            "stream_over_unary": round(evaluate / stream, 3)}


def cpu_text(cpu: dict[str, float]) -> str:
    """CPU percent per process group, as front/workers/clients/other."""
    return "/".join(f"{cpu.get(group, 0):.0f}" for group in ("front", "workers", "clients", "other"))


def unary_table(results: list[UnaryResult]) -> list[str]:
    lines = ["| layout | in flight | client procs | Evaluate calls/s | p50 ms | p99 ms | empty calls/s | p50 ms "
             "| p99 ms | Evaluate/empty | CPU % front/workers/clients/other (Evaluate; empty) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    pairs: dict[tuple[str, int], dict[str, UnaryResult]] = {}
    for result in results:
        pairs.setdefault((result.layout, result.concurrency), {})[result.kind] = result
    for (layout, concurrency), pair in pairs.items():
        ev, em = pair["evaluate"], pair["empty"]
        ratio = ev.calls_per_s / em.calls_per_s if em.calls_per_s else float("nan")
        lines.append(f"| {layout} | {concurrency} | {ev.processes} | {ev.calls_per_s:.0f} | {ev.p50_ms:.2f} | "
                     f"{ev.p99_ms:.2f} | {em.calls_per_s:.0f} | {em.p50_ms:.2f} | {em.p99_ms:.2f} | {ratio:.2f} | "
                     f"{cpu_text(ev.cpu_percent)}; {cpu_text(em.cpu_percent)} |")
    return lines


def stream_table(results: list[StreamResult], best_unary: float) -> list[str]:
    lines = ["| streams | requests (total) | decisions | errors | seconds | decisions/s | × best unary | in order "
             "| CPU % front/workers/clients/other |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.streams} | {r.requests} | {r.decisions} | {r.errors} | {r.seconds:.2f} | "
                     f"{r.decisions_per_s:.0f} | {r.decisions_per_s / best_unary:.2f} | "
                     f"{'yes' if r.in_order else 'NO'} | {cpu_text(r.cpu_percent)} |")
    return lines


def refused_without_token(address: str, payload: bytes) -> None:
    """Make sure the server with authentication really asks for a token (else the comparison is void)."""
    import grpc

    with grpc.insecure_channel(address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(EVALUATE)
        try:
            call(payload, timeout=30)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                return
            raise SystemExit(f"a call without a token got {exc.code().name}, not UNAUTHENTICATED") from None
    raise SystemExit("the server with authentication answered a call without a token")


def compare_authentication(args: argparse.Namespace, requests: Requests, layouts: list[str]) -> int:
    """Evaluate with and without bearer authentication, TLS off on both: two servers alike but for the JWKS,
    measured in turn (off/on, then on/off, ...) on the same client layout and concurrency."""
    from bench.auth_tokens import ALGORITHM, bench_auth
    from tests.server_process import running_server

    base = {"REGELMOTOR_DECISION_LOG": "off"}
    with tempfile.TemporaryDirectory(prefix="regelmotor-bench-auth-") as folder:
        auth = bench_auth(Path(folder))
        with running_server(workers=args.workers, rulesets=args.rulesets, env=base) as plain, \
                running_server(workers=args.workers, rulesets=args.rulesets, env={**base, **auth.env}) as guarded:
            requests = check_requests(plain.address, requests)
            requests = check_requests(guarded.address, requests, auth.metadata)
            refused_without_token(guarded.address, requests.evaluate[0])
            print(f"authentication: {ALGORITHM} bearer token (2048-bit RSA key, JWKS file) on one server, none on "
                  f"the other; TLS off on both; {args.rounds} rounds, the order off/on flipped every round",
                  flush=True)
            runs: dict[tuple[str, int, str], list[UnaryResult]] = {}
            for number in range(args.rounds):
                order = ("off", "on") if number % 2 == 0 else ("on", "off")
                for layout in layouts:
                    for concurrency in args.concurrency:
                        for mode in order:
                            server, metadata = (guarded, auth.metadata) if mode == "on" else (plain, ())
                            result = measure_unary(server, "evaluate", requests.evaluate, layout, concurrency,
                                                   args.client_processes, args.warmup, args.seconds, metadata)
                            runs.setdefault((layout, concurrency, mode), []).append(result)
                            print(f"  round {number + 1} {layout:<11} {concurrency:>3} in flight  auth {mode:<3} "
                                  f"{result.calls_per_s:>7.0f} calls/s  p50 {result.p50_ms:6.2f} ms  errors "
                                  f"{result.errors}  CPU% {cpu_text(result.cpu_percent)}", flush=True)
    print()
    print("\n".join(authentication_table(runs)))
    return 0


def authentication_table(runs: dict[tuple[str, int, str], list[UnaryResult]]) -> list[str]:
    """Per layout and concurrency: calls/s (median, range) off and on, the per-round ratio on/off, and the
    front's CPU per call."""
    lines = ["| layout | in flight | calls/s off, median (min–max) | calls/s on, median (min–max) | on/off per round "
             "| on/off of medians | front CPU µs/call off | on | errors |", "|---|---|---|---|---|---|---|---|---|"]
    for layout, concurrency in dict.fromkeys((key[0], key[1]) for key in runs):
        off, on = runs[(layout, concurrency, "off")], runs[(layout, concurrency, "on")]
        ratios = [b.calls_per_s / a.calls_per_s for a, b in zip(off, on, strict=True) if a.calls_per_s]
        front = [1000 * cpu_per_call([(r.cpu_percent, r.calls_per_s) for r in side])["front"] for side in (off, on)]
        medians = [statistics.median(r.calls_per_s for r in side) for side in (off, on)]
        lines.append(f"| {layout} | {concurrency} | {_spread([r.calls_per_s for r in off])} | "
                     f"{_spread([r.calls_per_s for r in on])} | {', '.join(f'{v:.2f}' for v in ratios)} | "
                     f"{medians[1] / medians[0]:.3f} | {front[0]:.0f} | {front[1]:.0f} | "
                     f"{sum(r.errors for r in off + on)} |")
    return lines


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def positive_ints(text: str) -> list[int]:
    """An argparse type: a comma-separated list of positive integers."""
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured window of each unary run (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured lead-in of each unary run (default 0.5)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="server engine worker processes (default: the server's default, one per core)")
    parser.add_argument("--concurrency", type=positive_ints, default=[1, 4, 16],
                        help="total calls in flight, comma-separated (default 1,4,16)")
    parser.add_argument("--client-processes", type=int, default=2,
                        help="client processes of the 'processes' layout (default 2)")
    parser.add_argument("--layouts", default="processes,one channel",
                        help="'processes', 'one channel' or both, comma-separated (default both)")
    parser.add_argument("--streams", type=positive_ints, default=[1, 2],
                        help="concurrent EvaluateStreams (default 1,2)")
    parser.add_argument("--stream-requests", type=int, default=5000,
                        help="requests per stream run, split over its streams (default 5000)")
    parser.add_argument("--rulesets", type=Path,
                        help="serve and draw cases from this rulesets folder (default: the bundled rulesets/)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--auth", choices=("off", "on", "compare"), default="off",
                        help="bearer authentication (TLS stays off): off (default), on (every call sends a token), "
                             "or compare (Evaluate only, a server without and one with, measured in turn)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of --auth compare (default 4)")
    args = parser.parse_args(argv)
    layouts = [name.strip() for name in args.layouts.split(",") if name.strip()]
    if not set(layouts) <= {"processes", "one channel"}:
        parser.error("--layouts: 'processes' and/or 'one channel'")

    from bench.auth_tokens import BenchAuth, bench_auth

    requests = build_requests(args.rulesets or ROOT / "rulesets")
    began = time.monotonic()
    print(f"Regelmotor gRPC load: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{date.today().isoformat()}", flush=True)
    print(f"server: regelmotor serve --port 0 --drafts --workers {args.workers}"
          f"{f' --rulesets {args.rulesets}' if args.rulesets else ' (bundled rulesets)'}", flush=True)
    idle_load = machine_load()
    print(f"machine load before start: {idle_load:.0f}% of one core busy", flush=True)
    if idle_load > 20:
        print("  WARNING: the machine is not idle; the figures below share its cores with that load", flush=True)
    if args.auth == "compare":
        return compare_authentication(args, requests, layouts)
    # The API stack alone: the decision log's cost is measured by bench/decision_log_load.py.
    with tempfile.TemporaryDirectory(prefix="regelmotor-bench-auth-") as folder:
        auth = bench_auth(Path(folder)) if args.auth == "on" else BenchAuth({}, ())
        return run_load(args, requests, layouts, auth, began, idle_load)


def run_load(args: argparse.Namespace, requests: Requests, layouts: list[str], auth: BenchAuth, began: float,
             idle_load: float) -> int:
    from tests.server_process import running_server

    metadata = auth.metadata
    print(f"authentication: {'bearer token on every call' if metadata else 'off'}; TLS off", flush=True)
    with running_server(workers=args.workers, rulesets=args.rulesets,
                        env={"REGELMOTOR_DECISION_LOG": "off", **auth.env}) as server:
        log = [0, 0]
        threading.Thread(target=_drain, args=(server.process.stderr, log), daemon=True).start()
        requests = check_requests(server.address, requests, metadata)
        print(f"requests: {len(requests.evaluate)} case facts from {len(requests.per_version)} versions "
              f"({', '.join(f'{k} {v}' for k, v in requests.per_version.items())}); {requests.skipped} left out",
              flush=True)
        unary: list[UnaryResult] = []
        for layout in layouts:
            for concurrency in args.concurrency:
                for kind in ("evaluate", "empty"):
                    payloads = requests.evaluate if kind == "evaluate" else [requests.empty]
                    result = measure_unary(server, kind, payloads, layout, concurrency, args.client_processes,
                                           args.warmup, args.seconds, metadata)
                    unary.append(result)
                    print(f"  {layout:<11} {concurrency:>3} in flight  {kind:<8} {result.calls_per_s:>8.0f} calls/s  "
                          f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}  "
                          f"CPU% front/workers/clients/other {cpu_text(result.cpu_percent)}", flush=True)
        streams: list[StreamResult] = []
        for count in args.streams:
            stream = measure_stream(server, requests.evaluate, count, args.stream_requests, metadata)
            streams.append(stream)
            print(f"  EvaluateStream x{count}: {stream.decisions} decisions in {stream.seconds:.2f} s = "
                  f"{stream.decisions_per_s:.0f}/s  errors {stream.errors}  in order {stream.in_order}  "
                  f"CPU% front/workers/clients/other {cpu_text(stream.cpu_percent)}", flush=True)
        log_lines, log_bytes = log
    evaluate_rates = [r.calls_per_s for r in unary if r.kind == "evaluate"]
    best_unary = max(evaluate_rates)
    best_unary_run = next(r for r in unary if r.kind == "evaluate" and r.calls_per_s == best_unary)
    best_stream = max(s.decisions_per_s for s in streams)
    ratios = {(r.layout, r.concurrency): r.calls_per_s for r in unary if r.kind == "evaluate"}
    empties = {(r.layout, r.concurrency): r.calls_per_s for r in unary if r.kind == "empty"}
    ratio_values = {k: ratios[k] / empties[k] for k in ratios if empties.get(k)}
    best_empty = max(empties.values())

    print()
    print("\n".join(unary_table(unary)))
    print()
    print("\n".join(stream_table(streams, best_unary)))
    print()
    print(f"Evaluate/empty at equal concurrency: {min(ratio_values.values()):.2f}–{max(ratio_values.values()):.2f} "
          f"(goal >= 0.5); best Evaluate {best_unary:.0f}/s ({best_unary_run.layout}, {best_unary_run.concurrency} "
          f"in flight) / best empty {best_empty:.0f}/s = {best_unary / best_empty:.2f}")
    print(f"EvaluateStream best {best_stream:.0f} decisions/s = {best_stream / best_unary:.2f}x the best unary "
          f"Evaluate rate (goal >= 3)")
    cost = {"Evaluate": cpu_per_call([(r.cpu_percent, r.calls_per_s) for r in unary if r.kind == "evaluate"]),
            "empty": cpu_per_call([(r.cpu_percent, r.calls_per_s) for r in unary if r.kind == "empty"]),
            "stream decision": cpu_per_call([(s.cpu_percent, s.decisions_per_s) for s in streams])}
    cores = os.cpu_count() or 1
    print("CPU per call, ms (front + workers + clients = total), and what that allows on "
          f"{cores} cores with nothing else running:")
    for name, parts in cost.items():
        total = sum(parts.values())
        print(f"  {name:<15} {parts['front']:.2f} + {parts['workers']:.2f} + {parts['clients']:.2f} = {total:.2f}"
              f"  -> at most ~{cores * 1000 / total:.0f}/s")
    ceilings = cpu_ceilings(cost)
    print("If the cores were the only bound (clients, front and workers all on them), the ratios could reach:")
    print(f"  Evaluate/empty  {ceilings['evaluate_over_empty']:.2f}  (empty CPU per call / Evaluate CPU per call)")
    print(f"  stream x unary  {ceilings['stream_over_unary']:.2f}  (Evaluate CPU per call / stream CPU per decision)")
    print(f"server log: {log_lines} lines, {log_bytes / 1e6:.1f} MB on stderr; total {time.monotonic() - began:.0f} s")
    if args.json:
        report = {
            **report_head(args, idle_load),
            "requests": {"count": len(requests.evaluate), "per_version": requests.per_version,
                         "left_out": requests.skipped},
            "unary": [asdict(r) for r in unary],
            "stream": [asdict(s) for s in streams],
            "summary": {"best_unary_per_s": best_unary, "best_empty_per_s": best_empty,
                        "evaluate_over_empty": {f"{k[0]} {k[1]}": round(v, 3) for k, v in ratio_values.items()},
                        "best_stream_per_s": best_stream, "stream_over_best_unary": round(best_stream / best_unary, 3),
                        "cpu_ms_per_call": cost, "cpu_bound_ceilings": ceilings},
        }
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
