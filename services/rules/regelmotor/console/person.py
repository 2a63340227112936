"""Who is using the console for this request, and how the API is told."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from flask import g

from .api import Metadata

CALLER_PREFIX = "konsoll:"


@dataclass(frozen=True)
class Person:
    """The person behind a request: their name for the pages, their token for the API (None without login)."""

    name: str
    subject: str
    access_token: str | None = None

    def metadata(self) -> Metadata:
        if self.access_token is not None:
            return [("authorization", f"Bearer {self.access_token}")]
        # Without login the API runs without authentication too and takes the caller's own word for a name.
        return [("regelmotor-caller", f"{CALLER_PREFIX}{self.subject}")]


# On the login's own pages (the issuer's way back, the page after logout) no one is signed in yet; the header then
# names no one. Its metadata names no caller the API would accept: with login on the API asks for a token.
NOT_SIGNED_IN = Person(name="", subject="")


def local_person() -> Person:
    """The local default (no login): the user the console runs as."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = "lokal"
    return Person(name=f"{user} (lokal, uten innlogging)", subject=user)


def current_person() -> Person:
    """The person of this request; set by the login check before every page (`login.py`)."""
    person: Person = g.person
    return person

