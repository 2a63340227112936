"""Corrections through the service: a correction proposed and approved like any version decides in place of the
version it supersedes from its publication on, the decision says so, the superseded version still answers
pinned requests and replays, and a request "as known at" a moment before the correction gets the answer the
service gave then - again and again, and proven by a replay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from regelmotor.cli.main import main
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from regelmotor_api.v1 import ruleset_pb2 as rpb
from tests.auth_support import Issuer, bearer
from tests.grpc_support import details, struct
from tests.lifecycle_support import Person, cases, lifecycle_server, seed_directory, sha256, source

AUTHOR = ("ruleset:author", "ruleset:read", "ruleset:approve")
APPROVER = ("ruleset:approve", "ruleset:read")
REASON = "Lesningen av aldersgrensen var feil; loven er ikke endret."
CORRECTION = f'supersedes: "2024.1"\ncorrection_reason: "{REASON}"'
PURPOSE = "kontroll av rettelse, sak 2026/7"


@pytest.fixture
def rulesets(tmp_path: Path) -> Path:
    return seed_directory(tmp_path / "rulesets")


class Service:
    def __init__(self, idp: Issuer, channel: grpc.Channel, address: str = "") -> None:
        self.idp, self.address = idp, address
        self.anna, self.bjorn = Person(idp, channel, "anna", *AUTHOR), Person(idp, channel, "bjorn", *APPROVER)
        self.decisions = pb_grpc.DecisionServiceStub(channel)
        self.audit = apb_grpc.AuditServiceStub(channel)
        self.evaluator = bearer(idp.token(scope="evaluate"))
        self.auditor = bearer(idp.token(scope="audit", sub="revisor"))

    def evaluate(self, as_of: str, *, known_at: str = "", version: str = "", request_id: str = "",
                 alder: int = 19) -> pb.Decision:
        answer: pb.Decision = self.decisions.Evaluate(
            pb.EvaluateRequest(ruleset="sats", as_of=as_of, version=version, known_at=known_at,
                               facts=struct({"alder": alder}), request_id=request_id),
            metadata=self.evaluator, timeout=30)
        return answer

    def publish_correction(self) -> datetime:
        """Propose and approve sats 2024.1.1 (a correction of 2024.1 from 2024-06-01: adults from 20, not 18);
        the moment just before the approval."""
        text = source("2024.1.1", "2024-06-01", extra=CORRECTION, grense=20)
        assert self.anna.propose(text, cases("2024-06-01")).accepted
        before = datetime.now(UTC)
        time.sleep(0.01)
        self.bjorn.approve("2024.1.1", sha256(text))
        deadline = time.monotonic() + 20
        # Probed with an age both versions call adult, so the probes change no impact report below.
        while self.evaluate("2024-07-01", alder=40).version != "2024.1.1":  # served within a few seconds
            assert time.monotonic() < deadline, "the approved correction was not served within 20 s"
            time.sleep(0.2)
        return before


@pytest.fixture
def service(idp: Issuer, idp_jwks: Path, rulesets: Path, store_backend: str) -> Iterator[Service]:
    # known_at may be a moment just past here: the tests wait for each publication to be served themselves.
    with lifecycle_server(idp, idp_jwks, rulesets, store_backend, known_at_settle_seconds=0) as server, \
            grpc.insecure_channel(server.address) as channel:
        yield Service(idp, channel, server.address)


def test_a_published_correction_decides_for_its_days_and_says_what_it_superseded_and_since_when(
        service: Service) -> None:
    assert service.evaluate("2024-07-01").outcome.fields["voksen"].bool_value  # 19 is an adult under 2024.1
    before = service.publish_correction()
    corrected = service.evaluate("2024-07-01")
    assert corrected.version == "2024.1.1" and corrected.correction.supersedes == "2024.1"
    published = datetime.fromisoformat(corrected.correction.published_at)
    assert before < published < datetime.now(UTC)
    assert corrected.outcome.fields["voksen"].WhichOneof("kind") == "null_value"  # 19 is not 20
    earlier = service.evaluate("2024-05-31")  # before the correction's first day: the corrected version
    assert earlier.version == "2024.1" and not earlier.HasField("correction") and earlier.known_at == ""
    pinned = service.evaluate("2024-07-01", version="2024.1")  # recorded decisions replay on it
    assert pinned.version == "2024.1" and pinned.outcome.fields["voksen"].bool_value


def test_as_known_before_the_correction_the_answer_is_the_one_given_then_and_a_replay_proves_it(
        service: Service) -> None:
    before = service.publish_correction()
    asked = before.isoformat()
    then = service.evaluate("2024-07-01", known_at=asked, request_id="known-then")
    assert then.version == "2024.1" and not then.HasField("correction")
    assert datetime.fromisoformat(then.known_at) == before
    assert then.outcome.fields["voksen"].bool_value
    again = service.evaluate("2024-07-01", known_at=asked, request_id="known-then-again")
    assert (again.version, again.outcome, again.known_at) == (then.version, then.outcome, then.known_at)
    now = service.evaluate("2024-07-01", known_at=datetime.now(UTC).isoformat())
    assert now.version == "2024.1.1" and now.correction.supersedes == "2024.1"
    replay = service.audit.ReplayDecision(apb.ReplayDecisionRequest(decision_id=then.decision_id, formaal=PURPOSE),
                                          metadata=service.auditor, timeout=30)
    assert replay.identical and replay.answer_matches and replay.decision.known_at == then.known_at


def test_a_request_id_stands_for_its_known_at_too(service: Service) -> None:
    first = datetime.now(UTC)
    asked = service.evaluate("2024-07-01", known_at=first.isoformat(), request_id="once")
    retried = service.evaluate("2024-07-01", known_at=first.isoformat(), request_id="once")
    assert retried.decision_id == asked.decision_id  # the same request: the decision stored the first time
    with pytest.raises(grpc.RpcError, match="ALREADY_EXISTS") as caught:
        service.evaluate("2024-07-01", known_at=datetime.now(UTC).isoformat(), request_id="once")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details(caught.value)["ErrorInfo"].reason == "REQUEST_ID_REUSED"


@pytest.mark.parametrize(("known_at", "reason"), [
    ("2026-01-01T00:00:00", "an ISO 8601 moment with a UTC offset is required"),
    ("i morgen", "an ISO 8601 moment with a UTC offset is required"),
    ("2026-01-01T00:00:00+01:00" + "0" * 40, "an ISO 8601 moment with a UTC offset is required"),
    ("0001-01-01T00:00:00+01:00", "an ISO 8601 moment with a UTC offset is required"),  # before year 1 in UTC
    ((datetime.now(UTC) + timedelta(days=2)).isoformat(), "must be at least 0 seconds ago"),
])
def test_a_known_at_that_is_not_a_past_moment_is_invalid_argument_naming_it(
        service: Service, known_at: str, reason: str) -> None:
    with pytest.raises(grpc.RpcError, match="INVALID_ARGUMENT") as caught:
        service.evaluate("2024-07-01", known_at=known_at)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (violation,) = details(caught.value)["BadRequest"].field_violations
    assert violation.field == "known_at" and reason in violation.description


def test_ruleset_history_and_get_ruleset_show_the_correction_with_its_reason(service: Service) -> None:
    service.publish_correction()
    history = service.anna.history()
    stored = {v.version: v for v in history.versions}
    assert stored["2024.1.1"].supersedes == "2024.1" and stored["2024.1.1"].correction_reason == REASON
    assert stored["2024.1.1"].published_at and stored["2024.1"].supersedes == ""
    assert list(stored["2024.1"].corrected_by) == ["2024.1.1"] and not stored["2024.1.1"].corrected_by
    corrected = service.anna.stub.GetRuleset(rpb.GetRulesetRequest(name="sats", version="2024.1"),
                                             metadata=service.anna.metadata, timeout=30)
    assert list(corrected.version.corrected_by) == ["2024.1.1"]
    described = service.anna.stub.GetRuleset(rpb.GetRulesetRequest(name="sats", version="2024.1.1"),
                                             metadata=service.anna.metadata, timeout=30)
    assert described.version.supersedes == "2024.1" and described.version.correction_reason == REASON
    assert described.version.published_at == stored["2024.1.1"].published_at


def test_an_overlap_without_supersedes_is_still_refused_at_approval(service: Service) -> None:
    text = source("2024.2", "2024-01-01")  # the same days as 2024.1, but not as its correction
    assert service.anna.propose(text, cases("2024-01-01")).accepted
    with pytest.raises(grpc.RpcError, match="FAILED_PRECONDITION") as caught:
        service.bjorn.approve("2024.2", sha256(text))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(caught.value)["ErrorInfo"].reason == "TIMELINE"
    assert "starts on the same day as 2024.1" in str(caught.value.details())


def test_a_correction_reaching_outside_the_superseded_version_is_refused_at_approval(service: Service) -> None:
    text = source("2024.1.1", "2023-12-01", extra=CORRECTION)
    assert service.anna.propose(text, cases("2023-12-01")).accepted
    with pytest.raises(grpc.RpcError, match="FAILED_PRECONDITION") as caught:
        service.bjorn.approve("2024.1.1", sha256(text))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "before version 2024.1 governs" in str(caught.value.details())


def _impact(service: Service, candidate: str = "", known_at: str = "") -> rpb.ImpactReport:
    """The report of the correction 2024.1.1 as stored (or of a candidate source) over the logged decisions."""
    asked = rpb.AnalyseImpactRequest(ruleset="sats", formaal=PURPOSE, known_at=known_at)
    if candidate:
        asked.source = candidate
    else:
        asked.stored.CopyFrom(rpb.VersionRef(name="sats", version="2024.1.1"))
    answers = service.anna.stub.AnalyseImpact(asked, metadata=service.anna.metadata, timeout=60)
    reports: list[rpb.ImpactReport] = [a.report for a in answers if a.WhichOneof("item") == "report"]
    assert len(reports) == 1
    reports[0].seconds = 0
    return reports[0]


def test_an_impact_analysis_as_known_at_a_moment_reads_what_was_logged_by_then_against_the_rules_then(
        service: Service) -> None:
    for age in (19, 40):  # logged under 2024.1: 19 is an adult there, not under the correction
        service.evaluate("2024-07-01", alder=age, request_id=f"before-{age}")
    # A day before the correction's first day: 2024.1 decides it still, so the correction changes nothing there.
    service.evaluate("2024-05-01", alder=19, request_id="outside-19")
    before = service.publish_correction()
    for age in (19, 40):  # logged under the correction
        service.evaluate("2024-07-01", alder=age, request_id=f"after-{age}")

    as_logged = _impact(service)  # every logged decision, "before" as logged
    assert as_logged.known_at == "" and as_logged.changed == 1  # the 19-year-old logged under 2024.1
    as_then = _impact(service, known_at=before.isoformat())  # only those logged by then, against 2024.1
    assert datetime.fromisoformat(as_then.known_at) == before
    assert as_then.analysed < as_logged.analysed and as_then.changed == 1
    assert as_then.decided == as_then.analysed - 1  # all made by 2024.1, all but 2024-05-01 on the correction's days
    (voksen,) = [o for o in as_then.outcomes if o.field == "voksen"]
    assert [(e.before.bool_value, e.after.WhichOneof("kind")) for e in voksen.examples] == [(True, "null_value")]
    assert _impact(service, known_at=before.isoformat()) == as_then  # the same report whenever asked
    as_now = _impact(service, known_at=datetime.now(UTC).isoformat())  # "before" is the correction's answer now
    assert as_now.analysed == as_logged.analysed and as_now.changed == 0



def test_lookups_as_known_at_a_moment_are_logged_but_left_out_of_an_impact_analysis(service: Service) -> None:
    service.evaluate("2024-07-01", alder=19, request_id="decided-19")
    before = service.publish_correction()
    report = _impact(service)
    for number in range(3):  # an auditor's lookups of what was answered before the correction
        looked_up = service.evaluate("2024-07-01", alder=19, known_at=before.isoformat(), request_id=f"look-{number}")
        assert looked_up.version == "2024.1"
    assert _impact(service) == report  # the same decisions analysed, the same changes
    listed = service.audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, page_size=100),
                                         metadata=service.auditor, timeout=30)
    assert {d.request_id for d in listed.decisions} >= {"look-0", "look-1", "look-2", "decided-19"}


def test_the_impact_command_takes_known_at(service: Service, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    service.evaluate("2024-07-01", alder=19, request_id="before-19")
    before = service.publish_correction()
    token = tmp_path / "anna.jwt"
    token.write_text(service.idp.token(scope=list(AUTHOR), sub="anna", client_id="regelmotor-cli"), encoding="utf-8")
    command = ["ruleset", "impact", "--version", "2024.1.1", "--ruleset", "sats", "--formaal", PURPOSE, "--address",
               service.address, "--token-file", str(token), "--json"]
    assert main([*command, "--known-at", before.isoformat()]) == 0
    report = json_format.Parse(capsys.readouterr().out, rpb.ImpactReport())
    assert datetime.fromisoformat(report.known_at) == before and report.changed == 1
    assert main([*command, "--known-at", "i går"]) == 2
    assert "known_at" in capsys.readouterr().err


def test_an_impact_analysis_with_a_known_at_that_is_not_a_past_moment_is_refused_naming_it(service: Service) -> None:
    with pytest.raises(grpc.RpcError, match="INVALID_ARGUMENT") as caught:
        _impact(service, candidate=source("2024.1.1", "2024-06-01", extra=CORRECTION), known_at="i går")
    (violation,) = details(caught.value)["BadRequest"].field_violations
    assert violation.field == "known_at" and "UTC offset" in violation.description


def test_a_known_at_of_the_last_seconds_is_refused_since_an_instance_may_not_know_yet_what_was_published(
        idp: Issuer, idp_jwks: Path, rulesets: Path) -> None:
    """By default a known_at must be 10 seconds old: each instance takes a publication within a few seconds, so a
    more recent moment could be answered otherwise by another instance, or later by this one."""
    with lifecycle_server(idp, idp_jwks, rulesets, "sqlite") as server, \
            grpc.insecure_channel(server.address) as channel:
        service = Service(idp, channel, server.address)
        with pytest.raises(grpc.RpcError, match="INVALID_ARGUMENT") as caught:
            service.evaluate("2024-07-01", known_at=(datetime.now(UTC) - timedelta(seconds=2)).isoformat())
        (violation,) = details(caught.value)["BadRequest"].field_violations
        assert violation.field == "known_at" and "must be at least 10 seconds ago" in violation.description
        time.sleep(11)  # the versions stored at the start are 10 seconds old now
        settled = datetime.now(UTC) - timedelta(seconds=10)
        answer = service.evaluate("2024-07-01", known_at=settled.isoformat())
        assert answer.version == "2024.1" and datetime.fromisoformat(answer.known_at) == settled


def test_a_corrected_version_is_retired_only_after_its_correction_which_hands_its_days_back(service: Service) -> None:
    service.publish_correction()
    with pytest.raises(grpc.RpcError, match="FAILED_PRECONDITION") as caught:
        service.bjorn.retire("2024.1", "2031-01-01")
    assert details(caught.value)["ErrorInfo"].reason == "TIMELINE"
    assert "has a published correction (2024.1.1) that decides in its place: retire the correction first" in str(
        caught.value.details())
    service.bjorn.retire("2024.1.1", "2031-01-01")
    deadline = time.monotonic() + 20
    while service.evaluate("2024-07-01").version != "2024.1":  # the corrected version decides its days again
        assert time.monotonic() < deadline, "the retired correction still decided after 20 s"
        time.sleep(0.2)
    service.bjorn.retire("2024.1", "2031-01-01")
    assert service.anna.states() == {"2024.1": "retired", "2024.1.1": "retired"}
