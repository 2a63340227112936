"""Several instances on one PostgreSQL (issue 17, point 4): what keeping one hash chain costs them.

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:clients/python:. python bench/scale_out.py [--seconds S] [--layouts 1x2,2x1]

How the chain stays one: every append transaction locks the single `chain_head` row (``SELECT … FOR UPDATE``)
before it reads the head and looks for the batch's request_ids, inserts, moves the head and commits
(store/postgres.py). Each instance's front has one group committer, which makes one transaction of all the decisions
waiting, so one instance never queues on the row; with several, an instance's transaction waits while another's
holds it. This bench measures that wait.

A layout "IxW" is I instances of `regelmotor serve` (child processes, tests/server_process.py), W engine workers
each, sharing a fresh PostgreSQL database as decision log and ruleset store. Every layout gets the same load:
--concurrency calls in flight from --clients client processes (`bench/grpc_load.py`'s unary client), each on one
channel that balances over every instance with gRPC round_robin, sending the bundled rulesets' test cases, each call
with a request_id of its own (`bench/decision_log_load.py`), so every call appends a decision. Figures over the
measured window: decisions/s and p50/p99 latency at the clients, the machine's CPU, and the chain head:

* sampled every --sample-ms from pg_locks and pg_stat_activity: the instances' transactions (their connections carry
  this run's application_name) that hold a lock on the chain_head table (RowShareLock, taken by FOR UPDATE) and are
  not waiting hold the row ("held": the share of samples in which one does); those waiting on a lock
  (wait_event_type Lock) queue for it ("queue": the mean number waiting);
* append transactions: chain_head's n_tup_upd (pg_stat_user_tables; one update per transaction), read at both ends
  of the window (each backend reports at most once a second, so both ends lag by up to a second);
* per append transaction: how long it holds the row (held x window / transactions) and, by Little's law, how long
  one waits for it (queue x window / transactions).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT / "clients" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench import decision_log_load as unique  # noqa: E402  (needs the paths above)
from bench import grpc_load as load  # noqa: E402

DEFAULT_BASE = os.environ.get("REGELMOTOR_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
_LOCKS = """
SELECT a.wait_event_type IS NOT DISTINCT FROM 'Lock'
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.relation = 'chain_head'::regclass AND l.mode = 'RowShareLock'
  AND a.application_name = %s"""
_HEAD = """SELECT (SELECT seq FROM chain_head WHERE id = 1),
                  (SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'chain_head'::regclass)"""


class ChainHeadSampler:
    """Samples, from its own connection, who holds and who waits for the chain head (see the module docstring)."""

    def __init__(self, dsn: str, application: str, interval: float) -> None:
        self.dsn, self.application, self.interval = dsn, application, interval
        self.samples: list[tuple[int, int]] = []  # (holding, waiting)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChainHeadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True, application_name="regelmotor-bench-sampler") as conn:
            while not self._stop.is_set():
                waiting = [bool(row[0]) for row in conn.execute(_LOCKS, (self.application,))]
                self.samples.append((waiting.count(False), waiting.count(True)))
                self._stop.wait(self.interval)


def head_and_transactions(dsn: str) -> tuple[int, int]:
    """The chain head's seq (decisions stored) and its updates so far (append transactions, reported)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True, application_name="regelmotor-bench-sampler") as conn:
        row = conn.execute(_HEAD).fetchone()
    assert row is not None
    return int(row[0]), int(row[1] or 0)


def postgres_dsn(database: str, application: str) -> str:
    return f"{database}?application_name={application}"


@contextmanager
def instances(count: int, workers: int, dsn: str) -> Iterator[list[Any]]:
    """`count` serve processes on one decision log, started at once (they migrate and seed it together)."""
    from tests.server_process import ServerProcess

    with ThreadPoolExecutor(count) as starting:
        futures = [starting.submit(ServerProcess, workers=workers, env={"REGELMOTOR_DECISION_LOG": dsn})
                   for _ in range(count)]
    started = [future.result() for future in futures if future.exception() is None]
    try:
        yield [future.result() for future in futures]
    finally:
        for server in started:
            server.close()


@dataclass
class LayoutResult:
    layout: str
    decisions: int
    errors: int
    decisions_per_s: float
    p50_ms: float
    p99_ms: float
    machine_cpu_percent: float  # of one core, the whole machine
    postgres_cpu_percent: float
    held_percent: float
    queue: float
    transactions: int
    decisions_per_transaction: float
    hold_ms_per_transaction: float
    wait_ms_per_transaction: float
    samples: int


