"""The ruleset lifecycle over gRPC (RulesetService): propose, approve, reject, retire, history.

Each method returns the response as a dict (field names as in the .proto) and raises DecisionError for an
error answer (its `reason` is the ErrorInfo reason: FOUR_EYES, SHA256_MISMATCH, TIMELINE, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc

from .client import RegelmotorClient, decision_error


class RulesetLifecycle:
    """RulesetService's lifecycle RPCs on a client's channel, with its token."""

    def __init__(self, client: RegelmotorClient) -> None:
        self.client = client
        self.stub = rpb_grpc.RulesetServiceStub(client.channel)  # type: ignore[no-untyped-call]

    def _call(self, method: str, request: Message) -> dict[str, Any]:
        try:
            answer = getattr(self.stub, method)(request, timeout=max(self.client.timeout, 60.0),
                                                metadata=self.client.call_metadata())
        except grpc.RpcError as error:
            raise decision_error(error) from None
        return json_format.MessageToDict(answer, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)

    def propose(self, source: str, cases: str) -> dict[str, Any]:
        return self._call("ProposeRuleset", rpb.ProposeRulesetRequest(source=source, cases=cases))

    def approve(self, name: str, version: str, sha256: str, acknowledge: Sequence[str] = ()) -> dict[str, Any]:
        return self._call("ApproveRuleset", rpb.ApproveRulesetRequest(
            name=name, version=version, sha256=sha256, acknowledge_unverified=list(acknowledge)))

    def reject(self, name: str, version: str, reason: str) -> dict[str, Any]:
        return self._call("RejectRuleset", rpb.RejectRulesetRequest(name=name, version=version, reason=reason))

    def retire(self, name: str, version: str, from_date: str, reason: str = "") -> dict[str, Any]:
        return self._call("RetireRuleset", rpb.RetireRulesetRequest(name=name, version=version, from_date=from_date,
                                                                    reason=reason))

    def history(self, name: str) -> dict[str, Any]:
        return self._call("GetRulesetHistory", rpb.GetRulesetHistoryRequest(name=name))
