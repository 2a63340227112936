"""The console's settings: environment variables REGELMOTOR_CONSOLE_* or `regelmotor console` options."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from regelmotor.addresses import is_loopback

# What a person's login asks for: who they are, and the roles the API's own scope names grant (the service's
# default auth_scope_roles: each role granted by the scope of the same name). A deployment with other scope names
# (HelseID: "nhn:regelmotor/ruleset.read"...) sets oidc_scopes to those.
DEFAULT_SCOPES = "openid profile ruleset:read ruleset:author ruleset:approve audit"


def _https_unless_loopback(setting: str, url: str) -> None:
    """A login's addresses carry codes and tokens: https, except on this machine (a developer's, a test's)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return
    raise ValueError(f"{setting} must be an https:// address (http only on loopback), not {url!r}")


def _one_client_credential(settings: ConsoleSettings) -> None:
    """A secret or a key proves the console at the token endpoint, never both: which would it be?"""
    if settings.oidc_client_secret_file is not None and settings.oidc_client_key_file is not None:
        raise ValueError("oidc_client_secret_file and oidc_client_key_file: set one of them, not both "
                         "(the key for private_key_jwt, as HelseID requires; the secret for client_secret_basic)")
    if settings.oidc_client_key_id is not None and settings.oidc_client_key_file is None:
        raise ValueError("oidc_client_key_id names the key of oidc_client_key_file, which is not set")


class ConsoleSettings(BaseSettings):
    """Where the console listens, which API it uses, and how people log in."""

    model_config = SettingsConfigDict(env_prefix="REGELMOTOR_CONSOLE_", extra="forbid")

    host: str = Field(default="127.0.0.1", description="address the console listens on")
    port: int = Field(default=8080, ge=0, le=65535, description="port (0: any free port)")
    api_address: str = Field(default="127.0.0.1:50051", description="the Regelmotor gRPC API, host:port")
    api_ca_file: Path | None = Field(default=None, description="CA certificate for a TLS API (PEM)")
    api_cert_file: Path | None = Field(default=None, description="client certificate for mutual TLS (PEM)")
    api_key_file: Path | None = Field(default=None, description="client key for mutual TLS (PEM)")
    api_timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="deadline of one API call")
    # OpenID Connect (HelseID in production). Without an issuer there is no login: allowed on loopback only, where
    # the API runs without authentication too, and every page says so.
    oidc_issuer: str | None = Field(default=None, description="OpenID Connect issuer URL (discovery is read from it)")
    oidc_client_id: str | None = Field(default=None, description="the console's client id at the issuer")
    oidc_client_secret_file: Path | None = Field(default=None, description="file holding the client secret (a "
                                                 "confidential client); without it or a key a public client with "
                                                 "PKCE only")
    oidc_client_key_file: Path | None = Field(default=None, description="file holding the client's private key "
                                              "(PEM or JWK, RSA or EC): private_key_jwt, as HelseID requires")
    oidc_client_key_id: str | None = Field(default=None, min_length=1, max_length=200,
                                           description="the kid the key's public half is registered with at the "
                                                       "issuer (default: the JWK's own kid)")
    oidc_scopes: str = Field(default=DEFAULT_SCOPES, max_length=2000,
                             description="scopes asked for at login: openid profile, and the scopes the issuer "
                                         "maps to the API's roles (see auth_scope_roles of the service)")
    public_url: str | None = Field(default=None, description="the console's address as browsers see it "
                                                              "(https://...); the login's redirect goes there")
    session_secret_file: Path | None = Field(default=None, description="file holding the session signing secret "
                                                                       "(a random one per start when absent)")
    # A float so that a test can end a session in seconds (session_minutes=0.05); people use whole minutes.
    session_minutes: float = Field(default=30, ge=0.01, le=24 * 60, description="a session ends after this many "
                                                                                "minutes without a request")

    @model_validator(mode="after")
    def _login_is_configured_together(self) -> ConsoleSettings:
        if (self.oidc_issuer is None) != (self.oidc_client_id is None):
            raise ValueError("oidc_issuer and oidc_client_id go together: set both, or neither for no login")
        _one_client_credential(self)
        if self.oidc_issuer is None and not is_loopback(self.host):
            raise ValueError(f"without a login (oidc_issuer) the console listens on loopback only, not {self.host}")
        if self.oidc_issuer is not None:
            _https_unless_loopback("oidc_issuer", self.oidc_issuer)
            if "openid" not in self.oidc_scopes.split():
                raise ValueError(f"oidc_scopes must include openid (the login needs an id_token), not "
                                 f"{self.oidc_scopes!r}")
        if self.public_url is not None:
            _https_unless_loopback("public_url", self.public_url)
        elif self.oidc_issuer is not None and not is_loopback(self.host):
            raise ValueError(f"public_url: set the https address browsers use; with login the console cannot "
                             f"be reached as http://{self.host}")
        return self

    @property
    def login_enabled(self) -> bool:
        return self.oidc_issuer is not None

    def base_url(self, port: int) -> str:
        """The address browsers use: `public_url`, else http on the listening address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"
