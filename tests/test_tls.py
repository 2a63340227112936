"""TLS and mutual TLS on the gRPC port, over real channels on loopback with CAs and certificates made here
(trustme): who is served and who is refused, certificates rotated on disk while the server runs, and the
start-up checks of the certificate files."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from regelmotor.server.app import RunningServer
from regelmotor.server.startup import StartupError
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from regelmotor_client import RegelmotorClient
from regelmotor_client.__main__ import main as client_main
from tests.auth_support import AUDIENCE, ISSUER, Issuer, bearer
from tests.conftest import ROOT
from tests.grpc_support import details, request, server_in_process
from tests.server_process import running_server

HOSTS = ("localhost", "127.0.0.1")
PAST = datetime.now(UTC) - timedelta(days=1)


@dataclass
class Pki:
    """A directory of PEM files: a server certificate and key, client certificates, and their CAs."""

    root: Path
    ca: trustme.CA
    other_ca: trustme.CA

    def write(self, name: str, data: bytes, mode: int = 0o600) -> Path:
        """Write `name` as a rotation does: a new file moved over the old one."""
        path = self.root / name
        staged = self.root / f".{name}.new"
        staged.write_bytes(data)
        staged.chmod(mode)
        os.replace(staged, path)
        return path

    def leaf(self, prefix: str, cert: trustme.LeafCert) -> tuple[Path, Path]:
        return (self.write(f"{prefix}.crt", b"".join(p.bytes() for p in cert.cert_chain_pems)),
                self.write(f"{prefix}.key", cert.private_key_pem.bytes()))

    def trust(self, ca: trustme.CA, name: str) -> Path:
        return self.write(name, ca.cert_pem.bytes(), 0o644)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pki = Pki(tmp_path, trustme.CA(), trustme.CA())
    pki.leaf("server", pki.ca.issue_cert(*HOSTS))
    pki.trust(pki.ca, "ca.crt")
    pki.trust(pki.other_ca, "other-ca.crt")
    return pki


def _tls(pki: Pki, *, client_ca: bool = False) -> dict[str, Path]:
    settings = {"tls_cert_file": pki.root / "server.crt", "tls_key_file": pki.root / "server.key"}
    return settings | ({"tls_client_ca_file": pki.root / "ca.crt"} if client_ca else {})


def _credentials(ca: trustme.CA, client: trustme.LeafCert | None = None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(ca.cert_pem.bytes())
    return grpc.ssl_channel_credentials(ca.cert_pem.bytes(), client.private_key_pem.bytes(),
                                        b"".join(p.bytes() for p in client.cert_chain_pems))


def _evaluate(port: int, credentials: grpc.ChannelCredentials | None) -> str:
    """OK for a decision, or the status code's name when the call is refused."""
    address = f"127.0.0.1:{port}"
    options = [("grpc.use_local_subchannel_pool", 1)]  # a fresh connection, hence a fresh handshake, every time
    channel = (grpc.secure_channel(address, credentials, options) if credentials is not None
               else grpc.insecure_channel(address, options))
    with channel:
        try:
            answer = pb_grpc.DecisionServiceStub(channel).Evaluate(request(request_id=""), timeout=10)
            return "OK" if answer.version else "no version"
        except grpc.RpcError as error:
            return str(error.code().name)


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[RunningServer]:
    with server_in_process(workers=0, **_tls(pki)) as (running, _, _):
        yield running


def test_tls_serves_a_client_trusting_the_ca_and_refuses_plaintext_and_another_ca(
        pki: Pki, tls_server: RunningServer) -> None:
    assert _evaluate(tls_server.port, _credentials(pki.ca)) == "OK"
    assert _evaluate(tls_server.port, None) == "UNAVAILABLE"
    assert _evaluate(tls_server.port, _credentials(pki.other_ca)) == "UNAVAILABLE"


