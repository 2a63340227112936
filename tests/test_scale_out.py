"""Scale-out (issue 17, point 4), with real processes: two `regelmotor serve` processes - each with its own port,
data directory (checkpoint key, witness file) and engine workers, and one pseudonym key - share one PostgreSQL
schema as decision log and ruleset store, with tokens on (four eyes needs two people). They start at the same
moment, as replicas do, so both migrate and seed the one schema at once.

- A version proposed by one person and approved by another through one instance is served by the other.
- A client (RegelmotorClient given both addresses: gRPC round_robin) sends a bounded load from a few threads, each
  call with its own request_id. Partway, the answers of one instance stop reaching the client (a proxy in front of
  it drops them: tests/tcp_proxy.py) until a call that instance stored is seen in the log; then the instance is
  SIGKILLed. The client retries what failed, with the same request_id, on the other. Afterwards every call was
  answered; each request_id is in the log exactly once, with the decision_id answered; a call the dead instance
  stored but could not answer got that stored decision from the survivor (idempotency across instances); the
  chain has no gap and VerifyLog passes on the survivor; and no worker process of the dead instance lives on.

How two instances keep one chain: every append locks the one chain_head row (SELECT ... FOR UPDATE) before it
reads the head and looks for the request_ids, so appends from every process queue on that row
(store/postgres.py); what the queue costs is measured by bench/scale_out.py (BENCHMARKS.md).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
import psycopg

from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from regelmotor_client import DecisionError, RegelmotorClient
from tests.auth_support import AUDIENCE, ISSUER, Issuer, bearer
from tests.lifecycle_support import Person, cases, seed_directory, sha256, source
from tests.postgres_support import postgres_schema
from tests.server_process import ServerProcess
from tests.tcp_proxy import TcpProxy

AUTHOR = ("ruleset:author", "ruleset:read")
APPROVER = ("ruleset:approve", "ruleset:read")
FACTS = {"alder": 40}
THREADS, CALLS = 4, 40  # the bounded load: every thread makes its calls one after another
HELD_AT = 10  # each thread's calls before the fault: it waits there until the fault is in place, so calls remain
PATIENCE = 60.0  # seconds for anything awaited; far beyond what it takes, on a loaded machine too


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


@contextmanager
def two_instances(idp_jwks: Path, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess, str]]:
    """Two `regelmotor serve` processes (two engine workers each) on one fresh PostgreSQL schema, and its DSN."""
    rulesets = seed_directory(tmp_path / "rulesets")
    key = tmp_path / "pseudonym.key"  # one key: a national id gets one pseudonym whichever instance records it
    key.write_text(secrets.token_hex(32), encoding="ascii")
    key.chmod(0o600)
    with postgres_schema() as dsn:
        env = {"REGELMOTOR_DECISION_LOG": dsn, "REGELMOTOR_AUTH_JWKS_FILE": str(idp_jwks),
               "REGELMOTOR_AUTH_ISSUER": ISSUER, "REGELMOTOR_AUTH_AUDIENCE": AUDIENCE,
               "REGELMOTOR_PSEUDONYM_KEY_FILE": str(key)}
        with ThreadPoolExecutor(2) as starting:
            futures = [starting.submit(ServerProcess, workers=2, rulesets=rulesets, env=env) for _ in range(2)]
        started = [future.result() for future in futures if future.exception() is None]
        try:
            first, second = (future.result() for future in futures)  # the first start that failed, if any
            yield first, second, dsn
        finally:
            for server in started:
                server.close()


def _token_file(issuer: Issuer, folder: Path, scope: str) -> Path:
    path = folder / f"{scope}.token"
    path.write_text(issuer.token(scope=scope), encoding="ascii")
    return path


def test_a_version_published_through_one_instance_is_served_by_the_other(
        idp: Issuer, idp_jwks: Path, tmp_path: Path) -> None:
    token = _token_file(idp, tmp_path, "evaluate")
    with two_instances(idp_jwks, tmp_path) as (first, second, _), \
            grpc.insecure_channel(first.address) as one, grpc.insecure_channel(second.address) as other, \
            RegelmotorClient(second.address, token_file=token, timeout=30) as on_second:
        served = on_second.evaluate("sats", FACTS, as_of="2025-06-01", request_id="before")
        assert served["version"] == "2024.1"
        anna, bjorn = Person(idp, one, "anna", *AUTHOR), Person(idp, one, "bjorn", *APPROVER)
        text = source("2025.1", "2025-01-01")
        assert anna.propose(text, cases("2025-01-01")).accepted
        bjorn.approve("2025.1", sha256(text))
        asked = iter(range(10**6))
        _until(lambda: on_second.evaluate("sats", FACTS, as_of="2025-06-01",
                                          request_id=f"after-{next(asked)}")["version"] == "2025.1",
               "the second instance serves the version approved through the first")

        def listed() -> set[str]:
            listing = rpb_grpc.RulesetServiceStub(other).ListRulesets(
                rpb.ListRulesetsRequest(), metadata=bearer(idp.token(scope="ruleset:read")), timeout=30)
            return {v.version for r in listing.rulesets if r.name == "sats" for v in r.versions}

        # The listing is the server process's own, reloaded on its own schedule beside the engine workers'.
        _until(lambda: listed() == {"2024.1", "2025.1"}, "the second instance lists the version approved")


class Load:
    """THREADS threads on one client, each making CALLS calls with request_ids of its own (fixed width, so that
    none is a prefix of another in the bytes the proxy saw)."""

    def __init__(self, client: RegelmotorClient) -> None:
        self.client = client
        self.answered: dict[str, str] = {}  # request_id -> the decision_id answered
        self.failed: dict[str, str] = {}
        self.lock = threading.Lock()
        self.held = 0  # threads waiting at HELD_AT
        self.go_on = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(THREADS)]

    @staticmethod
    def request_ids() -> list[str]:
        return [f"scale-{thread}-{call:04d}" for thread in range(THREADS) for call in range(CALLS)]

    def _run(self, thread: int) -> None:
        for call in range(CALLS):
            if call == HELD_AT:
                with self.lock:
                    self.held += 1
                self.go_on.wait(PATIENCE)
            request_id = f"scale-{thread}-{call:04d}"
            try:
                decision = self.client.evaluate("sats", FACTS, as_of="2025-06-01", request_id=request_id)
            except DecisionError as error:
                with self.lock:
                    self.failed[request_id] = str(error)
            else:
                with self.lock:
                    self.answered[request_id] = decision["decision_id"]

    def all_held(self) -> bool:
        with self.lock:
            return self.held == THREADS


def _descendants(pid: int) -> list[tuple[int, str]]:
    """Every process under `pid`, each with its start time (so a pid used again later is not mistaken for it)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
    children = [(int(child), _started(int(child))) for child in found]
    return children + [grandchild for child, _ in children for grandchild in _descendants(child)]


