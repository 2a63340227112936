"""Who is asking: on the local default (no issuer configured) the user the console runs as, without login;
otherwise a person logged in with OpenID Connect (authorisation code with PKCE S256, state and nonce, by authlib's
Flask client) whose access token is what the console sends to the API.

The person and their tokens live in the server-side session only (security.py); the browser holds a session id.
Tokens are never logged."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, g, redirect, render_template, request, session, url_for
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

from .client_auth import client_proof
from .errors import ApiProblem
from .person import NOT_SIGNED_IN, Person, local_person
from .settings import ConsoleSettings

log = logging.getLogger("regelmotor.console")
# authlib logs the PKCE code_verifier at debug level: never, whatever the root logger's level.
logging.getLogger("authlib").setLevel(logging.INFO)

blueprint = Blueprint("login", __name__)

# The session's keys.
_PERSON = "innlogget"
_ID_TOKEN = "id_token"  # the hint for the issuer's logout
_SEEN = "sist_sett"  # time of the last request: the sliding timeout
_NEXT = "etter_innlogging"  # the local path the login returns to
_REFUSED = "avvist_av_tjenesten"  # the API refused the token once; a second refusal is shown, not looped

# Pages reached without a login: the issuer's way back, the logout and the page after it, the style sheet, and
# the icon browsers ask for on their own.
_OPEN = frozenset({"login.callback", "login.logout", "login.logged_out", "login.no_icon", "static"})

_MAX_PATH = 2000


@dataclass(frozen=True)
class _Login:
    client: Any  # authlib's FlaskOAuth2App (untyped)
    issuer: str
    base_url: str
    client_id: str
    session_seconds: float


def install(app: Flask, settings: ConsoleSettings, base_url: str) -> None:
    if settings.login_enabled:
        _install_oidc(app, settings, base_url)
    else:
        person = local_person()

        @app.before_request
        def _who() -> None:
            g.person = person

    app.register_blueprint(blueprint)


def _install_oidc(app: Flask, settings: ConsoleSettings, base_url: str) -> None:
    assert settings.oidc_issuer is not None and settings.oidc_client_id is not None  # login_enabled
    proof = client_proof(settings)
    oauth = OAuth(app)
    client = oauth.register(
        name="issuer", client_id=settings.oidc_client_id, client_secret=proof.credential,
        client_auth_methods=list(proof.signers),
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256", "timeout": 10,
                       "token_endpoint_auth_method": proof.method})
    app.extensions["regelmotor_login"] = _Login(client, settings.oidc_issuer, base_url, settings.oidc_client_id,
                                                settings.session_minutes * 60)

    @app.before_request
    def _who() -> Response | tuple[str, int] | None:
        g.person = NOT_SIGNED_IN  # until known: a page shown on the way (the issuer not answering) names no one
        if request.endpoint in _OPEN:
            return None
        person = _signed_in()
        if person is None:
            return _to_issuer(request.full_path if request.method == "GET" else request.path)
        g.person = person
        return None

    @app.after_request
    def _served(response: Response) -> Response:
        # A page shown (not the redirect to a fresh login): a later refusal of the token may start one again.
        if 200 <= response.status_code < 300 and request.endpoint not in _OPEN and _REFUSED in session:
            session.pop(_REFUSED)
        return response


def _login() -> _Login:
    login: _Login = current_app.extensions["regelmotor_login"]
    return login


def _signed_in() -> Person | None:
    """The person of this session, unless there is none or the session lay unused too long."""
    kept = session.get(_PERSON)
    if not isinstance(kept, dict):
        return None
    seen = session.get(_SEEN)
    now = time.time()
    if not isinstance(seen, float) or now - seen > _login().session_seconds:
        session.clear()
        return None
    session[_SEEN] = now
    return Person(name=kept["name"], subject=kept["subject"], access_token=kept["access_token"])


def local_path(target: str | None) -> str:
    """`target` if it is a path on this console, else the start page: the login never sends anyone elsewhere."""
    if not target or len(target) > _MAX_PATH or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(char) < 33 or ord(char) == 127 for char in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target.removesuffix("?") if parts.query == "" else target


def _to_issuer(following: str) -> Response | tuple[str, int]:
    """Off to the issuer's login; back at `following` afterwards."""
    login = _login()
    session[_NEXT] = local_path(following)
    try:
        named = str(login.client.load_server_metadata().get("issuer", ""))
        if named.rstrip("/") != login.issuer.rstrip("/"):
            # OpenID Connect Discovery 4.3: a document naming another issuer is not this issuer's.
            log.error("the discovery document of oidc_issuer %s names another issuer: %r", login.issuer,
                      str(named)[:200])  # remote text: quoted and cut, so it cannot forge log lines
            return _problem_page("Innloggingen er feil satt opp",
                                 "Innloggingstjenesten er ikke den konsollet er satt opp med. Meld fra til driften.",
                                 503)
        answer: Response = login.client.authorize_redirect(login.base_url + url_for("login.callback"))
    except (requests.RequestException, ValueError) as error:  # no answer, or no JSON
        log.warning("the OpenID Connect issuer did not answer: %s", type(error).__name__)
        return _problem_page("Innloggingstjenesten svarer ikke",
                             "Prøv igjen om litt. Kommer feilen tilbake, meld fra til driften.", 503)
    return answer


