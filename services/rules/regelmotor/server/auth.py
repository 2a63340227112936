"""Bearer tokens: a JWT in the `authorization` metadata, verified by PyJWT against the keys of a JWKS.

Verified: the signature (with an algorithm the configuration allows, never `none` or HS*), `iss`, `aud`,
`exp` and `nbf` (with a small clock skew). A token that fails is refused with a reason (`AuthFailure`);
one that passes yields the caller's `Identity`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from .token_cache import VerifiedTokens

log = logging.getLogger("regelmotor.server.auth")

MAX_TOKEN_BYTES = 8 * 1024
MAX_JWKS_BYTES = 256 * 1024
# An unknown `kid` refetches the key set, but not more often than this: random kids must not make every call
# a fetch from the identity provider.
MIN_REFETCH_SECONDS = 10.0
FETCH_TIMEOUT_SECONDS = 5.0
# The organisation number of the calling system's owner, as HelseID puts it in client-credentials tokens.
# Asymmetric signatures only: `none` and the HMAC ones (HS*, whose "key" would be the public key) never.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
# The kind of public key each family of algorithms verifies with (PyJWT raises TypeError on a mismatch).
_KEY_KINDS: dict[str, type | tuple[type, ...]] = {
    "RS": rsa.RSAPublicKey, "PS": rsa.RSAPublicKey, "ES": ec.EllipticCurvePublicKey,
    "Ed": (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey),
}
HELSEID_ORG_CLAIM = "helseid://claims/client/claims/orgnr_parent"


class AuthFailure(Exception):
    """A token that is not accepted: `reason` is the ErrorInfo reason (TOKEN_*), `message` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class KeysUnavailable(Exception):
    """The key set could not be read or fetched (the service's problem, not the caller's)."""


@dataclass(frozen=True)
class Identity:
    """Who a verified token says the caller is."""

    subject: str
    client_id: str | None
    org_number: str | None
    scopes: frozenset[str]
    # RFC 8705: the SHA-256 thumbprint (`cnf` `x5t#S256`) of the client certificate the token is bound to; a
    # call with the token must present that certificate (server/binding.py).
    certificate_bound_to: str | None = None

    @property
    def caller(self) -> str:
        """The caller recorded with a decision: client_id (else sub), with `@<organisation number>` when the
        token names one."""
        name = (self.client_id or self.subject)[:160]
        return f"{name}@{self.org_number[:20]}" if self.org_number else name


@dataclass(frozen=True)
class Policy:
    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    clock_skew_seconds: float
    org_claim: str = HELSEID_ORG_CLAIM


