"""Faults the pool and the front must survive, found in review: a replacement that fails to start is
retried until the pool is whole again; concurrent or abandoned first calls start exactly one sandbox;
a cancelled caller cannot break the group committer; a cancelled stream leaves no task behind; workers
ignore a SIGTERM sent to them (the front alone ends them)."""

from __future__ import annotations

import asyncio
import multiprocessing.connection
import multiprocessing.context
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from regelmotor.server.pool import WorkerPool
from regelmotor.server.protocol import SourceReply, ValidateSource
from regelmotor.server.stream_inbox import read_requests
from regelmotor.server.worker import WorkerConfig
from regelmotor.store import open_log
from regelmotor.store.group import GroupCommitter
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from regelmotor_api.v1 import ruleset_pb2 as rpb
from tests.conftest import BUNDLED_RULESETS
from tests.grpc_support import request, server_in_process
from tests.server_process import running_server
from tests.test_decision_log import make_record

SOURCE = (BUNDLED_RULESETS / "rett-til-helsehjelp" / "2024.07.yaml").read_text(encoding="utf-8")


def _validate() -> ValidateSource:
    return ValidateSource(rpb.ValidateRulesetRequest(source=SOURCE).SerializeToString())


async def _until(condition: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


def test_a_replacement_that_fails_to_start_is_retried_until_the_pool_is_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real_start = multiprocessing.context.SpawnProcess.start
    refusals = {"left": 0}

    def start_or_refuse(process: multiprocessing.context.SpawnProcess) -> None:
        if refusals["left"]:
            refusals["left"] -= 1
            raise BlockingIOError(11, "Resource temporarily unavailable")  # fork's EAGAIN: no processes left
        real_start(process)

    # The operating system's refusal to start a process cannot be had on demand; it is injected here.
    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", start_or_refuse)

    async def scenario() -> tuple[bool, object]:
        pool = WorkerPool("sources", 1, WorkerConfig(role="sources"), time_limit=30)
        await pool.start()
        refusals["left"] = 2
        killed = pool.pids()[0]
        os.kill(killed, signal.SIGKILL)
        noticed = await _until(lambda: killed not in pool.pids(), 10)
        whole = noticed and await _until(lambda: pool.ready == 1, 30)
        answer = await pool.call(_validate(), 30) if whole else None
        await pool.close(2)
        return whole, answer

    whole, answer = asyncio.run(scenario())
    assert whole, "the pool came back to its size after two refused starts"
    assert refusals["left"] == 0, "both refusals were met"
    assert isinstance(answer, SourceReply) and answer.response


def test_a_worker_lost_while_another_ones_replacement_starts_is_replaced_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # A replacement's process is counted in the pool from its start, while the task starting it still counted as
    # pending until the worker had its configuration: a second loss in between was taken as already replaced,
    # and the pool stayed one worker short for good (seen under load: two workers killed, one came back).
    from regelmotor.core.repository import RulesetSnapshot

    victims: list[int] = []
    real_send = multiprocessing.connection.Connection.send

    def send_after_a_loss(conn: multiprocessing.connection.Connection, obj: Any) -> None:
        if isinstance(obj, WorkerConfig) and victims:
            # The second worker dies while the first one's replacement is given its configuration: when it
            # happens cannot be had on demand, so it is made to happen here (the loop notices it meanwhile).
            os.kill(victims.pop(), signal.SIGKILL)
            time.sleep(1.0)
        real_send(conn, obj)

    monkeypatch.setattr(multiprocessing.connection.Connection, "send", send_after_a_loss)

    async def scenario() -> tuple[int, int]:
        config = WorkerConfig(role="engine", snapshot=RulesetSnapshot.read(BUNDLED_RULESETS), allow_drafts=True)
        pool = WorkerPool("engine", 2, config, time_limit=60)
        await pool.start()
        first, second = pool.pids()
        victims.append(second)
        os.kill(first, signal.SIGKILL)
        await _until(lambda: pool.ready == 2 and not victims, 60)
        ready, restarts = pool.ready, pool.stats.restarts
        await pool.close(5)
        return ready, restarts

    ready, restarts = asyncio.run(scenario())
    assert not victims and (ready, restarts) == (2, 2)


def test_concurrent_and_abandoned_first_calls_start_exactly_one_sandbox() -> None:
    async def scenario() -> tuple[int, int, object]:
        pool = WorkerPool("sources", 1, WorkerConfig(role="sources"), time_limit=30, lazy=True)
        await pool.start()
        abandoned = asyncio.ensure_future(pool.call(_validate(), 30))
        await asyncio.sleep(0.01)
        abandoned.cancel()  # the first caller goes away while the sandbox starts
        answers = await asyncio.gather(*(pool.call(_validate(), 60) for _ in range(4)))
        processes = len(pool.pids())
        started = pool.stats.restarts
        await pool.close(2)
        return processes, started, answers[0]

    processes, started, answer = asyncio.run(scenario())
    assert processes == 1 and started == 1
    assert isinstance(answer, SourceReply) and answer.response


def test_a_submitter_that_stops_waiting_breaks_neither_the_committer_nor_the_others(tmp_path: Path) -> None:
    log = open_log(tmp_path / "decisions.db")
    committer = GroupCommitter(log)
    try:
        records = [make_record(n) for n in range(40)]
        futures = [committer.submit_future(record) for record in records]
        assert not any(future.cancel() for future in futures[::3]), "a submission in progress cannot be cancelled"
        stored = [future.result(30) for future in futures]
        later = committer.submit_future(make_record(100)).result(30)
    finally:
        committer.close()
    assert [s.decision_id for s in stored] == [r.decision_id for r in records]
    assert later.seq == 41
    assert log.verify().ok
    log.close()


def test_a_cancelled_stream_leaves_no_reader_behind() -> None:
    with server_in_process(workers=1, stream_batch=1) as (server, _, _):
        def readers() -> list[str]:
            async def listed() -> list[str]:
                return [repr(t.get_coro()) for t in asyncio.all_tasks() if read_requests.__name__ in repr(t.get_coro())]
            found: list[str] = server.run(listed())
            return found

        assert server.pool is not None
        worker = server.pool.pids()[0]
        os.kill(worker, signal.SIGSTOP)  # the worker stalls: the streams' inboxes fill up
        try:
            with grpc.insecure_channel(server.address) as channel:
                stub = pb_grpc.DecisionServiceStub(channel)
                calls = [stub.EvaluateStream(iter([request(request_id="")] * 200), timeout=60) for _ in range(3)]
                time.sleep(1.0)
                # Found by the reader's own name, and seen to exist first, so the check below cannot pass vacuously.
                assert len(readers()) == 3
                for call in calls:
                    call.cancel()
                time.sleep(0.5)
        finally:
            os.kill(worker, signal.SIGCONT)
        time.sleep(1.0)
        assert readers() == []


def test_workers_ignore_a_sigterm_sent_to_them_the_front_alone_ends_them() -> None:
    with running_server(workers=2) as server, grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        workers = sorted(p for p in server.worker_pids() if _engine(p))
        for pid in workers:
            os.kill(pid, signal.SIGTERM)  # as a process-group SIGTERM (systemd, Ctrl-C) would reach them
        time.sleep(1.0)
        answers: list[Any] = [stub.Evaluate(request(request_id=""), timeout=30).version for _ in range(10)]
        assert sorted(p for p in server.worker_pids() if _engine(p)) == workers
        assert answers == ["2024.07.1"] * 10
        assert server.terminate() == 0
        assert not any(os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" for pid in workers)


def _engine(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"multiprocessing.spawn" in cmdline.read()
    except OSError:
        return False


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
