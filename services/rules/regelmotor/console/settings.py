"""The console's settings: environment variables REGELMOTOR_CONSOLE_* or `regelmotor console` options."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
    public_url: str | None = Field(default=None, description="the console's address as browsers see it "
                                                              "(https://...); the login's redirect goes there")
    session_secret_file: Path | None = Field(default=None, description="file holding the session signing secret "
                                                                       "(a random one per start when absent)")
    session_minutes: int = Field(default=30, ge=1, le=24 * 60, description="a session ends after this many "
                                                                            "minutes without a request")

    @model_validator(mode="after")
    def _login_is_configured_together(self) -> ConsoleSettings:
        if (self.oidc_issuer is None) != (self.oidc_client_id is None):
            raise ValueError("oidc_issuer and oidc_client_id go together: set both, or neither for no login")
        if self.oidc_issuer is None and not is_loopback_host(self.host):
            raise ValueError(f"without a login (oidc_issuer) the console listens on loopback only, not {self.host}")
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
