"""A second port, plaintext, that serves only the gRPC health service (setting `health_port`).

Kubernetes' built-in gRPC probe connects without TLS (up to 1.36), so it cannot ask a service port that
serves TLS only. This port says exactly what the service port's health says - the same servicer, so it turns
NOT_SERVING at shutdown with it - and serves nothing else: no decision, ruleset or audit call, no reflection."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from . import startup
from .config import Settings


def health_only_server(servicer: health.aio.HealthServicer, settings: Settings) -> grpc.aio.Server | None:
    """The health-only server on `health_port`, not yet started (None when the setting is unset)."""
    if settings.health_port is None:
        return None
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    try:
        server.add_insecure_port(f"{settings.host}:{settings.health_port}")
    except RuntimeError:
        raise startup.StartupError("health_port", f"cannot listen on {settings.host}:{settings.health_port} (in use, "
                                   "or the address is not this machine's)", "choose another port or stop the other "
                                   "process") from None
    return server
