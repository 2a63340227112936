"""The Python client over several instances (regelmotor_client.targets): a list of addresses becomes one gRPC
target balanced by round_robin, calls are spread over the instances, a call that finds its instance gone is
answered by another, and over TLS the certificate's name can be given for instances addressed by IP. With real
servers over loopback; the same client against real processes, with one of them killed, is in test_scale_out.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import trustme

from regelmotor.server.app import RunningServer
from regelmotor.store import ListFilter
from regelmotor_client import ClientConfigError, DecisionError, RegelmotorClient
from regelmotor_client.__main__ import main
from regelmotor_client.targets import channel_target, is_loopback_target
from tests.conftest import ROOT
from tests.grpc_support import VALID_FACTS, server_in_process


@pytest.mark.parametrize(("given", "target"), [
    ("127.0.0.1:50051", "127.0.0.1:50051"),
    ("dns:///regelmotor-headless:50051", "dns:///regelmotor-headless:50051"),
    (["10.0.0.7:50051"], "10.0.0.7:50051"),
    (["10.0.0.7:50051", " 10.0.0.8:50052"], "ipv4:10.0.0.7:50051,10.0.0.8:50052"),
    (("[fd00::7]:50051", "[fd00::8]:50051"), "ipv6:[fd00::7]:50051,[fd00::8]:50051"),
])
def test_several_addresses_become_one_static_target(given: str | list[str], target: str) -> None:
    assert channel_target(given) == target


@pytest.mark.parametrize(("given", "problem"), [
    (["regelmotor-1:50051", "regelmotor-2:50051"], r"'regelmotor-1:50051' is not an IP address with a port"),
    (["10.0.0.7", "10.0.0.8:50051"], r"'10.0.0.7' is not an IP address with a port"),
    (["10.0.0.7:0", "10.0.0.8:50051"], r"'10.0.0.7:0' is not an IP address with a port"),
    (["10.0.0.7:50051", "[fd00::8]:50051"], r"IPv4 and IPv6 addresses cannot be balanced in one list"),
    ([], r"an address is empty"),
    (["10.0.0.7:50051", ""], r"an address is empty"),
])
def test_a_list_that_cannot_be_balanced_is_refused_naming_the_address(given: list[str], problem: str) -> None:
    with pytest.raises(ClientConfigError, match=problem) as refused:
        RegelmotorClient(given)
    assert refused.value.parameter == "address"


def test_a_token_goes_in_the_clear_only_when_every_address_of_the_list_is_loopback(tmp_path: Path) -> None:
    assert is_loopback_target("ipv4:127.0.0.1:1,127.0.0.2:2") and is_loopback_target("ipv6:[::1]:1,[::1]:2")
    assert not is_loopback_target("ipv4:127.0.0.1:1,10.0.0.8:2")
    token = tmp_path / "token"
    token.write_text("a.b.c", encoding="ascii")
    RegelmotorClient(["127.0.0.1:1", "127.0.0.1:2"], token_file=token).close()
    with pytest.raises(ClientConfigError, match=r"not in the clear to ipv4:127\.0\.0\.1:1,10\.0\.0\.8:2"):
        RegelmotorClient(["127.0.0.1:1", "10.0.0.8:2"], token_file=token)


@pytest.fixture
def two_servers() -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two instances, each with its own SQLite log, so each log shows which calls that instance answered."""
    with server_in_process() as (first, _, _), server_in_process() as (second, _, _):
        yield first, second


def _decide(client: RegelmotorClient, request_id: str) -> str:
    decision = client.evaluate("rett-til-helsehjelp", VALID_FACTS, as_of="2026-04-20", request_id=request_id)
    return str(decision["request_id"])


def _decisions(server: RunningServer) -> int:
    assert server.log is not None
    return server.log.count(ListFilter(), 1000)


def test_calls_are_spread_over_both_instances_and_answered_by_one_when_the_other_stops(
        two_servers: tuple[RunningServer, RunningServer]) -> None:
    first, second = two_servers
    with RegelmotorClient([first.address, second.address], retries=5) as client:
        assert [_decide(client, f"spread-{n}") for n in range(20)] == [f"spread-{n}" for n in range(20)]
        spread = (_decisions(first), _decisions(second))
        first.stop(grace=1)
        assert [_decide(client, f"after-{n}") for n in range(10)] == [f"after-{n}" for n in range(10)]
    assert sum(spread) == 20 and min(spread) > 0, spread
    assert _decisions(second) == spread[1] + 10


def test_over_tls_instances_given_by_ip_are_checked_against_the_server_name(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("regelmotor.test")  # a DNS name only, as certificates usually carry
    (tmp_path / "server.crt").write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    (tmp_path / "server.key").write_bytes(leaf.private_key_pem.bytes())
    (tmp_path / "server.key").chmod(0o600)
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem.bytes())
    with ExitStack() as servers:
        ports = [servers.enter_context(server_in_process(tls_cert_file=tmp_path / "server.crt",
                                                         tls_key_file=tmp_path / "server.key"))[0].port
                 for _ in range(2)]
        addresses = [f"127.0.0.1:{port}" for port in ports]
        with RegelmotorClient(addresses, ca_file=tmp_path / "ca.crt", server_name="regelmotor.test") as client:
            assert [_decide(client, f"tls-{n}") for n in range(4)] == [f"tls-{n}" for n in range(4)]
        with RegelmotorClient(addresses, ca_file=tmp_path / "ca.crt", retries=0) as unnamed, \
                pytest.raises(DecisionError, match=r"^UNAVAILABLE"):
            _decide(unnamed, "tls-unnamed")  # the certificate does not name 127.0.0.1


def test_the_command_takes_several_addresses_and_refuses_names_in_a_list(
        two_servers: tuple[RunningServer, RunningServer], capsys: pytest.CaptureFixture[str]) -> None:
    first, second = two_servers
    command = ["evaluate", "--ruleset", "rett-til-helsehjelp", "--facts",
               str(ROOT / "docs" / "examples" / "henvisning.json"), "--as-of", "2026-04-20"]
    assert main(["--address", f"{first.address},{second.address}", *command, "--request-id", "cli-list"]) == 0
    assert json.loads(capsys.readouterr().out)["request_id"] == "cli-list"
    assert main(["--address", "regelmotor-1:50051,regelmotor-2:50051", *command]) == 2
    assert capsys.readouterr().err.startswith("regelmotor-client: --address: 'regelmotor-1:50051' is not an IP "
                                              "address with a port")
