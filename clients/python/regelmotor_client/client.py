"""RegelmotorClient: evaluate facts over gRPC and get decisions as plain dicts.

Plaintext by default; TLS with `tls=True` (the system's CAs) or a `ca_file`, and mutual TLS with a client
certificate (`cert_file`, `key_file`) as well. A bearer token (`token_file`, `token_env` or `token_command`,
regelmotor_client.token) goes with every call as `authorization` metadata.

The token is plain per-call metadata rather than gRPC call credentials: call credentials are sent only over
TLS, and a server on loopback may be plaintext; and a token that cannot be got (a failing token command)
is a ClientConfigError in the caller, not a status made up inside gRPC. gRPC's rule that a token never
crosses a network in the clear is kept here: a token with a plaintext channel is refused unless the address
is a loopback one.

Several instances of the service (sharing one PostgreSQL, deploy/README.md): give their addresses as a list, or
one DNS name that resolves to all of them (regelmotor_client.targets). Calls are spread over the instances that
are up (gRPC round_robin).

UNAVAILABLE (an engine worker failed; the instance, or the network to it, went away) is retried, up to `retries`
times, with the same request_id, and round_robin sends the retry to an instance that is up. That is safe even when
the first attempt was stored before its answer was lost: the decision log keeps one decision per caller and
request_id, so the retry is answered with the decision stored, on whichever instance it lands. A stream
(`evaluate_many`) is not retried: send the items not answered again, with their request_ids.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc

from .errors import ClientConfigError
from .targets import BALANCING, channel_target, is_loopback_target
from .token import TokenSource, token_source


@dataclass
class DecisionError(Exception):
    """An error answer: the status code, the message and, for bad input, each field and reason."""

    code: str
    message: str
    field_violations: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    def __str__(self) -> str:
        fields = "; ".join(f"{k}: {v}" for k, v in self.field_violations.items())
        return f"{self.code}: {self.message}" + (f" ({fields})" if fields and fields not in self.message else "")


def decision_error(error: grpc.RpcError) -> DecisionError:
    status = rpc_status.from_call(error)
    violations: dict[str, str] = {}
    reason = ""
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.update({v.field: v.description for v in bad.field_violations})
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    return DecisionError(error.code().name, error.details() or "", violations, reason)


_MAX_PEM_BYTES = 1024 * 1024


def _read_pem(option: str, path: str | Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_PEM_BYTES + 1)
    except OSError as exc:
        raise ClientConfigError(option, f"cannot read {path} ({exc.strerror or exc})") from None
    if len(data) > _MAX_PEM_BYTES or b"-----BEGIN " not in data:
        raise ClientConfigError(option, f"{path} is not a PEM file")
    return data


def channel_credentials(*, ca_file: str | Path | None = None, cert_file: str | Path | None = None,
                        key_file: str | Path | None = None) -> grpc.ChannelCredentials:
    """TLS credentials: trust `ca_file` (else the system's CAs); present `cert_file`/`key_file` for mutual TLS."""
    if (cert_file is None) != (key_file is None):
        missing = "key_file" if key_file is None else "cert_file"
        raise ClientConfigError(missing, "a client certificate needs both cert_file and key_file")
    return grpc.ssl_channel_credentials(
        root_certificates=_read_pem("ca_file", ca_file) if ca_file is not None else None,
        private_key=_read_pem("key_file", key_file) if key_file is not None else None,
        certificate_chain=_read_pem("cert_file", cert_file) if cert_file is not None else None)


def _plain(value: Any) -> Any:
    """protobuf Struct has only doubles: give whole numbers back as ints, as the ruleset declared them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# How much explanation to ask for: "full" (every rule, fired or not: the default), "fired" (only the rules that
# fired) or "none" (the outcome, the facts as used, the provenance and the ids). The decision log can give the
# full explanation of any decision later (AuditService.ReplayDecision).
EXPLANATIONS = {"full": pb.EXPLANATION_LEVEL_FULL, "fired": pb.EXPLANATION_LEVEL_FIRED,
                "none": pb.EXPLANATION_LEVEL_NONE}


def _request(ruleset: str, facts: dict[str, Any], as_of: str | None, version: str | None,
             request_id: str | None, explanation: str = "full", known_at: str | None = None) -> pb.EvaluateRequest:
    if explanation not in EXPLANATIONS:
        raise ValueError(f"explanation must be one of {', '.join(EXPLANATIONS)}, not {explanation!r}")
    message = pb.EvaluateRequest(ruleset=ruleset, as_of=as_of or "", version=version or "",
                                 request_id=request_id or str(uuid.uuid4()), known_at=known_at or "")
    if explanation != "full":  # full is what an unset level means: the request stays as it was before the levels
        message.explanation = EXPLANATIONS[explanation]
    structured = struct_pb2.Struct()
    structured.update(facts)
    message.facts.CopyFrom(structured)
    return message


class RegelmotorClient:
    def __init__(self, address: str | Sequence[str] = "127.0.0.1:50051", *, timeout: float = 10.0,
                 retries: int = 3, tls: bool = False, ca_file: str | Path | None = None,
                 cert_file: str | Path | None = None, key_file: str | Path | None = None,
                 server_name: str | None = None, token_file: str | Path | None = None,
                 token_env: str | None = None, token_command: str | Sequence[str] | None = None,
                 caller: str | None = None) -> None:
        """`address`: a gRPC target ("host:port", "dns:///name:port"), or a list of instances' "IP:port" addresses;
        calls are balanced over every address (see the module docstring). Plaintext unless `tls` or any of the
        files is given; `server_name`: the name the server's certificate must carry when it is not the address's
        (instances given by IP address). With at most one of the token options, a bearer token on every call.
        `caller` names this client in `regelmotor-caller` metadata, which a server hears only with authentication
        off (a token names the caller otherwise). ClientConfigError for an address, file, variable or command that
        cannot be used."""
        target = channel_target(address)
        secure = tls or any(f is not None for f in (ca_file, cert_file, key_file))
        credentials = (channel_credentials(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
                       if secure else None)
        self.token: TokenSource | None = token_source(token_file=token_file, token_env=token_env,
                                                      token_command=token_command)
        if self.token is not None and not secure and not is_loopback_target(target):
            raise ClientConfigError(self.token.parameter, f"a token is sent only over TLS or to a loopback "
                                                          f"address, not in the clear to {target}")
        options = [*BALANCING, *([("grpc.ssl_target_name_override", server_name)] if server_name else [])]
        self.channel = (grpc.secure_channel(target, credentials, options) if credentials is not None
                        else grpc.insecure_channel(target, options))
        self.stub = pb_grpc.DecisionServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.timeout = timeout
        self.retries = retries
        self.caller = caller

    def _metadata(self) -> list[tuple[str, str]]:
        """The bearer token, got again (file re-read, command re-run) when it has changed or expires soon; and the
        caller's own name, when given."""
        named = [] if self.caller is None else [("regelmotor-caller", self.caller)]
        return named + ([] if self.token is None else [("authorization", f"Bearer {self.token.token()}")])

    def call_metadata(self) -> list[tuple[str, str]]:
        """The metadata every call of this client carries (the bearer token), for other services' stubs."""
        return self._metadata()

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> RegelmotorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def evaluate(self, ruleset: str, facts: dict[str, Any], *, as_of: str | None = None,
                 version: str | None = None, request_id: str | None = None,
                 explanation: str = "full", known_at: str | None = None) -> dict[str, Any]:
        """The decision as a dict (field names as in the .proto); DecisionError for an error answer. `explanation`:
        "full", "fired" or "none" (see EXPLANATIONS); a partial one says so in `explanation_level`. `known_at` (ISO
        8601 with offset): decide with the versions published by that moment (the decision says so)."""
        message = _request(ruleset, facts, as_of, version, request_id, explanation, known_at)
        for attempt in range(self.retries + 1):
            try:
                answer = self.stub.Evaluate(message, timeout=self.timeout, metadata=self._metadata())
                return _plain(json_format.MessageToDict(answer, preserving_proto_field_name=True))  # type: ignore[no-any-return]
            except grpc.RpcError as error:
                if error.code() is not grpc.StatusCode.UNAVAILABLE or attempt == self.retries:
                    raise decision_error(error) from None
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def evaluate_many(self, items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Evaluate over one stream. Each item: {ruleset, facts, as_of?, version?, request_id?, explanation?,
        known_at?}.
        Yields one dict per item, in order: the decision, or {"error": {...}} for that item."""
        requests = (_request(i["ruleset"], i["facts"], i.get("as_of"), i.get("version"), i.get("request_id"),
                             i.get("explanation", "full"), i.get("known_at")) for i in items)
        for answer in self.stub.EvaluateStream(requests, metadata=self._metadata()):
            yield _plain(json_format.MessageToDict(answer, preserving_proto_field_name=True))
