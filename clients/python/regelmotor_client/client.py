"""RegelmotorClient: evaluate facts over gRPC and get decisions as plain dicts.

UNAVAILABLE (an engine worker failed) is retried with the same request_id, which is safe: the call
had no effect.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc


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


def _error(error: grpc.RpcError) -> DecisionError:
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


def _plain(value: Any) -> Any:
    """protobuf Struct has only doubles: give whole numbers back as ints, as the ruleset declared them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _request(ruleset: str, facts: dict[str, Any], as_of: str | None, version: str | None,
             request_id: str | None) -> pb.EvaluateRequest:
    message = pb.EvaluateRequest(ruleset=ruleset, as_of=as_of or "", version=version or "",
                                 request_id=request_id or str(uuid.uuid4()))
    structured = struct_pb2.Struct()
    structured.update(facts)
    message.facts.CopyFrom(structured)
    return message


class RegelmotorClient:
    def __init__(self, address: str = "127.0.0.1:50051", *, timeout: float = 10.0, retries: int = 3) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.DecisionServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.timeout = timeout
        self.retries = retries

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> RegelmotorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def evaluate(self, ruleset: str, facts: dict[str, Any], *, as_of: str | None = None,
                 version: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        """The decision as a dict (field names as in the .proto); DecisionError for an error answer."""
        message = _request(ruleset, facts, as_of, version, request_id)
        for attempt in range(self.retries + 1):
            try:
                answer = self.stub.Evaluate(message, timeout=self.timeout)
                return _plain(json_format.MessageToDict(answer, preserving_proto_field_name=True))  # type: ignore[no-any-return]
            except grpc.RpcError as error:
                if error.code() is not grpc.StatusCode.UNAVAILABLE or attempt == self.retries:
                    raise _error(error) from None
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def evaluate_many(self, items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Evaluate over one stream. Each item: {ruleset, facts, as_of?, version?, request_id?}.
        Yields one dict per item, in order: the decision, or {"error": {...}} for that item."""
        requests = (_request(i["ruleset"], i["facts"], i.get("as_of"), i.get("version"), i.get("request_id"))
                    for i in items)
        for answer in self.stub.EvaluateStream(requests):
            yield _plain(json_format.MessageToDict(answer, preserving_proto_field_name=True))
