"""The decision log behind the service: recorded before answered, idempotent retries, pseudonymised
identity numbers, the AuditService, and crash safety — over real channels."""

from __future__ import annotations

import math
import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regelmotor.server.app import RunningServer
from regelmotor.store import pack_response, unpack_response
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import details, request, server_in_process
from tests.identity_numbers import FODSELSNUMRE, H_NUMRE, SYNTHETIC
from tests.postgres_support import postgres_schema
from tests.server_process import running_server

NATIONAL_ID = FODSELSNUMRE[0]
OTHER_ID = FODSELSNUMRE[1]
PURPOSE = "tilsynssak 2024/118"  # every audit read says why (formaal)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with server_in_process(workers=2) as (running, _, _):
        yield running


def _channel(server: RunningServer) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{server.port}")


def _evaluate(server: RunningServer, caller: str = "dips-a", **fields: str) -> pb.Decision:
    with _channel(server) as channel:
        answer: pb.Decision = pb_grpc.DecisionServiceStub(channel).Evaluate(
            request(None, **fields), metadata=[("regelmotor-caller", caller)], timeout=30)
        return answer


def test_every_answered_decision_is_already_recorded(server: RunningServer) -> None:
    assert server.log is not None
    decision = _evaluate(server, request_id="rec-1")
    stored = server.log.get(decision.decision_id)
    assert stored is not None and stored.caller == "dips-a" and stored.request_id == "rec-1"
    assert pb.Decision.FromString(unpack_response(stored.response)) == decision
    assert stored.ruleset_sha256 == decision.ruleset_sha256 and stored.trace_id == decision.trace_id
    assert stored.outcome["utfall"] == "rett" and stored.decision["applied_rules"]
    assert pb.Decision.FromString(unpack_response(stored.response)).explanation.rules  # stored once


def test_a_retried_request_id_returns_the_stored_decision(server: RunningServer) -> None:
    assert server.log is not None
    first = _evaluate(server, request_id="retry-7")
    again = _evaluate(server, request_id="retry-7")
    other_caller = _evaluate(server, caller="dips-b", request_id="retry-7")
    assert again == first
    assert other_caller.decision_id != first.decision_id
    assert server.log.find_by_request("dips-a", "retry-7").decision_id == first.decision_id  # type: ignore[union-attr]


def test_identity_number_is_validated_and_only_a_pseudonym_is_stored(server: RunningServer) -> None:
    assert server.log is not None
    with pytest.raises(grpc.RpcError, match=r"national_id: the check digits do not match \(mod 11\)") as caught:
        _evaluate(server, national_id="12345678901")
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details(caught.value)["BadRequest"].field_violations] == ["national_id"]
    decision = _evaluate(server, national_id=NATIONAL_ID, request_id="pid-1")
    stored = server.log.get(decision.decision_id)
    assert stored is not None and stored.subject and len(stored.subject) == 64
    assert NATIONAL_ID not in str(stored.decision) and NATIONAL_ID not in stored.subject
    assert "national_id" not in json_format.MessageToDict(decision.facts)


# 13097248022 in Arabic-Indic and in fullwidth digits: str.isdigit() accepts both.
NON_ASCII_NUMBERS = ("\u0661\u0663\u0660\u0669\u0667\u0662\u0664\u0668\u0660\u0662\u0662",
                     "\uff11\uff13\uff10\uff19\uff17\uff12\uff14\uff18\uff10\uff12\uff12")


def test_bad_identity_numbers_get_invalid_argument_naming_the_field_never_internal(server: RunningServer) -> None:
    channel, audit = _audit(server)
    with channel:
        for number, reason in [*((n, r"must be 11 digits \(0-9\)") for n in NON_ASCII_NUMBERS),
                               (SYNTHETIC[0], r"synthetic test numbers \(month \+ 80\) are not accepted here")]:
            with pytest.raises(grpc.RpcError, match=f"national_id: {reason}") as caught:
                _evaluate(server, national_id=number)
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and number not in str(caught.value)
            [violation] = details(caught.value)["BadRequest"].field_violations
            assert violation.field == "national_id" and re.match(reason, violation.description)
            with pytest.raises(grpc.RpcError, match=f"filter.national_id: {reason}") as caught:
                audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE,
                                                             filter=apb.DecisionFilter(national_id=number)),
                                    timeout=10)
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and number not in str(caught.value)


