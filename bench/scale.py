"""Memory and scale: a batch of N decisions (default 1 000 000) through EvaluateStream with the decision log on,
the time it takes and the RSS of the service's processes along the way (issue 13, point 5).

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/scale.py [--decisions N] [--json FILE]

One service (`regelmotor serve --port 0 --drafts --workers W`, `tests/server_process.py`) with its decision log on:
SQLite in its temporary data directory (the default), or `--decision-log postgresql` on a fresh database of
`--postgres`, dropped afterwards. It is warmed up with every bundled case once. Then `--streams` client processes
(default 1) each open one EvaluateStream and send their share of the N requests (the bundled cases' facts, in turn,
each with a request_id of its own, made as it is sent, so the log records every one), reading every answer and
counting decisions and errors as they come. Meanwhile the RSS of the front process and of each engine worker is
sampled every `--sample-seconds` (default 2) with the number of decisions answered so far. Printed: RSS at the
start, at each quarter of the batch and at the end; the growth from the first quarter to the end (flat memory means
about none); the batch's time and decisions/s; errors; the log's size on disk; and, with `--verify-log` (the
default), the log's own count of records and whether its hash chain verifies (`AuditService.VerifyLog`, which reads
the whole log: minutes for a million records).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import queue
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
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
from bench.decision_log_load import log_size, postgres_database, verify_log, with_request_id  # noqa: E402

QUARTERS = (0.25, 0.5, 0.75)
PROGRESS_EVERY = 100  # answers between updates of the shared progress counter


def stream_batch(address: str, payloads: list[bytes], count: int, offset: int, timeout: float, ready: Any,
                 go: EventType, answered: Any, results: Any) -> None:
    """A client process with one EvaluateStream of `count` requests; `answered` counts the answers read so far."""
    import grpc

    from regelmotor_api.v1 import decision_pb2

    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=30)
    call: grpc.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(load.EVALUATE_STREAM)
    prefix = uuid.uuid4().hex[:12]

    def requests() -> Iterator[bytes]:
        for number in range(count):
            yield with_request_id(payloads[(offset + number) % len(payloads)], f"scale-{prefix}-{number}")

    ready.put(os.getpid())
    go.wait()
    began = time.monotonic()
    decisions = errors = 0
    first_error = ""
    for number, raw in enumerate(call(requests(), timeout=timeout), start=1):
        response = decision_pb2.EvaluateStreamResponse.FromString(raw)
        if response.HasField("decision"):
            decisions += 1
        else:
            errors += 1
            first_error = first_error or f"{response.error}"
        if number % PROGRESS_EVERY == 0:
            with answered.get_lock():
                answered.value += PROGRESS_EVERY
    with answered.get_lock():
        answered.value += (decisions + errors) % PROGRESS_EVERY
    results.put((began, time.monotonic(), decisions, errors, first_error))
    channel.close()


@dataclass
class Sample:
    seconds: float  # since the batch started
    answered: int
    front_rss_mb: float
    child_rss_mb: dict[int, float] = field(default_factory=dict)


class RssSampler:
    """Samples the RSS of the front and its engine workers, with the progress of the batch, in a thread."""

    def __init__(self, server: Any, answered: Any, every: float) -> None:
        import psutil

        self._psutil = psutil
        self.server, self.answered, self.every = server, answered, every
        self.samples: list[Sample] = []
        self.kinds: dict[int, str] = {}  # each child of the front: "engine worker" or what else it is
        self.began = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> Sample:
        def rss(pid: int) -> float:
            try:
                return round(float(self._psutil.Process(pid).memory_info().rss) / 1e6, 1)
            except self._psutil.Error:  # a worker that has just been replaced
                return float("nan")

        children = self.server.worker_pids()
        for pid in children:
            if pid not in self.kinds:
                self.kinds[pid] = self._kind(pid)
        found = Sample(round(time.monotonic() - self.began, 1), int(self.answered.value),
                       rss(self.server.process.pid), {pid: rss(pid) for pid in children})
        self.samples.append(found)
        return found

    def _kind(self, pid: int) -> str:
        try:
            command = " ".join(self._psutil.Process(pid).cmdline())
        except self._psutil.Error:
            return "gone"
        # Spawned processes start with the resource tracker beside them; the rest are the pool's workers.
        return "resource tracker" if "resource_tracker" in command else "engine worker"

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def start(self) -> None:
        self.began = time.monotonic()
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sample()


@dataclass
class Batch:
    decisions: int
    errors: int
    seconds: float
    decisions_per_s: float
    first_error: str
    samples: list[Sample]
    kinds: dict[int, str]  # what each child of the front is


def run_batch(server: Any, payloads: list[bytes], args: argparse.Namespace) -> Batch:
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    answered = context.Value("q", 0)
    timeout = max(600.0, args.decisions / 50)  # generous: 50 decisions/s would be a broken service
    children = []
    for number, share in enumerate(load.split_evenly(args.decisions, args.streams)):
        child = context.Process(target=stream_batch, args=(server.address, payloads, share, number * 104729, timeout,
                                                           ready, go, answered, results), daemon=True)
        child.start()
        children.append(child)
    for _ in children:
        ready.get(timeout=120)
    sampler = RssSampler(server, answered, args.sample_seconds)
    sampler.start()
    go.set()
    answers = []
    for _ in children:
        while True:
            try:
                answers.append(results.get(timeout=args.sample_seconds * 15))
                break
            except queue.Empty:  # still running: say how far it is
                last = sampler.samples[-1]
                print(f"  {last.seconds:7.0f} s  {last.answered:>9} answered  front {last.front_rss_mb:.0f} MB  "
                      f"children {', '.join(f'{v:.0f}' for v in last.child_rss_mb.values())} MB", flush=True)
    sampler.stop()
    for child in children:
        child.join(30)
    began, ended = min(a[0] for a in answers), max(a[1] for a in answers)
    decisions, errors = sum(a[2] for a in answers), sum(a[3] for a in answers)
    return Batch(decisions, errors, round(ended - began, 1), round(decisions / (ended - began), 1),
                 next((a[4] for a in answers if a[4]), ""), sampler.samples, sampler.kinds)


def at_fraction(samples: list[Sample], answered: int) -> Sample:
    """The first sample taken when at least `answered` answers had been read (else the last)."""
    return next((s for s in samples if s.answered >= answered), samples[-1])


def rss_table(batch: Batch, total: int, kinds: dict[int, str]) -> tuple[list[str], dict[str, Any]]:
    points = [("start", batch.samples[0])] + [(f"{int(q * 100)} %", at_fraction(batch.samples, int(q * total)))
                                              for q in QUARTERS] + [("end", batch.samples[-1])]
    children = sorted({pid for _, s in points for pid in s.child_rss_mb})
    lines = ["| point | seconds | answered | front RSS MB | " + " | ".join(
        f"{kinds.get(pid, 'child')} {pid} RSS MB" for pid in children)
             + " |", "|---|---|---|---|" + "---|" * len(children)]
    for name, s in points:
        lines.append(f"| {name} | {s.seconds:.0f} | {s.answered} | {s.front_rss_mb:.1f} | "
                     + " | ".join(f"{s.child_rss_mb.get(pid, float('nan')):.1f}" for pid in children) + " |")
    quarter, end = points[1][1], points[-1][1]
    growth = {"front": round(end.front_rss_mb - quarter.front_rss_mb, 1)}
    growth.update({str(pid): round(end.child_rss_mb.get(pid, float("nan")) - quarter.child_rss_mb.get(pid, float(
        "nan")), 1) for pid in children})
    return lines, {"points": {name: asdict(s) for name, s in points}, "growth_quarter_to_end_mb": growth}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--decisions", type=int, default=1_000_000, help="requests in the batch (default 1000000)")
    parser.add_argument("--streams", type=int, default=1, help="concurrent EvaluateStreams, one per client process")
    parser.add_argument("--workers", type=int, default=2, help="engine workers of the service (default 2)")
    parser.add_argument("--sample-seconds", type=float, default=2.0, help="time between RSS samples (default 2)")
    parser.add_argument("--decision-log", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432",
                        help="PostgreSQL server for --decision-log postgresql (default %(default)s)")
    parser.add_argument("--verify-log", action=argparse.BooleanOptionalAction, default=True,
                        help="after the batch, count and verify the log's records with VerifyLog (default on)")
    parser.add_argument("--json", type=Path, help="also write every figure and every sample to this JSON file")
    args = parser.parse_args(argv)
    if args.decisions < 1 or args.streams < 1:
        parser.error("--decisions and --streams: at least 1")

    from tests.server_process import running_server

    requests = load.build_requests(ROOT / "rulesets")
    print(f"Regelmotor scale: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{date.today().isoformat()}; {args.decisions} requests over {args.streams} EvaluateStream(s), "
          f"{args.workers} workers, decision log {args.decision_log}", flush=True)
    print(f"machine load before start: {load.machine_load():.0f}% of one core busy", flush=True)
    with ExitStack() as stack:
        setting = "sqlite" if args.decision_log == "sqlite" else stack.enter_context(
            postgres_database(args.postgres, f"regelmotor_scale_{os.getpid()}"))
        server = stack.enter_context(running_server(workers=args.workers, env={"REGELMOTOR_DECISION_LOG": setting}))
        checked = load.check_requests(server.address, requests)  # the warm-up: every request once
        batch = run_batch(server, checked.evaluate, args)
        disk_bytes = log_size(args.decision_log, setting, server.data_dir)
        records = chain_ok = None
        verify_seconds = 0.0
        if args.verify_log:
            verify_began = time.monotonic()
            records, chain_ok = verify_log(server.address)
            verify_seconds = time.monotonic() - verify_began
    lines, memory = rss_table(batch, args.decisions, batch.kinds)
    print()
    print(f"batch: {batch.decisions} decisions, {batch.errors} errors in {batch.seconds:.1f} s = "
          f"{batch.decisions_per_s:.0f} decisions/s" + (f"; first error: {batch.first_error}" if batch.errors else ""))
    print("\n".join(lines))
    print(f"RSS growth from 25 % to the end, MB: {memory['growth_quarter_to_end_mb']}")
    expected = len(checked.evaluate) + batch.decisions
    logged = None if records is None else records == expected
    print(f"decision log on disk: {disk_bytes / 1e9:.2f} GB, {disk_bytes / expected / 1000:.1f} kB per record")
    if records is not None:
        print(f"decision log: {records} records (expected {expected}: {len(checked.evaluate)} warm-up + "
              f"{batch.decisions} decisions), chain verifies: {chain_ok} (VerifyLog took {verify_seconds:.1f} s)")
    if args.json:
        report = {"date": date.today().isoformat(), "settings": {k: str(v) if isinstance(v, Path) else v
                                                                 for k, v in vars(args).items()},
                  "batch": {k: v for k, v in asdict(batch).items() if k != "samples"}, "memory": memory,
                  "log": {"records": records, "expected": expected, "chain_ok": chain_ok, "disk_bytes": disk_bytes,
                          "verify_seconds": round(verify_seconds, 1)},
                  "samples": [asdict(s) for s in batch.samples]}
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if batch.errors or logged is False or chain_ok is False else 0


if __name__ == "__main__":
    raise SystemExit(main())
