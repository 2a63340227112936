"""The verified identity of the call being handled: set by the guard (server/guard.py) for the call it lets
in, read where the caller is recorded (server/recording.py). Its own module, with no other imports from the
server, so both can use it without importing each other."""

from __future__ import annotations

import contextvars

from .auth import Identity

# The call's handler runs in the task the interceptor ran in, so it sees what the interceptor set.
_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("regelmotor_identity", default=None)


def current() -> Identity | None:
    """The verified identity of the call being handled (None: authentication is off, or the method is open)."""
    return _identity.get()


def set_current(identity: Identity | None) -> None:
    _identity.set(identity)
