"""The Python client and `regelmotor-client` with bearer tokens from a file, an environment variable and a
command, against a real server with TLS and tokens on (keys and tokens from tests/auth_support.py)."""

from __future__ import annotations

import base64
import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from regelmotor.server.app import RunningServer
from regelmotor_client import ClientConfigError, DecisionError, RegelmotorClient
from regelmotor_client.__main__ import main as client_main
from regelmotor_client.token import MAX_TOKEN_BYTES, TokenCommand, TokenFile, expiry
from tests.auth_support import AUDIENCE, ISSUER, Issuer
from tests.conftest import ROOT
from tests.grpc_support import VALID_FACTS, server_in_process

FACTS_FILE = ROOT / "docs" / "examples" / "henvisning.json"
# Prints the token in <dir>/<n> on its n-th run and counts its runs in <dir>/runs.
TOKEN_SCRIPT = """\
import pathlib, sys
folder = pathlib.Path(sys.argv[1])
runs = folder / "runs"
count = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(count))
print((folder / str(count)).read_text())
"""


@dataclass
class Secured:
    server: RunningServer
    issuer: Issuer
    ca_file: Path

    @property
    def address(self) -> str:
        return f"localhost:{self.server.port}"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("secured")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    (root / "server.crt").write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    (root / "server.key").write_bytes(leaf.private_key_pem.bytes())
    (root / "server.key").chmod(0o600)
    (root / "ca.crt").write_bytes(ca.cert_pem.bytes())
    issuer = Issuer()
    issuer.add_rsa("k1")
    with server_in_process(workers=0, tls_cert_file=root / "server.crt", tls_key_file=root / "server.key",
                           auth_jwks_file=issuer.write_jwks(root / "jwks.json"), auth_issuer=ISSUER,
                           auth_audience=AUDIENCE) as (running, _, _):
        yield Secured(running, issuer, root / "ca.crt")


def _rotate(path: Path, token: str) -> None:
    """Write `token` as a rotation does: a new file moved over the old one."""
    staged = path.with_name(f".{path.name}.new")
    staged.write_text(token + "\n", encoding="ascii")
    os.replace(staged, path)


def _utfall(client: RegelmotorClient, request_id: str) -> Any:
    return client.evaluate("rett-til-helsehjelp", VALID_FACTS, as_of="2026-04-20",
                           request_id=request_id)["outcome"]["utfall"]


