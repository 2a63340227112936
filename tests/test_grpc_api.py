"""The gRPC API over a real loopback channel: decisions, rich errors, streams, rulesets, health,
reflection — against the server with engine worker processes and with inline evaluation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from regelmotor.core.repository import RulesetRepository
from regelmotor.server.app import RunningServer
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.conftest import BUNDLED_RULESETS, FIXTURES
from tests.grpc_support import VALID_FACTS, details, request, server_in_process


@pytest.fixture(scope="module", params=[2, 0], ids=["workers", "inline"])
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    with server_in_process(workers=request.param) as (running, _, _):
        yield running


@pytest.fixture
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


def decisions(channel: grpc.Channel) -> pb_grpc.DecisionServiceStub:
    return pb_grpc.DecisionServiceStub(channel)


def test_evaluate_returns_a_traced_decision(channel: grpc.Channel) -> None:
    decision = decisions(channel).Evaluate(request(request_id="abc-1"), timeout=30)
    # 2024.07.1 corrects 2024.07 for all of its days, so it decides (and says which version it corrects).
    ruleset = RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True).get("rett-til-helsehjelp", "2024.07.1")
    assert (decision.ruleset, decision.version, decision.ruleset_sha256) == ("rett-til-helsehjelp", "2024.07.1",
                                                                             ruleset.sha256)
    assert decision.correction.supersedes == "2024.07"
    assert decision.request_id == "abc-1" and len(decision.trace_id) == 32 and decision.decision_id
    assert decision.selected_by == "ansiennitetsdato" and decision.selection_date == "2026-03-30"
    assert decision.as_of == "2026-04-20" and decision.engine_version.startswith("regelmotor ")
    outcome = json_format.MessageToDict(decision.outcome)
    assert outcome["vurderingsfrist"] == "2026-04-16" and outcome["frist_start_helsehjelp"] == "2026-04-27"
    assert outcome["utfall"] == "rett" and outcome["veiledende_frist_uker"] == 4
    rules = {r.id: r for r in decision.explanation.rules}
    assert {r.id for r in ruleset.rules} == set(rules)
    vurdering = rules["vurderingsfrist"]
    assert vurdering.fired and vurdering.applied and vurdering.hjemmel[0].kilde == "LOV-1999-07-02-63"
    under_23 = rules["veileder-under-23"]
    assert under_23.applied
    alder = next(c for c in under_23.conditions if c.condition == "alder < 23")
    assert alder.held and json_format.MessageToDict(alder.reads) == {"alder": 21}
    assert any(d.name == "vurderingsfrist_dato" for d in decision.explanation.derived)


def test_bad_facts_are_invalid_argument_with_field_violations(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError, match=r"fagomrade: 'kirurgi' is not a known value;.*; ukjent: unknown fact"
                       ) as caught:
        decisions(channel).Evaluate(request({**VALID_FACTS, "fagomrade": "kirurgi", "ukjent": 1}), timeout=30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = {v.field: v.description for v in details(caught.value)["BadRequest"].field_violations}
    assert "known values" in violations["fagomrade"] and "somatikk" in violations["fagomrade"]
    assert violations["ukjent"] == "unknown fact: this ruleset version does not declare it"


@pytest.mark.parametrize(("fields", "field"), [({"ruleset": ""}, "ruleset"), ({"as_of": "2026-02-30"}, "as_of"),
                                               ({"as_of": "20260101"}, "as_of"), ({"as_of": "9999-12-31"}, "as_of"),
                                               ({"as_of": "0001-01-01"}, "as_of"),
                                               ({"as_of": "٢٠٢٦-٠٤-٢٠"}, "as_of"),
                                               ({"ruleset": "x" * 10_000}, "ruleset"),
                                               ({"version": "x" * 10_000}, "version")])
def test_bad_request_fields_are_invalid_argument(channel: grpc.Channel, fields: dict[str, str], field: str) -> None:
    with pytest.raises(grpc.RpcError, match=re.escape(f"{field}: ")) as caught:
        decisions(channel).Evaluate(request(None, **fields), timeout=30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details(caught.value)["BadRequest"].field_violations] == [field]


def test_unknown_ruleset_and_version_are_not_found(channel: grpc.Channel) -> None:
    for fields, reason in (({"ruleset": "finnes-ikke"}, "no ruleset named 'finnes-ikke'; known rulesets: "),
                           ({"version": "1999.1"}, "ruleset 'rett-til-helsehjelp' has no version '1999.1'")):
        with pytest.raises(grpc.RpcError, match=re.escape(reason)) as caught:
            decisions(channel).Evaluate(request(None, **fields), timeout=30)
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        assert "ResourceInfo" in details(caught.value)


def test_no_version_in_force_is_failed_precondition(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError, match=r"no version of 'rett-til-helsehjelp' is in force on 2010-01-01 "
                                            r"\(selected by ansiennitetsdato\)") as caught:
        decisions(channel).Evaluate(request({**VALID_FACTS, "ansiennitetsdato": "2010-01-01"}), timeout=30)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    found = details(caught.value)
    assert found["ErrorInfo"].reason == "NO_VERSION_IN_FORCE"
    assert found["ErrorInfo"].metadata["date"] == "2010-01-01"
    assert found["PreconditionFailure"].violations[0].type == "VERSION_IN_FORCE"


STAY_2013 = {
    "sektor": "somatikk", "innlagt": "2013-01-10T08:00:00+01:00", "forventet_behov_kommunale_tjenester": True,
    "varsel_innlagt": "2013-01-10T12:00:00+01:00", "problemstillinger_innleggelse_avklart": True,
    "ovrige_problemstillinger_avklart": True, "uavklarte_problemstillinger_begrunnet": True,
    "funksjonsniva_vurdert": True, "lege_vurdert_utskrivningsklar": True, "utskrivningsklar_dato": "2013-02-04",
    "melding_utskrivningsklar": "2013-02-04T09:00:00+01:00", "kommune_svar": "kan_ikke_ta_imot",
    "kommune_klar_dato": "2013-02-08", "bostedskommune": "0301",
}


def test_missing_dognpris_year_is_failed_precondition_naming_parameter_and_year(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError, match="parameter 'dognpris' has no value for 2013-02-04") as caught:
        decisions(channel).Evaluate(request(STAY_2013, ruleset="utskrivningsklar", as_of="2013-03-01"), timeout=30)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    info = details(caught.value)["ErrorInfo"]
    assert info.reason == "PARAMETER_VALUE_MISSING"
    assert info.metadata["parameter"] == "dognpris" and info.metadata["year"] == "2013"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def _padded_to(message: bytes, size: int) -> bytes:
    """`message` with an unknown field (number 9999) that brings it to exactly `size` bytes; the server
    ignores unknown fields, so the request stays a valid one."""
    tag = _varint(9999 << 3 | 2)
    body = size - len(message) - len(tag) - 1
    while len(message) + len(tag) + len(_varint(body)) + body > size:
        body -= 1
    padded = message + tag + _varint(body) + b"x" * body
    assert len(padded) == size
    return padded


def _raw_evaluate(server: RunningServer, payload: bytes) -> bytes:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/regelmotor.v1.DecisionService/Evaluate")
        return call(payload, timeout=30)


# Both limits are set far below gRPC's own defaults (4 MiB received, unlimited sent), so these tests
# fail if the settings do not reach the server.
def test_a_request_one_byte_over_the_configured_limit_is_refused_and_one_at_it_is_served() -> None:
    limit = 64 * 1024
    with server_in_process(workers=0, max_message_bytes=limit, decision_log="off") as (server, _, _):
        served = pb.Decision.FromString(_raw_evaluate(server, _padded_to(request().SerializeToString(), limit)))
        assert served.version == "2024.07.1" and served.request_id == "req-1"
        with pytest.raises(grpc.RpcError, match=rf"Received message larger than max \({limit + 1} vs\. {limit}\)"
                           ) as caught:
            _raw_evaluate(server, _padded_to(request().SerializeToString(), limit + 1))
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_response_one_byte_over_the_configured_limit_is_refused_and_one_at_it_is_sent() -> None:
    # The answer echoes request_id, so one more character in it makes the answer one byte larger.
    with server_in_process(workers=0, decision_log="off") as (server, _, _):
        limit = len(_raw_evaluate(server, request(request_id="r" * 100).SerializeToString()))
    assert 1024 <= limit < 4 * 1024 * 1024
    with server_in_process(workers=0, max_response_bytes=limit, decision_log="off") as (server, _, _):
        sent = _raw_evaluate(server, request(request_id="r" * 100).SerializeToString())
        assert len(sent) == limit and pb.Decision.FromString(sent).request_id == "r" * 100
        with pytest.raises(grpc.RpcError, match=rf"Sent message larger than max \({limit + 1} vs\. {limit}\)"
                           ) as caught:
            _raw_evaluate(server, request(request_id="r" * 101).SerializeToString())
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_stream_answers_in_order_and_goes_on_after_a_bad_item(channel: grpc.Channel) -> None:
    items = [request(request_id=f"r{i}") for i in range(40)]
    items[7] = request({**VALID_FACTS, "fagomrade": "kirurgi"}, request_id="bad")
    items[20] = request(ruleset="finnes-ikke", request_id="missing")
    results = list(decisions(channel).EvaluateStream(iter(items), timeout=60))
    assert [r.index for r in results] == list(range(40))
    assert [r.request_id for r in results] == [i.request_id for i in items]
    assert results[7].WhichOneof("result") == "error"
    assert results[7].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert results[7].error.details[0].type_url.endswith("google.rpc.BadRequest")
    assert results[20].error.code == grpc.StatusCode.NOT_FOUND.value[0]
    good = [r for i, r in enumerate(results) if i not in (7, 20)]
    assert all(r.WhichOneof("result") == "decision" and r.decision.version == "2024.07.1" for r in good)
    assert len({r.decision.decision_id for r in good}) == 38


def test_one_channel_keeps_every_worker_busy() -> None:
    with server_in_process(workers=2) as (server, _, _):
        assert server.pool is not None
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = decisions(channel)
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda i: stub.Evaluate(request(request_id=str(i)), timeout=30), range(300)))
        calls = dict(server.pool.stats.calls_by_worker)
    assert len(calls) == 2 and sum(calls.values()) == 300 and min(calls.values()) > 30, calls


def test_list_and_get_rulesets(channel: grpc.Channel) -> None:
    stub = rpb_grpc.RulesetServiceStub(channel)
    listed = stub.ListRulesets(rpb.ListRulesetsRequest(), timeout=10)
    assert [r.name for r in listed.rulesets] == ["prioriterte-pasientgrupper", "rett-til-helsehjelp",
                                                 "utskrivningsklar"]
    rett = stub.GetRuleset(rpb.GetRulesetRequest(name="rett-til-helsehjelp", version="2015.11"), timeout=10)
    assert [(v.version, v.gyldig_fra, v.gyldig_til) for v in rett.ruleset.versions] == [
        ("2015.11", "2015-11-01", "2024-06-30"), ("2015.11.1", "2015-11-01", "2024-06-30"),
        ("2024.07", "2024-07-01", ""), ("2024.07.1", "2024-07-01", "")]
    assert [v.supersedes for v in rett.ruleset.versions] == ["", "2015.11", "", "2024.07"]
    newest = stub.GetRuleset(rpb.GetRulesetRequest(name="rett-til-helsehjelp"), timeout=10)
    assert newest.version.version == "2024.07.1"  # not 2024.07, which its correction replaces on every day
    assert rett.ruleset.selected_by == "ansiennitetsdato"
    schema = json_format.MessageToDict(rett.input_schema)
    assert schema["additionalProperties"] is False and "ansiennitetsdato" in schema["required"]
    klinisk = schema["properties"]["klinisk_frist_uker"]
    assert (klinisk["type"], klinisk["minimum"], klinisk["maximum"]) == ("integer", 0, 104)
    assert "frist_start_helsehjelp" in json_format.MessageToDict(rett.outcome_schema)["properties"]
    assert rett.source == (BUNDLED_RULESETS / "rett-til-helsehjelp" / "2015.11.yaml").read_text(encoding="utf-8")
    # The cases come as the store keeps them with the version (seeded from the bundled directory).
    assert rett.cases == (BUNDLED_RULESETS / "rett-til-helsehjelp" / "2015.11.cases.yaml").read_text(encoding="utf-8")
    with pytest.raises(grpc.RpcError, match="no ruleset named 'nope'") as caught:
        stub.GetRuleset(rpb.GetRulesetRequest(name="nope"), timeout=10)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_get_ruleset_without_a_store_reads_the_cases_beside_the_version() -> None:
    with server_in_process(workers=0, decision_log="off") as (server, _, _), \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        got = rpb_grpc.RulesetServiceStub(channel).GetRuleset(
            rpb.GetRulesetRequest(name="utskrivningsklar", version="2019.1"), timeout=10)
    assert got.cases == (BUNDLED_RULESETS / "utskrivningsklar" / "2019.1.cases.yaml").read_text(encoding="utf-8")


EXAMPLE = FIXTURES / "rulesets" / "vurderingsfrist" / "2015.11.yaml"


def test_validate_test_and_diff_sources(channel: grpc.Channel) -> None:
    stub = rpb_grpc.RulesetServiceStub(channel)
    source = EXAMPLE.read_text(encoding="utf-8")
    assert stub.ValidateRuleset(rpb.ValidateRulesetRequest(source=source), timeout=10).valid
    broken = stub.ValidateRuleset(rpb.ValidateRulesetRequest(source=source.replace("alder < 23", "aldr < 23")),
                                  timeout=10)
    assert not broken.valid
    (diagnostic,) = broken.diagnostics
    assert "unknown fact or value 'aldr'" in diagnostic.message and diagnostic.line > 1 and diagnostic.column > 0
    cases = (EXAMPLE.parent / "2015.11.cases.yaml").read_text(encoding="utf-8")
    tested = stub.TestRuleset(rpb.TestRulesetRequest(source=source, cases=cases), timeout=30)
    assert tested.failed == 0 and tested.passed == len(tested.results) >= 5
    failing = stub.TestRuleset(rpb.TestRulesetRequest(
        source=source, cases=cases.replace("vurderingsfrist: 2026-04-16", "vurderingsfrist: 2026-04-17")), timeout=30)
    assert failing.failed == 1
    bad = next(r for r in failing.results if not r.passed)
    assert "expected '2026-04-17', actual '2026-04-16'" in bad.failures[0] and "vurderingsfrist" in bad.fired
    changed = source.replace("value: 65", "value: 60")
    diff = stub.DiffRulesets(rpb.DiffRulesetsRequest(source_a=source, source_b=changed), timeout=10)
    assert diff.parameters == [
        "~ parameter maks_virkedager_unge: 2015-11-01: 65 virkedager → 2015-11-01: 60 virkedager"]
    loaded = stub.DiffRulesets(rpb.DiffRulesetsRequest(name="utskrivningsklar", version_a="2012.1",
                                                       version_b="2019.1"), timeout=10)
    assert loaded.lines[0].startswith("--- utskrivningsklar@2012.1")
    with pytest.raises(grpc.RpcError, match="the ruleset source has problems") as caught:
        stub.DiffRulesets(rpb.DiffRulesetsRequest(source_a="name: [", source_b=source), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_health_per_service_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "regelmotor.v1.DecisionService", "regelmotor.v1.RulesetService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    answer = next(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                  timeout=5))
    names = {s.name for s in answer.list_services_response.service}
    assert {"regelmotor.v1.DecisionService", "regelmotor.v1.RulesetService", "grpc.health.v1.Health"} <= names


def test_generated_stubs_exist_for_the_documented_api() -> None:
    assert Path(pb.__file__).name == "decision_pb2.py"
    assert [m.name for m in pb.DESCRIPTOR.services_by_name["DecisionService"].methods] == [
        "Evaluate", "EvaluateStream", "FetchDecision"]