def _started(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2:].split()
    return "" if fields[0] == "Z" else fields[19]  # state; starttime (field 22 of proc(5))


def _logged(dsn: str, request_ids: list[str]) -> dict[str, list[str]]:
    """The decision_ids stored for each of `request_ids` (one, if idempotency held)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT request_id, decision_id FROM decisions WHERE request_id = ANY(%s)",
                            (request_ids,)).fetchall()
    stored: dict[str, list[str]] = {}
    for request_id, decision_id in rows:
        stored.setdefault(request_id, []).append(decision_id)
    return stored


def test_an_instance_killed_under_load_loses_no_acknowledged_decision_and_the_chain_stays_one(
        idp: Issuer, idp_jwks: Path, tmp_path: Path) -> None:
    token = _token_file(idp, tmp_path, "evaluate")
    ids = Load.request_ids()
    with two_instances(idp_jwks, tmp_path) as (doomed, survivor, dsn):
        proxy = TcpProxy(doomed.address)
        try:
            with RegelmotorClient([proxy.address, survivor.address], token_file=token, timeout=PATIENCE,
                                  retries=5) as client:
                load = Load(client)
                for thread in load.threads:
                    thread.start()
                _until(load.all_held, "every thread's first calls are answered")
                workers = _descendants(doomed.process.pid)
                proxy.drop_replies()  # with calls still to make on every thread: they go on only now
                load.go_on.set()

                def stored_unanswered() -> dict[str, list[str]]:
                    reached = proxy.sent_while_dropping()
                    return _logged(dsn, [i for i in ids if i.encode() in reached])

                _until(lambda: bool(stored_unanswered()), "the instance stores a call whose answer is dropped")
                lost = stored_unanswered()  # stored by the doomed instance: only it has had these calls so far
                os.kill(doomed.process.pid, signal.SIGKILL)
                doomed.process.wait(PATIENCE)
                proxy.close()
                for thread in load.threads:
                    thread.join(PATIENCE * 2)
            reached_doomed = proxy.sent()
        finally:
            proxy.close()
        assert not any(thread.is_alive() for thread in load.threads)
        assert load.failed == {}
        assert sorted(load.answered) == ids  # every call of the load was answered
        through = [i for i in ids if i.encode() in reached_doomed]
        assert 0 < len(through) < len(ids), "the client balanced over both instances"

        stored = _logged(dsn, ids)
        assert {i: len(decisions) for i, decisions in stored.items()} == {i: 1 for i in ids}  # each exactly once
        assert {i: decisions[0] for i, decisions in stored.items()} == load.answered  # ... as answered
        assert lost and all(load.answered[i] == decisions[0] for i, decisions in lost.items()), \
            "a call stored by the dead instance was answered with that decision by the survivor"

        _until(lambda: not [pid for pid, began in workers if began and _started(pid) == began],
               "no worker process of the killed instance lives on")
        assert len(workers) >= 2  # its two engine workers (and multiprocessing's resource tracker) were there

        with psycopg.connect(dsn) as conn:
            seqs = [row[0] for row in conn.execute("SELECT seq FROM decisions ORDER BY seq")]
            head = conn.execute("SELECT seq FROM chain_head WHERE id = 1").fetchone()
        assert seqs == list(range(1, len(seqs) + 1)) and head == (len(seqs),)  # one chain, no gap
        with grpc.insecure_channel(survivor.address) as channel:
            verified = apb_grpc.AuditServiceStub(channel).VerifyLog(
                apb.VerifyLogRequest(formaal="test: one chain after an instance was killed"),
                metadata=bearer(idp.token(scope="audit")), timeout=PATIENCE)
        assert verified.ok and verified.checked == len(seqs), verified
