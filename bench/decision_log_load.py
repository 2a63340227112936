"""Decision log load benchmark: unary Evaluate throughput with the log off, on SQLite and on PostgreSQL.

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:clients/python:. python bench/decision_log_load.py [--seconds S] [--json FILE]

For each decision log in turn (`REGELMOTOR_DECISION_LOG` = "off", "sqlite" - the default, a WAL file in
the server's temporary data directory - and a DSN of a fresh PostgreSQL database made for that server
and dropped after it), one real server is started as a child process (`tests/server_process.py`:
`regelmotor serve --port 0 --drafts --workers 2`), warmed up by sending every request once, measured
with unary `DecisionService.Evaluate` at each concurrency (calls in flight, spread over client
processes), and stopped. The client processes, the request set, the measuring window and the CPU
sampling are those of `bench/grpc_load.py` (imported, not copied); see its docstring. This is done in
`--rounds` rounds (default 2), every other one in reverse order (off, sqlite, postgresql, then postgresql,
sqlite, off), so a slow drift of the machine's speed weighs on every log alike; the headline figures are
the means over the rounds, and each PostgreSQL run gets a database of its own.

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
    from regelmotor.v1 import decision_pb2

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
# One server per decision log and round


@dataclass
class BackendRun:
    backend: str
    round: int
    unary: list[load.UnaryResult] = field(default_factory=list)
    checked_requests: int = 0  # the warm-up pass: every request once, through the generated stubs
    sent: int = 0  # calls made by the load clients
    records: int | None = None  # VerifyLog `checked` after the load
    chain_ok: bool | None = None
    db_cpu_ms_per_record: float | None = None
    db_transactions: int | None = None
    bytes_per_record: float | None = None  # growth of the log on disk over the load, per load call
    seconds: float = 0.0

    @property
    def expected_records(self) -> int:
        return self.checked_requests + self.sent

    @property
    def all_logged(self) -> bool | None:
        return None if self.records is None else self.records == self.expected_records

    def rate(self, concurrency: int) -> float | None:
        return next((r.calls_per_s for r in self.unary if r.concurrency == concurrency), None)


def verify_log(address: str) -> tuple[int, bool]:
    """The records in the log and whether their chain verifies, from AuditService.VerifyLog."""
    import grpc

    from regelmotor.v1 import audit_pb2, audit_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        reply = stub.VerifyLog(audit_pb2.VerifyLogRequest(), timeout=300)
    if not reply.ok:
        print(f"  VerifyLog: first problem {reply.first_problem}", file=sys.stderr)
    return int(reply.checked), bool(reply.ok)


def run_backend(backend: str, number: int, requests: load.Requests, args: argparse.Namespace) -> BackendRun:
    """Start a server with this decision log, warm it up, measure each concurrency, check the log, stop."""
    run = BackendRun(backend, number)
    began = time.monotonic()
    with ExitStack() as stack:
        setting = backend
        if backend == "postgresql":
            setting = stack.enter_context(postgres_database(args.postgres, f"regelmotor_bench_{os.getpid()}_{number}"))
        _measure(run, setting, requests, args)
    run.seconds = round(time.monotonic() - began, 1)
    return run


def _measure(run: BackendRun, setting: str, requests: load.Requests, args: argparse.Namespace) -> None:
    from tests.server_process import running_server

    context = multiprocessing.get_context("spawn")
    postgres = run.backend == "postgresql"
    with running_server(workers=args.workers, env={"REGELMOTOR_DECISION_LOG": setting}) as server:
        checked = load.check_requests(server.address, requests)  # the warm-up: each request once
        run.checked_requests = len(checked.evaluate)  # those answered with a decision, so recorded
        db_cpu = postgres_cpu_seconds() if postgres else 0.0
        db_transactions = postgres_commits(setting) if postgres else 0
        size = log_size(run.backend, setting, server.data_dir) if run.backend != "off" else 0
        for concurrency in args.concurrency:
            sent = context.Value("q", 0)
            result = load.measure_unary(server, "evaluate", UniqueRequests(checked.evaluate, sent), "processes",
                                        concurrency, args.client_processes, args.warmup, args.seconds)
            run.sent += int(sent.value)
            run.unary.append(result)
            print(f"  round {run.round} {run.backend:<10} {concurrency:>3} in flight {result.calls_per_s:>6.0f} calls/s"
                  f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}  sent "
                  f"{sent.value}  CPU% front/workers/clients/other {load._cpu(result.cpu_percent)}", flush=True)
        if postgres:
            run.db_cpu_ms_per_record = round(1000 * (postgres_cpu_seconds() - db_cpu) / max(1, run.sent), 3)
            run.db_transactions = postgres_commits(setting) - db_transactions - 1  # not this query's own
        if run.backend != "off":
            run.bytes_per_record = (log_size(run.backend, setting, server.data_dir) - size) / max(1, run.sent)
            run.records, run.chain_ok = verify_log(server.address)
            print(f"  round {run.round} {run.backend:<10} records {run.records} (expected {run.expected_records}: "
                  f"{run.checked_requests} warm-up + {run.sent} load calls), chain verifies: {run.chain_ok}",
                  flush=True)


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
                         f"{r.p99_ms:.2f} | {r.errors} | {load._cpu(r.cpu_percent)} |")
    return lines


def records_table(runs: list[BackendRun]) -> list[str]:
    lines = ["| round | decision log | calls sent (warm-up + load) | records (VerifyLog checked) | every call logged "
             "| chain verifies | log growth per record | CPU ms per call: front + workers + clients "
             "| PostgreSQL CPU ms per record | records per PostgreSQL transaction |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        cost = load.cpu_per_call([(r.cpu_percent, r.calls_per_s) for r in run.unary])
        cpu = f"{cost['front']:.2f} + {cost['workers']:.2f} + {cost['clients']:.2f} = {sum(cost.values()):.2f}"
        db_cpu = "–" if run.db_cpu_ms_per_record is None else f"{run.db_cpu_ms_per_record:.2f}"
        group = "–" if not run.db_transactions else f"{run.sent / run.db_transactions:.1f}"
        logged = "–" if run.all_logged is None else ("yes" if run.all_logged else "NO")
        chain = "–" if run.chain_ok is None else ("yes" if run.chain_ok else "NO")
        records = "–" if run.records is None else str(run.records)
        size = "–" if run.bytes_per_record is None else f"{run.bytes_per_record / 1000:.0f} kB"
        lines.append(f"| {run.round} | {run.backend} | {run.checked_requests} + {run.sent} | {records} | {logged} | "
                     f"{chain} | {size} | {cpu} | {db_cpu} | {group} |")
    return lines


def _ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured window of each run (default 3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured lead-in of each run (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="server engine worker processes (default 2)")
    parser.add_argument("--concurrency", type=_ints, default=[4, 16],
                        help="total calls in flight, comma-separated (default 4,16)")
    parser.add_argument("--client-processes", type=int, default=2, help="load client processes (default 2)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="decision logs to measure (default off,sqlite,postgresql)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds over the decision logs, every other one in reverse order (default 2)")
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

    runs: list[BackendRun] = []
    for number in range(1, args.rounds + 1):
        for backend in backends if number % 2 else reversed(backends):  # drift cancels out over a pair
            runs.append(run_backend(backend, number, requests, args))

    summary_lines, summary = summary_table(runs, args.concurrency)
    print()
    print("\n".join(summary_lines))
    print()
    print("\n".join(detail_table(runs)))
    print()
    print("\n".join(records_table(runs)))
    print()
    for backend in ("sqlite", "postgresql"):
        values = [summary[key]["ratio_to_off"] for key in summary
                  if key.split()[0] == backend and summary[key]["ratio_to_off"] is not None]
        if values:
            goal = f"; goal >= {GOAL}: {'met' if min(values) >= GOAL else 'NOT met'}" if backend == "sqlite" else ""
            print(f"{backend}/off (means over rounds): {', '.join(f'{v:.2f}' for v in values)} at "
                  f"{', '.join(map(str, args.concurrency))} in flight{goal}")
    unlogged = [f"{run.backend} round {run.round}" for run in runs if run.all_logged is False or run.chain_ok is False]
    if unlogged:
        print(f"WARNING: not every call was logged, or the chain did not verify: {', '.join(unlogged)}")
    print(f"total {time.monotonic() - began:.0f} s")
    if args.json:
        report = {
            "machine": {"arch": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
                        "date": date.today().isoformat(), "load_before_start_percent": idle_load},
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "runs": [{**asdict(run), "expected_records": run.expected_records, "all_logged": run.all_logged}
                     for run in runs],
            "summary": summary,
        }
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if unlogged else 0


if __name__ == "__main__":
    raise SystemExit(main())
