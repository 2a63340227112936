"""`regelmotor serve` as an operator meets it: a setting that cannot work stops it with one line naming the
setting and the fix (never a traceback); SIGTERM turns health NOT_SERVING at once while calls are still
served for the drain delay, then in-flight calls get the grace period and the process exits in time."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import request
from tests.server_process import running_server, serve_once

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _busy_port() -> tuple[socket.socket, int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder, holder.getsockname()[1]


@pytest.mark.parametrize(("setting", "value", "named", "fix"), [
    ("RULESETS", "/nonexistent/rulesets", "REGELMOTOR_RULESETS", "directory of <name>/<version>.yaml"),
    ("RULESETS", "<empty>", "REGELMOTOR_RULESETS", "holds no ruleset versions"),
    ("WORKERS", "-1", "REGELMOTOR_WORKERS", "greater than or equal to 0"),
    ("WORKERS", "many", "REGELMOTOR_WORKERS", "valid integer"),
    ("GRACE_SECONDS", "-5", "REGELMOTOR_GRACE_SECONDS", "greater than or equal to 0"),
    ("PSEUDONYM_KEY", "not-hex", "REGELMOTOR_PSEUDONYM_KEY", "hex"),
    ("PSEUDONYM_KEY", "abcd", "REGELMOTOR_PSEUDONYM_KEY", "32 bytes"),
    ("DECISION_LOG", "postgresql://regelmotor:secret@127.0.0.1:1/none", "REGELMOTOR_DECISION_LOG", "reachable"),
    ("DECISION_LOG", "mysql://x", "REGELMOTOR_DECISION_LOG", "postgresql://"),
    ("DATA_DIR", "<a file>", "REGELMOTOR_DATA_DIR", "may write to"),
    ("PORT", "<in use>", "REGELMOTOR_PORT", "choose another port"),
    ("NO_SUCH_SETTING", "1", "REGELMOTOR_NO_SUCH_SETTING", "is not a setting"),
    ("HOST", "0.0.0.0", "REGELMOTOR_HOST", "REGELMOTOR_INSECURE=true"),
    ("DATA_DIR", "<a readable key>", "REGELMOTOR_DATA_DIR", "chmod 600"),
])
def test_a_bad_setting_stops_start_up_with_one_line_naming_it_and_the_fix(
        setting: str, value: str, named: str, fix: str, tmp_path: Path) -> None:
    holder = None
    if value == "<empty>":
        value = str(tmp_path)
    elif value == "<a file>":
        (tmp_path / "file").write_text("x", encoding="ascii")
        value = str(tmp_path / "file" / "data")
    elif value == "<a readable key>":
        (tmp_path / "pseudonym.key").write_text("ab" * 32, encoding="ascii")
        (tmp_path / "pseudonym.key").chmod(0o644)
        value = str(tmp_path)
    elif value == "<in use>":
        holder, port = _busy_port()
        value = str(port)
    try:
        result = serve_once({f"REGELMOTOR_{setting}": value})
    finally:
        if holder is not None:
            holder.close()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    message = lines[-1] if lines else ""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert message.startswith(f"regelmotor: cannot start: {named}:"), result.stderr
    assert fix in message, message
    assert "secret" not in result.stderr, "a password in a DSN is never printed"
    assert "serving gRPC" not in result.stdout


def test_the_default_start_says_it_is_local_and_unauthenticated_and_an_insecure_one_warns() -> None:
    # REGELMOTOR_ADDRESS is the commands' setting (regelmotor ruleset propose, regelmotor-client), often set in the
    # same shell: the server starts with it there.
    with running_server(workers=1, env={"REGELMOTOR_ADDRESS": "127.0.0.1:1"}) as server:
        pass
    local = server.banner
    with running_server(workers=1, env={"REGELMOTOR_HOST": "0.0.0.0", "REGELMOTOR_INSECURE": "true"}) as server:
        pass
    assert "Security: listening on 127.0.0.1 only (this machine), no TLS, authentication off" in local
    assert "Security: WARNING: listening on 0.0.0.0 without TLS and authentication" in server.banner


def _watch(channel: grpc.Channel, statuses: list[tuple[float, int]], watching: threading.Event) -> None:
    try:
        for reply in health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""),
                                                                timeout=120):
            statuses.append((time.monotonic(), reply.status))
            watching.set()
    except grpc.RpcError:
        pass


def test_sigterm_says_not_serving_at_once_serves_through_the_drain_delay_and_exits_within_grace() -> None:
    env = {"REGELMOTOR_DRAIN_DELAY_SECONDS": "2", "REGELMOTOR_GRACE_SECONDS": "2"}
    with running_server(workers=2, env=env) as server:
        channel = grpc.insecure_channel(server.address)
        statuses: list[tuple[float, int]] = []
        watching = threading.Event()
        watcher = threading.Thread(target=_watch, args=(channel, statuses, watching), daemon=True)
        watcher.start()  # an open Health.Watch stream must not hold the shutdown up
        assert watching.wait(10)
        stub = pb_grpc.DecisionServiceStub(channel)
        assert stub.Evaluate(request(request_id=""), timeout=30).version
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        # During the drain delay: health says NOT_SERVING, and calls are still answered.
        deadline = time.monotonic() + 1.5
        while not any(status == NOT_SERVING for _, status in statuses) and time.monotonic() < deadline:
            time.sleep(0.02)
        not_serving_after = next(t for t, status in statuses if status == NOT_SERVING) - signalled
        served_while_draining = stub.Evaluate(request(request_id=""), timeout=5).version
        assert time.monotonic() - signalled < 2, "that call was made inside the drain delay"
        code = server.process.wait(30)
        exited_after = time.monotonic() - signalled
        watcher.join(5)
        channel.close()
        logs = server.logs()
    assert not_serving_after < 0.5, not_serving_after
    assert served_while_draining == "2024.07.1"
    assert code == 0
    # drain delay 2 s + grace 2 s (the Watch stream is cancelled at its end) + stopping the workers
    assert exited_after < 2 + 2 + 3, exited_after
    assert '"message": "stopped"' in logs


def test_calls_after_the_drain_delay_are_refused_and_in_flight_ones_finish() -> None:
    env = {"REGELMOTOR_DRAIN_DELAY_SECONDS": "0.5", "REGELMOTOR_GRACE_SECONDS": "20"}
    with running_server(workers=1, env=env) as server:
        channel = grpc.insecure_channel(server.address)
        stub = pb_grpc.DecisionServiceStub(channel)
        release = threading.Event()

        def slow() -> object:
            yield request(request_id="")
            release.wait(20)  # the stream stays open past SIGTERM and the drain delay
            yield request(request_id="")

        results: list[object] = []
        streamer = threading.Thread(target=lambda: results.extend(stub.EvaluateStream(slow(), timeout=60)))
        streamer.start()
        time.sleep(1.0)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # past the drain delay: new calls are refused
        with grpc.insecure_channel(server.address) as fresh, \
                pytest.raises(grpc.RpcError, match="UNAVAILABLE") as caught:
            pb_grpc.DecisionServiceStub(fresh).Evaluate(request(request_id=""), timeout=5)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        release.set()
        streamer.join(30)
        code = server.process.wait(30)
        channel.close()
    assert len(results) == 2 and code == 0


def test_with_authentication_the_pseudonym_key_must_live_apart_from_the_decision_log(tmp_path: Path) -> None:
    from tests.auth_support import AUDIENCE, ISSUER, Issuer

    issuer = Issuer()
    issuer.add_rsa("k1")
    jwks = issuer.write_jwks(tmp_path / "jwks.json")
    auth = {"REGELMOTOR_AUTH_JWKS_FILE": str(jwks), "REGELMOTOR_AUTH_ISSUER": ISSUER,
            "REGELMOTOR_AUTH_AUDIENCE": AUDIENCE}
    refused = serve_once(auth)  # the key file would be made in the data directory, beside the log
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith(
        "regelmotor: cannot start: REGELMOTOR_PSEUDONYM_KEY_FILE: ")
    assert "keep the key apart" in refused.stderr
    (tmp_path / "keys").mkdir()
    apart = {**auth, "REGELMOTOR_PSEUDONYM_KEY_FILE": str(tmp_path / "keys" / "pseudonym.key")}
    with running_server(workers=1, env=apart) as server:
        assert "bearer tokens required" in server.banner
        made = {path.name: path.stat().st_mode & 0o777 for path in server.data_dir.iterdir() if path.is_file()}
    # The log (with its -wal/-shm/.lock), the checkpoint key and the witness: readable by the service's user alone.
    assert {"decisions.db", "checkpoint.key", "checkpoints.jsonl"} <= set(made), made
    assert made == dict.fromkeys(made, 0o600)
    assert (tmp_path / "keys" / "pseudonym.key").stat().st_mode & 0o777 == 0o600


def test_no_secret_reaches_the_server_s_output(tmp_path: Path) -> None:
    """The pseudonym key (from the environment), the bearer tokens sent (accepted, expired, forged) and the
    identity number evaluated appear nowhere in what the server prints or logs, at DEBUG."""
    from tests.auth_support import AUDIENCE, ISSUER, Issuer, bearer
    from tests.identity_numbers import FODSELSNUMRE

    issuer, forger = Issuer(), Issuer()
    issuer.add_rsa("k1")
    forger.add_rsa("k1")
    key = os.urandom(32).hex()
    env = {"REGELMOTOR_AUTH_JWKS_FILE": str(issuer.write_jwks(tmp_path / "jwks.json")),
           "REGELMOTOR_AUTH_ISSUER": ISSUER, "REGELMOTOR_AUTH_AUDIENCE": AUDIENCE,
           "REGELMOTOR_PSEUDONYM_KEY": key, "REGELMOTOR_LOG_LEVEL": "DEBUG"}
    national_id = FODSELSNUMRE[3]
    tokens = [issuer.token(), issuer.token(exp=int(time.time()) - 600), forger.token()]
    with running_server(workers=1, env=env) as server:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            assert stub.Evaluate(request(request_id="", national_id=national_id), metadata=bearer(tokens[0]),
                                 timeout=30).version
            for refused in tokens[1:]:
                with pytest.raises(grpc.RpcError, match="UNAUTHENTICATED"):
                    stub.Evaluate(request(request_id=""), metadata=bearer(refused), timeout=30)
        output = server.banner + server.logs()
    assert '"message": "call refused"' in output, "the refusals were logged (so their lines were looked at)"
    for secret in (key, national_id, *tokens, *(token.rsplit(".", 1)[1] for token in tokens)):
        assert secret not in output
