"""The console's OpenID Connect login against the tests' own issuer (tests/oidc_issuer.py) and the real service
verifying the person's access token: the way to the issuer and back, PKCE, the person the API hears, logout,
the session's cookie, timeout and CSRF, and no open redirect."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from secrets import token_urlsafe
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from regelmotor.console.app import create_app
from regelmotor.console.login import display_name, local_path
from regelmotor.console.serve import ConsoleServer
from regelmotor.console.serve import main as serve_main
from regelmotor.console.settings import ConsoleSettings
from tests.auth_support import AUDIENCE, Issuer
from tests.console_support import assert_accessible, running_console, tab_to
from tests.oidc_issuer import IssuerPerson, OidcIssuer, running_issuer, s256
from tests.server_process import ServerProcess, running_server

CLIENT_ID = "regelmotor-konsoll"
CLIENT_SECRET = "konsollets-hemmelighet-fra-fil"
# HelseID-style scope names, mapped to the API's roles by the service's auth_scope_roles.
SCOPE_ROLES = {"nhn:regelmotor/ruleset.read": "ruleset:read", "nhn:regelmotor/audit": "audit"}
SCOPES = "openid profile nhn:regelmotor/ruleset.read nhn:regelmotor/audit"

KARI = IssuerPerson("kari-1", {"name": "Kari Nordmann"}, frozenset(SCOPE_ROLES))
OLA = IssuerPerson("ola-2", {"given_name": "Ola", "family_name": "Revisor"}, frozenset({"nhn:regelmotor/audit"}))
RULESET = "rett-til-helsehjelp"


@pytest.fixture(scope="module")
def issuer() -> Iterator[OidcIssuer]:
    keys = Issuer()
    keys.add_rsa("k1")
    with running_issuer(keys) as running:
        running.clients[CLIENT_ID] = CLIENT_SECRET
        yield running


@pytest.fixture(scope="module")
def service(issuer: OidcIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    jwks = issuer.keys.write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json")
    env = {"REGELMOTOR_AUTH_JWKS_FILE": str(jwks), "REGELMOTOR_AUTH_ISSUER": issuer.url,
           "REGELMOTOR_AUTH_AUDIENCE": AUDIENCE, "REGELMOTOR_AUTH_SCOPE_ROLES": json.dumps(SCOPE_ROLES)}
    with running_server(workers=1, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("konsoll") / "client-secret"
    path.write_text(CLIENT_SECRET + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def _login_console(issuer: OidcIssuer, service: ServerProcess, secret_file: Path,
                   **settings: Any) -> Any:
    return running_console(service.address, oidc_issuer=issuer.url, oidc_client_id=CLIENT_ID,
                           oidc_client_secret_file=secret_file, oidc_scopes=SCOPES, **settings)


def _register(issuer: OidcIssuer, console: ConsoleServer) -> None:
    issuer.redirect_uris.add(console.url + "/innlogging/tilbake")
    issuer.post_logout_uris.add(console.url + "/utlogget")


@pytest.fixture(scope="module")
def console_url(issuer: OidcIssuer, service: ServerProcess, secret_file: Path) -> Iterator[str]:
    with _login_console(issuer, service, secret_file) as console:
        _register(issuer, console)
        yield console.url


def _signed_in_as(issuer: OidcIssuer, person: IssuerPerson | None) -> None:
    issuer.signed_in = person
    issuer.expired_tokens_to_issue = 0
    issuer.id_token_changes, issuer.id_token_key = {}, None


def test_a_page_sends_to_the_issuer_and_comes_back_with_the_person(page: Any, console_url: str,
                                                                    issuer: OidcIssuer) -> None:
    _signed_in_as(issuer, KARI)
    asked_before, tokens_before = len(issuer.authorize_requests), len(issuer.token_requests)
    page.goto(console_url + "/formaal?neste=/")
    assert page.url == console_url + "/formaal?neste=/"  # back at the page asked for
    assert "Innlogget som Kari Nordmann" in page.locator("header").inner_text()
    assert page.get_by_role("note").count() == 0  # no "Uten innlogging" banner
    # The console's authorize request: code flow with PKCE S256, state and nonce.
    asked = issuer.authorize_requests[asked_before:]
    assert len(asked) == 1
    assert asked[0]["code_challenge_method"] == "S256" and asked[0]["response_type"] == "code"
    assert asked[0]["state"] and asked[0]["nonce"] and asked[0]["scope"] == SCOPES
    # Its token request proved the verifier of that challenge, with the client's secret (basic auth).
    exchanged = issuer.token_requests[tokens_before:]
    assert len(exchanged) == 1 and s256(exchanged[0]["code_verifier"]) == asked[0]["code_challenge"]
    page.goto(console_url + "/")
    names = page.locator("main table tbody th[scope=row]").all_inner_texts()
    assert RULESET in names  # the API heard Kari, whose token has ruleset:read
    assert_accessible(page)


def test_a_person_without_ruleset_read_gets_the_start_page_without_the_rulesets(page: Any, console_url: str,
                                                                                issuer: OidcIssuer) -> None:
    _signed_in_as(issuer, OLA)
    answer = page.goto(console_url + "/")
    assert answer is not None and answer.status == 200
    assert "Innlogget som Ola Revisor" in page.locator("header").inner_text()
    assert page.locator("main table").count() == 0
    assert RULESET not in page.content()


def test_the_issuer_refuses_a_wrong_or_missing_verifier_and_plain(issuer: OidcIssuer, console_url: str) -> None:
    _signed_in_as(issuer, KARI)
    redirect_uri = console_url + "/innlogging/tilbake"

    def code(challenge: str, method: str = "S256") -> dict[str, list[str]]:
        answer = requests.get(issuer.url + "/authorize", allow_redirects=False, timeout=10, params={
            "client_id": CLIENT_ID, "redirect_uri": redirect_uri, "response_type": "code", "scope": "openid",
            "state": "s", "nonce": "n", "code_challenge": challenge, "code_challenge_method": method})
        return parse_qs(urlsplit(answer.headers["Location"]).query)

    def exchange(given_code: str, verifier: str | None) -> requests.Response:
        form = {"grant_type": "authorization_code", "code": given_code, "redirect_uri": redirect_uri}
        if verifier is not None:
            form["code_verifier"] = verifier
        return requests.post(issuer.url + "/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10)

    verifier = "v" * 50
    for wrong in ("w" * 50, None):
        refused = exchange(code(s256(verifier))["code"][0], wrong)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert exchange(code(s256(verifier))["code"][0], verifier).status_code == 200  # the right one is taken
    assert code(verifier, method="plain")["error"] == ["invalid_request"]


def test_logout_ends_the_session_here_and_at_the_issuer(page: Any, console_url: str, issuer: OidcIssuer) -> None:
    _signed_in_as(issuer, KARI)
    page.goto(console_url + "/")
    assert "Innlogget som Kari Nordmann" in page.locator("header").inner_text()
    tab_to(page, "header button")
    page.keyboard.press("Enter")
    page.wait_for_url(console_url + "/utlogget")
    assert page.get_by_role("heading", level=1).inner_text() == "Du er logget ut"
    assert_accessible(page)
    ended = issuer.end_session_requests[-1]
    assert ended["post_logout_redirect_uri"] == console_url + "/utlogget" and ended["client_id"] == CLIENT_ID
    assert ended["id_token_hint"].count(".") == 2
    # The next page needs a login again: the issuer asks for one (its own session ended too).
    page.goto(console_url + "/")
    assert page.url.startswith(issuer.url + "/authorize")
    assert page.get_by_role("heading", level=1).inner_text() == "Logg inn hos testutstederen"


def _logged_in(console_url: str, path: str = "/") -> tuple[requests.Session, requests.Response]:
    """A person's browser without the rendering: follows the redirects to the issuer and back."""
    browser = requests.Session()
    # No keep-alive: a connection left open would hold the console's shutdown at the end of a test.
    browser.headers["Connection"] = "close"
    return browser, browser.get(console_url + path, timeout=30)


