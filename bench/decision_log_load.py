"""Decision log load benchmark: unary Evaluate throughput with the log off, on SQLite and on PostgreSQL.

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/decision_log_load.py [--seconds S] [--json FILE]

One real server is started per decision log, each as a child process (`tests/server_process.py`:
`regelmotor serve --port 0 --drafts --workers 2`) with `REGELMOTOR_DECISION_LOG` = "off", "sqlite" (the
default: a WAL file in the server's temporary data directory) or the DSN of a fresh PostgreSQL database
made for the run and dropped after it, and warmed up by sending every request once. All of them stay up
for the whole run and are measured in turn, interleaved: in each of `--rounds` rounds (default 3) every
log is measured with unary `DecisionService.Evaluate` at each concurrency (calls in flight, spread over
client processes), the order of the logs turning by one each round. This machine's speed drifts by up to
a third within a minute, so measuring the logs a few seconds apart, again and again, and comparing
within each round is what keeps the drift out of the ratios; the headline figures are the means over
the rounds. The client processes, the request set, the measuring window and the CPU sampling are those
of `bench/grpc_load.py` (imported, not copied); see its docstring. A server waiting for its turn is idle.

Every call carries a request_id of its own (a random prefix per client process and a counter): the log
is idempotent per caller and request_id, and a repeated id would be answered from the stored record
instead of being stored again. The calls each client sends are counted, and after the load the server's
`AuditService.VerifyLog` must report as many records as calls were sent - every call was logged - and an
intact hash chain. Figures: calls/s, p50/p99 latency, the ratio to the log-off rate at the same
concurrency (goal: SQLite >= 0.7), CPU per call split over the server front process, the engine workers
and the clients, and for PostgreSQL the CPU its server processes spent per recorded decision.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import platform
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, SupportsIndex, overload

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench import grpc_load as load  # noqa: E402  (needs the paths above)

BACKENDS = ("off", "sqlite", "postgresql")
GOAL = 0.7  # SQLite calls/s >= GOAL x log-off calls/s

# ---------------------------------------------------------------------------------------------
# Unique requests

# Set anew in each client process: spawn imports this module afresh there.
_PREFIX = uuid.uuid4().hex[:12]
_COUNTER = itertools.count()
_REQUEST_ID_TAG = b"\x2a"  # EvaluateRequest field 5 (request_id), length-delimited


def with_request_id(payload: bytes, request_id: str) -> bytes:
    """The serialised request with its request_id replaced: a scalar field that occurs twice in the
    wire format takes its last value, so appending the field overrides the one already there."""
    encoded = request_id.encode()
    if len(encoded) > 127:
        raise ValueError("request_id too long for a one-byte length")
    return payload + _REQUEST_ID_TAG + bytes([len(encoded)]) + encoded


class UniqueRequests(list[bytes]):
    """The requests `grpc_load.unary_client` sends, each time it takes one with a request_id never used
    before, and a count (shared by every client process of a measurement) of the requests taken, which
    is the number of calls made: the client takes exactly one request per call."""

    def __init__(self, payloads: Sequence[bytes], sent: Any) -> None:
        super().__init__(payloads)
        self.sent = sent  # a multiprocessing Value("q") of the spawn context

    @overload
    def __getitem__(self, index: SupportsIndex) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            return super().__getitem__(index)
        with self.sent.get_lock():
            self.sent.value += 1
        return with_request_id(super().__getitem__(index), f"load-{_PREFIX}-{next(_COUNTER)}")


def check_unique_ids(payload: bytes) -> None:
    """Make sure the override works as the server will read it, before trusting any figure."""
    from regelmotor_api.v1 import decision_pb2

    sent = multiprocessing.get_context("spawn").Value("q", 0)
    requests = UniqueRequests([payload], sent)
    first, second = (decision_pb2.EvaluateRequest.FromString(requests[0]) for _ in range(2))
    original = decision_pb2.EvaluateRequest.FromString(payload)
    if (first.request_id == second.request_id or not first.request_id.startswith("load-")
            or first.facts != original.facts or sent.value != 2):
        raise SystemExit("the per-call request_id does not reach the server as intended")


# ---------------------------------------------------------------------------------------------
# PostgreSQL


@contextmanager
def postgres_database(base: str, name: str) -> Iterator[str]:
    """A new, empty database `name` on the server at `base` (a DSN without a database), dropped afterwards."""
    import psycopg
    from psycopg import sql

    admin = f"{base.rstrip('/')}/postgres"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise SystemExit(f"cannot create a PostgreSQL database at {base}: {exc}") from exc
    try:
        yield f"{base.rstrip('/')}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by the PostgreSQL server processes on this machine (backends that have
    exited no longer count, so differences are a lower bound)."""
    import psutil

    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] not in ("postgres", "postmaster"):
            continue
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def postgres_size(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def log_size(backend: str, setting: str, data_dir: Path) -> int:
    """Bytes the decision log takes on disk: the SQLite file with its WAL, or the PostgreSQL database."""
    if backend == "postgresql":
        return postgres_size(setting)
    return sum(path.stat().st_size for path in data_dir.glob("decisions.db*"))


def postgres_commits(dsn: str) -> int:
    """Transactions committed in the DSN's database so far (each decision log append is one)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


# ---------------------------------------------------------------------------------------------
# One server per decision log, measured round after round


@dataclass
class BackendRun:
    """One log's figures in one round."""

    backend: str
    round: int
    unary: list[load.UnaryResult] = field(default_factory=list)
    sent: int = 0  # calls made by the load clients in this round

    def rate(self, concurrency: int) -> float | None:
        return next((r.calls_per_s for r in self.unary if r.concurrency == concurrency), None)


@dataclass
class LogCheck:
    """One log over the whole run: what was sent to its server, and what its log holds afterwards."""

    backend: str
    checked_requests: int = 0  # the warm-up pass: every request once, through the generated stubs
    sent: int = 0  # calls made by the load clients, all rounds
    records: int | None = None  # VerifyLog `checked` after the load
    chain_ok: bool | None = None
    db_cpu_ms_per_record: float | None = None
    db_transactions: int | None = None
    bytes_per_record: float | None = None  # growth of the log on disk over the load, per load call

    @property
    def expected_records(self) -> int:
        return self.checked_requests + self.sent

    @property
    def all_logged(self) -> bool | None:
        return None if self.records is None else self.records == self.expected_records


@dataclass
class _Started:
    check: LogCheck
    setting: str
    server: Any
    payloads: list[bytes]
    db_cpu: float = 0.0
    db_transactions: int = 0
    size: int = 0


def verify_log(address: str) -> tuple[int, bool]:
    """The records in the log and whether their chain verifies, from AuditService.VerifyLog."""
    import grpc

    from regelmotor_api.v1 import audit_pb2, audit_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        reply = stub.VerifyLog(audit_pb2.VerifyLogRequest(formaal="benchmark: kjedekontroll"), timeout=300)
    if not reply.ok:
        print(f"  VerifyLog: first problem {reply.first_problem}", file=sys.stderr)
    return int(reply.checked), bool(reply.ok)


def start_server(backend: str, requests: load.Requests, args: argparse.Namespace, stack: ExitStack) -> _Started:
    """Start a server with this decision log (closed with `stack`) and warm it up."""
    from tests.server_process import running_server

    setting = backend
    if backend == "postgresql":
        setting = stack.enter_context(postgres_database(args.postgres, f"regelmotor_bench_{os.getpid()}"))
    server = stack.enter_context(running_server(workers=args.workers, env={"REGELMOTOR_DECISION_LOG": setting}))
    checked = load.check_requests(server.address, requests)  # the warm-up: each request once
    started = _Started(LogCheck(backend, checked_requests=len(checked.evaluate)), setting, server, checked.evaluate)
    print(f"  {backend:<10} serving on {server.address}, warmed up with {len(checked.evaluate)} calls", flush=True)
    return started


def measure(started: _Started, number: int, args: argparse.Namespace) -> BackendRun:
    context = multiprocessing.get_context("spawn")
    run = BackendRun(started.check.backend, number)
    for concurrency in args.concurrency:
        sent = context.Value("q", 0)
        result = load.measure_unary(started.server, "evaluate", UniqueRequests(started.payloads, sent), "processes",
                                    concurrency, args.client_processes, args.warmup, args.seconds)
        run.sent += int(sent.value)
        run.unary.append(result)
        print(f"  round {number} {run.backend:<10} {concurrency:>3} in flight {result.calls_per_s:>6.0f} calls/s"
              f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}  sent "
              f"{sent.value}  CPU% front/workers/clients/other {load.cpu_text(result.cpu_percent)}", flush=True)
    started.check.sent += run.sent
    return run


