"""Impact analysis throughput: logged decisions evaluated again per second by RulesetService.AnalyseImpact.

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/impact.py [--decisions N] [--impact-workers K]

A SQLite decision log is filled with N utskrivningsklar decisions (500 distinct stays of tests/test_impact.py,
evaluated in this process once and recorded again under new ids: the analysis evaluates each record all the
same), then `regelmotor serve` is started on it (`tests/server_process.py`), an analysis of an empty window
starts the impact workers, and one AnalyseImpact over the whole log is timed, from the call to the report, with
the candidate of tests/test_impact.py (2025 døgnpris raised, notice limit 12 hours); also the CPU time of the
server's front process (not its workers) in that while: the analysis's share of the process Evaluate calls go
through. Goal (issue 15): 100 000
decisions in under 2 minutes on 2 cores (833/s).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import grpc  # noqa: E402  (needs the paths above)
from tests.conftest import BUNDLED_RULESETS  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402
from tests.test_impact import candidate_source, stays  # noqa: E402

from regelmotor.core.api import Regelmotor  # noqa: E402
from regelmotor.store import DecisionRecord, open_log  # noqa: E402
from regelmotor_api.v1 import audit_pb2 as apb  # noqa: E402
from regelmotor_api.v1 import ruleset_pb2 as rpb  # noqa: E402
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc  # noqa: E402

GOAL_PER_SECOND = 100_000 / 120


def fill(data_dir: Path, count: int) -> float:
    """Write `count` utskrivningsklar decisions to the SQLite log in `data_dir`; the seconds it took."""
    started = time.perf_counter()
    motor = Regelmotor.from_directory(BUNDLED_RULESETS)
    heads = []
    for stay in stays(500):
        as_of = (stay.start + timedelta(days=stay.days)).isoformat()
        heads.append(motor.run("utskrivningsklar", stay.facts(), as_of=as_of).head("x"))
    now = datetime.now(UTC)
    with open_log(data_dir / "decisions.db") as log:
        batch: list[DecisionRecord] = []
        for index in range(count):
            head = heads[index % len(heads)]
            batch.append(DecisionRecord(
                decision_id=str(uuid.uuid4()), recorded_at=now, caller="bench", request_id="", ruleset=head.ruleset,
                version=head.version, ruleset_sha256=head.ruleset_sha256, engine_version=head.engine_version,
                as_of=head.as_of, subject=None, facts=head.facts, outcome=head.outcome, decision={}, response=b"",
                trace_id=""))
            if len(batch) == 2000 or index == count - 1:
                log.append(batch)
                batch = []
    return time.perf_counter() - started


def server_on(data_dir: Path, workers: int, impact_workers: int, nice: int, idle: bool = True) -> ServerProcess:
    server = ServerProcess(workers=workers, env={
        "REGELMOTOR_DATA_DIR": str(data_dir), "REGELMOTOR_IMPACT_WORKERS": str(impact_workers),
        "REGELMOTOR_IMPACT_NICE": str(nice), "REGELMOTOR_IMPACT_IDLE": str(idle).lower(),
        "REGELMOTOR_IMPACT_MAX_DECISIONS": "1000000",
        "REGELMOTOR_LOG_LEVEL": "WARNING"})
    server.wait_serving()
    return server


def front_cpu(server: ServerProcess) -> float:
    """CPU seconds the server's front process (not its workers) has used so far."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def analyse(address: str, version: str = "") -> tuple[rpb.ImpactReport, float, int]:
    """One AnalyseImpact over the whole log (or its decisions of `version`): the report, its wall time, and the
    progress messages seen."""
    message = rpb.AnalyseImpactRequest(source=candidate_source(), ruleset="utskrivningsklar",
                                       filter=apb.DecisionFilter(version=version),
                                       formaal="benchmark, syntetiske data")
    started = time.perf_counter()
    progress = 0
    with grpc.insecure_channel(address) as channel:
        for item in rpb_grpc.RulesetServiceStub(channel).AnalyseImpact(
                message, metadata=[("regelmotor-caller", "bench")], timeout=600):
            if item.WhichOneof("item") == "report":
                return item.report, time.perf_counter() - started, progress
            progress += 1
    raise RuntimeError("the stream ended without a report")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="engine workers (idle here)")
    parser.add_argument("--impact-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--no-idle", dest="idle", action="store_false", help="impact workers not SCHED_IDLE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regelmotor-impact-") as folder:
        data_dir = Path(folder)
        seconds = fill(data_dir, args.decisions)
        print(f"filled the log with {args.decisions} decisions in {seconds:.1f} s")
        server = server_on(data_dir, args.workers, args.impact_workers, args.nice, args.idle)
        try:
            # Warm: the impact workers start on the first analysis (an empty window here).
            _, cold, _ = analyse(server.address, version="none")
            print(f"first (empty) analysis, starting the impact workers: {cold:.2f} s")
            cpu = front_cpu(server)
            report, wall, progress = analyse(server.address)
            cpu = front_cpu(server) - cpu
        finally:
            server.terminate()
    rate = report.analysed / wall
    changed = {o.field: o.changed for o in report.outcomes if o.changed}
    print(f"AnalyseImpact: {report.analysed} decisions in {wall:.2f} s = {rate:.0f} decisions/s "
          f"({args.impact_workers} impact workers, {progress} progress messages); changed {report.changed}: {changed}")
    print(f"front process CPU during the analysis: {cpu:.2f} s = {cpu / wall:.1%} of one core, "
          f"{cpu / report.analysed * 1e6:.0f} µs per decision")
    print(f"goal 100 000 in 120 s = {GOAL_PER_SECOND:.0f}/s: {'met' if rate >= GOAL_PER_SECOND else 'not met'}; "
          f"100 000 would take {100_000 / rate:.0f} s at this rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
