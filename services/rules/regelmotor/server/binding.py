"""Certificate-bound tokens (RFC 8705, section 3): a token whose `cnf` claim names a client certificate by its
SHA-256 thumbprint (`x5t#S256`) is accepted only on a call that presented that certificate over mutual TLS.

A stolen bound token is useless without the client certificate's private key. The check needs the peer's
certificate, which a server interceptor does not see, so the guard (server/guard.py) wraps the handler of a call
made with a bound token in one that checks before the method runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc_status import rpc_status

from .auth import AuthFailure
from .errors import to_status, unauthenticated

Context = grpc.aio.ServicerContext[Any, Any]

MISMATCH = "TOKEN_CERTIFICATE_MISMATCH"


def thumbprint(certificate_pem: bytes) -> str:
    """The certificate's `x5t#S256`: base64url, without padding, of the SHA-256 of its DER encoding."""
    der = x509.load_pem_x509_certificate(certificate_pem).public_bytes(serialization.Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def presented_thumbprint(context: Context) -> str | None:
    """The thumbprint of the client certificate gRPC verified for this call; None without one."""
    found = list(context.auth_context().get("x509_pem_cert") or ())
    return thumbprint(found[0]) if found else None


def binding_failure(bound_to: str, context: Context) -> AuthFailure | None:
    """Why a token bound to the certificate `bound_to` may not be used on this call (None: it may)."""
    presented = presented_thumbprint(context)
    if presented is None:
        return AuthFailure(MISMATCH, "the token is bound to a client certificate (cnf x5t#S256), but the call "
                                     "presented none: call over mutual TLS with that certificate")
    if not hmac.compare_digest(presented.encode("ascii"), bound_to.encode("ascii", "replace")):
        return AuthFailure(MISMATCH, "the token is bound to another client certificate (cnf x5t#S256) than the "
                                     "one the call presented")
    return None


async def _check(bound_to: str, context: Context) -> None:
    failure = binding_failure(bound_to, context)
    if failure is not None:
        await context.abort_with_status(rpc_status.to_status(to_status(unauthenticated(failure.reason,
                                                                                       failure.message))))


def _checked(behaviour: Callable[..., Any] | None, bound_to: str) -> Callable[..., Any]:
    """`behaviour` (a handler's function: a coroutine, or an async generator for a response stream), run only
    after the binding holds."""
    assert behaviour is not None, "a handler has the function of its kind"
    if inspect.isasyncgenfunction(behaviour):
        async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
            await _check(bound_to, context)
            async for item in behaviour(request, context):
                yield item

        return streaming

    async def unary(request: Any, context: Context) -> Any:
        await _check(bound_to, context)
        return await behaviour(request, context)

    return unary


def bound(handler: grpc.RpcMethodHandler[Any, Any], bound_to: str) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler`, refusing the call (UNAUTHENTICATED, TOKEN_CERTIFICATE_MISMATCH) unless it presented the client
    certificate whose thumbprint is `bound_to`."""
    codecs = {"request_deserializer": handler.request_deserializer,
              "response_serializer": handler.response_serializer}
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(_checked(handler.stream_stream, bound_to), **codecs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(_checked(handler.stream_unary, bound_to), **codecs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(_checked(handler.unary_stream, bound_to), **codecs)
    return grpc.unary_unary_rpc_method_handler(_checked(handler.unary_unary, bound_to), **codecs)