def test_logout_without_its_csrf_token_is_refused(console_url: str, issuer: OidcIssuer) -> None:
    _signed_in_as(issuer, KARI)
    browser, answer = _logged_in(console_url)
    assert "Innlogget som Kari Nordmann" in answer.text
    refused = browser.post(console_url + "/logg-ut", timeout=10, allow_redirects=False)
    assert refused.status_code == 400 and "kom ikke fra konsollet" in refused.text
    still = browser.get(console_url + "/", timeout=10, allow_redirects=False)
    assert still.status_code == 200 and "Innlogget som Kari Nordmann" in still.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', still.text)
    assert token is not None
    out = browser.post(console_url + "/logg-ut", data={"csrf_token": token.group(1)}, timeout=10,
                       allow_redirects=False)
    assert out.status_code == 303 and out.headers["Location"].startswith(issuer.url + "/endsession?")
    after = browser.get(console_url + "/", timeout=10, allow_redirects=False)
    assert after.status_code == 302 and after.headers["Location"].startswith(issuer.url + "/authorize?")


def test_the_session_cookie_is_httponly_and_lax(page: Any, console_url: str, issuer: OidcIssuer) -> None:
    _signed_in_as(issuer, KARI)
    page.goto(console_url + "/")
    cookie = next(c for c in page.context.cookies() if c["name"] == "regelmotor_konsoll")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # http on loopback; https below


