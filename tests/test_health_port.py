"""`health_port`: a plaintext port with the gRPC health service only, beside a service port that serves TLS only
(Kubernetes' built-in gRPC probe cannot speak TLS; deploy/k8s). Real server, real TLS (trustme), real channels."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from regelmotor.server.servicers import DECISION_SERVICE, RULESET_SERVICE
from regelmotor.server.startup import StartupError
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import request, server_in_process

SERVING = health_pb2.HealthCheckResponse.SERVING


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    cert = trustme.CA().issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(root / "server.crt"))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(root / "server.crt"), append=True)
    cert.private_key_pem.write_to_path(str(root / "server.key"))
    (root / "server.key").chmod(0o600)
    return {"tls_cert_file": root / "server.crt", "tls_key_file": root / "server.key"}


def check(port: int, service: str) -> str:
    """The plaintext health answer's name, or the failed call's status code's name."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                               timeout=5)
            return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
        except grpc.RpcError as error:
            return str(error.code().name)


@pytest.fixture(scope="module")
def ports(tls_files: dict[str, Path]) -> Iterator[tuple[int, int]]:
    health_port = free_port()
    with server_in_process(workers=0, health_port=health_port, **tls_files) as (running, _, _):
        yield running.port, health_port


def test_probes_get_health_in_plaintext_beside_a_tls_only_service_port(ports: tuple[int, int]) -> None:
    service_port, health_port = ports
    assert check(health_port, "") == "SERVING"
    assert check(health_port, DECISION_SERVICE) == "SERVING"
    assert check(health_port, RULESET_SERVICE) == "SERVING"
    assert check(service_port, "") == "UNAVAILABLE"  # the service port speaks TLS only: what the probe would get


def refusal(call: Callable[[], object]) -> str:
    try:
        call()
    except grpc.RpcError as error:
        return str(error.code().name)
    return "answered"


def test_the_health_port_serves_nothing_but_health(ports: tuple[int, int]) -> None:
    _, health_port = ports
    with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:
        decisions = pb_grpc.DecisionServiceStub(channel)
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        assert refusal(lambda: decisions.Evaluate(request(), timeout=5)) == "UNIMPLEMENTED"
        assert refusal(lambda: list(reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))) == "UNIMPLEMENTED"


def test_the_health_port_closes_with_the_server(tls_files: dict[str, Path]) -> None:
    health_port = free_port()
    with server_in_process(workers=0, health_port=health_port, **tls_files):
        assert check(health_port, "") == "SERVING"
    assert check(health_port, "") == "UNAVAILABLE"


def test_a_health_port_in_use_stops_the_start_naming_the_setting(tls_files: dict[str, Path]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(StartupError, match=r"cannot listen on 127\.0\.0\.1:") as refused, \
                server_in_process(workers=0, health_port=taken.getsockname()[1], **tls_files):
            pass
    assert refused.value.setting == "health_port"
