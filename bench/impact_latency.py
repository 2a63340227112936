"""Evaluate latency while an impact analysis runs: how much an AnalyseImpact delays the hospital systems' calls.

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/impact_latency.py [--nice 10] [--no-idle] [--seconds 5]

A SQLite log is filled with `--decisions` utskrivningsklar decisions (bench/impact.py) and `regelmotor serve` is
started on it with 2 engine workers and 2 impact workers at `--nice` (and SCHED_IDLE unless `--no-idle`). For 1
and for 4 unary Evaluate calls in flight (closed loop, threads of this process, each call with a request_id of its
own, so recorded), the latency is measured for `--seconds` without an analysis, then for `--seconds` while
AnalyseImpact runs over the whole log (started again when it ends). Printed: calls/s, p50, p99 of each, the
front process's CPU time per Evaluate call (the analysis's part of the front shows as the difference), and the
analysis's rate.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import grpc  # noqa: E402  (needs the paths above)
from bench.impact import analyse, fill, front_cpu, server_on  # noqa: E402
from tests.grpc_support import request  # noqa: E402

from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc  # noqa: E402

_ids = itertools.count()


def evaluate_for(address: str, seconds: float, in_flight: int) -> list[float]:
    """Latencies (s) of unary Evaluate calls, `in_flight` at a time, for `seconds`."""
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    def client() -> None:
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            while time.perf_counter() < end:
                message = request(request_id=f"lat-{next(_ids)}")
                started = time.perf_counter()
                stub.Evaluate(message, metadata=[("regelmotor-caller", "bench")], timeout=30)
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


class Analyses:
    """AnalyseImpact over the whole log, again and again in a thread, until stopped; the decisions per second."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.stopping = threading.Event()
        self.decisions = 0
        self.seconds = 0.0
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self.stopping.is_set():
            report, wall, _ = analyse(self.address)
            self.decisions += report.analysed
            self.seconds += wall

    def __enter__(self) -> Analyses:
        self.thread.start()
        time.sleep(0.5)  # its workers busy before the calls are timed
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join()


def line(label: str, latencies: list[float], seconds: float) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (f"{label:<28} {len(ms) / seconds:7.0f} calls/s  p50 {statistics.median(ms):6.2f} ms  "
            f"p99 {p99:6.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=30_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--no-idle", dest="idle", action="store_false", help="impact workers not SCHED_IDLE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regelmotor-impact-") as folder:
        data_dir = Path(folder)
        fill(data_dir, args.decisions)
        server = server_on(data_dir, 2, 2, args.nice, args.idle)
        try:
            analyse(server.address, version="none")  # starts the impact workers
            evaluate_for(server.address, 1.0, 4)  # warm
            print(f"2 engine workers, 2 impact workers at nice {args.nice}{', SCHED_IDLE' if args.idle else ''}, "
                  f"{args.decisions} logged decisions")
            for in_flight in (1, 4):
                cpu = front_cpu(server)
                alone = evaluate_for(server.address, args.seconds, in_flight)
                cpu = front_cpu(server) - cpu
                print(line(f"{in_flight} in flight, alone", alone, args.seconds)
                      + f"  front {cpu / len(alone) * 1000:.2f} ms CPU per call")
                with Analyses(server.address) as running:
                    cpu = front_cpu(server)
                    during = evaluate_for(server.address, args.seconds, in_flight)
                    cpu = front_cpu(server) - cpu
                print(line(f"{in_flight} in flight, analysing", during, args.seconds)
                      + f"  front {cpu / len(during) * 1000:.2f} ms CPU per call"
                      + f"  (analysis {running.decisions / running.seconds:.0f} decisions/s)")
        finally:
            server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
