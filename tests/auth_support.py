"""Keys, a JWKS and tokens made in the tests, as an identity provider (HelseID, say) would issue them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://helseid-sts.test.nhn.no"
AUDIENCE = "nhn:regelmotor"
ORG_CLAIM = "helseid://claims/client/claims/orgnr_parent"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class Issuer:
    """Signing keys by kid, the JWKS that publishes them, and tokens signed with them."""

    keys: dict[str, Any] = field(default_factory=dict)

    def add_rsa(self, kid: str) -> rsa.RSAPrivateKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = key
        return key

    def add_ec(self, kid: str) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = key
        return key

    def jwks(self) -> dict[str, Any]:
        published = []
        for kid, key in self.keys.items():
            if isinstance(key, rsa.RSAPrivateKey):
                entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            else:
                entry = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
            published.append({**entry, "kid": kid, "use": "sig"})
        return {"keys": published}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()), encoding="utf-8")
        return path

    def token(self, kid: str = "k1", *, scope: str | list[str] = "evaluate", algorithm: str | None = None,
              key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "sub-123", "client_id": "dips-arena",
                                "iat": now, "nbf": now, "exp": now + 300, "scope": scope, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        signing = key if key is not None else self.keys[kid]
        chosen = algorithm or ("RS256" if isinstance(signing, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(body, signing, algorithm=chosen, headers={"kid": kid})

    def public_pem(self, kid: str = "k1") -> bytes:
        pem: bytes = self.keys[kid].public_key().public_bytes(serialization.Encoding.PEM,
                                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return pem


def handmade_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT would refuse to make: `alg: none` (no secret), or HS256 with `secret` (a public key)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]
