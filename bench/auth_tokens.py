"""Bearer authentication for the gRPC load bench: an RSA key, its JWKS file and one token, made here as an
identity provider would (tests/auth_support.py), and the server settings that require such tokens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.auth_support import AUDIENCE, ISSUER, Issuer, bearer

# RS256 with a 2048-bit key: what HelseID signs access tokens with.
ALGORITHM = "RS256"
TOKEN_SECONDS = 3600  # longer than any bench run; the server refuses the token after this


@dataclass(frozen=True)
class BenchAuth:
    env: dict[str, str]  # the server's settings: bearer tokens required, checked against the JWKS file
    metadata: tuple[tuple[str, str], ...]  # what every client call sends


def bench_auth(folder: Path) -> BenchAuth:
    """A fresh key with its JWKS written under `folder`, and a token with the `evaluate` scope signed by it."""
    issuer = Issuer()
    issuer.add_rsa("bench")
    jwks = issuer.write_jwks(folder / "jwks.json")
    token = issuer.token("bench", scope="evaluate", algorithm=ALGORITHM, exp=_expiry())
    env = {"REGELMOTOR_AUTH_JWKS_FILE": str(jwks), "REGELMOTOR_AUTH_ISSUER": ISSUER,
           "REGELMOTOR_AUTH_AUDIENCE": AUDIENCE, "REGELMOTOR_AUTH_ALGORITHMS": ALGORITHM}
    return BenchAuth(env, tuple(bearer(token)))


def _expiry() -> int:
    import time

    return int(time.time()) + TOKEN_SECONDS
