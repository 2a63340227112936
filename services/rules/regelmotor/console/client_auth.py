"""How the console proves itself at the issuer's token endpoint: a public client (PKCE alone), a client secret
(`client_secret_basic`), or a private key (`private_key_jwt`, RFC 7523: a short-lived JWT signed with the key whose
public half is registered at the issuer — what HelseID requires).

The secret and the key come from files only readable by the console's user; neither is ever logged. The assertion
itself is made and signed by authlib (`authlib.oauth2.rfc7523`): this module only picks the key, its kid and
algorithm, and the assertion's lifetime."""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, RSAKey

from .settings import ConsoleSettings

# HelseID accepts an assertion valid for at most 60 seconds; it is made just before the one request that uses it.
ASSERTION_SECONDS = 60
_MAX_FILE_BYTES = 64 * 1024  # a secret or a key is a few kilobytes at most
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}  # the curve decides the algorithm
_MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class ClientKey:
    """The console's private key, the kid the issuer knows its public half by, and the algorithm to sign with."""

    key: RSAKey | ECKey
    kid: str
    algorithm: str


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]  # authlib is untyped
    """authlib's `private_key_jwt`, with a lifetime of ASSERTION_SECONDS (authlib's own default is an hour) and
    an `nbf`. Each call gets fresh claims: authlib adds its random `jti` to the claims dict it is given, so a dict
    kept on the instance would carry one jti into every assertion."""

    def sign(self, auth: Any, token_endpoint: str) -> Any:
        now = int(time.time())
        return private_key_jwt_sign(auth.client_secret, client_id=auth.client_id, token_endpoint=token_endpoint,
                                    alg=self.alg, claims={"nbf": now}, header=dict(self.headers),
                                    issued_at=now, expires_at=now + ASSERTION_SECONDS)


@dataclass(frozen=True)
class ClientProof:
    """What authlib's client is registered with: its `client_secret` (a secret, a key, or none), its
    `token_endpoint_auth_method`, and the authlib auth method objects that method needs."""

    credential: str | RSAKey | ECKey | None
    method: str
    signers: tuple[Any, ...] = ()


def client_proof(settings: ConsoleSettings) -> ClientProof:
    key = read_client_key(settings)
    if key is not None:
        # No token_endpoint given: authlib uses the URL it posts to, the discovery's token_endpoint, as `aud`.
        signer = ShortLivedPrivateKeyJWT(headers={"kid": key.kid}, alg=key.algorithm)
        return ClientProof(key.key, signer.name, (signer,))
    secret = read_client_secret(settings)
    # a public client proves itself by PKCE alone; a confidential one by its secret as well
    return ClientProof(secret, "client_secret_basic" if secret else "none")


def _read_private_file(setting: str, path: Path) -> bytes:
    """A file holding a credential: readable, only by its owner, not empty, not huge."""
    try:
        mode = path.stat().st_mode & 0o777
        with path.open("rb") as opened:
            content = opened.read(_MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ValueError(f"{setting} {path}: cannot read it ({error.strerror})") from None
    if mode & 0o077:
        raise ValueError(f"{setting} {path}: others can read it (mode {mode:o}); chmod 600 {path}")
    if not content.strip():
        raise ValueError(f"{setting} {path}: the file is empty")
    if len(content) > _MAX_FILE_BYTES:
        raise ValueError(f"{setting} {path}: larger than {_MAX_FILE_BYTES // 1024} KiB; not a secret or a key")
    return content


def read_client_secret(settings: ConsoleSettings) -> str | None:
    """The confidential client's secret, from its file (never from code or an environment literal)."""
    if settings.oidc_client_secret_file is None:
        return None
    content = _read_private_file("oidc_client_secret_file", settings.oidc_client_secret_file)
    try:
        return content.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"oidc_client_secret_file {settings.oidc_client_secret_file}: not UTF-8 text") from None


