"""The secondary-source mark through the service, over a real channel: a stay charged in 2025 is decided by the
correction utskrivningsklar 2019.1.1 and its answer carries ParameterTrace.sekundaerkilde on the 2025 rate (at
FULL and FIRED); the same facts pinned to 2019.1, and a stay wholly in 2024, carry no such field; the log keeps
the answer as it was given (FetchDecision), and a replay proves it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date
from typing import Any

import grpc
import pytest

from regelmotor.core.cases import load_cases
from regelmotor.core.repository import CASES_SUFFIX
from regelmotor.server.app import RunningServer
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.conftest import BUNDLED_RULESETS
from tests.grpc_support import server_in_process, struct
from tests.test_wire import MOTOR

CALLER = (("regelmotor-caller", "dips-a"),)
PURPOSE = "kontroll av døgnpris 2025"
EVALUATE = "/regelmotor.v1.DecisionService/Evaluate"
FETCH = "/regelmotor.v1.DecisionService/FetchDecision"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with server_in_process(workers=1) as (running, _, _):
        yield running


def _case(prefix: str) -> tuple[dict[str, Any], date]:
    ruleset = MOTOR.repository.get("utskrivningsklar", "2019.1.1")
    path = BUNDLED_RULESETS / "utskrivningsklar" / f"2019.1.1{CASES_SUFFIX}"
    [case] = [c for c in load_cases(path, ruleset) if c.name.startswith(prefix)]
    return case.facts, case.as_of


def _evaluate(server: RunningServer, facts: dict[str, Any], as_of: date, request_id: str, *,
              version: str = "", level: pb.ExplanationLevel = pb.EXPLANATION_LEVEL_UNSPECIFIED) -> bytes:
    """The answer's bytes exactly as the service sent them."""
    asked = pb.EvaluateRequest(ruleset="utskrivningsklar", version=version, as_of=as_of.isoformat(),
                               facts=struct(facts), request_id=request_id, explanation=level)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(EVALUATE)
        return call(asked.SerializeToString(), metadata=CALLER, timeout=30)


def _marks(decision: pb.Decision) -> list[tuple[str, bool, str]]:
    """Each parameter read: its date, whether the sekundaerkilde field is present on the wire, and its text."""
    return [(p.on, any(f.name == "sekundaerkilde" for f, _ in p.ListFields()), p.sekundaerkilde)
            for p in decision.explanation.parameters]


def test_a_stay_charged_in_2025_carries_the_mark_on_the_2025_rate_at_full_and_fired(server: RunningServer) -> None:
    facts, as_of = _case("opphold over nyttår 2024–2025")
    for level in (pb.EXPLANATION_LEVEL_UNSPECIFIED, pb.EXPLANATION_LEVEL_FIRED):
        decision = pb.Decision.FromString(_evaluate(server, facts, as_of, f"nyttar-{level}", level=level))
        assert decision.version == "2019.1.1" and decision.correction.supersedes == "2019.1"
        [(first, first_marked, _), (second, second_marked, source)] = _marks(decision)
        assert (first, first_marked) == ("2024-12-30", False)
        assert (second, second_marked) == ("2025-01-01", True)
        assert source.startswith("Sykepleien 01/2026: «Prisen … var i fjor på 5981 kroner»")
        assert decision.outcome["belop"] == 23452
    none = pb.Decision.FromString(_evaluate(server, facts, as_of, "nyttar-none", level=pb.EXPLANATION_LEVEL_NONE))
    assert not none.HasField("explanation") and none.outcome["belop"] == 23452


def test_the_corrected_version_and_a_stay_wholly_in_2024_carry_no_mark(server: RunningServer) -> None:
    facts, as_of = _case("opphold over nyttår 2024–2025")
    corrected = pb.Decision.FromString(_evaluate(server, facts, as_of, "nyttar-2019.1", version="2019.1"))
    corrected_by = pb.Decision.FromString(_evaluate(server, facts, as_of, "nyttar-2019.1.1"))
    assert [(on, marked) for on, marked, _ in _marks(corrected)] == [("2024-12-30", False), ("2025-01-01", False)]
    assert corrected.outcome == corrected_by.outcome  # the same amount: the correction changes no outcome
    facts, as_of = _case("somatikk 2024, kommunen kan ikke ta imot")
    in_2024 = pb.Decision.FromString(_evaluate(server, facts, as_of, "mars-2024"))
    assert in_2024.version == "2019.1.1" and in_2024.outcome["belop"] == 22980
    assert [(on, marked) for on, marked, _ in _marks(in_2024)] == [("2024-03-04", False)]


def test_the_log_gives_back_the_marked_answer_and_a_replay_proves_it(server: RunningServer) -> None:
    facts, as_of = _case("somatikk mars 2025, fire døgn")
    answer = _evaluate(server, facts, as_of, "mars-2025")
    decision = pb.Decision.FromString(answer)
    assert [marked for _, marked, _ in _marks(decision)] == [True]
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        fetch: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(FETCH)
        fetched = fetch(pb.FetchDecisionRequest(decision_id=decision.decision_id).SerializeToString(),
                        metadata=CALLER, timeout=30)
        replay = apb_grpc.AuditServiceStub(channel).ReplayDecision(
            apb.ReplayDecisionRequest(formaal=PURPOSE, decision_id=decision.decision_id), timeout=30)
    assert fetched == answer
    assert replay.identical and replay.answer_matches
    assert replay.replayed_answer_sha256 == hashlib.sha256(answer).hexdigest()
    assert [marked for _, marked, _ in _marks(replay.decision)] == [True]
    # The same facts through the typed stub: what a hospital system's generated client reads.
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        typed = pb_grpc.DecisionServiceStub(channel).Evaluate(pb.EvaluateRequest(
            ruleset="utskrivningsklar", as_of=as_of.isoformat(), facts=struct(facts)), metadata=CALLER, timeout=30)
    assert typed.explanation.parameters[0].sekundaerkilde == decision.explanation.parameters[0].sekundaerkilde != ""
