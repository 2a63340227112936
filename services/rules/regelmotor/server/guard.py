"""The one place calls are let in: a grpc.aio server interceptor that checks the bearer token and the role each
method needs (`access.REQUIRED_SCOPE`), and makes the verified identity known to the servicers (`current`)."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from grpc_status import rpc_status

from regelmotor_api.v1 import decision_pb2 as pb

from . import access
from .auth import (
    ALLOWED_ALGORITHMS,
    AuthFailure,
    Identity,
    KeySet,
    KeysUnavailable,
    Policy,
    Verifier,
    bearer_token,
    fetch_jwks_url,
    read_jwks_file,
    token_kid,
)
from .binding import bound
from .caller import set_current
from .config import Settings
from .errors import method_not_listed, scope_missing, to_status, unauthenticated, unavailable
from .startup import StartupError

log = logging.getLogger("regelmotor.server.auth")


def _refusal(handler: grpc.RpcMethodHandler[Any, Any], error: pb.ErrorResult) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind as `handler` that answers every call with `error`."""
    status = rpc_status.to_status(to_status(error))

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort_with_status(status)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)


class AccessInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, verifier: Verifier, scope_roles: Mapping[str, str]) -> None:
        self.verifier = verifier
        self.scope_roles = dict(scope_roles)

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:  # no such method: UNIMPLEMENTED, nothing to guard
            return handler
        method = handler_call_details.method
        if method not in access.REQUIRED_SCOPE:
            return _refusal(handler, method_not_listed(method))
        role = access.REQUIRED_SCOPE[method]
        if role is None:
            return handler
        try:
            identity = await self._verify(handler_call_details.invocation_metadata)
        except AuthFailure as failure:
            log.info("call refused", extra={"method": method, "reason": failure.reason})
            return _refusal(handler, unauthenticated(failure.reason, failure.message))
        except KeysUnavailable as exc:
            log.error("token keys unavailable", extra={"reason": str(exc)})
            return _refusal(handler, unavailable("the keys to check tokens with cannot be had; retry",
                                                 "JWKS_UNAVAILABLE"))
        if role not in access.roles_of(identity.scopes, self.scope_roles):
            log.info("call refused", extra={"method": method, "reason": "SCOPE_MISSING", "caller": identity.caller})
            return _refusal(handler, scope_missing(method, role, access.granting_scopes(role, self.scope_roles)))
        set_current(identity)
        if identity.certificate_bound_to is not None:
            return bound(handler, identity.certificate_bound_to)
        return handler

    async def _verify(self, metadata: Any) -> Identity:
        token = bearer_token(metadata)
        known = self.verifier.cached(token)  # the same token as before: no parse, no signature check
        if known is not None:
            return known
        if self.verifier.keys.needs_load(token_kid(token)):  # a file read or a fetch: not on the event loop
            await asyncio.to_thread(self.verifier.keys.refresh)
        return self.verifier.verify(token)


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def _key_source(settings: Settings) -> Callable[[], bytes] | None:
    if settings.auth_jwks_file is not None and settings.auth_jwks_url:
        raise StartupError("auth_jwks_url", "is set as well as auth_jwks_file", "set one of the two")
    if settings.auth_jwks_file is not None:
        return read_jwks_file(settings.auth_jwks_file)
    if settings.auth_jwks_url:
        url = urllib.parse.urlsplit(settings.auth_jwks_url)
        if url.scheme != "https" and not ((url.scheme == "http" and url.netloc.split(":")[0] in _LOOPBACK_HOSTS)
                                          or url.netloc.startswith("[::1]")):
            raise StartupError("auth_jwks_url", f"{settings.auth_jwks_url[:100]!r} is not an https:// URL",
                               "give the identity provider's https:// JWKS URL (http:// only on loopback)")
        return fetch_jwks_url(settings.auth_jwks_url)
    return None


def _policy(settings: Settings) -> Policy:
    for name in ("auth_issuer", "auth_audience"):
        if not getattr(settings, name):
            raise StartupError(name, "is not set but a JWKS is", "set it to what the identity provider's tokens "
                                                                "carry (see docs/security.md)")
    algorithms = tuple(a.strip() for a in settings.auth_algorithms.split(",") if a.strip())
    for algorithm in algorithms or ("",):
        if algorithm not in ALLOWED_ALGORITHMS:
            raise StartupError("auth_algorithms", f"{algorithm[:20]!r} is not an asymmetric signature algorithm",
                               f"choose from {', '.join(ALLOWED_ALGORITHMS)} (never none or HS*)")
    unknown = sorted(set(settings.auth_scope_roles.values()) - set(access.ROLES))
    if unknown:
        raise StartupError("auth_scope_roles", f"{unknown[0][:40]!r} is not a role",
                           f"map scopes to the roles {', '.join(access.ROLES)}")
    assert settings.auth_issuer and settings.auth_audience
    return Policy(settings.auth_issuer, settings.auth_audience, algorithms, settings.auth_clock_skew_seconds,
                  settings.auth_org_claim)


def interceptor(settings: Settings) -> AccessInterceptor | None:
    """The access interceptor the settings ask for (None: no JWKS configured, authentication off). A key set that
    cannot be read at start stops the server (StartupError); a URL's is fetched on the first call instead, so a
    server can start while the identity provider is away."""
    load = _key_source(settings)
    if load is None:
        return None
    keys = KeySet(load, settings.auth_jwks_cache_seconds)
    policy = _policy(settings)
    if settings.auth_jwks_file is not None:
        try:
            keys.refresh()
        except KeysUnavailable as exc:
            raise StartupError("auth_jwks_file", str(exc), "give a JWKS file (RFC 7517) of the issuer's public keys") \
                from None
    return AccessInterceptor(Verifier(keys, policy), settings.auth_scope_roles)