def test_the_session_cookie_is_secure_behind_https(issuer: OidcIssuer, secret_file: Path) -> None:
    public = "https://konsoll.sykehus.example"
    settings = ConsoleSettings(oidc_issuer=issuer.url, oidc_client_id=CLIENT_ID, public_url=public,
                               oidc_client_secret_file=secret_file, api_address="127.0.0.1:9")
    client = create_app(settings, base_url=public).test_client()
    answer = client.get("/", base_url=public)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(issuer.url + "/authorize?")
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["redirect_uri"] == [
        public + "/innlogging/tilbake"]
    cookie = answer.headers["Set-Cookie"]
    assert "regelmotor_konsoll=" in cookie and "; Secure" in cookie and "; HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_a_session_unused_for_longer_than_its_time_needs_a_login_again(issuer: OidcIssuer, service: ServerProcess,
                                                                      secret_file: Path) -> None:
    _signed_in_as(issuer, KARI)
    lifetime = 4.0
    with _login_console(issuer, service, secret_file, session_minutes=lifetime / 60) as console:
        _register(issuer, console)
        browser, answer = _logged_in(console.url)
        assert "Innlogget som Kari Nordmann" in answer.text
        for _ in range(2):  # sliding: each request keeps it alive past its first lifetime
            time.sleep(lifetime * 0.5)
            kept = browser.get(console.url + "/", timeout=10, allow_redirects=False)
            assert kept.status_code == 200, "the session ended while in use"
        time.sleep(lifetime + 0.5)
        ended = browser.get(console.url + "/", timeout=10, allow_redirects=False)
        assert ended.status_code == 302 and ended.headers["Location"].startswith(issuer.url + "/authorize?")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/",
                                    "/\t/evil.example/", "javascript:alert(1)", "", "relativ/sti"])
def test_the_return_path_is_local_only(target: str) -> None:
    assert local_path(target) == "/"


def test_a_local_return_path_is_kept_and_a_foreign_one_leads_home(console_url: str, issuer: OidcIssuer) -> None:
    _signed_in_as(issuer, KARI)
    assert local_path("/formaal?neste=/") == "/formaal?neste=/"
    # "//evil.example/sti" as a redirect's Location would be another site; the login stays on the console.
    _, answer = _logged_in(console_url, "//evil.example/sti")
    visited = [urlsplit(step.url).netloc for step in [*answer.history, answer]]
    assert "evil.example" not in visited and visited[-1] == urlsplit(console_url).netloc


def test_a_token_the_api_refuses_leads_to_a_fresh_login_not_an_error(console_url: str, issuer: OidcIssuer) -> None:
    _signed_in_as(issuer, KARI)
    issuer.expired_tokens_to_issue = 1
    before = len(issuer.token_requests)
    _, answer = _logged_in(console_url)
    assert answer.status_code == 200 and answer.url == console_url + "/"
    assert RULESET in answer.text
    assert len(issuer.token_requests) - before == 2  # the refused token, then a fresh login's


