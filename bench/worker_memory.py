"""Memory of the service per engine worker: RSS, PSS and USS of the front and of each engine worker once every
bundled version has been evaluated, for 1, 2 and 4 workers; what one more worker adds to a pod.

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/worker_memory.py [--workers 1,2,4] [--passes 3]

For each worker count one service (`regelmotor serve --workers W`, tests/server_process.py, SQLite decision log in
its data directory, the bundled rulesets). The facts of every bundled test case that expects a decision (all
versions, as bench/grpc_load.py builds them) go through one EvaluateStream `--passes` times, each with a request_id
of its own, so that every worker has loaded and evaluated every version. Then each process is read with psutil's
memory_full_info: RSS counts the pages shared with other processes in full, PSS a fair share of them, USS only the
process's own. The sources and impact sandboxes start on first use and are not running here.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench import grpc_load as load  # noqa: E402  (needs the paths above)
from bench.decision_log_load import with_request_id  # noqa: E402
from bench.log_growth import stream  # noqa: E402

MB = 1e6


def memory(pid: int) -> dict[str, float]:
    import psutil

    info = psutil.Process(pid).memory_full_info()
    return {"rss": info.rss / MB, "pss": info.pss / MB, "uss": info.uss / MB}


def engine_workers(server: Any) -> list[int]:
    import psutil

    return [pid for pid in server.worker_pids() if "resource_tracker" not in " ".join(psutil.Process(pid).cmdline())]


def measure(workers: int, passes: int, requests: list[bytes]) -> dict[str, Any]:
    from tests.server_process import running_server

    with running_server(workers=workers) as server:
        tag = uuid.uuid4().hex[:8]
        payloads = [with_request_id(p, f"mem-{tag}-{n}-{i}") for n in range(passes) for i, p in enumerate(requests)]
        decisions, errors = stream(server.address, payloads)
        front = memory(server.process.pid)
        each = [memory(pid) for pid in engine_workers(server)]
    total = {key: front[key] + sum(w[key] for w in each) for key in ("rss", "pss", "uss")}
    return {"workers": workers, "decisions": decisions, "errors": errors, "front": front, "engine_workers": each,
            "total": total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=load.positive_ints, default=[1, 2, 4], help="worker counts (default 1,2,4)")
    parser.add_argument("--passes", type=int, default=3, help="passes over the bundled cases (default 3)")
    args = parser.parse_args()
    requests = load.build_requests(ROOT / "rulesets").evaluate
    runs = [measure(workers, args.passes, requests) for workers in args.workers]
    print("| engine workers | decisions (errors) | front RSS / PSS / USS MB | each engine worker RSS / PSS / USS MB "
          "| whole service PSS MB |\n|---|---|---|---|---|")
    for run in runs:
        workers = "; ".join(f"{w['rss']:.1f} / {w['pss']:.1f} / {w['uss']:.1f}" for w in run["engine_workers"])
        front = run["front"]
        print(f"| {run['workers']} | {run['decisions']} ({run['errors']}) | {front['rss']:.1f} / {front['pss']:.1f} / "
              f"{front['uss']:.1f} | {workers} | {run['total']['pss']:.1f} |")
    first, last = runs[0], runs[-1]
    if last["workers"] > first["workers"]:
        added = (last["total"]["pss"] - first["total"]["pss"]) / (last["workers"] - first["workers"])
        print(f"PSS added per engine worker ({first['workers']} → {last['workers']} workers): {added:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
