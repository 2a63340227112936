"""Hot reload (server/reload.py): a version published or retired in the store is served by every engine worker of
every running instance within 5 seconds, without a restart - under load without a failed call, on two instances
sharing one PostgreSQL - while a snapshot that does not load never replaces the one served, and a call a worker is
working on finishes on the versions it began with."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from regelmotor.core.repository import RulesetSnapshot
from regelmotor.server.app import RunningServer
from regelmotor.server.pool import WorkerPool
from regelmotor.server.protocol import Evaluate, Reload, Reloaded, Reply
from regelmotor.server.worker import WorkerConfig
from regelmotor.store import State, VersionMeta, VersionText
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.auth_support import Issuer, bearer
from tests.grpc_support import metric_points, server_in_process, struct
from tests.lifecycle_support import Person, cases, lifecycle_server, seed_directory, sha256, source
from tests.postgres_support import postgres_schema

AUTHOR = ("ruleset:author", "ruleset:read")
APPROVER = ("ruleset:approve", "ruleset:read")
LIVE_WITHIN = 5.0  # seconds: the requirement for a published or retired version
LATE = "2040-06-01"  # governed by the newest published version


def _evaluate(stub: pb_grpc.DecisionServiceStub, metadata: list[tuple[str, str]] | None, as_of: str,
              request_id: str, version: str = "") -> pb.Decision:
    answer: pb.Decision = stub.Evaluate(pb.EvaluateRequest(ruleset="sats", as_of=as_of, version=version,
                                                           facts=struct({"alder": 40}), request_id=request_id),
                                        metadata=metadata, timeout=30)
    return answer


def _workers_serve(server: RunningServer, version: str, retired_from: str = "") -> bool:
    """Whether every engine worker of `server` took the snapshot of its pool, and that snapshot holds `version`
    (retired from `retired_from`, when given)."""
    async def look() -> bool:
        pool = server.service.pool
        assert pool is not None and pool.config.snapshot is not None
        ready, starting = pool.behind(pool.config)
        snapshot = pool.config.snapshot
        return (not ready and not starting and f"store/sats/{version}.yaml" in dict(snapshot.files)
                and (not retired_from or (f"sats@{version}", retired_from) in snapshot.retired))

    return bool(server.run(look(), timeout=10))


def _listed(channel: grpc.Channel, metadata: list[tuple[str, str]] | None) -> set[str]:
    listing = rpb_grpc.RulesetServiceStub(channel).ListRulesets(rpb.ListRulesetsRequest(), metadata=metadata,
                                                                timeout=10)
    return {v.version for r in listing.rulesets if r.name == "sats" for v in r.versions}


def _seconds_until(condition: Callable[[], bool], limit: float = 30.0) -> float:
    """How long `condition` took to hold (polled); fails after `limit`, far beyond any bound asserted."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < limit, "never held"
        time.sleep(0.05)
    return time.monotonic() - began


class Load:
    """A few threads calling Evaluate continuously, each on its own channel, counting answers and failures."""

    def __init__(self, address: str, metadata: list[tuple[str, str]] | None, threads: int = 3) -> None:
        self.address, self.metadata = address, metadata
        self.answered = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _run(self, number: int) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            call = 0
            while not self._stop.is_set():
                call += 1
                try:
                    _evaluate(stub, self.metadata, ("2025-06-01", LATE)[call % 2], f"load-{number}-{call}")
                except grpc.RpcError as exc:
                    with self._lock:
                        self.failures.append(str(exc))
                else:
                    with self._lock:
                        self.answered += 1


@pytest.fixture
def rulesets(tmp_path: Path) -> Path:
    return seed_directory(tmp_path / "rulesets")