def begin_counting(started: _Started) -> None:
    backend, setting = started.check.backend, started.setting
    if backend == "postgresql":
        started.db_cpu = postgres_cpu_seconds()
        started.db_transactions = postgres_commits(setting)
    if backend != "off":
        started.size = log_size(backend, setting, started.server.data_dir)


def finish(started: _Started) -> None:
    """After the last round: how the log grew, and whether it holds every call with an intact chain."""
    check, setting = started.check, started.setting
    if check.backend == "postgresql":
        # postgres_cpu_seconds counts every PostgreSQL process; only this log's server writes to PostgreSQL.
        check.db_cpu_ms_per_record = round(1000 * (postgres_cpu_seconds() - started.db_cpu) / max(1, check.sent), 3)
        check.db_transactions = postgres_commits(setting) - started.db_transactions - 1  # not this query's own
    if check.backend != "off":
        check.bytes_per_record = (log_size(check.backend, setting, started.server.data_dir) - started.size) / max(
            1, check.sent)
        check.records, check.chain_ok = verify_log(started.server.address)
        print(f"  {check.backend:<10} records {check.records} (expected {check.expected_records}: "
              f"{check.checked_requests} warm-up + {check.sent} load calls), chain verifies: {check.chain_ok}",
              flush=True)


def run_all(backends: list[str], requests: load.Requests, args: argparse.Namespace
            ) -> tuple[list[BackendRun], list[LogCheck]]:
    runs: list[BackendRun] = []
    with ExitStack() as stack:
        started = [start_server(backend, requests, args, stack) for backend in backends]
        for one in started:
            begin_counting(one)
        for number in range(1, args.rounds + 1):
            turn = (number - 1) % len(started)
            for one in started[turn:] + started[:turn]:  # each log goes first in its turn
                runs.append(measure(one, number, args))
        for one in started:
            finish(one)
    return runs, [one.check for one in started]