def _problem_page(headline: str, detail: str, status: int) -> tuple[str, int]:
    return render_template("feil.html", overskrift=headline, detalj=detail, felter={}), status


def display_name(claims: dict[str, Any]) -> str:
    """The name a page shows: `name`, else given and family name, else the subject."""
    name = str(claims.get("name") or "").strip()
    if name:
        return name
    parts = [str(claims.get(key) or "").strip() for key in ("given_name", "family_name")]
    return " ".join(part for part in parts if part) or str(claims["sub"])


@blueprint.get("/innlogging/tilbake")
def callback() -> Response | tuple[str, int]:
    """The issuer sends the browser back here with a code, which authlib exchanges (with the PKCE verifier) for
    the tokens, checking state, and the id_token's signature, issuer, audience and nonce."""
    if "regelmotor_login" not in current_app.extensions:
        abort(404)  # no login here: nothing to come back to (not a failed login)
    try:
        token = _login().client.authorize_access_token()
    except (OAuthError, JoseError, requests.RequestException, KeyError, ValueError) as error:
        # The kind of failure only: an issuer's description may echo what was sent.
        # The error code comes from the callback's query (anyone may call it): quoted and cut, one log line.
        log.warning("login refused: %s %r", type(error).__name__, str(getattr(error, "error", ""))[:64])
        return _problem_page("Innloggingen lyktes ikke",
                             "Prøv å logge inn på nytt. Kommer feilen tilbake, meld fra til driften.", 401)
    claims = token.get("userinfo")
    if not claims or not token.get("access_token"):
        log.warning("login refused: the issuer's answer had no id_token or access_token")
        return _problem_page("Innloggingen lyktes ikke", "Innloggingstjenesten svarte ikke som avtalt.", 401)
    following, refused = local_path(session.get(_NEXT)), session.get(_REFUSED)
    session.clear()  # nothing of the session before the login carries over
    session[_PERSON] = {"name": display_name(claims), "subject": str(claims["sub"]),
                        "access_token": token["access_token"]}
    session[_ID_TOKEN] = token.get("id_token")
    session[_SEEN] = time.time()
    if refused:
        session[_REFUSED] = refused
    # A new session id after login: an id someone planted in the browser before is worth nothing (fixation).
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    return redirect(following)


@blueprint.post("/logg-ut")
def logout() -> Response:
    """Ends the session here, then at the issuer when it offers that (RP-initiated logout)."""
    if "regelmotor_login" not in current_app.extensions:
        abort(404)  # no login, nothing to log out of (the page shows no such button)
    login = _login()
    id_token = session.get(_ID_TOKEN)
    session.clear()
    after = login.base_url + url_for("login.logged_out")
    try:
        end_session = login.client.load_server_metadata().get("end_session_endpoint")
    except requests.RequestException:
        end_session = None
    if not end_session:
        return redirect(after, 303)
    url: str = login.client.create_logout_url(post_logout_redirect_uri=after, id_token_hint=id_token,
                                              client_id=login.client_id)["url"]
    return redirect(url, 303)


@blueprint.get("/favicon.ico")
def no_icon() -> tuple[str, int]:
    """The console has no icon. Browsers ask for one after every page, a failed login's too: without a login
    that request must not start one (a redirect to the issuer, which the page's CSP refuses as an image, and a
    fresh state and return path in place of the person's own). 204: nothing to show, and nothing went wrong."""
    return "", 204


@blueprint.get("/utlogget")
def logged_out() -> str:
    return render_template("login_utlogget.html")


def login_again(problem: ApiProblem) -> Response | tuple[str, int] | None:
    """After the API refused the person's token (UNAUTHENTICATED: expired, say): a fresh login that comes back to
    this page. None (show the refusal) without login, or when the token of a fresh login was refused too."""
    if problem.code != "UNAUTHENTICATED" or "regelmotor_login" not in current_app.extensions:
        return None
    if session.pop(_REFUSED, None):
        return None
    session.pop(_PERSON, None)
    session[_REFUSED] = True
    return _to_issuer(request.full_path if request.method == "GET" else request.path)