def read_client_key(settings: ConsoleSettings) -> ClientKey | None:
    """The private key for `private_key_jwt`, from a PEM file or a JWK (JSON) file; RSA or EC."""
    if settings.oidc_client_key_file is None:
        return None
    path = settings.oidc_client_key_file
    content = _read_private_file("oidc_client_key_file", path)
    where = f"oidc_client_key_file {path}"
    with warnings.catch_warnings():  # joserfc warns of a short RSA key; _algorithm refuses it in words
        warnings.simplefilter("ignore", SecurityWarning)
        if content.lstrip().startswith(b"{"):
            key, own_kid, own_algorithm = _jwk_key(where, content)
        else:
            key, own_kid, own_algorithm = _pem_key(where, content), None, None
    return ClientKey(key, _kid(path, settings.oidc_client_key_id, own_kid), _algorithm(where, key, own_algorithm))


def _jwk_key(where: str, content: bytes) -> tuple[RSAKey | ECKey, str | None, str | None]:
    try:
        jwk = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{where}: not a JWK (JSON): {error}") from None
    if not isinstance(jwk, dict) or "keys" in jwk:
        raise ValueError(f"{where}: give one JWK (an object with kty), not a key set")
    kty = jwk.get("kty")
    if kty not in ("RSA", "EC"):
        raise ValueError(f"{where}: the key type (kty) must be RSA or EC, not {kty!r}")
    try:
        key: RSAKey | ECKey = RSAKey.import_key(jwk) if kty == "RSA" else ECKey.import_key(jwk)
    except (JoseError, ValueError, TypeError) as error:
        raise ValueError(f"{where}: not a usable {kty} JWK ({type(error).__name__})") from None
    if not key.is_private:
        raise ValueError(f"{where}: this JWK is a public key; the console needs the private key (the public one "
                         f"is registered at the issuer)")
    kid, algorithm = jwk.get("kid"), jwk.get("alg")
    return key, str(kid) if kid else None, str(algorithm) if algorithm else None


def _pem_key(where: str, content: bytes) -> RSAKey | ECKey:
    try:
        loaded = load_pem_private_key(content, password=None)
    except TypeError:
        raise ValueError(f"{where}: the key is protected by a passphrase; give it unencrypted (the file's mode "
                         f"600 protects it)") from None
    except ValueError:
        raise ValueError(f"{where}: not a PEM private key (-----BEGIN PRIVATE KEY-----) or a JWK") from None
    if isinstance(loaded, rsa.RSAPrivateKey):
        return RSAKey.import_key(content)
    if isinstance(loaded, ec.EllipticCurvePrivateKey):
        return ECKey.import_key(content)
    raise ValueError(f"{where}: the key must be RSA or EC, not {type(loaded).__name__}")


def _kid(path: Path, configured: str | None, own: str | None) -> str:
    """The kid the issuer finds the public key by: oidc_client_key_id, else the JWK's own."""
    if configured and own and configured != own:
        raise ValueError(f"oidc_client_key_id {configured!r} differs from the kid in {path} ({own!r}); leave "
                         f"oidc_client_key_id unset or make them the same")
    kid = configured or own
    if not kid:
        raise ValueError(f"oidc_client_key_id: the key in {path} names no kid; set oidc_client_key_id to the kid "
                         f"its public key is registered with at the issuer")
    return kid


def _algorithm(where: str, key: RSAKey | ECKey, own: str | None) -> str:
    """RS256 for RSA (or the JWK's own RS*/PS*), ES256/384/512 by the curve for EC."""
    if isinstance(key, RSAKey):
        bits = key.raw_value.key_size
        if bits < _MIN_RSA_BITS:
            raise ValueError(f"{where}: an RSA key of {bits} bits is too short; use at least {_MIN_RSA_BITS}")
        chosen = own or "RS256"
        if chosen not in _RSA_ALGORITHMS:
            raise ValueError(f"{where}: alg {chosen!r} does not sign with an RSA key; use one of "
                             f"{', '.join(sorted(_RSA_ALGORITHMS))}")
        return chosen
    curve = key.curve_name
    if curve not in _EC_ALGORITHMS:
        raise ValueError(f"{where}: the curve {curve} is not one the issuer accepts; use P-256, P-384 or P-521")
    if own and own != _EC_ALGORITHMS[curve]:
        raise ValueError(f"{where}: alg {own!r} does not fit the curve {curve} ({_EC_ALGORITHMS[curve]})")
    return _EC_ALGORITHMS[curve]
