"""GetRuleset of a version kept in the store but not served (proposed, rejected): the real service with its SQLite
store and authentication off answers with the exact stored texts and the version's state, without schemas (the
service does not parse a caller's source outside its sandbox); a served version carries its state too, and a
version nobody stored is NOT_FOUND naming the field."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.grpc_support import server_in_process
from tests.lifecycle_support import cases, seed_directory, sha256, source

AUTHOR = (("regelmotor-caller", "forfatter"),)
# A comment and spacing the canonical content (and so the sha256) ignores: the answer must keep them as stored.
PROPOSED = source("2025.1", "2025-01-01", grense=21).replace("rules:", "# grensen heves til 21 år\nrules:")
PROPOSED_CASES = cases("2025-01-01") + "# ett tilfelle\n"


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rpb_grpc.RulesetServiceStub]:
    rulesets = seed_directory(tmp_path_factory.mktemp("stored") / "rulesets")
    with server_in_process(workers=0, rulesets=rulesets, decision_log="sqlite") as (server, _, _), \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        ruleset_stub = rpb_grpc.RulesetServiceStub(channel)
        for text, cases_text in ((PROPOSED, PROPOSED_CASES),
                                 (source("2026.1", "2026-01-01", grense=16), cases("2026-01-01"))):
            proposed = ruleset_stub.ProposeRuleset(rpb.ProposeRulesetRequest(source=text, cases=cases_text),
                                                   metadata=AUTHOR, timeout=60)
            assert proposed.accepted, proposed
        ruleset_stub.RejectRuleset(rpb.RejectRulesetRequest(name="sats", version="2026.1", reason="for lav grense"),
                                   metadata=(("regelmotor-caller", "godkjenner"),), timeout=30)
        yield ruleset_stub


def _get(stub: rpb_grpc.RulesetServiceStub, name: str, version: str) -> rpb.GetRulesetResponse:
    answer: rpb.GetRulesetResponse = stub.GetRuleset(rpb.GetRulesetRequest(name=name, version=version), timeout=30)
    return answer


def test_a_proposed_version_comes_back_exactly_as_stored_with_its_state(stub: rpb_grpc.RulesetServiceStub) -> None:
    got = _get(stub, "sats", "2025.1")
    assert (got.source, got.cases) == (PROPOSED, PROPOSED_CASES)
    assert not got.served
    assert (got.version.version, got.version.state, got.version.sha256, got.version.gyldig_fra, got.version.title) \
        == ("2025.1", "proposed", sha256(PROPOSED), "2025-01-01", "Sats 2025.1")
    # Not parsed by the service: no schemas; the ruleset lists the versions it does serve.
    assert not got.input_schema.fields and not got.outcome_schema.fields
    assert [v.version for v in got.ruleset.versions] == ["2024.1"]


def test_a_rejected_version_and_a_served_one_carry_their_states(stub: rpb_grpc.RulesetServiceStub) -> None:
    rejected = _get(stub, "sats", "2026.1")
    assert (rejected.version.state, rejected.served) == ("rejected", False)
    assert "when: alder >= 16" in rejected.source
    served = _get(stub, "sats", "2024.1")
    assert (served.version.state, served.served) == ("published", True)
    assert served.input_schema.fields  # a served version is described in full, as before


def test_a_version_nobody_stored_is_not_found_naming_the_field(stub: rpb_grpc.RulesetServiceStub) -> None:
    with pytest.raises(grpc.RpcError, match=r"version: ruleset 'sats' has no version '2099\.9'") as caught:
        _get(stub, "sats", "2099.9")
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert "2025.1" in str(caught.value.details()) and "2024.1" in str(caught.value.details())
    with pytest.raises(grpc.RpcError, match="version: at most 100 characters") as too_long:
        _get(stub, "sats", "9" * 101)
    assert too_long.value.code() is grpc.StatusCode.INVALID_ARGUMENT

