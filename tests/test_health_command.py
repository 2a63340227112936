"""`regelmotor health`, the container health check (deploy/Dockerfile, deploy/compose.yaml): exit 0 only when the
service answers SERVING, over TLS when given the CA, asked on REGELMOTOR_PORT by default."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from regelmotor.cli.main import main
from regelmotor.server.app import RunningServer
from tests.grpc_support import server_in_process


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, trustme.CA]]:
    yield tmp_path_factory.mktemp("health-ca") / "ca.crt", trustme.CA()


@pytest.fixture(scope="module")
def tls_server(ca_file: tuple[Path, trustme.CA]) -> Iterator[RunningServer]:
    path, ca = ca_file
    ca.cert_pem.write_to_path(str(path))
    leaf = ca.issue_cert("regelmotor")  # a name the loopback address is not: the probe must name it
    cert, key = path.parent / "server.crt", path.parent / "server.key"
    cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    key.chmod(0o600)
    with server_in_process(workers=0, tls_cert_file=cert, tls_key_file=key) as (running, _, _):
        yield running


def _health(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["health", *args])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_serving_over_tls_on_the_port_of_the_environment(
        tls_server: RunningServer, ca_file: tuple[Path, trustme.CA], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGELMOTOR_PORT", str(tls_server.port))
    status, said = _health(capsys, "--ca-file", str(ca_file[0]), "--server-name", "regelmotor")
    assert (status, said) == (0, f"127.0.0.1:{tls_server.port}: SERVING\n")


@pytest.mark.parametrize(("extra", "reason"), [
    ((), "UNAVAILABLE"),  # plaintext to a TLS port: no answer
    (("--ca-file", "{ca}"), "UNAVAILABLE"),  # the certificate does not name 127.0.0.1
    (("--ca-file", "{ca}", "--server-name", "regelmotor", "--service", "no.such.Service"), "NOT_FOUND"),
])
def test_anything_but_serving_is_exit_status_1_with_the_reason(
        tls_server: RunningServer, ca_file: tuple[Path, trustme.CA], capsys: pytest.CaptureFixture[str],
        extra: tuple[str, ...], reason: str) -> None:
    address = f"127.0.0.1:{tls_server.port}"
    status, said = _health(capsys, "--address", address, "--timeout", "5",
                           *(arg.format(ca=ca_file[0]) for arg in extra))
    assert status == 1
    assert said.startswith(f"regelmotor health: {address}: {reason}")


def test_nothing_listening_is_exit_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    status, said = _health(capsys, "--address", f"127.0.0.1:{port}", "--timeout", "2")
    assert (status, said.split(": ")[2]) == (1, "UNAVAILABLE")


def test_an_unreadable_ca_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, said = _health(capsys, "--ca-file", str(tmp_path / "missing.crt"))
    assert (status, said) == (1, "regelmotor health: cannot read --ca-file: No such file or directory\n")


def test_an_answer_of_not_serving_is_exit_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    # What a draining or log-less instance answers (server/health.py), from grpc's own health service.
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        status, said = _health(capsys, "--address", f"127.0.0.1:{port}")
    finally:
        server.stop(grace=None)
    assert (status, said) == (1, f"127.0.0.1:{port}: NOT_SERVING\n")