def test_a_fresh_token_refused_again_is_shown_not_looped(console_url: str, issuer: OidcIssuer) -> None:
    _signed_in_as(issuer, KARI)
    issuer.expired_tokens_to_issue = 5
    before = len(issuer.token_requests)
    _, answer = _logged_in(console_url)
    assert answer.status_code == 401 and "Du må logge inn på nytt" in answer.text
    assert len(issuer.token_requests) - before == 2


def test_a_public_url_without_https_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="public_url must be an https:// address"):
        ConsoleSettings(oidc_issuer="https://helseid-sts.nhn.no", oidc_client_id=CLIENT_ID,
                        public_url="http://konsoll.sykehus.example")
    with pytest.raises(ValueError, match="oidc_issuer must be an https:// address"):
        ConsoleSettings(oidc_issuer="http://helseid-sts.nhn.no", oidc_client_id=CLIENT_ID)


def test_a_public_client_logs_in_with_pkce_alone(issuer: OidcIssuer, service: ServerProcess) -> None:
    _signed_in_as(issuer, KARI)
    issuer.clients["regelmotor-offentlig"] = None
    with running_console(service.address, oidc_issuer=issuer.url, oidc_client_id="regelmotor-offentlig",
                         oidc_scopes=SCOPES) as console:
        _register(issuer, console)
        _, answer = _logged_in(console.url)
        assert answer.status_code == 200 and "Innlogget som Kari Nordmann" in answer.text
        assert issuer.token_requests[-1]["client_id"] == "regelmotor-offentlig"
        assert issuer.token_requests[-1]["code_verifier"]


def test_a_wrong_client_secret_is_a_failed_login_in_plain_words(issuer: OidcIssuer, service: ServerProcess,
                                                                 tmp_path: Path) -> None:
    _signed_in_as(issuer, KARI)
    wrong = tmp_path / "secret"
    wrong.write_text("ikke-hemmeligheten", encoding="utf-8")
    wrong.chmod(0o600)
    with _login_console(issuer, service, wrong) as console:
        _register(issuer, console)
        _, answer = _logged_in(console.url)
        assert answer.status_code == 401 and "Innloggingen lyktes ikke" in answer.text
        assert issuer.token_refusals[-1].startswith("invalid_client")


@pytest.mark.parametrize("forged", [{"nonce": "en-annen"}, {"aud": "en-annen-klient"}, {"iss": "https://falsk.example"},
                                    {"exp": 1_000_000_000}, "another key"])
def test_an_id_token_not_made_for_this_login_is_refused(forged: dict[str, Any] | str, console_url: str,
                                                        issuer: OidcIssuer) -> None:
    _signed_in_as(issuer, KARI)
    if isinstance(forged, dict):
        issuer.id_token_changes = forged
    else:
        issuer.id_token_key = Issuer().add_rsa("k1")  # same kid, a key the issuer never published
    browser, answer = _logged_in(console_url)
    assert answer.status_code == 401 and "Innloggingen lyktes ikke" in answer.text
    assert "Innlogget som" not in answer.text
    assert browser.get(console_url + "/", timeout=10, allow_redirects=False).status_code == 302  # no session


def test_the_session_id_changes_at_login(console_url: str, issuer: OidcIssuer) -> None:
    _signed_in_as(issuer, KARI)
    browser, answer = _logged_in(console_url)
    before = answer.history[0].cookies.get("regelmotor_konsoll")  # set when the login began
    assert before and browser.cookies.get("regelmotor_konsoll") not in (None, before)
    assert "Innlogget som Kari Nordmann" in answer.text


def test_a_secret_file_others_can_read_refuses_the_start(tmp_path: Path) -> None:
    shared = tmp_path / "secret"
    shared.write_text(CLIENT_SECRET, encoding="utf-8")
    shared.chmod(0o644)
    settings = ConsoleSettings(oidc_issuer="https://helseid-sts.nhn.no", oidc_client_id=CLIENT_ID,
                               oidc_client_secret_file=shared, port=0)
    with pytest.raises(ValueError, match=r"^oidc_client_secret_file .*: others can read it \(mode 644\)"):
        ConsoleServer(settings)


