"""The console's protections, each from a maintained library: server-side sessions with a timeout
(Flask-Session), CSRF tokens on every form (Flask-WTF), security headers and a Content-Security-Policy
without inline script (flask-talisman)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from cachelib import SimpleCache
from flask import Flask, Response
from flask_session import Session
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect

from .settings import ConsoleSettings

# Nothing but the console's own files: no inline script or style, no frames, forms post only to the console.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}

csrf = CSRFProtect()

MAX_BODY_BYTES = 2 * 1024 * 1024  # a ruleset source with its cases fits; nothing else comes near


def content_security_policy(settings: ConsoleSettings) -> dict[str, str]:
    """With login, a form may lead on to the issuer: the logout (its end_session endpoint), or any form sent after
    the session ended (a fresh login). Browsers apply form-action to those redirects too."""
    policy = dict(CONTENT_SECURITY_POLICY)
    if settings.oidc_issuer is not None:
        issuer = urlsplit(settings.oidc_issuer)
        policy["form-action"] = f"'self' {issuer.scheme}://{issuer.netloc}"
    return policy


def session_secret(settings: ConsoleSettings) -> str:
    """The key that signs the CSRF tokens: from a file when configured (several console processes, restarts),
    else a random one per start (sessions then end with the process)."""
    if settings.session_secret_file is None:
        return secrets.token_urlsafe(48)
    secret = settings.session_secret_file.read_text(encoding="utf-8").strip()
    if len(secret) < 32:
        raise ValueError(f"session_secret_file {settings.session_secret_file}: the secret is shorter than 32 "
                         f"characters")
    return secret


def protect(app: Flask, settings: ConsoleSettings, base_url: str) -> None:
    https = base_url.startswith("https://")
    app.config.update(
        SECRET_KEY=session_secret(settings),
        SESSION_TYPE="cachelib",
        # The session (with the person's access token) stays in the console's memory; the browser holds an id.
        SESSION_CACHELIB=SimpleCache(threshold=10_000, default_timeout=max(1, round(settings.session_minutes * 60))),
        SESSION_PERMANENT=True,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_minutes),
        SESSION_REFRESH_EACH_REQUEST=True,
        SESSION_COOKIE_NAME="regelmotor_konsoll",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # Lax, not Strict: the login's redirect back from the issuer must carry it
        SESSION_COOKIE_SECURE=https,
        WTF_CSRF_TIME_LIMIT=settings.session_minutes * 60,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES,
    )
    Session(app)
    csrf.init_app(app)
    Talisman(app, force_https=https, strict_transport_security=https, session_cookie_secure=https,
             frame_options="DENY", content_security_policy=content_security_policy(settings),
             referrer_policy="no-referrer", permissions_policy={"browsing-topics": "()", "camera": "()",
                                                                "microphone": "()", "geolocation": "()"})

    @app.after_request
    def _no_caching(response: Response) -> Response:
        # Pages show health data and decisions: never kept by the browser or a proxy.
        if not (response.mimetype or "").startswith(("text/css", "image/")):
            response.headers["Cache-Control"] = "no-store"
        return response