def test_mutual_tls_serves_only_a_current_client_certificate_of_the_client_ca(pki: Pki) -> None:
    with server_in_process(workers=0, **_tls(pki, client_ca=True)) as (server, _, _):
        assert _evaluate(server.port, _credentials(pki.ca, pki.ca.issue_cert("klient.example"))) == "OK"
        assert _evaluate(server.port, _credentials(pki.ca)) == "UNAVAILABLE", "no client certificate"
        assert _evaluate(server.port, _credentials(pki.ca, pki.other_ca.issue_cert("klient.example"))) \
            == "UNAVAILABLE", "a client certificate of another CA"
        expired = pki.ca.issue_cert("klient.example", not_before=PAST - timedelta(days=30), not_after=PAST)
        assert _evaluate(server.port, _credentials(pki.ca, expired)) == "UNAVAILABLE", "an expired one"


def test_rotated_certificate_files_serve_new_connections_without_a_restart(
        pki: Pki, tls_server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    assert _evaluate(tls_server.port, _credentials(pki.ca)) == "OK"
    assert _evaluate(tls_server.port, _credentials(pki.other_ca)) == "UNAVAILABLE"
    pki.leaf("server", pki.other_ca.issue_cert(*HOSTS))  # a certificate of another CA, moved over the old files
    assert _evaluate(tls_server.port, _credentials(pki.other_ca)) == "OK"
    assert _evaluate(tls_server.port, _credentials(pki.ca)) == "UNAVAILABLE", "the old certificate is gone"

    # A bad rotation (a key that is not the certificate's) is logged and the server keeps the last good files.
    with caplog.at_level(logging.ERROR, logger="regelmotor.server.tls"):
        pki.write("server.key", pki.ca.issue_cert(*HOSTS).private_key_pem.bytes())
        assert _evaluate(tls_server.port, _credentials(pki.other_ca)) == "OK"
        assert _evaluate(tls_server.port, _credentials(pki.other_ca)) == "OK"
    refusals = [r for r in caplog.records if r.getMessage().startswith("tls files refused")]
    assert len(refusals) == 1, "logged once per bad state of the files, not per connection"
    assert "REGELMOTOR_TLS_KEY_FILE" in str(refusals[0].__dict__["reason"])
    assert "PRIVATE KEY" not in str(refusals[0].__dict__), "no key material in the log"

    pki.leaf("server", pki.ca.issue_cert(*HOSTS))  # then good files again: served at once
    assert _evaluate(tls_server.port, _credentials(pki.ca)) == "OK"


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    data = tempfile.mkdtemp(prefix="regelmotor-start-")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "services" / "rules"), str(ROOT / "protos" / "python"), str(ROOT)]),
        "REGELMOTOR_DATA_DIR": data, "REGELMOTOR_PORT": "0", "REGELMOTOR_WORKERS": "1", **env}
    return subprocess.run([sys.executable, "-m", "regelmotor.cli.main", "serve"], env=environment,
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)


