"""The fingerprint of an evaluation request, stored with its request_id in the decision log.

A request_id is a retry only of the very same request: the log compares fingerprints and refuses a
reused request_id whose fingerprint differs (regelmotor.store.base), so one request's decision is never
answered for another's (as the IETF Idempotency-Key draft and Stripe do).

The fingerprint is the sha256 hex digest of the canonical JSON (regelmotor.store.canonical_json) of::

    {"ruleset": …, "version": the pin as asked ("" for none), "as_of": as asked ("" for none),
     "facts": the request's facts, "subject": the patient's pseudonym or null,
     "explanation": "fired" or "none" - only when less than the full explanation was asked for,
     "known_at": as asked - only when asked for}

A request for the full explanation (the level unset, or FULL) has no "explanation", so its fingerprint is the
one of before the levels existed, and a retry across the upgrade still finds its decision; a retry asking another
level than the first is another request (answering it with the stored decision would give the wrong level).

The values are taken as asked, not as resolved: a retry on another day of a request that named no as_of
is the same request, and gets the decision made the first time. The facts are those of the request (before
validation and defaults), as the JSON form of their protobuf Struct: every number is a double, so 3 and
3.0 are the same fact, as they are on the wire. The subject is the keyed pseudonym, never the identity
number: a plain hash of an 11-digit number could be reversed by trying them all.
"""

from __future__ import annotations

import hashlib
from typing import Any

from regelmotor.store import canonical_json


def request_fingerprint(ruleset: str, version: str, as_of: str, facts: dict[str, Any], subject: str | None,
                        explanation: str | None = None, known_at: str | None = None) -> str:
    """The fingerprint of a request (see the module docstring); `explanation` is the level asked for when it is
    less than full, else None; `known_at` as asked, or None. Raises ValueError for facts JSON cannot hold."""
    asked: dict[str, Any] = {"ruleset": ruleset, "version": version, "as_of": as_of, "facts": facts,
                             "subject": subject}
    if explanation is not None:
        asked["explanation"] = explanation
    if known_at is not None:
        asked["known_at"] = known_at
    return hashlib.sha256(canonical_json(asked).encode("utf-8")).hexdigest()
