"""The purpose (formål) of an auditor's reads: asked once, kept in the session, sent with every audit call,
which the API records in the access log. The API decides what an acceptable purpose is (and names the field
when it is not); the console only keeps it and makes sure one is given before a read."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from .login import local_path

blueprint = Blueprint("formaal", __name__)

MAX_CHARS = 200  # the API's own bound; a longer text is refused here with the same words
_KEY = "formaal"
MAX_BACK_CHARS = 500  # a path on this console; a longer one is not followed

View = TypeVar("View", bound=Callable[..., Any])


def current_purpose() -> str | None:
    kept = session.get(_KEY)
    return kept if isinstance(kept, str) and kept else None


def _safe_next(target: str | None) -> str:
    """Only a path on this console (never another site: an open redirect). The login's rule: browsers drop tabs
    and line breaks from a URL, so "/<tab>/evil.example" would lead to //evil.example."""
    return local_path(target)


BACK_FIELD = "tilbake"  # a POST form's hidden field: the path of the page the form is on


def _back() -> str | None:
    """Where to come back to after the purpose is given: the page itself for a GET; for a POST (a replay), the
    page its form was on, from the form's `tilbake` field (a POST cannot be repeated by a redirect, and the
    console sends no Referer). `_safe_next` keeps it to a path on this console."""
    if request.method == "GET":
        return request.full_path
    return request.form.get(BACK_FIELD, "")[:MAX_BACK_CHARS] or None


def purpose_required(view: View) -> View:
    """A page that reads audit data: without a purpose in the session, ask for one first, then come back."""
    @wraps(view)
    def asked(*args: Any, **kwargs: Any) -> Any:
        # A search form carries its own purpose field (the view sends it to the API, which judges it): a session
        # that ended while the form was open must not throw away what was typed (a fødselsnummer, say).
        posted_own = request.method == "POST" and request.form.get(_KEY, "").strip()
        if current_purpose() is None and not posted_own:
            return redirect(url_for("formaal.ask", neste=_safe_next(_back())))
        return view(*args, **kwargs)

    return asked  # type: ignore[return-value]


def keep_purpose(text: str) -> None:
    """Keep a purpose the API has just accepted with a read (a search form's own purpose field, changed)."""
    session[_KEY] = text


@blueprint.get("/formaal")
def ask() -> str:
    return render_template("formaal.html", formaal=current_purpose() or "", neste=_safe_next(request.args.get("neste")),
                           feil={})


@blueprint.post("/formaal")
def keep() -> Response | tuple[str, int]:
    text = request.form.get("formaal", "").strip()
    following = _safe_next(request.form.get("neste"))
    problem = None
    if not text:
        problem = "Skriv hvorfor du slår opp, for eksempel saksnummeret. Formålet lagres i tilgangsloggen."
    elif len(text) > MAX_CHARS:
        problem = f"Formålet kan være høyst {MAX_CHARS} tegn, ikke {len(text)}."
    elif any(ord(char) < 32 or ord(char) == 127 for char in text):
        problem = "Formålet kan ikke ha linjeskift eller tabulatorer."
    if problem is not None:
        return render_template("formaal.html", formaal=text, neste=following, feil={"formaal": problem}), 400
    session[_KEY] = text
    return redirect(following)
