"""Ruleset versions kept in the store and their lifecycle over a real gRPC channel, with tokens made here:
propose (author) → approve by a second person (approver) → published; reject; bad input stores nothing.
Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.auth_support import Issuer, bearer
from tests.grpc_support import details, struct
from tests.lifecycle_support import Person, cases, lifecycle_server, seed_directory, sha256, source

AUTHOR = ("ruleset:author", "ruleset:read", "ruleset:approve")  # anna may approve, only not her own proposals
APPROVER = ("ruleset:approve", "ruleset:read")


@pytest.fixture
def rulesets(tmp_path: Path) -> Path:
    return seed_directory(tmp_path / "rulesets")


@pytest.fixture
def people(idp: Issuer, idp_jwks: Path, rulesets: Path,
           store_backend: str) -> Iterator[tuple[Person, Person, grpc.Channel]]:
    with lifecycle_server(idp, idp_jwks, rulesets, store_backend) as server, \
            grpc.insecure_channel(server.address) as channel:
        yield Person(idp, channel, "anna", *AUTHOR), Person(idp, channel, "bjorn", *APPROVER), channel


def _code_and_reason(error: pytest.ExceptionInfo[grpc.RpcError]) -> tuple[grpc.StatusCode, str]:
    call = error.value
    assert isinstance(call, grpc.Call)
    return call.code(), details(call)["ErrorInfo"].reason


def test_the_seeded_version_is_in_the_store_with_its_import_event(
        people: tuple[Person, Person, grpc.Channel]) -> None:
    anna, _, _ = people
    history = anna.history()
    assert [(v.version, v.state) for v in history.versions] == [("2024.1", "published")]
    assert [(e.action, e.who, e.version) for e in history.events] == [
        ("imported", "regelmotor (first start)", "2024.1")]


def test_a_proposal_approved_by_a_second_person_is_published_and_recorded(
        people: tuple[Person, Person, grpc.Channel]) -> None:
    anna, bjorn, _ = people
    text = source("2025.1", "2025-01-01", grense=20)
    proposed = anna.propose(text, cases("2025-01-01"))
    assert proposed.accepted, proposed
    assert (proposed.version.state, proposed.version.proposed_by, proposed.version.sha256) == (
        "proposed", "anna", sha256(text))
    approved = bjorn.approve("2025.1", sha256(text))
    assert approved.version.state == "published"
    events = [(e.action, e.who, e.version, e.sha256) for e in anna.history().events]
    assert events[1:] == [("proposed", "anna", "2025.1", sha256(text)), ("approved", "bjorn", "2025.1", sha256(text))]


def test_the_proposer_cannot_approve_her_own_proposal(people: tuple[Person, Person, grpc.Channel]) -> None:
    anna, _, _ = people
    text = source("2025.1", "2025-01-01")
    assert anna.propose(text, cases("2025-01-01")).accepted
    with pytest.raises(grpc.RpcError, match="another person must approve it") as caught:
        anna.approve("2025.1", sha256(text))
    assert _code_and_reason(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "FOUR_EYES")
    assert anna.states()["2025.1"] == "proposed"


def test_an_approval_naming_another_sha256_is_refused(people: tuple[Person, Person, grpc.Channel]) -> None:
    anna, bjorn, _ = people
    assert anna.propose(source("2025.1", "2025-01-01"), cases("2025-01-01")).accepted
    reviewed = sha256(source("2025.1", "2025-01-01", grense=21))  # what bjorn read was another text
    with pytest.raises(grpc.RpcError, match="approve what you reviewed") as caught:
        bjorn.approve("2025.1", reviewed)
    assert _code_and_reason(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "SHA256_MISMATCH")
    assert anna.states()["2025.1"] == "proposed"


def test_an_invalid_source_comes_back_with_diagnostics_and_nothing_is_stored(
        people: tuple[Person, Person, grpc.Channel]) -> None:
    anna, _, _ = people
    answer = anna.propose(source("2025.1", "2025-01-01").replace("when: alder", "when: alderr"), cases("2025-01-01"))
    assert not answer.accepted
    assert any("alderr" in d.message for d in answer.diagnostics), answer.diagnostics
    assert list(anna.states()) == ["2024.1"]


def test_a_name_or_version_longer_than_the_lifecycle_rpcs_accept_is_refused_at_its_line_and_not_stored(
        people: tuple[Person, Person, grpc.Channel]) -> None:
    anna, _, _ = people
    long_version = "2025." + "1" * 120  # 125 characters: approve, reject and history would refuse it
    answer = anna.propose(source(long_version, "2025-01-01"), cases("2025-01-01"))
    assert not answer.accepted
    assert [(d.line, d.message) for d in answer.diagnostics] == [
        (2, "version is 125 characters; at most 100")]
    long_name = source("2025.1", "2025-01-01").replace("name: sats", "name: s" + "a" * 100)
    answer = anna.propose(long_name, cases("2025-01-01"))
    assert [(d.line, d.message) for d in answer.diagnostics] == [(1, "ruleset name is 101 characters; at most 100")]
    assert list(anna.states()) == ["2024.1"]


def test_a_proposal_whose_cases_fail_or_are_missing_is_not_stored(people: tuple[Person, Person, grpc.Channel]) -> None:
    anna, _, _ = people
    failing = anna.propose(source("2025.1", "2025-01-01"), cases("2025-01-01", voksen=False))
    assert not failing.accepted and failing.test.failed == 1
    assert [d.message for d in anna.propose(source("2025.1", "2025-01-01"), "").test.diagnostics] == [
        "a cases file needs `cases`: a list"]
    missing = anna.propose(source("2025.1", "2025-01-01"), "cases: []")
    assert not missing.accepted
    assert [d.message for d in missing.diagnostics] == [
        "a proposal needs its cases: give at least one case that passes"]
    draft = anna.propose(source("2025.1", "2025-01-01", status="draft"), cases("2025-01-01"))
    assert not draft.accepted and "must say `status: published`" in draft.diagnostics[0].message
    assert list(anna.states()) == ["2024.1"]


def test_a_version_string_already_used_is_refused(people: tuple[Person, Person, grpc.Channel]) -> None:
    anna, _, _ = people
    with pytest.raises(grpc.RpcError, match=re.escape("sats@2024.1 already exists (published)")) as caught:
        anna.propose(source("2024.1", "2024-06-01", grense=30), cases("2024-06-01"))
    assert _code_and_reason(caught) == (grpc.StatusCode.ALREADY_EXISTS, "VERSION_EXISTS")
    assert len(anna.history().events) == 1


def test_an_unverified_hjemmel_needs_the_approver_s_acknowledgement_which_is_recorded(
        people: tuple[Person, Person, grpc.Channel]) -> None:
    anna, bjorn, _ = people
    text = source("2025.1", "2025-01-01", verified=False)
    assert list(anna.propose(text, cases("2025-01-01")).version.unverified_hjemler) == ["h1"]
    with pytest.raises(grpc.RpcError, match=r"hjemler marked not verified \(h1\)") as caught:
        bjorn.approve("2025.1", sha256(text))
    assert _code_and_reason(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "HJEMMEL_NOT_VERIFIED")
    assert bjorn.approve("2025.1", sha256(text), acknowledge=("h1",)).version.state == "published"
    assert '"acknowledged_unverified": ["h1"]' in anna.history().events[-1].detail_json


def test_overlapping_or_gapped_versions_are_not_published(people: tuple[Person, Person, grpc.Channel]) -> None:
    anna, bjorn, _ = people
    same_day = source("2024.2", "2024-01-01", grense=19)
    assert anna.propose(same_day, cases("2024-01-01")).accepted
    with pytest.raises(grpc.RpcError, match=re.escape("starts on the same day as 2024.1")) as caught:
        bjorn.approve("2024.2", sha256(same_day))
    assert _code_and_reason(caught) == (grpc.StatusCode.FAILED_PRECONDITION, "TIMELINE")
    # 2024.1 is open-ended, so a later version takes over from its first day; one that declares its end, and one
    # after a gap, show the two other refusals.
    ended = source("2025.1", "2025-01-01", extra="gyldig_til: 2025-06-30")
    assert anna.propose(ended, cases("2025-01-01")).accepted
    assert bjorn.approve("2025.1", sha256(ended)).version.state == "published"
    gapped = source("2026.1", "2026-01-01")
    assert anna.propose(gapped, cases("2026-01-01")).accepted
    with pytest.raises(grpc.RpcError, match=r"gap: no version of 'sats' governs 2025-07-01 – 2025-12-31"):
        bjorn.approve("2026.1", sha256(gapped))
    assert anna.states() == {"2024.1": "published", "2024.2": "proposed", "2025.1": "published", "2026.1": "proposed"}


def test_a_rejection_needs_a_reason_and_is_recorded(people: tuple[Person, Person, grpc.Channel]) -> None:
    anna, bjorn, _ = people
    assert anna.propose(source("2025.1", "2025-01-01"), cases("2025-01-01")).accepted
    with pytest.raises(grpc.RpcError, match="reason: required") as caught:
        bjorn.reject("2025.1", "  ")
    assert isinstance(caught.value, grpc.Call) and caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bjorn.reject("2025.1", "satsen er feil").version.state == "rejected"
    assert anna.history().events[-1].reason == "satsen er feil"
    with pytest.raises(grpc.RpcError, match="is rejected, not proposed"):
        bjorn.approve("2025.1", sha256(source("2025.1", "2025-01-01")))


def test_a_published_version_is_served_after_a_restart_on_the_same_store(
        idp: Issuer, idp_jwks: Path, rulesets: Path, store_backend: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with lifecycle_server(idp, idp_jwks, rulesets, store_backend, data_dir=data) as server, \
            grpc.insecure_channel(server.address) as channel:
        anna, bjorn = Person(idp, channel, "anna", *AUTHOR), Person(idp, channel, "bjorn", *APPROVER)
        text = source("2025.1", "2025-01-01", grense=67)
        assert anna.propose(text, cases("2025-01-01").replace("alder: 40", "alder: 70")).accepted
        bjorn.approve("2025.1", sha256(text))
    (rulesets / "sats" / "2024.1.yaml").unlink()  # the directory no longer matters: the store is seeded
    with lifecycle_server(idp, idp_jwks, rulesets, store_backend, data_dir=data) as server, \
            grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        token = bearer(idp.token(scope="evaluate"))
        for as_of, version, voksen in (("2024-05-01", "2024.1", True), ("2025-05-01", "2025.1", None)):
            answer = stub.Evaluate(pb.EvaluateRequest(ruleset="sats", as_of=as_of, facts=struct({"alder": 40}),
                                                      request_id=f"r-{as_of}"), metadata=token, timeout=30)
            assert answer.version == version
            assert json_format.MessageToDict(answer.outcome).get("voksen") == voksen
