"""TLS and mutual TLS for the gRPC port, from certificate files that are re-read when they change.

gRPC's own dynamic credentials do the TLS: before each new connection's handshake gRPC asks
`CertificateReloader` for a newer configuration; it answers None (keep the current one) unless a file's
inode, size or modification time changed, and then re-reads and checks the files. A bad set of files
during a rotation (half-written, a key that does not match, a world-readable key) is logged and ignored:
the server keeps serving with the certificates it has. Key material is never logged.
"""

from __future__ import annotations

import logging
import stat
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from .config import Settings
from .startup import StartupError

log = logging.getLogger("regelmotor.server.tls")

_MAX_FILE_BYTES = 1024 * 1024  # a certificate chain or a CA bundle is a few KiB; refuse to read anything huge
_PUBLIC = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


@dataclass(frozen=True)
class TlsFiles:
    """The files the settings name: the server's certificate chain and key, and the CA of client certificates
    (mutual TLS: every client must present a certificate it issued)."""

    cert: Path
    key: Path
    client_ca: Path | None

    @classmethod
    def from_settings(cls, settings: Settings) -> TlsFiles | None:
        """None without TLS settings (plaintext); StartupError for an incomplete set."""
        cert, key, client_ca = settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
        if cert is None and key is None:
            if client_ca is not None:
                raise StartupError("tls_client_ca_file", "mutual TLS needs TLS",
                                   "set tls_cert_file and tls_key_file as well, or unset tls_client_ca_file")
            return None
        if key is None:
            raise StartupError("tls_key_file", "is not set but tls_cert_file is",
                               "give the server's private key (PEM) with the certificate")
        if cert is None:
            raise StartupError("tls_cert_file", "is not set but tls_key_file is",
                               "give the server's certificate chain (PEM) with the key")
        return cls(cert, key, client_ca)

    def signature(self) -> tuple[object, ...]:
        """What changes when any of the files is replaced or rewritten (a missing file counts as a state)."""
        return tuple(_stat_signature(path) for path in (self.cert, self.key, self.client_ca))


@dataclass(frozen=True)
class TlsMaterial:
    """The checked contents of the files, as gRPC takes them."""

    cert_chain: bytes
    key: bytes
    client_ca: bytes | None
    subject: str
    not_after: datetime

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(self.key, self.cert_chain)], self.client_ca)


def _stat_signature(path: Path | None) -> object:
    if path is None:
        return None
    try:
        status = path.stat()
    except OSError as exc:
        return ("unreadable", exc.errno)
    return status.st_ino, status.st_size, status.st_mtime_ns, stat.S_IMODE(status.st_mode)


def _read(setting: str, path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise StartupError(setting, f"cannot read {path} ({exc.strerror or exc})",
                           "give a readable PEM file") from None
    if len(data) > _MAX_FILE_BYTES:
        raise StartupError(setting, f"{path} is larger than {_MAX_FILE_BYTES} bytes", "give a PEM file")
    return data


def _certificates(setting: str, path: Path, data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise StartupError(setting, f"{path} holds no PEM certificate", "give PEM certificates "
                           "(-----BEGIN CERTIFICATE-----)") from None


def _private_to_owner(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise StartupError("tls_key_file", f"cannot read {path} ({exc.strerror or exc})",
                           "give a readable PEM file") from None
    if mode & 0o077:
        raise StartupError("tls_key_file", f"{path} can be read by others (mode {mode:04o})",
                           f"make it readable by the service's user only: chmod 600 {path}")


def _private_key(path: Path, data: bytes) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        reason = "it is encrypted" if isinstance(exc, TypeError) else "it holds no PEM private key gRPC can use"
        raise StartupError("tls_key_file", f"{path} cannot be used ({reason})",
                           "give the certificate's private key as unencrypted PEM") from None


def read_material(files: TlsFiles, now: datetime | None = None) -> TlsMaterial:
    """Read and check the files; StartupError naming the setting whose file is wrong."""
    cert_chain = _read("tls_cert_file", files.cert)
    leaf = _certificates("tls_cert_file", files.cert, cert_chain)[0]
    expiry = leaf.not_valid_after_utc
    if expiry <= (now or datetime.now(UTC)):
        raise StartupError("tls_cert_file", f"the certificate in {files.cert} expired at {expiry.isoformat()}",
                           "give a current certificate")
    _private_to_owner(files.key)
    key_data = _read("tls_key_file", files.key)
    key = _private_key(files.key, key_data)
    if key.public_key().public_bytes(*_PUBLIC) != leaf.public_key().public_bytes(*_PUBLIC):
        raise StartupError("tls_key_file", f"{files.key} is not the private key of the certificate in {files.cert}",
                           "give the key the certificate was issued for (the first certificate of the file)")
    client_ca = None
    if files.client_ca is not None:
        client_ca = _read("tls_client_ca_file", files.client_ca)
        _certificates("tls_client_ca_file", files.client_ca, client_ca)
    return TlsMaterial(cert_chain, key_data, client_ca, leaf.subject.rfc4514_string(), expiry)


class CertificateReloader:
    """gRPC's certificate-configuration fetcher: a new configuration when the files changed and are good,
    else None (keep serving with the current one). Called by gRPC's threads before each handshake."""

    def __init__(self, files: TlsFiles, signature: tuple[object, ...]) -> None:
        self.files = files
        self._served = signature
        self._refused: tuple[object, ...] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            signature = self.files.signature()
            if signature in (self._served, self._refused):
                return None
            try:
                material = read_material(self.files)
            except StartupError as exc:
                self._refused = signature  # logged once per bad state of the files, not once per connection
                log.error("tls files refused; serving with the previous certificates", extra={"reason": str(exc)})
                return None
            except Exception as exc:  # an exception must never reach gRPC's handshake
                self._refused = signature
                log.error("tls files refused; serving with the previous certificates",
                          extra={"reason": type(exc).__name__})
                return None
            self._served, self._refused = signature, None
            log.info("tls certificates reloaded", extra=_described(self.files, material))
            return material.configuration()


def _described(files: TlsFiles, material: TlsMaterial) -> dict[str, object]:
    return {"cert_file": str(files.cert), "subject": material.subject, "not_after": material.not_after.isoformat(),
            "mutual": files.client_ca is not None}


def mode(settings: Settings) -> str:
    """How the port is served, for the log: off (plaintext), on (TLS) or mutual."""
    if settings.tls_cert_file is None:
        return "off"
    return "mutual" if settings.tls_client_ca_file is not None else "on"


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The port's credentials: None for plaintext (no TLS settings), else TLS, with client certificates
    required when tls_client_ca_file is set. StartupError for a file that cannot be used."""
    files = TlsFiles.from_settings(settings)
    if files is None:
        return None
    signature = files.signature()
    material = read_material(files)
    log.info("tls certificates loaded", extra=_described(files, material))
    # gRPC documents a fetcher's None as "no change"; types-grpcio's signature does not allow it.
    return grpc.dynamic_ssl_server_credentials(
        material.configuration(), CertificateReloader(files, signature),  # type: ignore[arg-type]
        require_client_authentication=files.client_ca is not None)