def test_an_issuer_whose_discovery_names_another_is_not_used(issuer: OidcIssuer, service: ServerProcess,
                                                              secret_file: Path) -> None:
    _signed_in_as(issuer, KARI)
    issuer.named_issuer = "https://falsk.example"
    asked_before = len(issuer.authorize_requests)
    try:
        with _login_console(issuer, service, secret_file) as console:
            _, answer = _logged_in(console.url)
    finally:
        issuer.named_issuer = None
    assert answer.status_code == 503 and "Innloggingen er feil satt opp" in answer.text
    assert len(issuer.authorize_requests) == asked_before


def test_an_issuer_that_does_not_answer_is_said_in_plain_words(page: Any, service: ServerProcess) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed again: nothing listens there
    with running_console(service.address, oidc_issuer=nobody, oidc_client_id=CLIENT_ID) as console:
        answer = page.goto(console.url + "/")
        assert answer is not None and answer.status == 503
        assert "Innloggingstjenesten svarer ikke" in page.locator("main").inner_text()
        assert "Innlogget som" not in page.locator("header").inner_text()
        assert_accessible(page)


def test_an_unreadable_secret_file_refuses_the_start_naming_the_setting(tmp_path: Path) -> None:
    settings = ConsoleSettings(oidc_issuer="https://helseid-sts.nhn.no", oidc_client_id=CLIENT_ID,
                               oidc_client_secret_file=tmp_path / "mangler", port=0)
    with pytest.raises(ValueError, match=r"^oidc_client_secret_file .*mangler: cannot read it"):
        ConsoleServer(settings)


@pytest.mark.parametrize(("claims", "shown"), [
    ({"sub": "s1", "name": "Kari Nordmann", "given_name": "K"}, "Kari Nordmann"),
    ({"sub": "s1", "given_name": "Ola", "family_name": "Revisor"}, "Ola Revisor"),
    ({"sub": "s1", "family_name": "Revisor"}, "Revisor"),
    ({"sub": "s1", "name": " "}, "s1"),
])
def test_the_name_shown_comes_from_the_id_token(claims: dict[str, str], shown: str) -> None:
    assert display_name(claims) == shown


def test_no_token_or_verifier_reaches_the_log(console_url: str, issuer: OidcIssuer,
                                              caplog: pytest.LogCaptureFixture) -> None:
    _signed_in_as(issuer, KARI)
    issuer.expired_tokens_to_issue = 1  # a refused token and a fresh login: the paths that log
    caplog.set_level(logging.DEBUG)
    tokens_before = len(issuer.token_requests)
    _, answer = _logged_in(console_url)
    assert answer.status_code == 200
    secrets = [t[key] for t in issuer.issued[-2:] for key in ("access_token", "id_token")]
    secrets += [request["code_verifier"] for request in issuer.token_requests[tokens_before:]]
    assert len(secrets) == 6 and caplog.records
    assert not [secret for secret in secrets if secret in caplog.text]


# -- private_key_jwt: the console proves itself with a private key, as HelseID requires ---------------------------

KEY_CLIENT_ID = "regelmotor-konsoll-nokkel"
KEY_ID = "konsoll-nokkel-2026"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, path: Path,
         encryption: serialization.KeySerializationEncryption | None = None) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       encryption or serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def _jwk_file(jwk: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(jwk), encoding="utf-8")
    path.chmod(0o600)
    return path


def _ec_jwk(key: ec.EllipticCurvePrivateKey, **extra: str) -> dict[str, Any]:
    return {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key)), **extra}


@pytest.fixture(scope="module")
def client_key(issuer: OidcIssuer) -> rsa.RSAPrivateKey:
    """The console's key; the issuer knows its public half under KEY_ID."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.client_keys[KEY_CLIENT_ID] = {KEY_ID: key.public_key()}
    return key


@pytest.fixture(scope="module")
def key_console_url(issuer: OidcIssuer, service: ServerProcess, client_key: rsa.RSAPrivateKey,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    key_file = _pem(client_key, tmp_path_factory.mktemp("nokkel") / "client-key.pem")
    with running_console(service.address, oidc_issuer=issuer.url, oidc_client_id=KEY_CLIENT_ID,
                         oidc_client_key_file=key_file, oidc_client_key_id=KEY_ID, oidc_scopes=SCOPES) as console:
        _register(issuer, console)
        yield console.url


def _assertion_of(token_request: dict[str, str], key: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and the claims of a token request's client assertion, its signature checked with `key`."""
    assertion = token_request["client_assertion"]
    claims = jwt.decode(assertion, key, algorithms=["RS256", "ES256"], options={"verify_aud": False})
    return jwt.get_unverified_header(assertion), claims


