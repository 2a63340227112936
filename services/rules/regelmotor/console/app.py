"""The console's Flask application: settings, API, protections, login, pages and how errors are shown."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from . import formatting, login, security
from .api import ConsoleApi
from .errors import ApiProblem, FormProblem
from .pages import PAGES
from .person import current_person
from .settings import ConsoleSettings


def create_app(settings: ConsoleSettings, *, base_url: str, api: ConsoleApi | None = None) -> Flask:
    """The console for people reaching it at `base_url`, calling the API of `settings` (or `api`)."""
    app = Flask(__name__)
    app.extensions["regelmotor_api"] = api or ConsoleApi(settings)
    app.extensions["regelmotor_settings"] = settings
    app.config["PREFERRED_URL_SCHEME"] = "https" if base_url.startswith("https://") else "http"
    login.install(app, settings, base_url)  # first: every later check (CSRF) may show a page, which names the person
    security.protect(app, settings, base_url)
    for page in PAGES:
        app.register_blueprint(page)
    _template_helpers(app, settings)
    _error_pages(app)
    return app


def _template_helpers(app: Flask, settings: ConsoleSettings) -> None:
    app.jinja_env.filters.update(dato=formatting.norsk_dato, tid=formatting.norsk_tid, tall=formatting.norsk_tall,
                                 kr=formatting.kroner)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def _page_context() -> dict[str, Any]:
        return {"person": current_person(), "login_enabled": settings.login_enabled}


def _error_pages(app: Flask) -> None:
    @app.errorhandler(ApiProblem)
    def _api(problem: ApiProblem) -> Response | tuple[str, int]:
        again = login.login_again(problem)  # an expired token: a fresh login, not an error page
        if again is not None:
            return again
        return render_template("feil.html", overskrift=problem.headline, detalj=problem.detail,
                               felter=problem.fields), problem.http_status

    @app.errorhandler(FormProblem)
    def _form(problem: FormProblem) -> tuple[str, int]:
        return render_template("feil.html", overskrift="Skjemaet har en feil", detalj=problem.reason,
                               felter={problem.field_name: problem.reason}), 400

    @app.errorhandler(CSRFError)
    def _csrf(_: CSRFError) -> tuple[str, int]:
        return render_template("feil.html", overskrift="Skjemaet er for gammelt eller kom ikke fra konsollet",
                               detalj="Last siden på nytt og send skjemaet igjen.", felter={}), 400

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[str, int]:
        texts = {404: "Siden finnes ikke", 405: "Siden kan ikke brukes slik",
                 413: "Det som ble sendt inn er for stort"}
        status = error.code or 500
        return render_template("feil.html", overskrift=texts.get(status, "Forespørselen kunne ikke behandles"),
                               detalj="", felter={}), status

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[str, int]:
        # Where it failed (files, lines, functions) but not the exception's text or values, which may hold a
        # person's data: enough to find the fault, nothing to leak.
        where = " < ".join(f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"
                           for frame in reversed(traceback.extract_tb(error.__traceback__)[-6:]))
        app.logger.error("console page failed: %s at %s", type(error).__name__, where)
        return render_template("feil.html", overskrift="Noe gikk galt i konsollet",
                               detalj="Feilen er logget. Prøv igjen, eller meld fra om den kommer tilbake.",
                               felter={}), 500