def test_h_numbers_from_hospitals_are_accepted_and_searchable(server: RunningServer) -> None:
    assert server.log is not None
    marker = f"h-{time.time_ns()}"
    decision = _evaluate(server, caller=marker, national_id=H_NUMRE[0], request_id=marker)
    channel, audit = _audit(server)
    with channel:
        found = audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=apb.DecisionFilter(
            caller=marker, national_id=H_NUMRE[0])), timeout=10)
    assert [d.decision_id for d in found.decisions] == [decision.decision_id]


@pytest.mark.parametrize("workers", [0, 1])  # evaluated in the server process, and in an engine worker
def test_synthetic_numbers_are_accepted_where_allow_synthetic_ids_is_set(workers: int) -> None:
    with server_in_process(workers=workers, allow_synthetic_ids=True) as (server, _, _):
        assert server.log is not None
        decision = _evaluate(server, national_id=SYNTHETIC[1], request_id="synthetic-1")
        stored = server.log.get(decision.decision_id)
        assert stored is not None and stored.subject and SYNTHETIC[1] not in stored.subject
        channel, audit = _audit(server)
        with channel:
            found = audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=apb.DecisionFilter(
                national_id=SYNTHETIC[1])), timeout=10)
        assert [d.decision_id for d in found.decisions] == [decision.decision_id]


def test_the_raw_number_is_in_no_database_file_and_no_log_line(tmp_path: Path) -> None:
    # A real `regelmotor serve`, with synthetic numbers allowed through its environment.
    with running_server(workers=1, env={"REGELMOTOR_ALLOW_SYNTHETIC_IDS": "true"}) as process:
        with grpc.insecure_channel(process.address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            for index in range(5):
                stub.Evaluate(request(None, national_id=NATIONAL_ID, request_id=f"scan-{index}"), timeout=30)
            stub.Evaluate(request(None, national_id=SYNTHETIC[0], request_id="scan-synthetic"), timeout=30)
            audit = apb_grpc.AuditServiceStub(channel)
            listed = audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE,
                                                                  filter=apb.DecisionFilter(national_id=NATIONAL_ID)),
                                         timeout=30)
            assert len(listed.decisions) == 5
            synthetic = audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=apb.DecisionFilter(
                national_id=SYNTHETIC[0])), timeout=30)
            assert [d.request_id for d in synthetic.decisions] == ["scan-synthetic"]
        logs = process.logs()
        files = [p for p in process.data_dir.rglob("*") if p.is_file()]
        assert any(p.name.startswith("decisions.db") for p in files)
        for path in files:
            content = path.read_bytes()
            assert NATIONAL_ID.encode() not in content and SYNTHETIC[0].encode() not in content, path
        assert NATIONAL_ID not in logs and SYNTHETIC[0] not in logs and "scan-0" in logs


def _audit(server: RunningServer) -> tuple[grpc.Channel, apb_grpc.AuditServiceStub]:
    channel = _channel(server)
    return channel, apb_grpc.AuditServiceStub(channel)