@pytest.mark.parametrize(("case", "named", "reason"), [
    ("missing certificate", "REGELMOTOR_TLS_CERT_FILE", "cannot read"),
    ("not a certificate", "REGELMOTOR_TLS_CERT_FILE", "holds no PEM certificate"),
    ("expired certificate", "REGELMOTOR_TLS_CERT_FILE", "expired"),
    ("key of another certificate", "REGELMOTOR_TLS_KEY_FILE", "is not the private key of the certificate"),
    ("key readable by others", "REGELMOTOR_TLS_KEY_FILE", "can be read by others (mode 0644)"),
    ("no key", "REGELMOTOR_TLS_KEY_FILE", "is not set"),
    ("client CA without TLS", "REGELMOTOR_TLS_CLIENT_CA_FILE", "mutual TLS needs TLS"),
    ("client CA not a certificate", "REGELMOTOR_TLS_CLIENT_CA_FILE", "holds no PEM certificate"),
])
def test_unusable_tls_files_stop_start_up_with_one_line_naming_the_setting(
        pki: Pki, case: str, named: str, reason: str) -> None:
    env = {f"REGELMOTOR_{k.upper()}": str(v) for k, v in _tls(pki, client_ca=True).items()}
    if case == "missing certificate":
        env["REGELMOTOR_TLS_CERT_FILE"] = str(pki.root / "nonexistent.crt")
    elif case == "not a certificate":
        env["REGELMOTOR_TLS_CERT_FILE"] = str(pki.write("garbage.crt", b"not a certificate\n"))
    elif case == "expired certificate":
        pki.leaf("server", pki.ca.issue_cert(*HOSTS, not_before=PAST - timedelta(days=30), not_after=PAST))
    elif case == "key of another certificate":
        pki.write("server.key", pki.ca.issue_cert(*HOSTS).private_key_pem.bytes())
    elif case == "key readable by others":
        (pki.root / "server.key").chmod(0o644)
    elif case == "no key":
        del env["REGELMOTOR_TLS_KEY_FILE"]
    elif case == "client CA without TLS":
        del env["REGELMOTOR_TLS_CERT_FILE"], env["REGELMOTOR_TLS_KEY_FILE"]
    else:
        env["REGELMOTOR_TLS_CLIENT_CA_FILE"] = str(pki.write("garbage-ca.crt", b"-----BEGIN nothing\n", 0o644))
    result = _serve(env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith(f"regelmotor: cannot start: {named}:"), result.stderr
    assert reason in lines[-1], lines[-1]
    assert "PRIVATE KEY" not in result.stderr


def test_the_client_and_its_command_speak_mutual_tls_to_a_real_server(
        pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    client_cert, client_key = pki.leaf("client", pki.ca.issue_cert("klient.example"))
    ca_file = pki.root / "ca.crt"
    env = {f"REGELMOTOR_{k.upper()}": str(v) for k, v in _tls(pki, client_ca=True).items()}
    with running_server(workers=1, env=env, credentials=_credentials(pki.ca, pki.ca.issue_cert("probe"))) as server:
        facts = str(ROOT / "docs" / "examples" / "henvisning.json")
        call = ["evaluate", "--ruleset", "rett-til-helsehjelp", "--facts", facts, "--as-of", "2026-04-20",
                "--outcome-only"]
        tls = ["--ca-file", str(ca_file), "--cert-file", str(client_cert), "--key-file", str(client_key)]
        assert client_main(["--address", server.address, *tls, *call]) == 0
        assert json.loads(capsys.readouterr().out)["utfall"] == "rett"

        assert client_main(["--address", server.address, "--ca-file", str(ca_file), *call]) == 1
        assert json.loads(capsys.readouterr().err)["code"] == "UNAVAILABLE", "no client certificate: refused"

        assert client_main(["--address", server.address, "--ca-file", str(ca_file), "--cert-file",
                            str(client_cert), *call]) == 2
        assert capsys.readouterr().err.startswith("regelmotor-client: --key-file: a client certificate needs")

        with RegelmotorClient(server.address, ca_file=ca_file, cert_file=client_cert, key_file=client_key) as client:
            assert client.evaluate("rett-til-helsehjelp", json.loads(Path(facts).read_text(encoding="utf-8")),
                                   as_of="2026-04-20")["outcome"]["utfall"] == "rett"


def test_under_mutual_tls_without_a_token_the_caller_is_the_certificate_not_the_metadata(pki: Pki) -> None:
    with server_in_process(workers=0, **_tls(pki, client_ca=True)) as (server, _, _):
        credentials = _credentials(pki.ca, pki.ca.issue_cert("dips.helse-vest.example"))
        with grpc.secure_channel(f"127.0.0.1:{server.port}", credentials) as channel:
            answer = pb_grpc.DecisionServiceStub(channel).Evaluate(
                request(request_id="mtls-1"), metadata=[("regelmotor-caller", "someone-else")], timeout=10)
        assert server.log is not None
        record = server.log.get(answer.decision_id)
    assert record is not None and record.caller == "cert:dips.helse-vest.example"


def _thumbprint(cert: trustme.LeafCert) -> str:
    """RFC 8705 x5t#S256, worked out here apart from the server's code: SHA-256 of the DER certificate."""
    digest = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes()).fingerprint(hashes.SHA256())
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _bound_calls(port: int, client: trustme.LeafCert, ca: trustme.CA, token: str) -> dict[str, str]:
    """Evaluate (unary), EvaluateStream (both streaming) and ExportDecisions (a response stream) with `token`
    under mutual TLS with `client`: OK, or the refusal's code and ErrorInfo reason."""
    calls: dict[str, Callable[[grpc.Channel], object]] = {
        "Evaluate": lambda channel: pb_grpc.DecisionServiceStub(channel).Evaluate(
            request(request_id=""), metadata=bearer(token), timeout=10),
        "EvaluateStream": lambda channel: list(pb_grpc.DecisionServiceStub(channel).EvaluateStream(
            iter([request(request_id="")]), metadata=bearer(token), timeout=10)),
        "ExportDecisions": lambda channel: list(apb_grpc.AuditServiceStub(channel).ExportDecisions(
            apb.ExportDecisionsRequest(formaal="kontroll av bundne tokens"), metadata=bearer(token), timeout=10)),
    }
    outcomes = {}
    with grpc.secure_channel(f"127.0.0.1:{port}", _credentials(ca, client)) as channel:
        for name, call in calls.items():
            try:
                call(channel)
                outcomes[name] = "OK"
            except grpc.RpcError as error:
                assert isinstance(error, grpc.Call)
                outcomes[name] = f"{error.code().name} {details(error)['ErrorInfo'].reason}"
    return outcomes


def test_a_token_bound_to_a_client_certificate_is_served_only_with_that_certificate(pki: Pki) -> None:
    issuer = Issuer()
    issuer.add_rsa("k1")
    jwks = issuer.write_jwks(pki.root / "jwks.json")
    own, other = pki.ca.issue_cert("dips.helse-vest.example"), pki.ca.issue_cert("metavision.example")
    roles = "evaluate audit"
    bound_token = issuer.token(scope=roles, cnf={"x5t#S256": _thumbprint(own)})
    with server_in_process(workers=0, auth_jwks_file=jwks, auth_issuer=ISSUER, auth_audience=AUDIENCE,
                           **_tls(pki, client_ca=True)) as (server, _, _):
        with_own = _bound_calls(server.port, own, pki.ca, bound_token)
        with_other = _bound_calls(server.port, other, pki.ca, bound_token)
        unbound = _bound_calls(server.port, other, pki.ca, issuer.token(scope=roles))
    assert with_own == dict.fromkeys(with_own, "OK")
    assert with_other == dict.fromkeys(with_own, "UNAUTHENTICATED TOKEN_CERTIFICATE_MISMATCH")
    assert unbound == dict.fromkeys(with_own, "OK"), "a token without cnf is a plain bearer token"


def _tokens(pki: Pki) -> dict[str, Any]:
    issuer = Issuer()
    issuer.add_rsa("k1")
    return {"auth_jwks_file": issuer.write_jwks(pki.root / "jwks.json"), "auth_issuer": ISSUER,
            "auth_audience": AUDIENCE}


@pytest.mark.parametrize(("secured", "missing"), [("tls", "authentication is off"), ("tokens", "TLS is off")])
def test_an_address_other_machines_reach_needs_both_tls_and_tokens(pki: Pki, secured: str, missing: str) -> None:
    settings: dict[str, Any] = _tls(pki) if secured == "tls" else _tokens(pki)
    with pytest.raises(StartupError, match=rf"^REGELMOTOR_HOST: 0\.0\.0\.0 is reachable from other machines, but "
                                           rf"{missing}; .*REGELMOTOR_INSECURE=true"), \
            server_in_process(workers=0, host="0.0.0.0", **settings):
        pass
    with server_in_process(workers=0, host="0.0.0.0", **(_tls(pki) | _tokens(pki))) as (server, _, _):
        assert server.service.posture == "listening on 0.0.0.0, TLS, bearer tokens required"
        assert _evaluate(server.port, _credentials(pki.ca)) == "UNAUTHENTICATED"