def read_jwks_file(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            with path.open("rb") as handle:
                return handle.read(MAX_JWKS_BYTES + 1)
        except OSError as exc:
            raise KeysUnavailable(f"cannot read {path} ({exc.strerror or exc})") from None
    return read


def fetch_jwks_url(url: str) -> Callable[[], bytes]:
    def fetch() -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
                data: bytes = response.read(MAX_JWKS_BYTES + 1)
                return data
        except OSError as exc:
            raise KeysUnavailable(f"cannot fetch {url} ({exc})") from None
    return fetch


@dataclass(frozen=True)
class SigningKey:
    key: Any  # a cryptography public key
    algorithm: str | None  # the JWK's own `alg`, when it names one


def parse_jwks(data: bytes) -> dict[str, SigningKey]:
    """The signing keys of a JWKS document by kid ('' for a key without one). KeysUnavailable when unusable."""
    if len(data) > MAX_JWKS_BYTES:
        raise KeysUnavailable(f"the key set is larger than {MAX_JWKS_BYTES} bytes")
    try:
        document = json.loads(data)
        jwt.PyJWKSet.from_dict(document)  # refuses a set without a usable key
        found: dict[str, SigningKey] = {}
        for entry in document["keys"]:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                parsed = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key of a kind we cannot use: the others still count
            found[parsed.key_id or ""] = SigningKey(parsed.key, _text(entry.get("alg")))
    except (ValueError, KeyError, jwt.PyJWTError, AttributeError, TypeError) as exc:
        raise KeysUnavailable(f"not a usable JWKS ({str(exc)[:200]})") from None
    return found


class KeySet:
    """The keys tokens are checked against: loaded by `load` (a file or a URL), kept at most `lifetime`
    seconds, loaded again when a token names a kid the set does not have."""

    def __init__(self, load: Callable[[], bytes], lifetime: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._lifetime = lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._loaded_at: float | None = None
        self._tried_at: float | None = None
        self.generation = 0  # counts the sets loaded: a token verified against an older one is checked again

    def refresh(self) -> None:
        """Load the set. When that fails the keys already held are kept (the identity provider may be down a
        while); KeysUnavailable only when there are none."""
        try:
            keys = parse_jwks(self._load())
        except KeysUnavailable as exc:
            with self._lock:
                self._tried_at = self._clock()
                if self._loaded_at is None:
                    raise
            log.warning("token keys not reloaded; using the ones held", extra={"reason": str(exc)})
            return
        with self._lock:
            self._keys, self._loaded_at = keys, self._clock()
            self._tried_at = self._loaded_at
            self.generation += 1

    def due(self) -> bool:
        """Whether the set is to be loaded again whatever kid is asked for (never loaded, or `lifetime` is up)."""
        with self._lock:
            return self._tried_at is None or self._clock() - self._tried_at >= self._lifetime

    def needs_load(self, kid: str) -> bool:
        """Whether finding `kid` means loading the set first (blocking: the caller may do it off the loop)."""
        with self._lock:
            if self._tried_at is None:
                return True
            since = self._clock() - self._tried_at
            return since >= self._lifetime or (self._find(kid) is None and since >= MIN_REFETCH_SECONDS)

    def lookup(self, kid: str) -> tuple[SigningKey | None, int]:
        """The key named `kid` (loading the set first when due) and the generation of the set it comes from."""
        if self.needs_load(kid):
            self.refresh()
        with self._lock:
            if self._loaded_at is None:
                raise KeysUnavailable("no key set has been loaded yet")
            return self._find(kid), self.generation

    def _find(self, kid: str) -> SigningKey | None:
        if kid in self._keys:
            return self._keys[kid]
        if not kid and len(self._keys) == 1:  # a token without a kid, and only one key it can mean
            return next(iter(self._keys.values()))
        return None


def bearer_token(metadata: Any) -> str:
    """The token of the `authorization: Bearer <token>` metadata; AuthFailure when there is none."""
    values = [value for key, value in metadata or () if key == "authorization"]
    if not values:
        raise AuthFailure("TOKEN_MISSING", "no bearer token: send 'authorization: Bearer <access token>'")
    value = values[0]
    if len(values) > 1 or not isinstance(value, str):
        raise AuthFailure("TOKEN_MALFORMED", "send exactly one 'authorization: Bearer <access token>'")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailure("TOKEN_MALFORMED", "the authorization metadata is not 'Bearer <access token>'")
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthFailure("TOKEN_MALFORMED", f"the token is longer than {MAX_TOKEN_BYTES} bytes")
    return token.strip()


def token_kid(token: str) -> str:
    try:
        kid = jwt.get_unverified_header(token).get("kid") or ""
    except jwt.PyJWTError:
        return ""  # verify() says why the token is malformed
    return kid if isinstance(kid, str) else ""


_FAILURES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "TOKEN_EXPIRED"),
    (jwt.ImmatureSignatureError, "TOKEN_NOT_YET_VALID"),
    (jwt.InvalidSignatureError, "TOKEN_SIGNATURE"),
    (jwt.InvalidIssuerError, "TOKEN_ISSUER"),
    (jwt.InvalidAudienceError, "TOKEN_AUDIENCE"),
    (jwt.InvalidAlgorithmError, "TOKEN_ALGORITHM"),
    (jwt.MissingRequiredClaimError, "TOKEN_CLAIM_MISSING"),
    (jwt.DecodeError, "TOKEN_MALFORMED"),
)