def test_list_filters_and_pages(server: RunningServer) -> None:
    marker = f"list-{time.time_ns()}"
    ids = [_evaluate(server, caller=marker, request_id=f"{marker}-{i}").decision_id for i in range(7)]
    _evaluate(server, caller=marker, ruleset="rett-til-helsehjelp", request_id=f"{marker}-x",
              national_id=OTHER_ID)
    channel, audit = _audit(server)
    with channel:
        seen: list[str] = []
        token = ""
        while True:
            page = audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE,
                                                                filter=apb.DecisionFilter(caller=marker),
                                                                page_size=3, page_token=token), timeout=10)
            seen += [d.decision_id for d in page.decisions]
            token = page.next_page_token
            if not token:
                break
        assert len(seen) == 8 and len(set(seen)) == 8 and set(ids) <= set(seen)
        by_number = audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=apb.DecisionFilter(
            caller=marker, national_id=OTHER_ID)), timeout=10)
        assert [d.request_id for d in by_number.decisions] == [f"{marker}-x"]
        value = struct_pb2.Value(string_value="rett")
        by_outcome = audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=apb.DecisionFilter(
            caller=marker, outcome_field="utfall", outcome_value=value)), timeout=10)
        assert len(by_outcome.decisions) == 8
        none = audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=apb.DecisionFilter(
            caller=marker, outcome_field="utfall", outcome_value=struct_pb2.Value(string_value="ikke_rett"))),
            timeout=10)
        assert list(none.decisions) == []
        with pytest.raises(grpc.RpcError, match=r"filter\.national_id: must be 11 digits") as caught:
            audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE,
                                                         filter=apb.DecisionFilter(national_id="1")), timeout=10)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


# Times a protobuf Timestamp cannot hold (it holds 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z).
OUT_OF_RANGE = {"after 9999": timestamp_pb2.Timestamp(seconds=253_402_300_800),
                "before year 1": timestamp_pb2.Timestamp(seconds=-62_135_596_801),
                "far out": timestamp_pb2.Timestamp(seconds=10**15),
                "negative nanos": timestamp_pb2.Timestamp(seconds=0, nanos=-1),
                "a second of nanos": timestamp_pb2.Timestamp(seconds=0, nanos=10**9)}


@pytest.mark.parametrize("stamp", list(OUT_OF_RANGE.values()), ids=list(OUT_OF_RANGE))
@pytest.mark.parametrize("bound", ["recorded_from", "recorded_to"])
def test_a_filter_time_no_timestamp_holds_is_invalid_argument_naming_it(server: RunningServer, bound: str,
                                                                          stamp: timestamp_pb2.Timestamp) -> None:
    wanted = rf"filter\.{bound}: must be a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59\.999999999Z"
    asked = apb.DecisionFilter()
    getattr(asked, bound).CopyFrom(stamp)
    _evaluate(server, caller="edges", request_id="edges-1")  # something recorded for the edges to find
    channel, audit = _audit(server)
    with channel:
        with pytest.raises(grpc.RpcError, match=wanted) as listed:
            audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=asked), timeout=10)
        with pytest.raises(grpc.RpcError, match=wanted) as exported:
            list(audit.ExportDecisions(apb.ExportDecisionsRequest(formaal=PURPOSE, filter=asked), timeout=10))
        # The edges themselves are times: everything recorded lies between them.
        edges = apb.DecisionFilter(recorded_from=timestamp_pb2.Timestamp(seconds=-62_135_596_800),
                                   recorded_to=timestamp_pb2.Timestamp(seconds=253_402_300_799, nanos=999_999_999))
        assert audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=edges), timeout=10).decisions
    for caught in (listed, exported):
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in details(caught.value)["BadRequest"].field_violations] == [f"filter.{bound}"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def either_log(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    if request.param == "postgres":
        with postgres_schema() as dsn, server_in_process(workers=0, decision_log=dsn) as (running, _, _):
            yield running
    else:
        with server_in_process(workers=0) as (running, _, _):
            yield running


def _filter(**fields: Any) -> apb.DecisionFilter:
    return apb.DecisionFilter(**fields)


# Filters no recorded decision can match, each refused naming its field (PostgreSQL refused NUL in text with a
# DataError, the NaN and the quote failed in our own code: each was UNKNOWN carrying the exception's text).
BAD_FILTERS = {
    "NUL in ruleset": (_filter(ruleset="rett\x00"), "filter.ruleset", "control characters"),
    "NUL in version": (_filter(version="2024\x00"), "filter.version", "control characters"),
    "NUL in caller": (_filter(caller="dips\x00"), "filter.caller", "control characters"),
    "line break in outcome_field": (_filter(outcome_field="utfall\n", outcome_value=struct_pb2.Value(string_value="x")),
                                    "filter.outcome_field", "control characters"),
    "quote in outcome_field": (_filter(outcome_field='ut"fall', outcome_value=struct_pb2.Value(string_value="x")),
                               "filter.outcome_field", "the name of an outcome"),
    "NaN outcome_value": (_filter(outcome_field="utfall", outcome_value=struct_pb2.Value(number_value=math.nan)),
                          "filter.outcome_value", "finite"),
    "infinite outcome_value": (_filter(outcome_field="utfall", outcome_value=struct_pb2.Value(
        list_value=struct_pb2.ListValue(values=[struct_pb2.Value(number_value=-math.inf)]))),
        "filter.outcome_value", "finite"),
}


@pytest.mark.parametrize(("asked", "field", "reason"), list(BAD_FILTERS.values()), ids=list(BAD_FILTERS))
def test_a_filter_no_decision_can_match_is_invalid_argument_naming_its_field(
        either_log: RunningServer, asked: apb.DecisionFilter, field: str, reason: str) -> None:
    channel, audit = _audit(either_log)
    with channel:
        with pytest.raises(grpc.RpcError, match=re.escape(f"{field}: ") + ".*" + re.escape(reason)) as listed:
            audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=asked), timeout=10)
        with pytest.raises(grpc.RpcError, match=re.escape(f"{field}: ")) as exported:
            list(audit.ExportDecisions(apb.ExportDecisionsRequest(formaal=PURPOSE, filter=asked), timeout=10))
    for caught in (listed, exported):
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in details(caught.value)["BadRequest"].field_violations] == [field]