def test_ten_publishes_and_a_retirement_under_load_fail_no_call_and_each_is_live_within_5_seconds(
        idp: Issuer, idp_jwks: Path, rulesets: Path) -> None:
    evaluate = bearer(idp.token(scope="evaluate"))
    reader = bearer(idp.token(scope="ruleset:read"))
    with lifecycle_server(idp, idp_jwks, rulesets, "sqlite", workers=2) as server, \
            grpc.insecure_channel(server.address) as channel:
        anna, bjorn = Person(idp, channel, "anna", *AUTHOR), Person(idp, channel, "bjorn", *APPROVER)
        stub = pb_grpc.DecisionServiceStub(channel)
        took: dict[str, float] = {}

        def publish(year: int) -> str:
            """Propose and approve the version of `year`; how long until it is live everywhere."""
            version, fra = f"{year}.1", f"{year}-01-01"
            text = source(version, fra)
            assert anna.propose(text, cases(fra)).accepted
            bjorn.approve(version, sha256(text))

            def live() -> bool:
                return (_evaluate(stub, evaluate, fra, f"probe-{version}-{time.monotonic()}").version == version
                        and _workers_serve(server, version) and version in _listed(channel, reader))

            took[version] = _seconds_until(live)
            return version

        publish(2025)  # before the load, so that no decision of the load is selected by 2024.1, retired below
        with Load(server.address, evaluate) as load:
            for year in range(2026, 2036):
                version = publish(year)
                with ThreadPoolExecutor(6) as burst:  # every worker answers with it now
                    ids = [f"burst-{version}-{n}" for n in range(6)]
                    served = set(burst.map(lambda request_id: _evaluate(stub, evaluate, LATE, request_id).version,
                                           ids))
                assert served == {version}
            bjorn.retire("2024.1", "2025-01-02")  # the probe of 2025.1 may have got 2024.1 for 2025-01-01

            def retired() -> bool:
                try:
                    _evaluate(stub, evaluate, "2024-06-01", f"retired-{time.monotonic()}")
                except grpc.RpcError as exc:
                    gone = "no version of 'sats' is in force on 2024-06-01" in str(exc)
                    return gone and _workers_serve(server, "2024.1", retired_from="2025-01-02")
                return False

            took["retired 2024.1"] = _seconds_until(retired)
        assert load.failures == [] and load.answered > 0, load.failures[:5]
        assert all(seconds < LIVE_WITHIN for seconds in took.values()), took


def test_two_instances_on_one_postgresql_both_serve_a_version_published_on_one_of_them(
        idp: Issuer, idp_jwks: Path, rulesets: Path) -> None:
    evaluate = bearer(idp.token(scope="evaluate"))
    with postgres_schema() as dsn, \
            lifecycle_server(idp, idp_jwks, rulesets, dsn, workers=1) as first, \
            lifecycle_server(idp, idp_jwks, rulesets, dsn, workers=1) as second, \
            grpc.insecure_channel(first.address) as one, grpc.insecure_channel(second.address) as other:
        anna, bjorn = Person(idp, one, "anna", *AUTHOR), Person(idp, one, "bjorn", *APPROVER)
        text = source("2025.1", "2025-01-01")
        assert anna.propose(text, cases("2025-01-01")).accepted
        bjorn.approve("2025.1", sha256(text))
        approved = time.monotonic()
        for server, channel in ((first, one), (second, other)):
            stub = pb_grpc.DecisionServiceStub(channel)

            def live(server: RunningServer = server, stub: pb_grpc.DecisionServiceStub = stub) -> bool:
                answer = _evaluate(stub, evaluate, "2025-03-01", f"probe-{server.port}-{time.monotonic()}")
                return answer.version == "2025.1" and _workers_serve(server, "2025.1")

            _seconds_until(live)
        assert time.monotonic() - approved < LIVE_WITHIN


def test_an_instance_without_engine_workers_serves_a_published_version_without_a_restart_too(
        idp: Issuer, idp_jwks: Path, rulesets: Path) -> None:
    evaluate = bearer(idp.token(scope="evaluate"))
    with lifecycle_server(idp, idp_jwks, rulesets, "sqlite", workers=0) as server, \
            grpc.insecure_channel(server.address) as channel:
        anna, bjorn = Person(idp, channel, "anna", *AUTHOR), Person(idp, channel, "bjorn", *APPROVER)
        stub = pb_grpc.DecisionServiceStub(channel)
        text = source("2025.1", "2025-01-01")
        assert anna.propose(text, cases("2025-01-01")).accepted
        bjorn.approve("2025.1", sha256(text))
        took = _seconds_until(lambda: _evaluate(stub, evaluate, "2025-03-01",
                                                f"probe-{time.monotonic()}").version == "2025.1")
        assert "2025.1" in _listed(channel, bearer(idp.token(scope="ruleset:read")))
        assert took < LIVE_WITHIN


BROKEN = "name: sats\nversion: '2030.1'\nstatus: published\ngyldig_fra: 2030-01-01\nrules: [hemmelig tekst\n"


@pytest.fixture
def plain_server(rulesets: Path) -> Iterator[tuple[RunningServer, InMemoryMetricReader]]:
    with server_in_process(workers=1, rulesets=rulesets, decision_log="sqlite", reload_seconds=0.2) as (
            server, _, reader):
        yield server, reader


