"""Service configuration: environment variables `REGELMOTOR_*`, else an optional TOML file named by
`REGELMOTOR_CONFIG`, else the embedded defaults. Documented in docs/configuration.md."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .access import DEFAULT_SCOPE_ROLES
from .auth import HELSEID_ORG_CLAIM


def bundled_rulesets() -> Path:
    return Path(__file__).resolve().parents[4] / "rulesets"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGELMOTOR_", extra="forbid")

    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=50051, ge=0, le=65535, description="port to listen on (0: any free port)")
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=0, le=64,
                         description="engine worker processes (0: evaluate inside the server process)")
    rulesets: Path = Field(default_factory=bundled_rulesets, description="rulesets directory")
    allow_drafts: bool = Field(default=False, description="let draft versions be selected by date")
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="largest request accepted")
    max_response_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="largest response sent")
    drain_delay_seconds: float = Field(default=5.0, ge=0, le=300, description="on SIGTERM, how long health says "
                                       "NOT_SERVING while calls are still taken, so load balancers stop sending")
    grace_seconds: float = Field(default=10.0, ge=0, le=3600, description="then, how long in-flight calls get to "
                                 "finish before they are cancelled")
    max_evaluation_seconds: float = Field(default=30.0, gt=0, description="longest an engine worker may work on one "
                                          "message (a unary Evaluate, unary calls sent together, a stream batch) "
                                          "before it is killed")
    max_queue_seconds: float = Field(default=10.0, gt=0, description="longest a call without a deadline waits for a "
                                     "free engine worker")
    max_concurrent_rpcs: int = Field(default=256, ge=1, description="calls beyond this get RESOURCE_EXHAUSTED")
    max_calls_per_caller: int = Field(default=64, ge=1, description="Evaluate and EvaluateStream calls one caller "
                                      "may have in progress at once (a stream counts while open); beyond: "
                                      "RESOURCE_EXHAUSTED")
    max_exports_per_caller: int = Field(default=2, ge=1, description="AuditService exports one caller may have in "
                                        "progress at once; beyond: RESOURCE_EXHAUSTED")
    stream_idle_seconds: float = Field(default=300.0, gt=0, le=86400, description="an EvaluateStream whose client "
                                       "sends nothing this long (with nothing in flight) is ended")
    threads: int = Field(default=8, ge=1, le=256, description="threads for blocking work of the front (decision log "
                         "reads and writes)")
    source_seconds: float = Field(default=20.0, gt=0, description="longest the sandbox may work on one ruleset "
                                  "source sent by a caller (ValidateRuleset, TestRuleset, DiffRulesets)")
    source_memory_mb: int = Field(default=1024, ge=256, description="address-space limit of the sandbox process "
                                  "that handles callers' ruleset sources")
    source_calls: int = Field(default=50, ge=1, description="sources the sandbox handles before it is replaced by "
                              "a fresh process (durable_rules never frees a compiled ruleset)")
    impact_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64,
                                description="sandbox processes that evaluate logged decisions again under a "
                                "candidate version (AnalyseImpact); started on the first analysis")
    impact_nice: int = Field(default=10, ge=0, le=19, description="added to the impact workers' nice value, so "
                             "an analysis yields the CPU to the engine workers")
    impact_idle: bool = Field(default=True, description="run the impact workers under the SCHED_IDLE policy "
                              "(Linux): a core goes to them only when no other process of the service wants it")
    impact_max_decisions: int = Field(default=200_000, ge=1, description="most logged decisions one AnalyseImpact "
                                      "may evaluate again; a larger window is refused (INVALID_ARGUMENT, filter)")
    impact_memory_mb: int = Field(default=2048, ge=256, description="address-space limit of each impact worker")
    reload_seconds: float = Field(default=1.0, ge=0.1, le=60, description="how often the ruleset store is asked "
                                  "whether a version was published or retired since (hot reload)")
    known_at_settle_seconds: float = Field(default=10.0, ge=0, le=3600, description="how long ago a request's "
                                           "known_at must be: a version published more recently may not yet be "
                                           "served by every instance, so the answer could still change")
    stream_batch: int = Field(default=32, ge=1, le=1024, description="stream requests sent to a worker at once")
    reflection: bool = Field(default=True, description="serve gRPC server reflection")
    health_port: int | None = Field(default=None, ge=1, le=65535, description="a second port, plaintext, that "
                                    "serves only gRPC health (Kubernetes' gRPC probes cannot speak TLS)")
    data_dir: Path = Field(default=Path("var"), description="where the SQLite decision log and the pseudonym key live")
    decision_log: str = Field(default="sqlite", description="'sqlite' (in data_dir), a postgresql:// DSN, or 'off'")
    pseudonym_key: str | None = Field(default=None, description="hex HMAC key for identity numbers (else a key "
                                      "file, made on first start)")
    pseudonym_key_file: Path | None = Field(default=None, description="the key file when pseudonym_key is not "
                                            "given (default data_dir/pseudonym.key)")
    pseudonym_previous_key_files: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="retired pseudonym key files (hex, mode 0600), only read: a search by "
        "identity number also finds the decisions recorded under them (comma-separated in the environment, an array "
        "in the config file)")
    allow_key_in_data_dir: bool = Field(default=False, description="with authentication on, allow the pseudonym key "
                                        "file inside data_dir, next to the decision log")
    checkpoint_key_file: Path | None = Field(default=None, description="Ed25519 key (PEM, mode 0600) that signs "
                                             "the decision log's checkpoints; made on first start (default: "
                                             "checkpoint.key in data_dir)")
    witness_file: Path | None = Field(default=None, description="append-only file the signed checkpoints are "
                                      "written to (default: checkpoints.jsonl in data_dir)")
    checkpoint_previous_keys_file: Path | None = Field(default=None, description="PEM file of the public keys of "
                                                       "earlier checkpoint keys: the checkpoints and retention cuts "
                                                       "they signed still verify after a key change")
    checkpoint_seconds: float = Field(default=60.0, ge=1, le=86400, description="how often a checkpoint of the "
                                      "decision log is signed (and at shutdown)")
    allow_synthetic_ids: bool = Field(default=False, description="accept synthetic test identity numbers (month + "
                                      "80, Skatteetaten's Tenor); for tests and test environments only")
    log_level: str = Field(default="INFO", description="logging level")
    insecure: bool = Field(default=False, description="allow listening on a non-loopback address without TLS or "
                           "without authentication (warned at every start); never in production")
    tls_cert_file: Path | None = Field(default=None, description="the server's certificate chain (PEM): serve TLS "
                                       "(re-read when the file changes)")
    tls_key_file: Path | None = Field(default=None, description="the server certificate's private key (PEM, "
                                      "readable by the service's user only)")
    tls_client_ca_file: Path | None = Field(default=None, description="CA certificates (PEM) of client "
                                            "certificates: mutual TLS, every client must present one")
    auth_jwks_file: Path | None = Field(default=None, description="JWKS file of the token issuer's keys: bearer "
                                        "tokens required (see docs/security.md)")
    auth_jwks_url: str | None = Field(default=None, description="JWKS URL of the token issuer's keys (https): bearer "
                                      "tokens required")
    auth_jwks_cache_seconds: float = Field(default=300.0, ge=1, le=86400, description="longest the keys are kept "
                                           "before they are read or fetched again")
    auth_issuer: str | None = Field(default=None, description="the `iss` tokens must have")
    auth_audience: str | None = Field(default=None, description="the `aud` tokens must have")
    auth_algorithms: str = Field(default="RS256,ES256,PS256", description="signature algorithms accepted "
                                 "(comma-separated; never none or HS*)")
    auth_clock_skew_seconds: float = Field(default=30.0, ge=0, le=300, description="clock skew allowed on exp and nbf")
    auth_scope_roles: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SCOPE_ROLES),
                                             description="token scope -> role it grants")
    auth_org_claim: str = Field(default=HELSEID_ORG_CLAIM, description="the claim naming the caller's "
                                "organisation number (recorded with its decisions)")

    @field_validator("pseudonym_previous_key_files", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # From the environment a string of paths, separated by commas as auth_algorithms' names are.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("REGELMOTOR_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)