_texts = st.text(max_size=12) | st.sampled_from(["", "rett-til-helsehjelp", "2024.07", "dips-a", "utfall", "a\x00",
                                                  "\n", '"', "\\", "\x85", "x" * 300])
_values = st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                   max_size=3), max_leaves=6)
_stamps = st.builds(timestamp_pb2.Timestamp, seconds=st.integers(-2**63, 2**63 - 1) | st.integers(
    -62_135_596_801, 253_402_300_800), nanos=st.integers(-2**31, 2**31 - 1) | st.integers(0, 999_999_999))


@st.composite
def audit_filters(draw: st.DrawFn) -> apb.DecisionFilter:
    asked = apb.DecisionFilter(ruleset=draw(_texts), version=draw(_texts), caller=draw(_texts),
                               outcome_field=draw(_texts), national_id=draw(st.just("") | st.sampled_from(
                                   FODSELSNUMRE + SYNTHETIC) | st.text(max_size=12)))
    for bound in ("recorded_from", "recorded_to"):
        if draw(st.booleans()):
            getattr(asked, bound).CopyFrom(draw(_stamps))
    if draw(st.booleans()):
        asked.outcome_value.CopyFrom(_to_value(draw(_values)))
    return asked


def _to_value(value: Any) -> struct_pb2.Value:
    """Any JSON-like value as a protobuf Value, NaN and infinities included (ParseDict refuses them)."""
    if isinstance(value, dict):
        return struct_pb2.Value(struct_value=struct_pb2.Struct(fields={k: _to_value(v) for k, v in value.items()}))
    if isinstance(value, list):
        return struct_pb2.Value(list_value=struct_pb2.ListValue(values=[_to_value(v) for v in value]))
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, float):
        return struct_pb2.Value(number_value=value)
    return struct_pb2.Value(string_value=value)


def test_random_audit_filters_are_answered_or_refused_never_unknown_or_internal(either_log: RunningServer) -> None:
    channel, audit = _audit(either_log)
    with channel:
        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(asked=audit_filters(), page_token=st.just("") | st.text(max_size=20), page_size=st.integers(-5, 600))
        def answered(asked: apb.DecisionFilter, page_token: str, page_size: int) -> None:
            for call in (lambda: audit.ListDecisions(apb.ListDecisionsRequest(
                            formaal=PURPOSE, filter=asked, page_token=page_token, page_size=page_size), timeout=30),
                         lambda: list(audit.ExportDecisions(apb.ExportDecisionsRequest(formaal=PURPOSE, filter=asked),
                                                            timeout=30))):
                try:
                    call()
                except grpc.RpcError as error:
                    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
                    assert details(error)["BadRequest"].field_violations, error.details()

        answered()


