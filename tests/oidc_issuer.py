"""The tests' own OpenID Connect issuer: discovery, JWKS, authorize, token and end_session endpoints, served by
werkzeug on a free loopback port in a thread. Tokens are signed with the keys of tests/auth_support.py's
`Issuer`, with the claims the API checks (iss, aud, sub, exp, scope).

Like a real issuer, it remembers who is signed in at it (`signed_in`; `None` shows a page asking to log in, as an
issuer's login form would), approves the console's authorize request for that person (their scopes: what the
console asks for and the person may have), and checks at the token endpoint the code, the redirect_uri, the
client's authentication and the PKCE verifier against the S256 challenge (refusing `plain` at authorize).

A client authenticates with its secret (HTTP basic), with nothing (a public client), or, registered with a public
key in `client_keys`, with a client assertion (`private_key_jwt`, RFC 7523), checked here with PyJWT as HelseID
checks it: the key the header's kid names, an asymmetric algorithm, iss = sub = client_id, aud = this token
endpoint, exp no more than 60 seconds after iat, and a jti never seen before."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import make_server
from werkzeug.wrappers import Response as AnyResponse

from tests.auth_support import AUDIENCE, Issuer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
ASSERTION_MAX_SECONDS = 60  # HelseID's limit on exp - iat


@dataclass(frozen=True)
class IssuerPerson:
    sub: str
    claims: dict[str, str]  # name, given_name, family_name as the issuer gives them
    scopes: frozenset[str]  # the API scopes this person may be given


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    person: IssuerPerson
    scope: list[str]


@dataclass
class OidcIssuer:
    keys: Issuer
    clients: dict[str, str | None] = field(default_factory=dict)  # client_id -> secret (None: public client)
    client_keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # client_id -> {kid: public key}
    redirect_uris: set[str] = field(default_factory=set)
    post_logout_uris: set[str] = field(default_factory=set)
    signed_in: IssuerPerson | None = None
    end_session: bool = True  # whether discovery offers an end_session_endpoint
    named_issuer: str | None = None  # the issuer the discovery document names (None: its own address)
    access_token_seconds: int = 300
    expired_tokens_to_issue: int = 0  # the next n access tokens have an exp in the past (the API refuses them)
    url: str = ""
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_refusals: list[str] = field(default_factory=list)
    end_session_requests: list[dict[str, str]] = field(default_factory=list)
    id_token_changes: dict[str, Any] = field(default_factory=dict)  # claims a forged id_token would alter
    id_token_key: Any = None  # another key than the published one: a forged signature
    issued: list[dict[str, Any]] = field(default_factory=list)  # every token answer, for the tests to look for
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _seen_jtis: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the endpoints -------------------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        document = {
            "issuer": self.named_issuer or self.url, "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token", "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
            "scopes_supported": ["openid", "profile"],
        }
        if self.end_session:
            document["end_session_endpoint"] = self.url + "/endsession"
        return document

    def authorize(self) -> AnyResponse | tuple[str, int]:
        asked = request.args.to_dict()
        self.authorize_requests.append(asked)
        known = asked.get("client_id") in self.clients or asked.get("client_id") in self.client_keys
        if not known or asked.get("redirect_uri") not in self.redirect_uris:
            return "unknown client or redirect_uri", 400  # never redirect to an unregistered address
        if asked.get("code_challenge_method") != "S256" or not asked.get("code_challenge"):
            return self._back(asked, error="invalid_request")  # PKCE required, and never `plain`
        if asked.get("response_type") != "code" or "openid" not in asked.get("scope", "").split():
            return self._back(asked, error="invalid_request")
        person = self.signed_in
        if person is None:
            return ("<!doctype html><html lang='nb'><title>Testutstederen</title>"
                    "<h1>Logg inn hos testutstederen</h1></html>"), 200
        code = secrets.token_urlsafe(24)
        granted = [s for s in asked["scope"].split() if s in ("openid", "profile") or s in person.scopes]
        with self._lock:
            self._grants[code] = _Grant(asked["client_id"], asked["redirect_uri"], asked["code_challenge"],
                                        asked.get("nonce", ""), person, granted)
        return self._back(asked, code=code)

    @staticmethod
    def _back(asked: dict[str, str], **answer: str) -> AnyResponse:
        query = urlencode({**answer, "state": asked.get("state", "")})
        return redirect(f"{asked['redirect_uri']}?{query}")

    def token(self) -> Response | tuple[Response, int]:
        form = request.form.to_dict()
        self.token_requests.append(form)
        client_id, problem = self._client(form)
        if problem:
            return self._refuse("invalid_client", problem, 401)
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # a code is used once
        if form.get("grant_type") != "authorization_code" or grant is None or grant.client_id != client_id:
            return self._refuse("invalid_grant", "unknown or used code", 400)
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._refuse("invalid_grant", "redirect_uri differs from the authorize request's", 400)
        verifier = form.get("code_verifier", "")
        if not verifier or s256(verifier) != grant.code_challenge:
            return self._refuse("invalid_grant", "code_verifier does not match the code_challenge", 400)
        tokens = self._tokens(grant)
        self.issued.append(tokens)
        return jsonify(tokens)

    def _client(self, form: dict[str, str]) -> tuple[str, str]:
        """The client's id, and what is wrong with its authentication ('' when nothing)."""
        basic = request.authorization
        if "client_assertion" in form or "client_assertion_type" in form:
            if basic is not None:
                return "", "more than one way of client authentication"  # RFC 6749 2.3
            return self._asserted_client(form)
        client_id = basic.username if basic and basic.username else form.get("client_id", "")
        if client_id not in self.clients:
            return client_id, "unknown client"  # a client registered with a key is refused without its assertion
        secret = self.clients[client_id]
        if secret is not None and (basic is None or basic.password != secret):
            return client_id, "client secret missing or wrong"
        return client_id, ""

    def _asserted_client(self, form: dict[str, str]) -> tuple[str, str]:
        """The client named by a client assertion, and what is wrong with the assertion ('' when nothing)."""
        assertion = form.get("client_assertion", "")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return "", "client_assertion_type is not jwt-bearer"
        try:  # which client and key to check it with; then nothing unchecked is believed
            kid = jwt.get_unverified_header(assertion).get("kid")
            client_id = str(jwt.decode(assertion, options={"verify_signature": False}).get("sub", ""))
        except jwt.PyJWTError:
            return "", "client_assertion is not a JWT"
        key = self.client_keys.get(client_id, {}).get(kid) if isinstance(kid, str) else None
        if key is None:
            return client_id, "no key registered for that client and kid"
        try:
            claims = jwt.decode(assertion, key, algorithms=ASSERTION_ALGORITHMS, audience=self.url + "/token",
                                issuer=client_id, options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
        except jwt.PyJWTError as error:
            return client_id, f"client_assertion refused ({type(error).__name__})"
        if form.get("client_id", client_id) != client_id:
            return client_id, "client_id differs from the assertion's"
        if claims["exp"] - claims["iat"] > ASSERTION_MAX_SECONDS:
            return client_id, f"client_assertion lives longer than {ASSERTION_MAX_SECONDS} seconds"
        with self._lock:
            if claims["jti"] in self._seen_jtis:
                return client_id, "client_assertion's jti was used before"
            self._seen_jtis.add(claims["jti"])
        return client_id, ""

    def _refuse(self, error: str, description: str, status: int) -> tuple[Response, int]:
        self.token_refusals.append(f"{error}: {description}")
        return jsonify({"error": error, "error_description": description}), status

    def _tokens(self, grant: _Grant) -> dict[str, Any]:
        now = int(time.time())
        lifetime = self.access_token_seconds
        if self.expired_tokens_to_issue > 0:
            self.expired_tokens_to_issue -= 1
            lifetime = -120  # past the API's clock skew
        person = grant.person
        api_scopes = [s for s in grant.scope if s not in ("openid", "profile")]
        access = self.keys.token(iss=self.url, aud=AUDIENCE, sub=person.sub, client_id=grant.client_id,
                                 scope=api_scopes, iat=now, nbf=now, exp=now + lifetime)
        identity = jwt.encode({"iss": self.url, "aud": grant.client_id, "sub": person.sub, "nonce": grant.nonce,
                               "iat": now, "exp": now + 300, "auth_time": now, **person.claims,
                               **self.id_token_changes},
                              self.id_token_key or self.keys.keys["k1"], algorithm="RS256", headers={"kid": "k1"})
        return {"access_token": access, "id_token": identity, "token_type": "Bearer", "expires_in": 300,
                "scope": " ".join(grant.scope)}

    def end_session_endpoint(self) -> AnyResponse:
        asked = request.args.to_dict()
        self.end_session_requests.append(asked)
        self.signed_in = None
        target = asked.get("post_logout_redirect_uri")
        if target in self.post_logout_uris:
            return redirect(target)
        return Response("logget ut", mimetype="text/plain")

    def app(self) -> Flask:
        served = Flask("oidc_issuer")
        served.add_url_rule("/.well-known/openid-configuration", "discovery", lambda: jsonify(self.discovery()))
        served.add_url_rule("/jwks", "jwks", lambda: jsonify(self.keys.jwks()))
        served.add_url_rule("/authorize", "authorize", self.authorize)
        served.add_url_rule("/token", "token", self.token, methods=["POST"])
        served.add_url_rule("/endsession", "endsession", self.end_session_endpoint)
        return served


def s256(verifier: str) -> str:
    """The S256 code_challenge of a verifier (RFC 7636)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


@contextmanager
def running_issuer(keys: Issuer) -> Iterator[OidcIssuer]:
    """The issuer on http://127.0.0.1:<free port> until the block ends."""
    issuer = OidcIssuer(keys)
    server = make_server("127.0.0.1", 0, issuer.app(), threaded=True)
    issuer.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="oidc-issuer", daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        thread.join(10)