def test_a_person_logs_in_through_a_console_proving_itself_with_its_private_key(
        page: Any, key_console_url: str, issuer: OidcIssuer, client_key: rsa.RSAPrivateKey) -> None:
    _signed_in_as(issuer, KARI)
    before = len(issuer.token_requests)
    page.goto(key_console_url + "/")
    assert "Innlogget som Kari Nordmann" in page.locator("header").inner_text()
    assert RULESET in page.locator("main table tbody th[scope=row]").all_inner_texts()  # the API heard Kari
    assert_accessible(page)
    exchanged = issuer.token_requests[before:]
    assert len(exchanged) == 1 and exchanged[0]["code_verifier"]
    assert exchanged[0]["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert "client_secret" not in exchanged[0]
    header, claims = _assertion_of(exchanged[0], client_key.public_key())
    assert header["kid"] == KEY_ID and header["alg"] == "RS256"
    assert claims["iss"] == claims["sub"] == KEY_CLIENT_ID
    assert claims["aud"] == issuer.discovery()["token_endpoint"]  # authlib's choice, and HelseID accepts it
    assert 0 < claims["exp"] - claims["iat"] <= 60 and claims["nbf"] == claims["iat"]
    assert len(claims["jti"]) >= 20


def test_each_login_makes_a_fresh_assertion_and_none_reaches_the_log(
        key_console_url: str, issuer: OidcIssuer, client_key: rsa.RSAPrivateKey,
        caplog: pytest.LogCaptureFixture) -> None:
    _signed_in_as(issuer, KARI)
    caplog.set_level(logging.DEBUG)
    before = len(issuer.token_requests)
    for _ in range(2):
        _, answer = _logged_in(key_console_url)
        assert answer.status_code == 200 and "Innlogget som Kari Nordmann" in answer.text
    assertions = [request["client_assertion"] for request in issuer.token_requests[before:]]
    jtis = {_assertion_of(request, client_key.public_key())[1]["jti"] for request in issuer.token_requests[before:]}
    assert len(assertions) == 2 and len(jtis) == 2  # the issuer refuses a jti seen before
    assert caplog.records and not [assertion for assertion in assertions if assertion in caplog.text]


def test_an_ec_key_in_a_jwk_file_signs_with_es256_and_the_jwks_own_kid(
        issuer: OidcIssuer, service: ServerProcess, tmp_path: Path) -> None:
    _signed_in_as(issuer, KARI)
    key = ec.generate_private_key(ec.SECP256R1())
    issuer.client_keys["regelmotor-konsoll-ec"] = {"ec-1": key.public_key()}
    key_file = _jwk_file(_ec_jwk(key, kid="ec-1"), tmp_path / "client-key.jwk")
    with running_console(service.address, oidc_issuer=issuer.url, oidc_client_id="regelmotor-konsoll-ec",
                         oidc_client_key_file=key_file, oidc_scopes=SCOPES) as console:
        _register(issuer, console)
        _, answer = _logged_in(console.url)
        assert answer.status_code == 200 and "Innlogget som Kari Nordmann" in answer.text
    header, claims = _assertion_of(issuer.token_requests[-1], key.public_key())
    assert header == {"alg": "ES256", "kid": "ec-1", "typ": "JWT"} and claims["sub"] == "regelmotor-konsoll-ec"


def test_an_assertion_signed_with_another_key_is_a_failed_login_in_plain_words(
        page: Any, issuer: OidcIssuer, service: ServerProcess, client_key: rsa.RSAPrivateKey,
        tmp_path: Path) -> None:
    _signed_in_as(issuer, KARI)
    other = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048), tmp_path / "other-key.pem")
    with running_console(service.address, oidc_issuer=issuer.url, oidc_client_id=KEY_CLIENT_ID,
                         oidc_client_key_file=other, oidc_client_key_id=KEY_ID, oidc_scopes=SCOPES) as console:
        _register(issuer, console)
        answer = page.goto(console.url + "/")
        assert answer is not None and answer.status == 401
        assert page.get_by_role("heading", level=1).inner_text() == "Innloggingen lyktes ikke"
        assert "Innlogget som" not in page.locator("header").inner_text()
        assert "Traceback" not in page.content()
        assert_accessible(page)
    assert issuer.token_refusals[-1] == "invalid_client: client_assertion refused (InvalidSignatureError)"


