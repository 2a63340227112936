"""Bearer tokens and roles over real channels: keys, a JWKS and tokens are made here (tests/auth_support.py).

Every RPC is driven with every role and with no token and checked against `access.REQUIRED_SCOPE`, the table
docs/security.md shows; a new RPC without an entry there fails these tests."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from regelmotor.server import access, auth, guard
from regelmotor.server.app import RunningServer
from regelmotor.server.config import Settings
from regelmotor.server.startup import StartupError
from regelmotor.store.sqlite import SQLiteDecisionLog
from regelmotor_api.v1 import audit_pb2, decision_pb2, ruleset_pb2
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.auth_support import AUDIENCE, ISSUER, ORG_CLAIM, Issuer, bearer, handmade_token
from tests.conftest import ROOT
from tests.grpc_support import details, request, server_in_process

SERVICES = [s for m in (decision_pb2, ruleset_pb2, audit_pb2) for s in m.DESCRIPTOR.services_by_name.values()]
RPCS = [(f"/{service.full_name}/{method.name}", method) for service in SERVICES for method in service.methods]
REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    made = Issuer()
    made.add_rsa("k1")
    made.add_ec("k2")
    return made


@pytest.fixture(scope="module")
def server(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    jwks = issuer.write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json")
    with server_in_process(auth_jwks_file=jwks, auth_issuer=ISSUER, auth_audience=AUDIENCE) as (running, _, _):
        yield running


def _channel(server: RunningServer) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{server.port}")


def _evaluate(server: RunningServer, metadata: list[tuple[str, str]], **fields: str) -> decision_pb2.Decision:
    with _channel(server) as channel:
        answer: decision_pb2.Decision = pb_grpc.DecisionServiceStub(channel).Evaluate(
            request(None, **fields), metadata=metadata, timeout=30)
        return answer


def _refused(server: RunningServer, metadata: list[tuple[str, str]]) -> tuple[grpc.StatusCode, Any]:
    with pytest.raises(grpc.RpcError, match=r"StatusCode\.(UNAUTHENTICATED|PERMISSION_DENIED)") as caught:
        _evaluate(server, metadata, request_id="refused")
    error = caught.value
    assert isinstance(error, grpc.Call)
    return error.code(), details(error)["ErrorInfo"]


def test_a_valid_token_is_served(server: RunningServer, issuer: Issuer) -> None:
    assert _evaluate(server, bearer(issuer.token()), request_id="ok-1").outcome["utfall"] == "rett"
    assert _evaluate(server, bearer(issuer.token("k2")), request_id="ok-2").outcome["utfall"] == "rett"
    # Within the clock skew (30 s): expired 10 s ago, valid from 10 s from now; scope as a list (HelseID).
    now = int(time.time())
    late = issuer.token(exp=now - 10, nbf=now + 10, scope=["ruleset:read", "evaluate"])
    assert _evaluate(server, bearer(late), request_id="ok-3").outcome["utfall"] == "rett"


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "sub-123", "iat": now, "exp": now + 300, "scope": "evaluate",
            **changes}


@pytest.mark.parametrize(("case", "reason"), [
    ("missing", "TOKEN_MISSING"),
    ("not a bearer", "TOKEN_MALFORMED"),
    ("not a jwt", "TOKEN_MALFORMED"),
    ("expired", "TOKEN_EXPIRED"),
    ("not yet valid", "TOKEN_NOT_YET_VALID"),
    ("signed by another key", "TOKEN_SIGNATURE"),
    ("another issuer", "TOKEN_ISSUER"),
    ("another audience", "TOKEN_AUDIENCE"),
    ("unknown kid", "TOKEN_KEY_UNKNOWN"),
    ("alg none", "TOKEN_ALGORITHM"),
    ("HS256 with the public key", "TOKEN_ALGORITHM"),
    ("RS256 naming an EC key", "TOKEN_ALGORITHM"),
    ("no exp", "TOKEN_CLAIM_MISSING"),
    ("bound to a certificate, none presented", "TOKEN_CERTIFICATE_MISMATCH"),
    ("cnf without x5t#S256", "TOKEN_MALFORMED"),
])
def test_a_bad_token_is_unauthenticated_with_the_reason(server: RunningServer, issuer: Issuer, case: str,
                                                        reason: str) -> None:
    now = int(time.time())
    other = Issuer()
    other.add_rsa("k1")
    tokens = {
        "missing": None,
        "not a bearer": "Basic dXNlcjpwYXNz",
        "not a jwt": "Bearer not.a.jwt",
        "expired": f"Bearer {issuer.token(exp=now - 60)}",
        "not yet valid": f"Bearer {issuer.token(nbf=now + 120)}",
        "signed by another key": f"Bearer {other.token()}",
        "another issuer": f"Bearer {issuer.token(iss='https://evil.example')}",
        "another audience": f"Bearer {issuer.token(aud='someone-else')}",
        "unknown kid": f"Bearer {other.token('k9', key=other.keys['k1'])}",
        "alg none": f"Bearer {handmade_token({'alg': 'none', 'kid': 'k1'}, _claims(), None)}",
        "HS256 with the public key": "Bearer " + handmade_token({"alg": "HS256", "kid": "k1", "typ": "JWT"},
                                                                _claims(), issuer.public_pem("k1")),
        "RS256 naming an EC key": f"Bearer {issuer.token('k2', algorithm='RS256', key=issuer.keys['k1'])}",
        "no exp": f"Bearer {issuer.token(exp=None)}",
        # RFC 8705: usable only over mutual TLS with the certificate (tests/test_tls.py); this channel has none.
        "bound to a certificate, none presented": f"Bearer {issuer.token(cnf={'x5t#S256': 'A' * 43})}",
        "cnf without x5t#S256": f"Bearer {issuer.token(cnf={'jkt': 'A' * 43})}",
    }
    value = tokens[case]
    code, info = _refused(server, [] if value is None else [("authorization", value)])
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert info.reason == reason and info.domain == "regelmotor.no"


def test_a_valid_token_without_the_scope_is_denied_naming_it(server: RunningServer, issuer: Issuer) -> None:
    code, info = _refused(server, bearer(issuer.token(scope="ruleset:read audit")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert info.reason == "SCOPE_MISSING" and info.metadata["scope"] == "evaluate"
    assert info.metadata["granted_by"] == "evaluate"


def _same(data: bytes) -> bytes:
    return data


def _call(channel: grpc.Channel, method: str, descriptor: Any, metadata: tuple[tuple[str, str], ...]
          ) -> grpc.StatusCode:
    """Call `method` with an empty request; the status it ends with (OK when it answered)."""
    from google.protobuf import message_factory

    payload = message_factory.GetMessageClass(descriptor.input_type)().SerializeToString()
    try:
        if descriptor.client_streaming:
            replies = channel.stream_stream(method, request_serializer=_same, response_deserializer=_same)(
                iter([payload]), metadata=metadata, timeout=30)
            list(replies)
        elif descriptor.server_streaming:
            list(channel.unary_stream(method, request_serializer=_same, response_deserializer=_same)(
                payload, metadata=metadata, timeout=30))
        else:
            channel.unary_unary(method, request_serializer=_same, response_deserializer=_same)(
                payload, metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error.code()
    return grpc.StatusCode.OK


def test_every_rpc_has_an_entry_in_the_access_table() -> None:
    open_methods = {"/grpc.health.v1.Health/" + m.name for m in
                    health_pb2.DESCRIPTOR.services_by_name["Health"].methods}
    open_methods |= {f"/grpc.reflection.v1alpha.ServerReflection/{m.name}" for m in
                     reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].methods}
    assert set(access.REQUIRED_SCOPE) == {name for name, _ in RPCS} | open_methods
    assert all(access.REQUIRED_SCOPE[name] is None for name in open_methods)
    assert all(access.REQUIRED_SCOPE[name] in access.ROLES for name, _ in RPCS)


def test_every_rpc_with_every_role_and_without_a_token_follows_the_table(server: RunningServer,
                                                                         issuer: Issuer) -> None:
    callers: dict[str | None, tuple[tuple[str, str], ...]] = {None: ()}
    callers.update({role: tuple(bearer(issuer.token(scope=role))) for role in access.ROLES})
    outcomes: dict[tuple[str, str | None], grpc.StatusCode] = {}
    with _channel(server) as channel:
        for method, descriptor in RPCS:
            for role, metadata in callers.items():
                outcomes[method, role] = _call(channel, method, descriptor, metadata)
    documented = _docs_table()
    for (method, role), code in outcomes.items():
        needed = documented[method]  # a method the docs' table does not list fails here (KeyError)
        if role is None:
            assert code == grpc.StatusCode.UNAUTHENTICATED, (method, code)
        elif role == needed:
            assert code not in REFUSED, (method, role, code)
        else:
            assert code == grpc.StatusCode.PERMISSION_DENIED, (method, role, code)


def test_health_and_reflection_need_no_token(server: RunningServer) -> None:
    with _channel(server) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        replies = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
        names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert "regelmotor.v1.DecisionService" in names


def test_a_method_without_an_entry_is_refused(server: RunningServer, issuer: Issuer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(access.REQUIRED_SCOPE, "/regelmotor.v1.RulesetService/ListRulesets")
    with _channel(server) as channel, pytest.raises(grpc.RpcError, match="PERMISSION_DENIED") as caught:
        rpb_grpc.RulesetServiceStub(channel).ListRulesets(
            ruleset_pb2.ListRulesetsRequest(), metadata=bearer(issuer.token(scope=list(access.ROLES))), timeout=10)
    assert isinstance(caught.value, grpc.Call)
    assert details(caught.value)["ErrorInfo"].reason == "METHOD_NOT_LISTED"


def test_the_recorded_caller_is_the_token_s_not_the_metadata_s(server: RunningServer, issuer: Issuer) -> None:
    assert server.log is not None
    spoofed = [("regelmotor-caller", "someone-else")]
    with_org = issuer.token(client_id="dips-arena", **{ORG_CLAIM: "983971636"})
    first = _evaluate(server, bearer(with_org) + spoofed, request_id="caller-1")
    stored = server.log.get(first.decision_id)
    assert stored is not None and stored.caller == "dips-arena@983971636"
    without_client_id = issuer.token(client_id=None, sub="system-42")
    decision = _evaluate(server, bearer(without_client_id) + spoofed, request_id="caller-2")
    stored = server.log.get(decision.decision_id)
    assert stored is not None and stored.caller == "system-42"
    # The auditor's reads are logged under the auditor's token too.
    with _channel(server) as channel:
        listed = apb_grpc.AuditServiceStub(channel).ListDecisions(
            audit_pb2.ListDecisionsRequest(formaal="tilsynssak 2024/118",
                                           filter=audit_pb2.DecisionFilter(caller="dips-arena@983971636")),
            metadata=bearer(issuer.token(scope="audit", client_id="revisor")) + spoofed, timeout=10)
    assert [d.decision_id for d in listed.decisions] == [first.decision_id]
    assert isinstance(server.log, SQLiteDecisionLog)
    last = server.log.access_log()[-1]
    assert last["who"] == "revisor" and last["detail"]["formaal"] == "tilsynssak 2024/118"


def _docs_table() -> dict[str, str | None]:
    """docs/security.md's table of every RPC and the role it needs (None: open)."""
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(/[\w.]+/\w+)` \| (?:`([\w:]+)`|open) \|", text, flags=re.MULTILINE)
    return {method: role or None for method, role in rows}


def test_the_docs_table_is_the_access_table() -> None:
    assert _docs_table() == access.REQUIRED_SCOPE


def test_a_stream_records_the_token_s_caller(server: RunningServer, issuer: Issuer) -> None:
    assert server.log is not None
    with _channel(server) as channel:
        replies = list(pb_grpc.DecisionServiceStub(channel).EvaluateStream(
            iter([request(None, request_id="stream-caller-1")]),
            metadata=[*bearer(issuer.token(client_id="stream-system")), ("regelmotor-caller", "spoofed")],
            timeout=30))
    stored = server.log.get(replies[0].decision.decision_id)
    assert stored is not None and stored.caller == "stream-system"


@pytest.mark.parametrize(("settings", "setting", "problem"), [
    ({"auth_issuer": None}, "AUTH_ISSUER", "is not set but a JWKS is"),
    ({"auth_audience": ""}, "AUTH_AUDIENCE", "is not set but a JWKS is"),
    ({"auth_algorithms": "RS256,HS256"}, "AUTH_ALGORITHMS", "'HS256' is not an asymmetric signature algorithm"),
    ({"auth_algorithms": "none"}, "AUTH_ALGORITHMS", "'none' is not an asymmetric signature algorithm"),
    ({"auth_algorithms": " , "}, "AUTH_ALGORITHMS", "'' is not an asymmetric signature algorithm"),
    ({"auth_scope_roles": {"x": "admin"}}, "AUTH_SCOPE_ROLES", "'admin' is not a role"),
    ({"auth_jwks_url": "https://idp.example/jwks"}, "AUTH_JWKS_URL", "is set as well as auth_jwks_file"),
    ({"auth_jwks_file": None, "auth_jwks_url": "http://idp.example/jwks"}, "AUTH_JWKS_URL",
     "is not an https:// URL"),
    ({"auth_jwks_file": "missing.json"}, "AUTH_JWKS_FILE", "cannot read"),
    ({"auth_jwks_file": "empty.json"}, "AUTH_JWKS_FILE", "not a usable JWKS"),
])
def test_token_settings_that_cannot_work_stop_the_start(issuer: Issuer, tmp_path: Path, settings: dict[str, Any],
                                                         setting: str, problem: str) -> None:
    (tmp_path / "empty.json").write_text('{"keys": []}', encoding="utf-8")
    values: dict[str, Any] = {"auth_jwks_file": issuer.write_jwks(tmp_path / "jwks.json"), "auth_issuer": ISSUER,
                              "auth_audience": AUDIENCE, **settings}
    if isinstance(values["auth_jwks_file"], str):
        values["auth_jwks_file"] = tmp_path / values["auth_jwks_file"]
    with pytest.raises(StartupError, match=f"^REGELMOTOR_{setting}: .*{re.escape(problem)}"):
        guard.interceptor(Settings(**values))


def test_no_jwks_means_no_tokens_and_the_metadata_caller() -> None:
    with server_in_process() as (running, _, _):
        assert running.log is not None
        decision = _evaluate(running, [("regelmotor-caller", "dips-a")], request_id="open-1")
        stored = running.log.get(decision.decision_id)
        assert stored is not None and stored.caller == "dips-a"


class _Jwks(http.server.BaseHTTPRequestHandler):
    document: ClassVar[dict[str, Any]] = {}
    fetches: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        body = json.dumps(self.document).encode()
        type(self).fetches.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def jwks_url(issuer: Issuer) -> Iterator[str]:
    _Jwks.document, _Jwks.fetches[:] = {"keys": issuer.jwks()["keys"][:1]}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/jwks"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_jwks_url_is_fetched_again_for_an_unknown_kid(jwks_url: str, issuer: Issuer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with server_in_process(auth_jwks_url=jwks_url, auth_issuer=ISSUER, auth_audience=AUDIENCE) as (running, _, _):
        assert _evaluate(running, bearer(issuer.token("k1")), request_id="url-1").outcome["utfall"] == "rett"
        assert _evaluate(running, bearer(issuer.token("k1")), request_id="url-2").outcome["utfall"] == "rett"
        assert len(_Jwks.fetches) == 1  # kept, not fetched per call
        # k2 is not published yet: refused, and the set is not fetched again within MIN_REFETCH_SECONDS
        # however many unknown kids arrive.
        for attempt in range(3):
            code, info = _refused(running, bearer(issuer.token("k2")))
            assert (code, info.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_KEY_UNKNOWN"), attempt
        assert len(_Jwks.fetches) == 1
        # The issuer rotates in k2: a token naming it makes the server fetch the set again.
        _Jwks.document = issuer.jwks()
        monkeypatch.setattr(auth, "MIN_REFETCH_SECONDS", 0.0)
        assert _evaluate(running, bearer(issuer.token("k2")), request_id="url-3").outcome["utfall"] == "rett"
        assert len(_Jwks.fetches) == 2


def test_a_jwks_url_is_fetched_again_when_its_lifetime_is_up(jwks_url: str, issuer: Issuer) -> None:
    with server_in_process(auth_jwks_url=jwks_url, auth_issuer=ISSUER, auth_audience=AUDIENCE,
                           auth_jwks_cache_seconds=1) as (running, _, _):
        token = issuer.token("k1")
        assert _evaluate(running, bearer(token), request_id="life-1").outcome["utfall"] == "rett"
        # The issuer withdraws k1: once the lifetime is up the set is fetched again, and neither the held
        # key nor the token verified with it earlier is accepted any more.
        _Jwks.document = {"keys": issuer.jwks()["keys"][1:]}
        time.sleep(1.2)
        code, info = _refused(running, bearer(token))
        assert (code, info.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_KEY_UNKNOWN")
        assert len(_Jwks.fetches) == 2
