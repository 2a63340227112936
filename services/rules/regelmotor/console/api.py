"""The console's view of the gRPC API: one channel, stubs, and each call made as the person logged in.

Every call carries the person's access token (with login on) or names the console's user as the caller (the
local default, where the API has authentication off). Answers come back as plain dicts with the .proto's field
names; a refusal is an ApiProblem."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
from flask import current_app
from google.protobuf import json_format
from google.protobuf.message import Message

from regelmotor_api.v1 import audit_pb2_grpc, decision_pb2_grpc, ruleset_pb2_grpc
from regelmotor_client import channel_credentials, decision_error

from .errors import ApiProblem
from .settings import ConsoleSettings

# Who is asking, for one call: ("authorization", "Bearer …") with login on, ("regelmotor-caller", name) without.
Metadata = list[tuple[str, str]]


def as_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def _problem(error: grpc.RpcError) -> ApiProblem:
    refused = decision_error(error)
    return ApiProblem(refused.code, refused.message, refused.field_violations, refused.reason)


class ConsoleApi:
    """The three services of the API on one channel. Thread-safe (gRPC channels and stubs are)."""

    def __init__(self, settings: ConsoleSettings) -> None:
        files = (settings.api_ca_file, settings.api_cert_file, settings.api_key_file)
        if any(f is not None for f in files):
            credentials = channel_credentials(ca_file=settings.api_ca_file, cert_file=settings.api_cert_file,
                                              key_file=settings.api_key_file)
            self.channel = grpc.secure_channel(settings.api_address, credentials)
        else:
            self.channel = grpc.insecure_channel(settings.api_address)
        self.timeout = settings.api_timeout_seconds
        self.decisions = decision_pb2_grpc.DecisionServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.rulesets = ruleset_pb2_grpc.RulesetServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.audit = audit_pb2_grpc.AuditServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.channel.close()

    def call(self, method: Callable[..., Message], request: Message, metadata: Metadata,
             *, timeout: float | None = None) -> dict[str, Any]:
        """One unary call, its answer as a dict."""
        try:
            answer = method(request, timeout=timeout or self.timeout, metadata=metadata)
        except grpc.RpcError as error:
            raise _problem(error) from None
        return as_dict(answer)

    def stream(self, method: Callable[..., Iterator[Message]], request: Message, metadata: Metadata,
               *, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """A server-streaming call, each answer as a dict."""
        try:
            for answer in method(request, timeout=timeout or self.timeout, metadata=metadata):
                yield as_dict(answer)
        except grpc.RpcError as error:
            raise _problem(error) from None


def console_api() -> ConsoleApi:
    """The API of the console serving this request."""
    api: ConsoleApi = current_app.extensions["regelmotor_api"]
    return api
