"""A small ruleset (`sats`) whose versions the lifecycle tests propose, and a server with tokens for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

from regelmotor.core.loader import load_ruleset_text
from regelmotor.server.app import RunningServer
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.auth_support import AUDIENCE, ISSUER, Issuer, bearer
from tests.grpc_support import server_in_process
from tests.postgres_support import postgres_schema

SOURCE = """\
name: sats
version: "{version}"
title: Sats {version}
status: {status}
gyldig_fra: {fra}
{extra}
hjemler:
  h1:
    kilde: LOV-1999-07-02-63
    verified: {verified}
facts:
  alder: {{type: int, required: true}}
rules:
  - id: voksen
    title: Voksen
    hjemmel: h1
    when: alder >= {grense}
    then: {{voksen: true}}
outcomes:
  voksen:
    type: bool
    combine: unique
"""
CASES = """\
cases:
  - name: voksen
    as_of: {fra}
    facts: {{alder: 40}}
    expect: {{voksen: {voksen}}}
"""


def source(version: str, fra: str, *, extra: str = "", verified: bool = True, grense: int = 18,
           status: str = "published") -> str:
    return SOURCE.format(version=version, fra=fra, extra=extra, verified=str(verified).lower(), grense=grense,
                         status=status)


def cases(fra: str, voksen: bool = True) -> str:
    return CASES.format(fra=fra, voksen=str(voksen).lower())


def sha256(text: str) -> str:
    return load_ruleset_text(text, "source").sha256


def seed_directory(root: Path) -> Path:
    """A rulesets directory with sats 2024.1 (published, from 2024-01-01, open-ended)."""
    text = source("2024.1", "2024-01-01")
    (root / "sats").mkdir(parents=True)
    (root / "sats" / "2024.1.yaml").write_text(text, encoding="utf-8")
    (root / "sats" / "2024.1.cases.yaml").write_text(cases("2024-01-01"), encoding="utf-8")
    (root / "published.txt").write_text(f"sats 2024.1 {sha256(text)}\n", encoding="utf-8")
    return root


@contextmanager
def store_location(backend: str) -> Iterator[str]:
    """'sqlite' (in the server's data_dir), or a PostgreSQL DSN in a fresh schema."""
    if backend == "sqlite":
        yield "sqlite"
    else:
        with postgres_schema() as dsn:
            yield dsn


@contextmanager
def lifecycle_server(issuer: Issuer, jwks: Path, rulesets: Path, decision_log: str,
                     **overrides: Any) -> Iterator[RunningServer]:
    with server_in_process(auth_jwks_file=jwks, auth_issuer=ISSUER, auth_audience=AUDIENCE, rulesets=rulesets,
                           decision_log=decision_log, **overrides) as (running, _, _):
        yield running


class Person:
    """Someone with a token: calls RulesetService as that person."""

    def __init__(self, issuer: Issuer, channel: grpc.Channel, sub: str, *roles: str) -> None:
        self.metadata = bearer(issuer.token(scope=list(roles), sub=sub, client_id="regelmotor-cli"))
        self.stub = rpb_grpc.RulesetServiceStub(channel)

    def propose(self, text: str, cases_text: str) -> rpb.ProposeRulesetResponse:
        answer: rpb.ProposeRulesetResponse = self.stub.ProposeRuleset(
            rpb.ProposeRulesetRequest(source=text, cases=cases_text), metadata=self.metadata, timeout=60)
        return answer

    def approve(self, version: str, sha: str, acknowledge: tuple[str, ...] = ()) -> rpb.ApproveRulesetResponse:
        answer: rpb.ApproveRulesetResponse = self.stub.ApproveRuleset(
            rpb.ApproveRulesetRequest(name="sats", version=version, sha256=sha, acknowledge_unverified=acknowledge),
            metadata=self.metadata, timeout=30)
        return answer

    def reject(self, version: str, reason: str) -> rpb.RejectRulesetResponse:
        answer: rpb.RejectRulesetResponse = self.stub.RejectRuleset(
            rpb.RejectRulesetRequest(name="sats", version=version, reason=reason), metadata=self.metadata, timeout=30)
        return answer

    def retire(self, version: str, from_date: str) -> rpb.RetireRulesetResponse:
        answer: rpb.RetireRulesetResponse = self.stub.RetireRuleset(
            rpb.RetireRulesetRequest(name="sats", version=version, from_date=from_date, reason="erstattet"),
            metadata=self.metadata, timeout=30)
        return answer

    def history(self, name: str = "sats") -> rpb.GetRulesetHistoryResponse:
        answer: rpb.GetRulesetHistoryResponse = self.stub.GetRulesetHistory(
            rpb.GetRulesetHistoryRequest(name=name), metadata=self.metadata, timeout=30)
        return answer

    def states(self) -> dict[str, str]:
        return {v.version: v.state for v in self.history().versions}