def _failure(exc: jwt.PyJWTError) -> AuthFailure:
    for kind, reason in _FAILURES:
        if isinstance(exc, kind):
            return AuthFailure(reason, f"the token is not accepted: {str(exc)[:200]}")
    return AuthFailure("TOKEN_INVALID", f"the token is not accepted: {str(exc)[:200]}")


class Verifier:
    def __init__(self, keys: KeySet, policy: Policy, verified: VerifiedTokens | None = None) -> None:
        self.keys = keys
        self.policy = policy
        self.verified = verified if verified is not None else VerifiedTokens()

    def cached(self, token: str) -> Identity | None:
        """The identity of a token that passed `verify` before, while it is before its exp and the key set it was
        checked against is still the one held and current; None when it must be checked in full."""
        if self.keys.due():
            return None
        return self.verified.get(token, self.keys.generation)

    def verify(self, token: str) -> Identity:
        """The identity of a valid token; AuthFailure with the reason otherwise, KeysUnavailable when the key set
        cannot be had."""
        known = self.cached(token)
        if known is not None:
            return known
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _failure(exc) from None
        algorithm = header.get("alg")
        if algorithm not in self.policy.algorithms:
            raise AuthFailure("TOKEN_ALGORITHM", f"the token's algorithm {str(algorithm)[:20]!r} is not one of "
                                                 f"{', '.join(self.policy.algorithms)}")
        key, generation = self.keys.lookup(token_kid(token))
        if key is None:
            raise AuthFailure("TOKEN_KEY_UNKNOWN", "the token's kid names no key of the identity provider's key set")
        verifying: Any = key.key
        if not isinstance(verifying, _KEY_KINDS[algorithm[:2]]):
            raise AuthFailure("TOKEN_ALGORITHM", f"the token's key is not a key for {algorithm}")
        if key.algorithm is not None and key.algorithm != algorithm:
            raise AuthFailure("TOKEN_ALGORITHM", f"the token's key is for {key.algorithm[:20]}, not {algorithm}")
        try:
            claims = jwt.decode(token, cast(Any, key.key), algorithms=list(self.policy.algorithms),
                                audience=self.policy.audience, issuer=self.policy.issuer,
                                leeway=self.policy.clock_skew_seconds,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWTError as exc:
            raise _failure(exc) from None
        identity = _identity(claims, self.policy.org_claim)
        self.verified.put(token, identity, claims.get("exp"), generation)
        return identity


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """`scope` as a space-separated string (RFC 9068) or a list (as HelseID sends several), or `scp`."""
    value = claims.get("scope", claims.get("scp"))
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def _identity(claims: dict[str, Any], org_claim: str) -> Identity:
    subject = _text(claims.get("sub"))
    if subject is None:
        raise AuthFailure("TOKEN_CLAIM_MISSING", "the token has no 'sub'")
    org = claims.get(org_claim)
    return Identity(subject=subject, client_id=_text(claims.get("client_id")),
                    org_number=str(org) if isinstance(org, (str, int)) and str(org) else None,
                    scopes=_scopes(claims), certificate_bound_to=_bound_to(claims))


def _bound_to(claims: dict[str, Any]) -> str | None:
    """The `x5t#S256` of the token's `cnf` claim; AuthFailure for a `cnf` that binds to something unusable
    (a binding the server cannot check must not be ignored)."""
    confirmation = claims.get("cnf")
    if confirmation is None:
        return None
    thumbprint = confirmation.get("x5t#S256") if isinstance(confirmation, dict) else None
    if not isinstance(thumbprint, str) or not 0 < len(thumbprint) <= 64:
        raise AuthFailure("TOKEN_MALFORMED", "the token's cnf claim has no usable x5t#S256 (RFC 8705): this "
                                             "service checks certificate-bound tokens only")
    return thumbprint