def test_a_decision_id_with_a_control_character_is_invalid_argument_on_every_read(either_log: RunningServer) -> None:
    wanted = r"decision_id: must not contain control characters"
    channel, audit = _audit(either_log)
    with channel:
        for call in (lambda: audit.GetDecision(apb.GetDecisionRequest(formaal=PURPOSE, decision_id="d\x00"),
                                               timeout=10),
                     lambda: audit.ReplayDecision(apb.ReplayDecisionRequest(formaal=PURPOSE, decision_id="d\x00"),
                                                  timeout=10),
                     lambda: pb_grpc.DecisionServiceStub(channel).FetchDecision(
                         pb.FetchDecisionRequest(decision_id="d\x00"), timeout=10)):
            with pytest.raises(grpc.RpcError, match=wanted) as caught:
                call()
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("value", ["a\x00b", ["ok", "\x00"], {"k\x00": 1.0}], ids=["text", "in a list", "a key"])
def test_an_outcome_value_holding_nul_is_invalid_argument_on_both_logs(either_log: RunningServer, value: Any) -> None:
    # PostgreSQL's jsonb cannot hold NUL: the query failed there with INTERNAL (found by the filter fuzz above).
    asked = apb.DecisionFilter(ruleset="rett-til-helsehjelp", outcome_field="utfall", outcome_value=_to_value(value))
    channel, audit = _audit(either_log)
    with channel:
        for call in (lambda: audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=asked), timeout=30),
                     lambda: list(audit.ExportDecisions(apb.ExportDecisionsRequest(formaal=PURPOSE, filter=asked),
                                                        timeout=30))):
            with pytest.raises(grpc.RpcError, match=r"filter\.outcome_value: must not contain NUL") as caught:
                call()
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_get_replay_verify_export_and_every_read_is_logged(server: RunningServer) -> None:
    assert server.log is not None
    decision = _evaluate(server, caller="auditee", request_id="audit-1")
    channel, audit = _audit(server)
    with channel:
        meta = [("regelmotor-caller", "revisor-kari")]
        got = audit.GetDecision(apb.GetDecisionRequest(formaal=PURPOSE,
                                                       decision_id=decision.decision_id), metadata=meta, timeout=10)
        assert got.decision == decision and got.summary.caller == "auditee" and len(got.summary.hash) == 64
        records_before = server.log.verify().checked
        replay = audit.ReplayDecision(apb.ReplayDecisionRequest(formaal=PURPOSE,
                                                                decision_id=decision.decision_id), metadata=meta,
                                      timeout=30)
        assert replay.identical and list(replay.differences) == [] and replay.version == "2024.07.1"
        assert server.log.verify().checked == records_before  # a replay is not a new decision
        verified = audit.VerifyLog(apb.VerifyLogRequest(formaal=PURPOSE), metadata=meta, timeout=30)
        assert verified.ok and verified.checked >= 1
        lines = list(audit.ExportDecisions(apb.ExportDecisionsRequest(formaal=PURPOSE,
                                                                      filter=apb.DecisionFilter(caller="auditee")),
                                           metadata=meta, timeout=30))
        assert len(lines) == 1 and decision.decision_id in lines[0].json_line
        with pytest.raises(grpc.RpcError, match="no recorded decision 'nope'") as caught:
            audit.GetDecision(apb.GetDecisionRequest(formaal=PURPOSE, decision_id="nope"), metadata=meta, timeout=10)
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    reads = [entry for entry in server.log.access_log() if entry["who"] == "revisor-kari"]
    assert [entry["action"] for entry in reads] == ["GetDecision", "ReplayDecision", "VerifyLog", "ExportDecisions",
                                                    "GetDecision"]
    assert reads[0]["detail"]["decision_id"] == decision.decision_id


def test_stream_items_are_recorded_too(server: RunningServer) -> None:
    assert server.log is not None
    with _channel(server) as channel:
        results = list(pb_grpc.DecisionServiceStub(channel).EvaluateStream(
            iter([request(None, request_id=f"s-{i}") for i in range(5)]), metadata=[("regelmotor-caller", "batch")],
            timeout=30))
    for result in results:
        assert server.log.get(result.decision.decision_id) is not None


