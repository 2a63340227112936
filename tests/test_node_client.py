"""A client no one here wrote: Node.js @grpc/grpc-js drives the running server (issue 4, item 6).

`tests/node/client.js` loads our .proto files with @grpc/proto-loader, calls Evaluate (a valid and an
invalid request) and EvaluateStream (five requests, the middle one invalid), decodes the
google.rpc.Status details with protobufjs, and prints one JSON document of what it observed.

Each test runs twice: over plaintext against a server process, and over TLS with a bearer token against a
server with TLS and tokens on (certificates from trustme, tokens from tests/auth_support.py), where a call
without the token must be refused.

The npm packages are installed by `make pytest` (`npm ci --prefix tests/node`). In CI (CI=true) a
missing node or node_modules fails the test; on a developer machine without them it is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import google.rpc
import pytest
import trustme

from tests.auth_support import AUDIENCE, ISSUER, Issuer
from tests.conftest import ROOT
from tests.grpc_support import server_in_process
from tests.server_process import running_server

NODE_DIR = ROOT / "tests" / "node"
CLIENT = NODE_DIR / "client.js"
REQUIRED_MODULES = ("@grpc/grpc-js", "@grpc/proto-loader", "protobufjs")

EXPECTED_OUTCOME = {
    "utfall": "rett",
    "vurderingsfrist": "2026-04-16",
    "frist_start_helsehjelp": "2026-04-27",
}
EXPECTED_FACTS = {
    "ansiennitetsdato": "2026-03-30",
    "fodselsdato": "2004-05-02",
    "fagomrade": "tsb",
    "tilstand": "tsb_alkohol",
    "forventet_nytte": True,
    "kostnad_rimelig": True,
}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: the Node.js client test must run in CI)", pytrace=False)
    pytest.skip(reason)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed")
    missing = [m for m in REQUIRED_MODULES if not (NODE_DIR / "node_modules" / m / "package.json").is_file()]
    if missing:
        _unavailable(f"npm packages missing in tests/node/node_modules: {', '.join(missing)}; "
                     "run `npm ci --prefix tests/node` (make pytest does)")
    return node


def _google_proto_root() -> Path:
    """The include root of google/rpc/*.proto as shipped by googleapis-common-protos."""
    root = Path(os.path.dirname(os.path.dirname(next(iter(google.rpc.__path__)))))
    assert (root / "google" / "rpc" / "status.proto").is_file(), root
    assert (root / "google" / "rpc" / "error_details.proto").is_file(), root
    return root


def _run(node: str, address: str, *options: str) -> dict[str, Any]:
    try:
        done = subprocess.run([node, str(CLIENT), address, str(_google_proto_root()), *options],
                              capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"node client timed out: {exc.stderr!r}", pytrace=False)
    assert done.returncode == 0, f"node client failed ({done.returncode}):\n{done.stderr}\n{done.stdout}"
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _over_tls_with_a_token(node: str, folder: Path) -> dict[str, Any]:
    """The client over TLS with a bearer token, against a server with TLS and tokens on."""
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    (folder / "server.crt").write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    (folder / "server.key").write_bytes(leaf.private_key_pem.bytes())
    (folder / "server.key").chmod(0o600)
    (folder / "ca.crt").write_bytes(ca.cert_pem.bytes())
    issuer = Issuer()
    issuer.add_ec("k1")
    (folder / "token").write_text(issuer.token() + "\n", encoding="ascii")
    with server_in_process(workers=0, tls_cert_file=folder / "server.crt", tls_key_file=folder / "server.key",
                           auth_jwks_file=issuer.write_jwks(folder / "jwks.json"), auth_issuer=ISSUER,
                           auth_audience=AUDIENCE) as (server, _, _):
        return _run(node, f"127.0.0.1:{server.port}", "--ca-file", str(folder / "ca.crt"),
                    "--token-file", str(folder / "token"))


@pytest.fixture(scope="module", params=["plaintext", "tls with a token"])
def observed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    node = _node()
    if request.param == "tls with a token":
        return _over_tls_with_a_token(node, tmp_path_factory.mktemp("node-tls"))
    with running_server(workers=2) as server:
        return _run(node, server.address)


def _assert_decision(decision: dict[str, Any], request_id: str) -> None:
    assert decision["request_id"] == request_id
    assert decision["ruleset"] == "rett-til-helsehjelp"
    assert decision["version"] == "2024.07.1"
    assert decision["as_of"] == "2026-04-20"
    assert decision["selected_by"] == "ansiennitetsdato"
    assert len(decision["ruleset_sha256"]) == 64
    assert decision["engine_version"].startswith("regelmotor ")
    assert len(decision["trace_id"]) == 32 and int(decision["trace_id"], 16) != 0
    assert decision["decision_id"]
    outcome = decision["outcome"]
    assert {k: outcome[k] for k in EXPECTED_OUTCOME} == EXPECTED_OUTCOME
    assert outcome["rett_til_nodvendig_helsehjelp"] is True
    rules = decision["rules"]
    assert rules, "explanation.rules is empty"
    assert all(rule["hjemmel"] for rule in rules), [r["id"] for r in rules if not r["hjemmel"]]
    rett = next(rule for rule in rules if rule["id"] == "rett")
    assert rett["fired"] is True and rett["applied"] is True
    assert {h["kilde"] for h in rett["hjemmel"]} == {"LOV-1999-07-02-63"}
    assert {h["paragraf"] for h in rett["hjemmel"]} == {"2-2"}


def _assert_bad_request(details: list[dict[str, Any]]) -> None:
    bad_requests = [d for d in details if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    assert len(bad_requests) == 1, details
    violations = bad_requests[0]["field_violations"]
    assert [v["field"] for v in violations] == ["fagomrade"]
    assert "'kirurgi' is not a known value" in violations[0]["description"]


def test_evaluate_from_node(observed: dict[str, Any]) -> None:
    assert "error" not in observed["evaluate"], observed["evaluate"]
    decision = observed["evaluate"]["decision"]
    _assert_decision(decision, "node-unary-ok")
    # Struct round trip both ways: the facts sent as Struct come back, with the defaults applied.
    assert {k: decision["facts"][k] for k in EXPECTED_FACTS} == EXPECTED_FACTS
    # Typed explanation: conditions with the values read (a Struct) and whether each held.
    rett = next(rule for rule in decision["rules"] if rule["id"] == "rett")
    assert rett["conditions"] == [
        {"condition": "forventet_nytte", "held": True, "reads": {"forventet_nytte": True}},
        {"condition": "kostnad_rimelig", "held": True, "reads": {"kostnad_rimelig": True}},
    ]


def test_invalid_argument_details_decoded_in_node(observed: dict[str, Any]) -> None:
    assert "decision" not in observed["evaluate_invalid"], observed["evaluate_invalid"]
    error = observed["evaluate_invalid"]["error"]
    assert error["code"] == 3
    assert error["code_name"] == "INVALID_ARGUMENT"
    assert "fagomrade" in error["details"]
    status = error["status"]
    assert status is not None, "no grpc-status-details-bin trailer"
    assert status["code"] == 3
    assert status["message"] == error["details"]
    _assert_bad_request(status["details"])


def test_evaluate_stream_from_node(observed: dict[str, Any]) -> None:
    stream = observed["stream"]
    assert stream["error"] is None, stream["error"]
    results = stream["results"]
    # int64 index arrives as a string (proto-loader longs: String).
    assert [r["index"] for r in results] == ["0", "1", "2", "3", "4"]
    assert [r["request_id"] for r in results] == [f"node-stream-{i}" for i in range(5)]
    assert [r["result"] for r in results] == ["decision", "decision", "error", "decision", "decision"]
    for i in (0, 1, 3, 4):
        _assert_decision(results[i]["decision"], f"node-stream-{i}")
    assert len({results[i]["decision"]["decision_id"] for i in (0, 1, 3, 4)}) == 4
    error = results[2]["error"]
    assert error["code"] == 3
    # The same code, message and details as the unary call gives.
    unary = observed["evaluate_invalid"]["error"]["status"]
    assert error["message"] == unary["message"]
    _assert_bad_request(error["details"])
    assert error["details"] == unary["details"]


def test_over_tls_a_call_without_the_token_is_refused(observed: dict[str, Any]) -> None:
    if not observed["token"]:
        assert not observed["tls"] and "evaluate_without_token" not in observed
        return
    assert observed["tls"] is True
    error = observed["evaluate_without_token"]["error"]
    assert error["code_name"] == "UNAUTHENTICATED"
    infos = [d for d in error["status"]["details"] if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"]
    assert [i["reason"] for i in infos] == ["TOKEN_MISSING"]