def test_the_issuer_refuses_a_bad_client_assertion(issuer: OidcIssuer, key_console_url: str,
                                                   client_key: rsa.RSAPrivateKey) -> None:
    """The tests' issuer checks what HelseID checks: each flaw alone is refused, the sound assertion taken."""
    _signed_in_as(issuer, KARI)
    redirect_uri = key_console_url + "/innlogging/tilbake"
    token_endpoint = issuer.url + "/token"
    verifier = "v" * 50

    def assertion(key: Any = client_key, kid: str = KEY_ID, **changes: Any) -> str:
        now = int(time.time())
        claims = {"iss": KEY_CLIENT_ID, "sub": KEY_CLIENT_ID, "aud": token_endpoint, "iat": now, "nbf": now,
                  "exp": now + 30, "jti": token_urlsafe(24), **changes}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    def exchange(client_assertion: str, basic: tuple[str, str] | None = None) -> requests.Response:
        code = parse_qs(urlsplit(requests.get(issuer.url + "/authorize", allow_redirects=False, timeout=10, params={
            "client_id": KEY_CLIENT_ID, "redirect_uri": redirect_uri, "response_type": "code", "scope": "openid",
            "state": "s", "nonce": "n", "code_challenge": s256(verifier), "code_challenge_method": "S256",
        }).headers["Location"]).query)["code"][0]
        return requests.post(token_endpoint, auth=basic, timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion})

    now = int(time.time())
    used = assertion()
    flawed = {
        "another key": assertion(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "an unknown kid": assertion(kid="ukjent"),
        "another audience": assertion(aud=issuer.url),
        "iss not the client": assertion(iss="en-annen-klient"),
        "expired": assertion(iat=now - 120, nbf=now - 120, exp=now - 90),
        "living too long": assertion(exp=now + 3600),
        "no jti": assertion(jti=None),
        "not a JWT": "ikke.en.jwt",
    }
    for flaw, bad in flawed.items():
        refused = exchange(bad)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client", flaw
    assert exchange(assertion(), basic=(KEY_CLIENT_ID, "x")).status_code == 401  # two ways at once
    assert exchange(used).status_code == 200  # the sound one is taken...
    assert exchange(used).json()["error"] == "invalid_client"  # ...once
    assert issuer.token_refusals[-1] == "invalid_client: client_assertion's jti was used before"


def test_a_key_file_others_can_read_refuses_the_start(tmp_path: Path, client_key: rsa.RSAPrivateKey) -> None:
    shared = _pem(client_key, tmp_path / "client-key.pem")
    shared.chmod(0o640)
    settings = ConsoleSettings(oidc_issuer="https://helseid-sts.nhn.no", oidc_client_id=KEY_CLIENT_ID,
                               oidc_client_key_file=shared, oidc_client_key_id=KEY_ID, port=0)
    with pytest.raises(ValueError, match=r"^oidc_client_key_file .*: others can read it \(mode 640\)"):
        ConsoleServer(settings)


def test_a_secret_and_a_key_together_refuse_the_start_naming_both(
        tmp_path: Path, secret_file: Path, client_key: rsa.RSAPrivateKey, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = _pem(client_key, tmp_path / "client-key.pem")
    both: dict[str, Any] = {"oidc_issuer": "https://helseid-sts.nhn.no", "oidc_client_id": KEY_CLIENT_ID,
            "oidc_client_secret_file": secret_file, "oidc_client_key_file": key_file, "oidc_client_key_id": KEY_ID,
            "port": 0}
    with pytest.raises(ValueError, match="oidc_client_secret_file and oidc_client_key_file: set one of them"):
        ConsoleSettings(**both)
    assert serve_main(both) == 2  # `regelmotor console`: one line, no traceback
    said = capsys.readouterr().err
    assert said.startswith("regelmotor console: cannot start: ") and said.count("\n") == 1
    assert "oidc_client_secret_file and oidc_client_key_file" in said


@pytest.fixture(scope="module")
def unusable_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any], str]]:
    """Key files the console must refuse at start: (file, further settings, what the refusal says)."""
    path = tmp_path_factory.mktemp("unusable")
    garbage = path / "garbage.pem"
    garbage.write_text("ikke en nøkkel", encoding="utf-8")
    garbage.chmod(0o600)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    public_jwk = {k: v for k, v in _ec_jwk(ec_key, kid="a").items() if k != "d"}
    encrypted = serialization.BestAvailableEncryption(b"passord")
    return {
        "no kid": (_pem(rsa_key, path / "no-kid.pem"), {}, r"^oidc_client_key_id: the key in .* names no kid"),
        "kid differs": (_jwk_file(_ec_jwk(ec_key, kid="a"), path / "kid.jwk"), {"oidc_client_key_id": "b"},
                        r"^oidc_client_key_id 'b' differs from the kid in .*kid.jwk \('a'\)"),
        "public only": (_jwk_file(public_jwk, path / "public.jwk"), {}, r"is a public key; the console needs"),
        "passphrase": (_pem(rsa_key, path / "secret.pem", encrypted), {"oidc_client_key_id": "a"},
                       r"protected by a passphrase"),
        "short rsa": (_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024), path / "short.pem"),
                      {"oidc_client_key_id": "a"}, r"an RSA key of 1024 bits is too short"),
        "secp256k1": (_pem(ec.generate_private_key(ec.SECP256K1()), path / "k1.pem"), {"oidc_client_key_id": "a"},
                      r"the curve secp256k1 is not one the issuer accepts"),
        "ed25519": (_pem(ed25519.Ed25519PrivateKey.generate(), path / "ed.pem"), {"oidc_client_key_id": "a"},
                    r"must be RSA or EC"),
        "a key set": (_jwk_file({"keys": [_ec_jwk(ec_key)]}, path / "set.jwk"), {}, r"give one JWK"),
        "oct": (_jwk_file({"kty": "oct", "k": "c2VjcmV0", "kid": "a"}, path / "oct.jwk"), {},
                r"kty\) must be RSA or EC, not 'oct'"),
        "rsa alg on ec": (_jwk_file(_ec_jwk(ec_key, kid="a", alg="RS256"), path / "alg.jwk"), {},
                          r"alg 'RS256' does not fit the curve P-256 \(ES256\)"),
        "not a key": (_jwk_file({"kty": "RSA"}, path / "broken.jwk"), {}, r"not a usable RSA JWK"),
        "garbage": (garbage, {"oidc_client_key_id": "a"},
                    r"^oidc_client_key_file .*garbage.pem: not a PEM private key"),
    }


@pytest.mark.parametrize("flaw", ["no kid", "kid differs", "public only", "passphrase", "short rsa", "secp256k1",
                                  "ed25519", "a key set", "oct", "rsa alg on ec", "not a key", "garbage"])
def test_an_unusable_key_file_refuses_the_start_naming_the_setting(
        flaw: str, unusable_keys: dict[str, tuple[Path, dict[str, Any], str]]) -> None:
    key_file, further, refusal = unusable_keys[flaw]
    settings = ConsoleSettings(oidc_issuer="https://helseid-sts.nhn.no", oidc_client_id=KEY_CLIENT_ID,
                               oidc_client_key_file=key_file, port=0, **further)
    with pytest.raises(ValueError, match=refusal):
        ConsoleServer(settings)
def test_an_error_sent_back_by_whoever_calls_the_callback_cannot_write_lines_into_the_log(
        console_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="regelmotor.console")
    answer = requests.get(console_url + "/innlogging/tilbake", timeout=10,
                          params={"error": "access_denied\n2026-12-07 INFO login ok: admin", "state": "x"})
    assert answer.status_code == 401
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("login refused")]
    assert refused and all("\n" not in line and len(line) < 200 for line in refused)
