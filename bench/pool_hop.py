"""The front's share of the hop to an engine worker and back, without gRPC: CPU of this process per call.

Not a test: it prints figures. Run from the repository root (TREE: the checkout to measure, default this one):

    PYTHONPATH=services/rules:protos/python:. python bench/pool_hop.py [--workers 2] [--concurrency 16] [--seconds 3]

A `WorkerPool` with real engine workers (the bundled rulesets) is driven from this process's event loop by
`--concurrency` tasks, each calling `pool.call(Evaluate(...))` back to back with the same request; this process
is the front, so its CPU (`time.process_time()`, every thread) over the measured window ÷ the calls in it is what
the front pays per call for the pool, the pipes and the answers (no gRPC, no servicer, no log line).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("TREE", Path(__file__).resolve().parents[1]))
for _path in (ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


async def measure(workers: int, concurrency: int, seconds: float) -> tuple[float, float, int]:
    """Calls/s, front CPU µs per call, and the messages that carried more than one call."""
    from tests.grpc_support import request

    from regelmotor.core.repository import RulesetSnapshot
    from regelmotor.server.pool import WorkerPool
    from regelmotor.server.protocol import Evaluate
    from regelmotor.server.worker import WorkerConfig

    config = WorkerConfig(role="engine", snapshot=RulesetSnapshot.read(ROOT / "rulesets"), allow_drafts=True)
    pool = WorkerPool("engine", workers, config, time_limit=60, max_wait=10)
    await pool.start()
    payload = request(request_id="").SerializeToString()
    calls = 0
    running = True

    async def caller() -> None:
        nonlocal calls
        while running:
            await pool.call(Evaluate(payload), 30)
            calls += 1

    tasks = [asyncio.create_task(caller()) for _ in range(concurrency)]
    await asyncio.sleep(0.5)  # warm-up
    calls_before, cpu_before, began = calls, time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    done, cpu, elapsed = calls - calls_before, time.process_time() - cpu_before, time.monotonic() - began
    running = False
    await asyncio.gather(*tasks)
    await pool.close()
    return done / elapsed, cpu / max(1, done) * 1e6, getattr(pool.stats, "batches", 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rate, cpu, batches = asyncio.run(measure(args.workers, args.concurrency, args.seconds))
    print(f"{ROOT}: {args.workers} workers, {args.concurrency} in flight: {rate:.0f} calls/s, "
          f"front CPU {cpu:.0f} µs/call, {batches} messages with more than one call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