def test_replay_reports_differences_field_by_field() -> None:
    from regelmotor.server.audit import differences

    recorded = {"decision_id": "a", "outcome": {"frist": "2026-04-27", "utfall": "rett"},
                "explanation": {"rules": [{"fired": True}, {"fired": False}]}}
    replayed = {"decision_id": "b", "outcome": {"frist": "2026-04-28", "utfall": "rett"},
                "explanation": {"rules": [{"fired": True}, {"fired": True}]}}
    assert differences(recorded, replayed) == [("explanation.rules[1].fired", False, True),
                                               ("outcome.frist", "2026-04-27", "2026-04-28")]


def test_sigkill_under_load_loses_no_acknowledged_decision(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"REGELMOTOR_DATA_DIR": str(data_dir), "REGELMOTOR_PSEUDONYM_KEY": "ab" * 32}
    acknowledged: list[str] = []
    with running_server(workers=2, env=env) as process:
        stop = threading.Event()

        def load(worker: int) -> None:
            with grpc.insecure_channel(process.address) as channel:
                stub = pb_grpc.DecisionServiceStub(channel)
                index = 0
                while not stop.is_set():
                    index += 1
                    try:
                        answer = stub.Evaluate(request(None, request_id=f"k{worker}-{index}"), timeout=10)
                        acknowledged.append(answer.decision_id)
                    except grpc.RpcError:
                        return  # the server is gone

        threads = [threading.Thread(target=load, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(2.5)
        os.kill(process.process.pid, signal.SIGKILL)  # no drain, no goodbye
        process.process.wait(10)
        stop.set()
        for thread in threads:
            thread.join(15)
    assert len(acknowledged) > 20
    with running_server(workers=1, env=env) as restarted, grpc.insecure_channel(restarted.address) as channel:
        audit = apb_grpc.AuditServiceStub(channel)
        for decision_id in acknowledged:
            audit.GetDecision(apb.GetDecisionRequest(formaal=PURPOSE, decision_id=decision_id), timeout=10)
        verified = audit.VerifyLog(apb.VerifyLogRequest(formaal=PURPOSE), timeout=60)
        assert verified.ok and verified.checked >= len(acknowledged)
    with sqlite3.connect(data_dir / "decisions.db") as db:
        assert db.execute("SELECT count(*) FROM decisions").fetchone()[0] >= len(acknowledged)


def test_the_service_records_in_postgresql_when_given_a_dsn() -> None:
    # The server named by REGELMOTOR_TEST_POSTGRES_DSN, in a schema of this test's own.
    with postgres_schema() as dsn, server_in_process(workers=1, decision_log=dsn) as (server, _, _):
        first = _evaluate(server, request_id="pg-1", national_id=NATIONAL_ID)  # the record crosses the pipe
        again = _evaluate(server, request_id="pg-1", national_id=NATIONAL_ID)
        with _channel(server) as channel:
            audit = apb_grpc.AuditServiceStub(channel)
            got = audit.GetDecision(apb.GetDecisionRequest(formaal=PURPOSE, decision_id=first.decision_id), timeout=10)
            verified = audit.VerifyLog(apb.VerifyLogRequest(formaal=PURPOSE), timeout=10)
    assert again == first and got.decision == first and len(got.summary.subject) == 64
    assert verified.ok and verified.checked == 1


def test_list_by_ruleset_version_and_time_range(server: RunningServer) -> None:
    from datetime import UTC, datetime, timedelta

    from google.protobuf import timestamp_pb2

    marker = f"range-{time.time_ns()}"
    before = datetime.now(UTC) - timedelta(seconds=1)
    recorded = _evaluate(server, caller=marker, request_id=f"{marker}-1")
    after = datetime.now(UTC) + timedelta(seconds=1)

    def stamp(moment: datetime) -> timestamp_pb2.Timestamp:
        value = timestamp_pb2.Timestamp()
        value.FromDatetime(moment)
        return value

    channel, audit = _audit(server)
    with channel:
        def ids(**fields: object) -> list[str]:
            query = apb.DecisionFilter(caller=marker, **fields)  # type: ignore[arg-type]
            return [d.decision_id for d in audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=query),
                                                               timeout=10).decisions]

        assert ids(ruleset="rett-til-helsehjelp", version="2024.07.1") == [recorded.decision_id]
        assert ids(version="2024.07") == []  # the version it corrects: the filter takes the version as written
        assert ids(ruleset="utskrivningsklar") == []
        assert ids(version="2015.11") == []
        assert ids(recorded_from=stamp(before), recorded_to=stamp(after)) == [recorded.decision_id]
        assert ids(recorded_from=stamp(after)) == []