# ---------------------------------------------------------------------------------------------
# Output


def mean_rate(runs: list[BackendRun], backend: str, concurrency: int) -> float | None:
    rates = [rate for run in runs if run.backend == backend and (rate := run.rate(concurrency)) is not None]
    return sum(rates) / len(rates) if rates else None


def round_ratios(runs: list[BackendRun], backend: str, concurrency: int) -> list[float]:
    """backend/off at this concurrency within each round."""
    found = []
    for number in sorted({run.round for run in runs}):
        here = {run.backend: run.rate(concurrency) for run in runs if run.round == number}
        off, rate = here.get("off"), here.get(backend)
        if off and rate is not None:
            found.append(rate / off)
    return found


def summary_table(runs: list[BackendRun], concurrencies: list[int]) -> tuple[list[str], dict[str, Any]]:
    lines = ["| decision log | in flight | Evaluate calls/s (mean of rounds) | per round | × log off (mean) "
             "| × log off per round |", "|---|---|---|---|---|---|"]
    summary: dict[str, Any] = {}
    for backend in dict.fromkeys(run.backend for run in runs):
        for concurrency in concurrencies:
            mean = mean_rate(runs, backend, concurrency)
            off = mean_rate(runs, "off", concurrency)
            if mean is None:
                continue
            rounds = [f"{rate:.0f}" for run in runs if run.backend == backend
                      and (rate := run.rate(concurrency)) is not None]
            per_round = round_ratios(runs, backend, concurrency)
            ratio = mean / off if off else None
            summary[f"{backend} {concurrency}"] = {"mean_calls_per_s": round(mean, 1),
                                                  "ratio_to_off": None if ratio is None else round(ratio, 3),
                                                  "ratio_to_off_per_round": [round(v, 3) for v in per_round]}
            lines.append(f"| {backend} | {concurrency} | {mean:.0f} | {' / '.join(rounds)} | "
                         f"{'–' if ratio is None else f'{ratio:.2f}'} | "
                         f"{' / '.join(f'{v:.2f}' for v in per_round) or '–'} |")
    return lines, summary


