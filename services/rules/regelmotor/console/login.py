"""Who is asking: on the local default (no issuer configured) the user the console runs as, without login;
otherwise a person logged in with OpenID Connect (authorisation code with PKCE, authlib) whose access token
is what the console sends to the API."""

from __future__ import annotations

from flask import Blueprint, Flask, g

from .person import local_person
from .settings import ConsoleSettings

blueprint = Blueprint("login", __name__)


def install(app: Flask, settings: ConsoleSettings) -> None:
    if settings.login_enabled:
        raise NotImplementedError("OpenID Connect login is being built (issue 16, point 2)")
    person = local_person()

    @app.before_request
    def _who() -> None:
        g.person = person

    app.register_blueprint(blueprint)