def measure(layout: str, addresses: list[str], payloads: list[bytes], args: argparse.Namespace,
            dsn: str, application: str) -> LayoutResult:
    import psutil

    from regelmotor_client.targets import BALANCING, channel_target

    sent = multiprocessing.get_context("spawn").Value("q", 0)
    requests = unique.UniqueRequests(payloads, sent)
    clients = load.start_unary_clients(channel_target(addresses), [
        load.UnaryJob(load.EVALUATE, requests, threads, args.warmup, args.seconds, options=BALANCING)
        for threads in load.split_evenly(args.concurrency, args.clients)])
    began = clients.begin()
    time.sleep(max(0.0, began + args.warmup - time.monotonic()))
    with ChainHeadSampler(dsn, application, args.sample_ms / 1000) as sampler:
        head_before, tx_before = head_and_transactions(dsn)
        cpu_before, pg_before = psutil.cpu_times(), unique.postgres_cpu_seconds()
        time.sleep(max(0.0, began + args.warmup + args.seconds - time.monotonic()))
        cpu_after, pg_after = psutil.cpu_times(), unique.postgres_cpu_seconds()
        head_after, tx_after = head_and_transactions(dsn)
    ordered, errors = clients.gather()
    idle = (cpu_after.idle - cpu_before.idle) + (getattr(cpu_after, "iowait", 0.0) - getattr(cpu_before, "iowait", 0.0))
    busy = (sum(cpu_after) - sum(cpu_before)) - idle
    samples = sampler.samples
    queue = statistics.fmean(waiting for _, waiting in samples) if samples else 0.0
    held = sum(1 for holding, _ in samples if holding) / max(1, len(samples))
    transactions = tx_after - tx_before
    per_transaction = args.seconds / max(1, transactions)  # seconds of the window per append transaction
    return LayoutResult(
        layout, len(ordered), errors, round(len(ordered) / args.seconds, 1), load.percentile_ms(ordered, 50),
        load.percentile_ms(ordered, 99), round(100 * busy / args.seconds, 1),
        round(100 * (pg_after - pg_before) / args.seconds, 1), round(100 * held, 1), round(queue, 3), transactions,
        round((head_after - head_before) / max(1, transactions), 2), round(1000 * held * per_transaction, 3),
        round(1000 * queue * per_transaction, 3), len(samples))


def run_layout(layout: str, payloads: list[bytes], args: argparse.Namespace) -> LayoutResult:
    count, workers = (int(part) for part in layout.split("x"))
    application = f"regelmotor-bench-scale-out-{os.getpid()}"
    with unique.postgres_database(args.postgres, "regelmotor_bench_scale_out") as database:
        dsn = postgres_dsn(database, application)
        with instances(count, workers, dsn) as servers:
            checked = load.check_requests(servers[0].address, load.Requests(payloads, b"", {}, 0)).evaluate
            result = measure(layout, [server.address for server in servers], checked, args, dsn, application)
            stored, _ = head_and_transactions(dsn)
            verified = verify(servers[-1].address)
        print(f"  {layout}: chain verified on the last instance: {verified}; {stored} decisions stored", flush=True)
    return result


def verify(address: str) -> str:
    import grpc

    from regelmotor_api.v1 import audit_pb2, audit_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        answer = audit_pb2_grpc.AuditServiceStub(channel).VerifyLog(  # type: ignore[no-untyped-call,unused-ignore]
            audit_pb2.VerifyLogRequest(formaal="bench: scale-out"), timeout=600)
    return f"ok, {answer.checked} records" if answer.ok else f"NOT ok: {answer.first_problem}"


HEADER = ("layout", "decisions/s", "p50 ms", "p99 ms", "errors", "CPU %", "PG CPU %", "head held %", "queue",
          "tx", "decisions/tx", "hold ms/tx", "wait ms/tx")


def row(result: LayoutResult) -> Sequence[object]:
    return (result.layout, result.decisions_per_s, result.p50_ms, result.p99_ms, result.errors,
            result.machine_cpu_percent, result.postgres_cpu_percent, result.held_percent, result.queue,
            result.transactions, result.decisions_per_transaction, result.hold_ms_per_transaction,
            result.wait_ms_per_transaction)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--layouts", default="1x2,2x1,2x2",
                        help="INSTANCESxWORKERS each, comma-separated, measured in turn (default 1x2,2x1,2x2)")
    parser.add_argument("--rounds", type=int, default=1, help="times every layout is measured, in turn (default 1)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window of each run (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured lead-in of each run (default 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight, in total (default 8)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--sample-ms", type=float, default=10.0, help="chain head sampling interval (default 10)")
    parser.add_argument("--postgres", default=DEFAULT_BASE,
                        help="PostgreSQL server, a DSN without a database (REGELMOTOR_BENCH_POSTGRES; default "
                             f"{DEFAULT_BASE}); a database regelmotor_bench_scale_out is made and dropped")
    args = parser.parse_args(argv)
    layouts = [name.strip() for name in args.layouts.split(",") if name.strip()]
    requests = load.build_requests(ROOT / "rulesets")
    payloads = requests.evaluate
    unique.check_unique_ids(payloads[0])
    print(f"Regelmotor scale-out: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{date.today().isoformat()}; {len(payloads)} requests (bundled cases); concurrency {args.concurrency} "
          f"from {args.clients} client processes; {args.seconds:g} s windows after {args.warmup:g} s", flush=True)
    print(f"machine load before start: {load.machine_load():.0f}% of one core busy", flush=True)
    results: list[LayoutResult] = []
    for _ in range(args.rounds):
        for layout in layouts:
            results.append(run_layout(layout, payloads, args))
    print(" | ".join(HEADER))
    for result in results:
        print(" | ".join(str(value) for value in row(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
