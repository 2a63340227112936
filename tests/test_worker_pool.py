"""The engine worker pool under pressure, over real channels and real worker processes: a call's wait for a
worker is kept apart from the evaluation's own limit, the pool never stays at zero, every worker serves the
same snapshot of the rulesets, idle streams cost no thread, and health follows the workers and the log."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from regelmotor.core.repository import read_published
from regelmotor.server.protocol import Failed, Stop
from regelmotor.server.worker import Worker, WorkerConfig
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.conftest import BUNDLED_RULESETS
from tests.grpc_support import details, metric_points, request, server_in_process
from tests.server_process import running_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health(channel: grpc.Channel, service: str = "") -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(reply.status)


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _sum_points(reader: InMemoryMetricReader, name: str, **labels: str) -> float:
    data = reader.get_metrics_data()
    total = 0.0
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        if all((point.attributes or {}).get(k) == v for k, v in labels.items()):
                            total += float(point.value)  # type: ignore[union-attr]
    return total


def test_short_deadlines_under_load_never_kill_a_healthy_worker() -> None:
    with server_in_process(workers=2) as (server, _, _):
        assert server.pool is not None
        pids = sorted(server.pool.pids())
        codes: Counter[str] = Counter()
        lock = threading.Lock()
        # 20 ms as in the report, or four times one call's time on a machine slower than that (a shared CI
        # runner): a call that finds a free worker is answered, while 16 callers on 2 workers wait longer.
        with grpc.insecure_channel(server.address) as channel:
            timings = []
            for _ in range(5):
                started = time.monotonic()
                pb_grpc.DecisionServiceStub(channel).Evaluate(request(request_id=""), timeout=30)
                timings.append(time.monotonic() - started)
        deadline = max(0.02, 4 * sorted(timings)[2])

        def caller() -> None:
            with grpc.insecure_channel(server.address) as channel:
                stub = pb_grpc.DecisionServiceStub(channel)
                for index in range(30):
                    try:
                        stub.Evaluate(request(request_id=""), timeout=deadline)
                        code = "OK"
                    except grpc.RpcError as error:
                        code = error.code().name
                    with lock:
                        codes[code] += 1
                    del index

        threads = [threading.Thread(target=caller) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = server.pool.stats
        assert set(codes) <= {"OK", "DEADLINE_EXCEEDED"}, codes
        assert codes["OK"] > 0, (codes, deadline)
        assert stats.killed_for_time == 0 and stats.restarts == 0, stats
        assert sorted(server.pool.pids()) == pids, "no worker was replaced"
        with grpc.insecure_channel(server.address) as channel:
            assert pb_grpc.DecisionServiceStub(channel).Evaluate(request(request_id="after"), timeout=30).version


def test_a_deadline_that_expires_in_the_server_is_answered_deadline_exceeded_by_the_server() -> None:
    with server_in_process(workers=1) as (server, _, reader):
        # A stream keeps the one worker busy; a unary call with a short deadline waits for it in the server.
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            stream = stub.EvaluateStream(iter([request(request_id=f"s{i}") for i in range(400)]), timeout=60)
            first = next(stream)
            assert first.WhichOneof("result") == "decision"
            refused = 0
            for _ in range(20):
                try:
                    stub.Evaluate(request(request_id=""), timeout=0.005)
                except grpc.RpcError as error:
                    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
                    refused += 1
            assert len(list(stream)) == 399
        assert refused > 0
        # The server itself answered (and counted) DEADLINE_EXCEEDED: the calls reached it.
        _wait_for(lambda: _sum_points(reader, "regelmotor.errors", code="DEADLINE_EXCEEDED") > 0, 10,
                  "the server's count of DEADLINE_EXCEEDED")


def test_a_worker_that_overruns_its_own_limit_is_killed_replaced_and_the_call_told_why() -> None:
    with server_in_process(workers=1, max_evaluation_seconds=0.0005, source_seconds=0.0005) as (server, _, _):
        assert server.pool is not None
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            # A batch of 32 evaluations takes far longer than half a millisecond.
            answers = list(stub.EvaluateStream(iter([request(request_id="")] * 32), timeout=60))
            # A ruleset source in the sandbox, over its own limit, is answered the same way.
            source = (BUNDLED_RULESETS / "rett-til-helsehjelp" / "2024.07.yaml").read_text(encoding="utf-8")
            with pytest.raises(grpc.RpcError, match=re.escape("ran longer than 0.0005 s")) as caught:
                rpb_grpc.RulesetServiceStub(channel).ValidateRuleset(rpb.ValidateRulesetRequest(source=source),
                                                                     timeout=60)
        assert {a.error.code for a in answers} == {grpc.StatusCode.DEADLINE_EXCEEDED.value[0]}
        info = error_details_pb2.ErrorInfo()
        assert answers[0].error.details[0].Unpack(info) and info.reason == "EVALUATION_TIME_LIMIT"
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert details(caught.value)["ErrorInfo"].reason == "EVALUATION_TIME_LIMIT"
        assert server.pool.stats.killed_for_time >= 1
        _wait_for(lambda: server.pool is not None and server.pool.ready == 1, 60, "a replacement worker")


def test_every_worker_serves_the_snapshot_the_front_lists_even_after_the_files_change(tmp_path: Path) -> None:
    rulesets = tmp_path / "rulesets"
    shutil.copytree(BUNDLED_RULESETS, rulesets)
    path = rulesets / "rett-til-helsehjelp" / "2024.07.1.yaml"  # the version deciding the request below
    original = path.read_text(encoding="utf-8")
    with server_in_process(workers=2, rulesets=rulesets) as (server, _, _):
        assert server.pool is not None
        with grpc.insecure_channel(server.address) as channel:
            rulesets_stub = rpb_grpc.RulesetServiceStub(channel)
            listed = {v.version: v.sha256 for r in rulesets_stub.ListRulesets(rpb.ListRulesetsRequest(), timeout=10)
                      .rulesets if r.name == "rett-til-helsehjelp" for v in r.versions}
            # The file changes on disk, published.txt too (so a reader of the directory would accept it) ...
            changed = original.replace("title:", "title: endret -", 1)
            path.write_text(changed, encoding="utf-8")
            from regelmotor.core.loader import load_ruleset_text

            new_sha = load_ruleset_text(changed, str(path)).sha256
            published = (rulesets / "published.txt").read_text(encoding="utf-8")
            (rulesets / "published.txt").write_text(published.replace(listed["2024.07.1"], new_sha), encoding="utf-8")
            assert read_published(rulesets)["rett-til-helsehjelp@2024.07.1"] == new_sha
            # ... and every worker is replaced.
            for pid in server.pool.pids():
                os.kill(pid, signal.SIGKILL)
            _wait_for(lambda: server.pool is not None and server.pool.ready == 2 and server.pool.stats.restarts >= 2,
                      60, "two replacement workers")
            stub = pb_grpc.DecisionServiceStub(channel)
            answers = {stub.Evaluate(request(request_id=""), timeout=30).ruleset_sha256 for _ in range(20)}
            got = rulesets_stub.GetRuleset(rpb.GetRulesetRequest(name="rett-til-helsehjelp", version="2024.07.1"),
                                           timeout=10)
    assert answers == {listed["2024.07.1"]}, "every worker decides with the version the front lists"
    assert got.version.sha256 == listed["2024.07.1"] and got.source == original


def _wait_for_calls_in_progress(reader: InMemoryMetricReader, count: int, seconds: float = 30) -> None:
    """Until the server counts `count` decision calls in progress (regelmotor.calls.in_progress)."""
    deadline = time.monotonic() + seconds
    while True:
        points = [p for p in metric_points(reader, "regelmotor.calls.in_progress")
                  if p.get("regelmotor.limit") == "max_calls_per_caller"]
        if points and points[0]["value"] == count:
            return
        assert time.monotonic() < deadline, f"calls in progress: {points}, expected {count}"
        time.sleep(0.05)


def test_two_hundred_idle_streams_leave_health_and_evaluate_answering() -> None:
    with server_in_process(workers=1) as (server, _, reader):
        release = threading.Event()

        def idle() -> Iterator[pb.EvaluateRequest]:
            release.wait(60)
            yield from ()  # a generator that sends nothing until released

        channels = [grpc.insecure_channel(server.address) for _ in range(4)]
        # 200 callers, one idle stream each: a stream counts against its caller's max_calls_per_caller while
        # open, so one caller's 200 would be refused beyond 64 (tests/test_abuse_limits.py).
        streams = [pb_grpc.DecisionServiceStub(channels[i % 4]).EvaluateStream(
            idle(), metadata=[("regelmotor-caller", f"idle-{i}")], timeout=60) for i in range(200)]
        try:
            _wait_for_calls_in_progress(reader, 200)  # every stream open on the server, not only sent
            with grpc.insecure_channel(server.address) as fresh:
                assert _health(fresh) == SERVING
                assert pb_grpc.DecisionServiceStub(fresh).Evaluate(request(request_id=""), timeout=10).version
        finally:
            release.set()
            for stream in streams:
                assert list(stream) == []
            for channel in channels:
                channel.close()
        _wait_for_calls_in_progress(reader, 0)  # each ended stream is no longer counted


def test_unknown_messages_and_handler_faults_are_answered_not_fatal() -> None:
    worker = Worker(WorkerConfig(role="sources"))
    answer = worker.handle(Stop())  # a kind a worker never gets from the pool's callers
    assert isinstance(answer, Failed) and "does not handle Stop" in answer.reason
    assert isinstance(worker.handle(object()), Failed)  # type: ignore[arg-type]
    from regelmotor.server.protocol import ValidateSource

    broken = worker.handle(ValidateSource(b"\xff\xff\xff"))  # not a ValidateRulesetRequest
    assert isinstance(broken, Failed) and "DecodeError" in broken.reason


def _zombies(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == parent:
                found.append(int(entry))
    return found


def test_a_pool_killed_to_zero_says_not_serving_fails_fast_and_recovers_without_zombies() -> None:
    with running_server(workers=1) as server, grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        assert stub.Evaluate(request(request_id=""), timeout=30).version
        killed: set[int] = set()
        stop = threading.Event()

        def kill_every_worker_that_appears() -> None:
            while not stop.is_set():
                for pid in server.worker_pids():
                    if pid not in killed and _is_engine_worker(pid):
                        os.kill(pid, signal.SIGKILL)
                        killed.add(pid)
                time.sleep(0.02)

        killer = threading.Thread(target=kill_every_worker_that_appears)
        killer.start()
        saw_not_serving = False
        fast_unavailable = 0
        try:
            until = time.monotonic() + 8
            while time.monotonic() < until:
                if _health(channel, "regelmotor.v1.DecisionService") == NOT_SERVING:
                    saw_not_serving = True
                started = time.monotonic()
                try:
                    stub.Evaluate(request(request_id=""), timeout=20)
                except grpc.RpcError as error:
                    if error.code() is grpc.StatusCode.UNAVAILABLE and time.monotonic() - started < 3:
                        fast_unavailable += 1
                time.sleep(0.05)
        finally:
            stop.set()
            killer.join()
        assert len(killed) >= 3, "replacements kept being started"
        assert saw_not_serving and fast_unavailable > 0
        _wait_for(lambda: _health(channel, "regelmotor.v1.DecisionService") == SERVING, 60, "SERVING again")
        assert stub.Evaluate(request(request_id=""), timeout=30).version
        assert _zombies(server.process.pid) == []
        logs = server.logs()
    assert '"condition": "engine_workers"' in logs and "worker lost" in logs


def _is_engine_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read()
    except OSError:
        return False
    return b"multiprocessing.spawn" in command and b"resource_tracker" not in command


def _health_changes(reader: InMemoryMetricReader, condition: str, ok: bool) -> float:
    return _sum_points(reader, "regelmotor.health.changes", condition=condition, ok=str(ok).lower())


def test_a_pool_without_a_ready_worker_is_not_serving_and_counted_in_the_health_metric() -> None:
    with server_in_process(workers=1) as (server, _, reader), grpc.insecure_channel(server.address) as channel:
        assert server.pool is not None and _health(channel, "regelmotor.v1.DecisionService") == SERVING
        lost, back = _health_changes(reader, "engine_workers", False), _health_changes(reader, "engine_workers", True)
        [pid] = server.pool.pids()
        os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: _health_changes(reader, "engine_workers", False) == lost + 1, 30,
                  "the loss of the last worker counted")
        _wait_for(lambda: _health_changes(reader, "engine_workers", True) == back + 1, 60, "the replacement counted")
        assert _health(channel, "regelmotor.v1.DecisionService") == SERVING


def test_decision_service_is_not_serving_while_the_log_refuses_writes_and_recovers() -> None:
    with server_in_process(workers=1) as (server, _, reader):
        database = Path(str(server.settings.data_dir)) / "decisions.db"
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            assert stub.Evaluate(request(request_id="ok-1"), timeout=30).version
            with sqlite3.connect(database) as db:  # the store breaks (as a full disk or a bad migration would)
                db.execute("CREATE TRIGGER refuse BEFORE INSERT ON decisions BEGIN SELECT RAISE(ABORT, 'full'); END")
            with pytest.raises(grpc.RpcError, match="could not be recorded") as caught:
                stub.Evaluate(request(request_id="refused"), timeout=30)
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
            assert details(caught.value)["ErrorInfo"].reason == "DECISION_NOT_RECORDED"
            _wait_for(lambda: _health(channel, "regelmotor.v1.DecisionService") == NOT_SERVING, 10, "NOT_SERVING")
            assert _health(channel, "") == NOT_SERVING
            assert _health_changes(reader, "decision_log", False) == 1  # the reason, counted once
            assert _health(channel, "regelmotor.v1.RulesetService") == SERVING
            with sqlite3.connect(database) as db:
                db.execute("DROP TRIGGER refuse")
            _wait_for(lambda: _health(channel, "regelmotor.v1.DecisionService") == SERVING, 15,
                      "SERVING again after the probe succeeds")
            assert _health_changes(reader, "decision_log", True) == 1
            assert stub.Evaluate(request(request_id="ok-2"), timeout=30).version
        with sqlite3.connect(database) as db:
            ids = {row[0] for row in db.execute("SELECT request_id FROM decisions")}
    assert ids == {"ok-1", "ok-2"}, "nothing refused was stored, nothing stored was lost"


ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_hostile_sources_are_handled_in_the_sandbox_never_in_the_front_or_the_engine_workers() -> None:
    env = {"REGELMOTOR_SOURCE_SECONDS": "5", "REGELMOTOR_SOURCE_MEMORY_MB": "512"}
    with running_server(workers=1, env=env) as server, grpc.insecure_channel(server.address) as channel:
        engine_workers = sorted(pid for pid in server.worker_pids() if _is_engine_worker(pid))
        rulesets = rpb_grpc.RulesetServiceStub(channel)
        front_before = _rss_kib(server.process.pid)
        for _ in range(3):  # a retrying client
            try:
                answer = rulesets.ValidateRuleset(rpb.ValidateRulesetRequest(source=ALIAS_BOMB), timeout=60)
                assert not answer.valid and answer.diagnostics
            except grpc.RpcError as error:  # the sandbox hit its memory or time limit
                if error.code() is grpc.StatusCode.INVALID_ARGUMENT:
                    assert "memory limit" in details(error)["BadRequest"].field_violations[0].description
                else:
                    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED, error
                    assert details(error)["ErrorInfo"].reason == "EVALUATION_TIME_LIMIT"
        front_growth = _rss_kib(server.process.pid) - front_before
        # A ruleset that loads but cannot be compiled, sent again and again to TestRuleset.
        source = (BUNDLED_RULESETS / "rett-til-helsehjelp" / "2024.07.yaml").read_text(encoding="utf-8")
        looping = source.replace("rules:\n", "rules:\n  - {id: loop-a, title: A, hjemmel: [pbrl-2-2], when: 'true', "
                                 "begrunnelse: x, unntak_fra: loop-b}\n  - {id: loop-b, title: B, hjemmel: "
                                 "[pbrl-2-2], when: 'true', begrunnelse: x, unntak_fra: loop-a}\n", 1)
        for _ in range(3):
            tested = rulesets.TestRuleset(rpb.TestRulesetRequest(source=looping, cases="cases: []"), timeout=60)
            assert tested.diagnostics and not tested.results
        assert pb_grpc.DecisionServiceStub(channel).Evaluate(request(request_id=""), timeout=30).version
        assert sorted(pid for pid in server.worker_pids() if _is_engine_worker(pid) and pid in engine_workers) \
            == engine_workers, "no engine worker was touched"
    assert front_growth < 50 * 1024, f"the front grew by {front_growth} KiB"


def _address_space_limit(pid: int) -> str:
    with open(f"/proc/{pid}/limits") as limits:
        return " ".join(next(line for line in limits if line.startswith("Max address space")).split()[3:5])


def test_callers_sources_are_parsed_only_in_a_sandbox_with_the_configured_memory_limit() -> None:
    limit = 300 * 1024 * 1024
    with server_in_process(workers=1, source_memory_mb=300) as (server, _, _), \
            grpc.insecure_channel(server.address) as channel:
        source = (BUNDLED_RULESETS / "rett-til-helsehjelp" / "2024.07.yaml").read_text(encoding="utf-8")
        answer = rpb_grpc.RulesetServiceStub(channel).ValidateRuleset(rpb.ValidateRulesetRequest(source=source),
                                                                      timeout=60)
        assert answer.valid
        [sandbox] = server.service.sources.pids()
        assert server.pool is not None
        engine_workers = server.pool.pids()
        # The sandbox that read the source has the address-space limit (soft and hard); the front and the
        # engine workers, which never read a caller's source, do not.
        assert _address_space_limit(sandbox) == f"{limit} {limit}"
        assert sandbox != os.getpid() and sandbox not in engine_workers
        for pid in [os.getpid(), *engine_workers]:
            assert _address_space_limit(pid) != f"{limit} {limit}", pid


def test_closing_a_pool_with_a_busy_worker_and_a_pending_restart_reaps_every_process() -> None:
    import asyncio

    from regelmotor.core.repository import RulesetSnapshot
    from regelmotor.server.pool import PoolClosed, WorkerPool
    from regelmotor.server.protocol import EvaluateBatch

    before = _workers_of(os.getpid())

    async def scenario() -> tuple[list[int], object, int, bool]:
        config = WorkerConfig(role="engine", snapshot=RulesetSnapshot.read(BUNDLED_RULESETS), allow_drafts=True)
        pool = WorkerPool("engine", 2, config, time_limit=60)
        await pool.start()
        pids = pool.pids()
        os.kill(pids[0], signal.SIGKILL)  # one worker dies: a restart is pending or under way
        for _ in range(200):
            if pids[0] not in pool.pids():
                break
            await asyncio.sleep(0.01)
        batch = EvaluateBatch(tuple((i, request(request_id="").SerializeToString()) for i in range(64)))
        busy = asyncio.create_task(pool.call(batch, timeout=60))  # the other is busy with a batch
        await asyncio.sleep(0.05)
        await pool.close(timeout=10)
        try:
            answer: object = await busy
        except PoolClosed as exc:
            answer = exc
        try:
            await pool.call(batch, timeout=5)
            refused = False
        except PoolClosed:
            refused = True
        return pids, answer, len(pool.pids()), refused

    pids, answer, left, refused_after_close = asyncio.run(scenario())
    assert left == 0 and refused_after_close
    assert isinstance(answer, list) and len(answer) == 64, "the busy worker finished its batch before it stopped"
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _state(pid) != "Z", f"{pid} was reaped"
    # The replacement started for the killed worker (or still starting when the pool closed) went too.
    assert _workers_of(os.getpid()) - before == set(), "no worker process is left running or unreaped"


def test_closing_a_pool_while_a_replacement_is_starting_leaves_no_process_behind() -> None:
    # Noticing a lost worker starts its replacement at once (no backoff after a first loss), in a task the closing
    # pool cancels while the process is being started in a thread: that process must be ended all the same.
    import asyncio

    from regelmotor.core.repository import RulesetSnapshot
    from regelmotor.server.pool import WorkerPool

    async def scenario() -> None:
        config = WorkerConfig(role="engine", snapshot=RulesetSnapshot.read(BUNDLED_RULESETS), allow_drafts=True)
        pool = WorkerPool("engine", 1, config, time_limit=60)
        await pool.start()
        pid = pool.pids()[0]
        os.kill(pid, signal.SIGKILL)
        while pid in pool.pids():
            await asyncio.sleep(0.0005)
        await pool.close(timeout=2)

    before = _workers_of(os.getpid())
    for _ in range(3):
        asyncio.run(scenario())
        assert _workers_of(os.getpid()) - before == set(), "no worker process is left running or unreaped"


def _workers_of(parent: int) -> set[int]:
    """The worker processes (spawned by multiprocessing) whose parent is `parent`, running or zombie; not
    multiprocessing's resource tracker, which lives as long as the parent."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as command:
                    spawned = b"spawn_main" in command.read()
            except OSError:
                continue
            if int(fields[1]) == parent and (spawned or fields[0] == "Z"):
                found.add(int(entry))
    return found


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]