def detail_table(runs: list[BackendRun]) -> list[str]:
    lines = ["| round | decision log | in flight | Evaluate calls/s | p50 ms | p99 ms | errors "
             "| CPU % front/workers/clients/other |", "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        for r in run.unary:
            lines.append(f"| {run.round} | {run.backend} | {r.concurrency} | {r.calls_per_s:.0f} | {r.p50_ms:.2f} | "
                         f"{r.p99_ms:.2f} | {r.errors} | {load.cpu_text(r.cpu_percent)} |")
    return lines


def records_table(runs: list[BackendRun], checks: list[LogCheck]) -> list[str]:
    lines = ["| decision log | calls sent (warm-up + load) | records (VerifyLog checked) | every call logged "
             "| chain verifies | log growth per record | CPU ms per call: front + workers + clients (all rounds) "
             "| PostgreSQL CPU ms per record | records per PostgreSQL transaction |",
             "|---|---|---|---|---|---|---|---|---|"]
    for check in checks:
        results = [(r.cpu_percent, r.calls_per_s) for run in runs if run.backend == check.backend for r in run.unary]
        cost = load.cpu_per_call(results)
        cpu = f"{cost['front']:.2f} + {cost['workers']:.2f} + {cost['clients']:.2f} = {sum(cost.values()):.2f}"
        db_cpu = "–" if check.db_cpu_ms_per_record is None else f"{check.db_cpu_ms_per_record:.2f}"
        group = "–" if not check.db_transactions else f"{check.sent / check.db_transactions:.1f}"
        logged = "–" if check.all_logged is None else ("yes" if check.all_logged else "NO")
        chain = "–" if check.chain_ok is None else ("yes" if check.chain_ok else "NO")
        records = "–" if check.records is None else str(check.records)
        size = "–" if check.bytes_per_record is None else f"{check.bytes_per_record / 1000:.0f} kB"
        lines.append(f"| {check.backend} | {check.checked_requests} + {check.sent} | {records} | {logged} | "
                     f"{chain} | {size} | {cpu} | {db_cpu} | {group} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured window of each run (default 3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured lead-in of each run (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="server engine worker processes (default 2)")
    parser.add_argument("--concurrency", type=load.positive_ints, default=[4, 16],
                        help="total calls in flight, comma-separated (default 4,16)")
    parser.add_argument("--client-processes", type=int, default=2, help="load client processes (default 2)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="decision logs to measure (default off,sqlite,postgresql)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds over the decision logs, the order turning by one each round (default 3)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432",
                        help="PostgreSQL server to make the bench databases on (default %(default)s)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not backends or not set(backends) <= set(BACKENDS) or args.rounds < 1:
        parser.error(f"--backends: some of {', '.join(BACKENDS)}; --rounds: at least 1")

    requests = load.build_requests(ROOT / "rulesets")
    check_unique_ids(requests.evaluate[0])
    began = time.monotonic()
    print(f"Regelmotor decision log load: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {date.today().isoformat()}", flush=True)
    print(f"server: regelmotor serve --port 0 --drafts --workers {args.workers} (bundled rulesets), "
          f"REGELMOTOR_DECISION_LOG = {' / '.join(backends)}; {len(requests.evaluate)} requests, "
          f"each call with a request_id of its own; {args.rounds} round(s)", flush=True)
    idle_load = load.machine_load()
    print(f"machine load before start: {idle_load:.0f}% of one core busy", flush=True)
    if idle_load > 20:
        print("  WARNING: the machine is not idle; the figures below share its cores with that load", flush=True)

    runs, checks = run_all(backends, requests, args)

    summary_lines, summary = summary_table(runs, args.concurrency)
    print()
    print("\n".join(summary_lines))
    print()
    print("\n".join(detail_table(runs)))
    print()
    print("\n".join(records_table(runs, checks)))
    print()
    for backend in ("sqlite", "postgresql"):
        values = [summary[key]["ratio_to_off"] for key in summary
                  if key.split()[0] == backend and summary[key]["ratio_to_off"] is not None]
        if values:
            goal = f"; goal >= {GOAL}: {'met' if min(values) >= GOAL else 'NOT met'}" if backend == "sqlite" else ""
            print(f"{backend}/off (means over rounds): {', '.join(f'{v:.2f}' for v in values)} at "
                  f"{', '.join(map(str, args.concurrency))} in flight{goal}")
    unlogged = [check.backend for check in checks if check.all_logged is False or check.chain_ok is False]
    if unlogged:
        print(f"WARNING: not every call was logged, or the chain did not verify: {', '.join(unlogged)}")
    print(f"total {time.monotonic() - began:.0f} s")
    if args.json:
        report = {
            **load.report_head(args, idle_load),
            "runs": [asdict(run) for run in runs],
            "logs": [{**asdict(check), "expected_records": check.expected_records, "all_logged": check.all_logged}
                     for check in checks],
            "summary": summary,
        }
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if unlogged else 0


if __name__ == "__main__":
    raise SystemExit(main())
