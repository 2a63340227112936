"""Tokens already verified, so a client that sends the same token on every call is not checked afresh each time
(PyJWT's parse and signature check cost the gRPC front about 0.2 ms a call, BENCHMARKS.md 2026-12-06).

An entry is the exact token string and the identity it yielded. It answers only before the token's `exp`
(without the clock skew the full check allows: the cache never accepts a token the full check would not), and
only while the key set it was verified against is the one held and not due to be loaded again, so a key
withdrawn from the JWKS stops its tokens as soon as the set is reloaded.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .auth import Identity

MAX_ENTRIES = 1024  # tokens are at most 8 KiB: at most 8 MiB held


@dataclass(frozen=True)
class _Entry:
    identity: Identity
    expires: float  # the token's exp, seconds since the epoch
    generation: int  # the key set it was verified against


class VerifiedTokens:
    """A bounded least-recently-used map of verified token -> identity, each until its token's exp."""

    def __init__(self, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.time) -> None:
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, token: str, generation: int) -> Identity | None:
        """The identity `token` was verified as, if it is still before its exp and the key set is unchanged."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            if self._clock() >= entry.expires or entry.generation != generation:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return entry.identity

    def put(self, token: str, identity: Identity, expires: object, generation: int) -> None:
        """Remember a token that has just passed the full check; one without a numeric exp is not kept."""
        if isinstance(expires, bool) or not isinstance(expires, (int, float)) or self._clock() >= expires:
            return
        with self._lock:
            self._entries[token] = _Entry(identity, float(expires), generation)
            self._entries.move_to_end(token)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