def test_a_decision_that_cannot_be_stored_is_not_answered() -> None:
    with server_in_process(workers=0) as (server, _, _):
        assert server.log is not None
        _evaluate(server, request_id="before")
        server.log.close()  # the store goes away under the running service
        with pytest.raises(grpc.RpcError, match="not answered") as caught:
            _evaluate(server, request_id="after")
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_record_altered_in_the_database_shows_in_verify_and_replay() -> None:
    with server_in_process(workers=0) as (server, _, _):
        first = _evaluate(server, request_id="t-1")
        target = _evaluate(server, request_id="t-2")
        _evaluate(server, request_id="t-3")
        stored = server.log.get(target.decision_id) if server.log else None
        assert stored is not None
        forged = pb.Decision.FromString(unpack_response(stored.response))
        forged.outcome.fields["frist_start_helsehjelp"].string_value = "2099-01-01"
        database = server.settings.data_dir / "decisions.db"
        with sqlite3.connect(database) as db:  # an intruder with write access, past the append-only trigger
            db.execute("DROP TRIGGER decisions_no_update")
            db.execute("UPDATE decisions SET response = ? WHERE decision_id = ?",
                       (pack_response(forged.SerializeToString()), target.decision_id))
        channel, audit = _audit(server)
        with channel:
            verified = audit.VerifyLog(apb.VerifyLogRequest(formaal=PURPOSE), timeout=10)
            replay = audit.ReplayDecision(apb.ReplayDecisionRequest(formaal=PURPOSE,
                                                                    decision_id=target.decision_id), timeout=30)
            untouched = audit.ReplayDecision(apb.ReplayDecisionRequest(formaal=PURPOSE,
                                                                       decision_id=first.decision_id), timeout=30)
    assert not verified.ok and verified.first_problem.kind == "altered"
    assert verified.first_problem.decision_id == target.decision_id
    assert not replay.identical
    [difference] = [d for d in replay.differences if d.path == "outcome.frist_start_helsehjelp"]
    assert difference.recorded.string_value == "2099-01-01" and difference.replayed.string_value == "2026-04-27"
    assert untouched.identical


def test_a_log_that_cannot_be_read_is_internal_without_the_stores_text() -> None:
    with server_in_process(workers=0) as (server, _, _):
        _evaluate(server, request_id="unreadable-1")
        database = Path(str(server.settings.data_dir)) / "decisions.db"
        with sqlite3.connect(database) as db:  # the store breaks under the service (a bad migration would)
            db.execute("ALTER TABLE decisions RENAME TO decisions_moved")
        channel, audit = _audit(server)
        with channel:
            reads = {"ListDecisions": lambda: audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE),
                                                                  timeout=10),
                     "GetDecision": lambda: audit.GetDecision(apb.GetDecisionRequest(formaal=PURPOSE,
                                                                                     decision_id="d-1"), timeout=10),
                     "ExportDecisions": lambda: list(audit.ExportDecisions(
                         apb.ExportDecisionsRequest(formaal=PURPOSE), timeout=10)),
                     "VerifyLog": lambda: audit.VerifyLog(apb.VerifyLogRequest(formaal=PURPOSE), timeout=10)}
            for name, read in reads.items():
                with pytest.raises(grpc.RpcError, match="internal error") as caught:
                    read()
                assert caught.value.code() is grpc.StatusCode.INTERNAL, name
                assert "decisions" not in (caught.value.details() or ""), name  # nothing of the store's own text