def test_a_token_file_is_sent_and_read_again_when_rotated(secured: Secured, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    _rotate(token_file, secured.issuer.token())
    with RegelmotorClient(secured.address, ca_file=secured.ca_file, token_file=token_file) as client:
        assert _utfall(client, "file-1") == "rett"
        streamed = list(client.evaluate_many([{"ruleset": "rett-til-helsehjelp", "facts": VALID_FACTS,
                                               "as_of": "2026-04-20"}]))
        assert streamed[0]["decision"]["outcome"]["utfall"] == "rett", "the stream carries the token too"
        # The file now holds a token the server refuses: the next call sends it, so the file was read again.
        _rotate(token_file, secured.issuer.token(exp=int(time.time()) - 120))
        with pytest.raises(DecisionError, match=r"^UNAUTHENTICATED") as caught:
            _utfall(client, "file-2")
        assert caught.value.reason == "TOKEN_EXPIRED"
        _rotate(token_file, secured.issuer.token())
        assert _utfall(client, "file-3") == "rett"
    with (RegelmotorClient(secured.address, ca_file=secured.ca_file) as client,
          pytest.raises(DecisionError, match=r"^UNAUTHENTICATED") as missing):
        _utfall(client, "no-token")
    assert missing.value.reason == "TOKEN_MISSING"


def _unsigned(exp: int) -> str:
    """A JWT-shaped token whose only use here is its `exp` (the same length for every 10-digit exp)."""
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"


def test_a_token_file_is_read_again_when_its_token_expires_within_a_minute(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    token_file = tmp_path / "token"
    token_file.write_text(_unsigned(1_800_000_100), encoding="ascii")
    source = TokenFile(token_file, clock=lambda: now[0])
    assert source.token() == _unsigned(1_800_000_100)
    # Replaced in place by a token of the same length, with the old modification time: only expiry tells.
    status = token_file.stat()
    token_file.write_text(_unsigned(1_800_000_900), encoding="ascii")
    os.utime(token_file, ns=(status.st_atime_ns, status.st_mtime_ns))
    now[0] = 1_800_000_100 - 61
    assert source.token() == _unsigned(1_800_000_100), "not yet within a minute of expiry: kept"
    now[0] = 1_800_000_100 - 59
    assert source.token() == _unsigned(1_800_000_900), "within a minute of expiry: read again"


def test_a_token_from_the_environment_is_read_for_every_call(secured: Secured,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGELMOTOR_TEST_TOKEN", secured.issuer.token())
    with RegelmotorClient(secured.address, ca_file=secured.ca_file, token_env="REGELMOTOR_TEST_TOKEN") as client:
        assert _utfall(client, "env-1") == "rett"
        monkeypatch.setenv("REGELMOTOR_TEST_TOKEN", secured.issuer.token(scope="audit"))
        with pytest.raises(DecisionError, match=r"^PERMISSION_DENIED") as caught:
            _utfall(client, "env-2")
        assert caught.value.reason == "SCOPE_MISSING"
        monkeypatch.delenv("REGELMOTOR_TEST_TOKEN")
        with pytest.raises(ClientConfigError, match=r"^token_env: the environment variable "
                                                    r"REGELMOTOR_TEST_TOKEN is not set$"):
            _utfall(client, "env-3")


def test_a_token_command_runs_again_only_when_its_token_expires_within_a_minute(
        secured: Secured, tmp_path: Path) -> None:
    script = tmp_path / "token.py"
    script.write_text(TOKEN_SCRIPT, encoding="utf-8")
    folder = tmp_path / "tokens"
    folder.mkdir()
    now = int(time.time())
    (folder / "1").write_text(secured.issuer.token(exp=now + 50), encoding="ascii")  # valid, but expiring soon
    (folder / "2").write_text(secured.issuer.token(exp=now + 600), encoding="ascii")
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(folder))}"
    with RegelmotorClient(secured.address, ca_file=secured.ca_file, token_command=command) as client:
        assert (folder / "runs").read_text() == "1", "run once when the client is made"
        for number in range(3):
            assert _utfall(client, f"command-{number}") == "rett"
    assert (folder / "runs").read_text() == "2", "run again for the first call only: the first token was expiring"


@pytest.mark.parametrize(("command", "timeout", "problem"), [
    ([sys.executable, "-c", "import sys; sys.exit(3)"], 30.0, r"exited with status 3$"),
    ([sys.executable, "-c", "import time; time.sleep(30)"], 0.5, r"did not finish within 0\.5 s$"),
    ([sys.executable, "-c", f"print('a' * {MAX_TOKEN_BYTES + 1})"], 30.0, r"printed more than 16384 bytes$"),
    ([sys.executable, "-c", "print('secret-one secret-two')"], 30.0, r"holds more than one word"),
    ([sys.executable, "-c", "pass"], 30.0, r"holds no token$"),
    (["/nonexistent/token-helper"], 30.0, r"cannot run /nonexistent/token-helper"),
])
def test_a_token_command_that_fails_is_refused_naming_why(command: list[str], timeout: float,
                                                          problem: str) -> None:
    started = time.monotonic()
    with pytest.raises(ClientConfigError, match=rf"^token_command: .*{problem}") as caught:
        TokenCommand(command, timeout=timeout)
    assert "secret" not in str(caught.value), "the token is never in an error"
    assert time.monotonic() - started < 20, "bounded: no hang"


def test_a_token_is_not_sent_in_the_clear_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGELMOTOR_TEST_TOKEN", _unsigned(1_800_000_000))
    with pytest.raises(ClientConfigError, match=r"^token_env: a token is sent only over TLS or to a loopback "
                                                r"address, not in the clear to regelmotor\.example:50051$"):
        RegelmotorClient("regelmotor.example:50051", token_env="REGELMOTOR_TEST_TOKEN")
    for local in ("127.0.0.1:50051", "localhost:50051", "[::1]:50051", "dns:///localhost:50051"):
        RegelmotorClient(local, token_env="REGELMOTOR_TEST_TOKEN").close()
    with pytest.raises(ClientConfigError, match=r"^token_env: give only one of token_file, token_env and "):
        RegelmotorClient("127.0.0.1:1", token_file="token", token_env="REGELMOTOR_TEST_TOKEN")


@pytest.mark.parametrize(("token", "exp"), [
    (_unsigned(1_800_000_000), 1_800_000_000.0),
    ("opaque-token", None),
    ("a.!!!.c", None),
    ("a." + base64.urlsafe_b64encode(b'{"exp": "soon"}').decode() + ".c", None),
    ("a." + base64.urlsafe_b64encode(b'[1]').decode() + ".c", None),
])
def test_expiry_is_read_without_verifying_and_none_when_unreadable(token: str, exp: float | None) -> None:
    assert expiry(token) == exp


def test_the_command_speaks_tls_with_a_token(secured: Secured, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "token"
    _rotate(token_file, secured.issuer.token())
    call = ["evaluate", "--ruleset", "rett-til-helsehjelp", "--facts", str(FACTS_FILE), "--as-of", "2026-04-20",
            "--outcome-only"]
    tls = ["--address", secured.address, "--ca-file", str(secured.ca_file)]
    assert client_main([*tls, "--token-file", str(token_file), *call]) == 0
    assert json.loads(capsys.readouterr().out)["utfall"] == "rett"

    assert client_main([*tls, *call]) == 1
    refused = json.loads(capsys.readouterr().err)
    assert refused["code"] == "UNAUTHENTICATED" and refused["reason"] == "TOKEN_MISSING"

    command = f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(4)'"
    assert client_main([*tls, "--token-command", command, *call]) == 2
    assert capsys.readouterr().err.startswith("regelmotor-client: --token-command: ")

    assert client_main([*tls, "--token-env", "REGELMOTOR_UNSET_TOKEN_VARIABLE", *call]) == 2
    assert capsys.readouterr().err == ("regelmotor-client: --token-env: the environment variable "
                                       "REGELMOTOR_UNSET_TOKEN_VARIABLE is not set\n")