def test_a_stored_version_that_does_not_load_never_replaces_the_served_ones_and_is_reported(
        plain_server: tuple[RunningServer, InMemoryMetricReader], caplog: pytest.LogCaptureFixture) -> None:
    server, reader = plain_server
    assert server.log is not None
    meta = VersionMeta("Sats 2030.1", date(2030, 1, 1), None, False, None, ())
    with caplog.at_level(logging.ERROR, logger="regelmotor.reload"):
        # Only a store altered behind the lifecycle's back holds such a text: ProposeRuleset checks every source.
        server.log.rulesets().import_versions([(VersionText("sats", "2030.1", BROKEN, "", "0" * 64, meta),
                                                State.PUBLISHED)], "test", "test")
        server.log.rulesets().approve("sats", "2030.1", "0" * 64, "another", ())

        def reported() -> bool:
            return any(p.get("outcome") == "refused" for p in metric_points(reader, "regelmotor.ruleset.reloads"))

        _seconds_until(reported)
    assert {"condition": "ruleset_reload", "ok": "false", "value": 1} in metric_points(
        reader, "regelmotor.health.changes")
    refusals = [r for r in caplog.records if r.getMessage().startswith("ruleset reload refused")]
    assert refusals and "store/sats/2030.1.yaml line" in refusals[0].problem  # type: ignore[attr-defined]
    assert "hemmelig" not in caplog.text, "no source text in the log"
    with grpc.insecure_channel(server.address) as channel:
        answer = _evaluate(pb_grpc.DecisionServiceStub(channel), None, "2031-01-01", "after-refusal")
        assert answer.version == "2024.1"
        assert _listed(channel, None) == {"2024.1"}
        # ListRulesets says why the newest stored versions are not served: the file and line, not the text.
        listing = rpb_grpc.RulesetServiceStub(channel).ListRulesets(rpb.ListRulesetsRequest(), timeout=10)
        problem = listing.reload_problem
        assert "store/sats/2030.1.yaml line" in problem and "hemmelig" not in problem
    assert _workers_serve(server, "2024.1") and not _workers_serve(server, "2030.1")


def _snapshots(tmp_path: Path) -> tuple[RulesetSnapshot, RulesetSnapshot]:
    """sats 2024.1 alone, and with 2025.1 published after it."""
    root = seed_directory(tmp_path / "rulesets")
    old = RulesetSnapshot.read(root)
    text = source("2025.1", "2025-01-01")
    (root / "sats" / "2025.1.yaml").write_text(text, encoding="utf-8")
    with (root / "published.txt").open("a", encoding="utf-8") as published:
        published.write(f"sats 2025.1 {sha256(text)}\n")
    return old, RulesetSnapshot.read(root)


def _call(version_day: str, number: int) -> Evaluate:
    return Evaluate(pb.EvaluateRequest(ruleset="sats", as_of=version_day, facts=struct({"alder": 40}),
                                       request_id=f"r{number}").SerializeToString())


def test_a_worker_takes_a_reload_between_two_calls_so_a_call_in_flight_finishes_on_its_versions(
        tmp_path: Path) -> None:
    old, new = _snapshots(tmp_path)

    async def scenario() -> tuple[list[str], object]:
        pool = WorkerPool("engine", 1, WorkerConfig(role="engine", snapshot=old), time_limit=60)
        await pool.start()
        try:
            calls = [asyncio.create_task(pool.call(_call("2025-06-01", n), timeout=60)) for n in range(12)]
            await asyncio.sleep(0)  # the first call is on the worker, the others wait in the queue
            ready, _ = pool.behind(WorkerConfig(role="engine"))
            reloaded = await pool.between_messages(ready[0], Reload(new))
            replies = await asyncio.gather(*calls)
            return [r.summary.version for r in replies if isinstance(r, Reply)], reloaded
        finally:
            await pool.close(timeout=5)

    versions, reloaded = asyncio.run(scenario())
    assert reloaded == Reloaded(versions=2)
    assert versions == ["2024.1"] + ["2025.1"] * 11


def test_a_worker_given_a_snapshot_that_does_not_load_serves_on_with_its_own(tmp_path: Path) -> None:
    old, _ = _snapshots(tmp_path)
    broken = RulesetSnapshot("store", (*old.files, ("store/sats/2030.1.yaml", BROKEN)), old.published)

    async def scenario() -> tuple[object, str]:
        pool = WorkerPool("engine", 1, WorkerConfig(role="engine", snapshot=old), time_limit=60)
        await pool.start()
        try:
            ready, _ = pool.behind(WorkerConfig(role="engine"))
            refused = await pool.between_messages(ready[0], Reload(broken))
            reply = await pool.call(_call("2031-01-01", 1), timeout=60)
            assert isinstance(reply, Reply)
            return refused, reply.summary.version
        finally:
            await pool.close(timeout=5)

    refused, version = asyncio.run(scenario())
    assert isinstance(refused, Reloaded) and refused.problem.startswith("1 problem(s), the first in store/sats/2030.1")
    assert "hemmelig" not in refused.problem
    assert version == "2024.1"
