"""AuditService.ListAccessLog (who read what, when and why) and CountDecisions (decisions per Oslo day and outcome
value), over real gRPC against the real service, on SQLite and on PostgreSQL. The expected answers are computed
here from what the test itself did and from the log's own rows, never written into the test."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, timestamp_pb2

from regelmotor.server.app import RunningServer
from regelmotor.store import AccessFilter, DecisionLog, ListFilter, open_log
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import VALID_FACTS, details, request, server_in_process
from tests.identity_numbers import FODSELSNUMRE
from tests.lifecycle_support import store_location
from tests.test_decision_log import make_record

AUDITOR = "revisor-tilgang"
OTHER_AUDITOR = "revisor-annen"
PURPOSE = "Tilsynssak 2026/ØST-17"
NATIONAL_ID = FODSELSNUMRE[3]
# Facts that give the ruleset's headline outcome (`utfall`) different values.
FACT_VARIANTS = [VALID_FACTS, {**VALID_FACTS, "forventet_nytte": False}, {**VALID_FACTS, "kostnad_rimelig": False}]


class Made:
    """The service on one backend, and what the module's setup did to it."""

    def __init__(self, server: RunningServer, started: datetime) -> None:
        self.server = server
        self.started = started
        self.decisions: list[dict[str, Any]] = []  # each Evaluate answer's decision_id and outcome

    @property
    def log(self) -> DecisionLog:
        assert self.server.log is not None
        return self.server.log

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(f"127.0.0.1:{self.server.port}")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def made(request: pytest.FixtureRequest) -> Iterator[Made]:
    with store_location(request.param) as location, server_in_process(workers=0, decision_log=location) as (
            running, _, _):
        state = Made(running, datetime.now(UTC))
        with state.channel() as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            for index in range(7):
                facts = FACT_VARIANTS[index % len(FACT_VARIANTS)]
                extra = {"national_id": NATIONAL_ID} if index < 2 else {}
                answer = stub.Evaluate(_evaluate(facts, f"tilgang-{index}", **extra),
                                       metadata=[("regelmotor-caller", "tilgang-dips")], timeout=30)
                state.decisions.append({"id": answer.decision_id,
                                        "outcome": json_format.MessageToDict(answer.outcome)})
        yield state


def _evaluate(facts: dict[str, Any], request_id: str, **fields: str) -> Any:
    return request(facts, request_id=request_id, **fields)


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _list(made: Made, formaal: str = PURPOSE, who: str = AUDITOR, **fields: Any) -> apb.ListAccessLogResponse:
    page_size = fields.pop("page_size", 0)
    page_token = fields.pop("page_token", "")
    with made.channel() as channel:
        answer: apb.ListAccessLogResponse = apb_grpc.AuditServiceStub(channel).ListAccessLog(
            apb.ListAccessLogRequest(filter=apb.AccessLogFilter(**fields), formaal=formaal, page_size=page_size,
                                     page_token=page_token),
            metadata=[("regelmotor-caller", who)], timeout=30)
    return answer


def _get(made: Made, decision_id: str, formaal: str, who: str = AUDITOR) -> None:
    with made.channel() as channel:
        apb_grpc.AuditServiceStub(channel).GetDecision(apb.GetDecisionRequest(decision_id=decision_id, formaal=formaal),
                                                       metadata=[("regelmotor-caller", who)], timeout=30)


def _count(made: Made, formaal: str = PURPOSE, **fields: Any) -> apb.CountDecisionsResponse:
    outcome_field = fields.pop("outcome_field", "utfall")
    with made.channel() as channel:
        answer: apb.CountDecisionsResponse = apb_grpc.AuditServiceStub(channel).CountDecisions(
            apb.CountDecisionsRequest(filter=apb.DecisionFilter(**fields), outcome_field=outcome_field,
                                      formaal=formaal), metadata=[("regelmotor-caller", AUDITOR)], timeout=30)
    return answer


def _ids(answer: apb.ListAccessLogResponse) -> list[int]:
    return [entry.id for entry in answer.entries]


def test_a_read_is_listed_with_who_what_when_and_why_and_the_listing_itself_too(made: Made) -> None:
    reader = f"revisor-{uuid.uuid4().hex[:8]}"
    decision = made.decisions[0]["id"]
    before = datetime.now(UTC) - timedelta(seconds=1)
    _get(made, decision, "klage fra pasient, sak 88", who=reader)
    answer = _list(made, who=reader, reader=reader)
    listing, read = answer.entries  # newest first: this listing was recorded before it was answered
    assert (listing.method, listing.reader, listing.formaal) == ("ListAccessLog", reader, PURPOSE)
    assert (read.method, read.reader, read.formaal, read.decision_id) == (
        "GetDecision", reader, "klage fra pasient, sak 88", decision)
    assert json_format.MessageToDict(read.detail) == {"decision_id": decision}
    assert json_format.MessageToDict(listing.detail)["access_filter"] == {"reader": reader}
    assert before <= read.at.ToDatetime(UTC) <= listing.at.ToDatetime(UTC) <= datetime.now(UTC)
    assert listing.id > read.id
    assert not answer.next_page_token


def _reference(made: Made, wanted: AccessFilter) -> list[int]:
    """The ids the filter should find, computed from every row of the access log (newest first)."""
    def matches(row: dict[str, Any]) -> bool:
        detail = row["detail"]
        return all([wanted.who is None or row["who"] == wanted.who,
                    wanted.action is None or row["action"] == wanted.action,
                    wanted.decision_id is None or detail.get("decision_id") == wanted.decision_id,
                    wanted.formaal_contains is None
                    or wanted.formaal_contains.lower() in str(detail.get("formaal") or "").lower(),
                    wanted.at_from is None or row["at"] >= wanted.at_from,
                    wanted.at_to is None or row["at"] < wanted.at_to])
    return [row["id"] for row in reversed(made.log.access_log()) if matches(row)]


def test_each_filter_finds_exactly_the_rows_that_match_it(made: Made) -> None:
    decision = made.decisions[1]["id"]
    _get(made, decision, "tilsynssak 2026/øst-17, gjennomgang", who=OTHER_AUDITOR)
    _get(made, made.decisions[2]["id"], "rutinekontroll", who=OTHER_AUDITOR)
    _get(made, decision, "rutinekontroll", who=AUDITOR)
    now = datetime.now(UTC)
    cases = [
        ({"reader": OTHER_AUDITOR}, AccessFilter(who=OTHER_AUDITOR)),
        ({"decision_id": decision}, AccessFilter(decision_id=decision)),
        # Ignoring case, also of Norwegian letters (Ø and ø).
        ({"formaal_contains": "TILSYNSSAK 2026/ØST"}, AccessFilter(formaal_contains="TILSYNSSAK 2026/ØST")),
        ({"method": "GetDecision", "reader": AUDITOR}, AccessFilter(action="GetDecision", who=AUDITOR)),
        ({"at_from": _stamp(made.started), "at_to": _stamp(now)}, AccessFilter(at_from=made.started, at_to=now)),
    ]
    for fields, wanted in cases:
        expected = _reference(made, wanted)
        found = _ids(_list(made, page_size=500, **fields))
        # The listing itself is recorded before it is answered: it is found first when it matches too.
        assert found in (expected, [max(found), *expected]), fields
        assert expected, f"the filter {fields} should find something"
    lower = _ids(_list(made, formaal_contains="tilsynssak 2026/øst", page_size=500))
    assert any("gjennomgang" in made.log.access_log(i)[0]["detail"]["formaal"] for i in lower)


def test_pages_walk_the_whole_log_newest_first_without_gaps_or_repeats(made: Made) -> None:
    for index in range(5):
        _get(made, made.decisions[index]["id"], f"sidevisning {index}", who="revisor-sider")
    first = _list(made, who="revisor-sider", reader="revisor-sider", page_size=2)
    seen, token = _ids(first), first.next_page_token
    while token:
        answer = _list(made, who="revisor-sider", reader="revisor-sider", page_size=2, page_token=token)
        assert len(answer.entries) <= 2
        seen += _ids(answer)
        token = answer.next_page_token
    everything = [row["id"] for row in reversed(made.log.access_log()) if row["who"] == "revisor-sider"]
    # The first listing is in the log before its own page; the later listings are newer than the first page.
    assert seen == [i for i in everything if i <= seen[0]]
    assert len(seen) == 6  # five reads and the first listing


def test_a_search_by_national_id_is_shown_with_the_pseudonym_never_the_number(made: Made) -> None:
    with made.channel() as channel:
        apb_grpc.AuditServiceStub(channel).ListDecisions(
            apb.ListDecisionsRequest(filter=apb.DecisionFilter(national_id=NATIONAL_ID), formaal=PURPOSE),
            metadata=[("regelmotor-caller", "revisor-fnr")], timeout=30)
    [listing, search] = _list(made, who="revisor-fnr", reader="revisor-fnr").entries
    shown = str(json_format.MessageToDict(search.detail))
    assert search.method == "ListDecisions" and NATIONAL_ID not in shown
    assert json_format.MessageToDict(search.detail)["subject"] == made.log.get(made.decisions[0]["id"]).subject  # type: ignore[union-attr]
    assert listing.method == "ListAccessLog"


def _expected_counts(made: Made) -> Counter[tuple[str, str]]:
    oslo_today = datetime.now(UTC).astimezone(_oslo()).date().isoformat()
    return Counter((oslo_today, str(d["outcome"]["utfall"])) for d in made.decisions)


def _oslo() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Oslo")


def test_count_decisions_counts_the_decisions_made_per_oslo_day_and_outcome_value(made: Made) -> None:
    period: dict[str, Any] = {"recorded_from": _stamp(made.started - timedelta(days=2)),
              "recorded_to": _stamp(datetime.now(UTC) + timedelta(days=1))}
    answer = _count(made, ruleset="rett-til-helsehjelp", **period)
    found = Counter({(row.day, str(json_format.MessageToDict(row.value))): row.count for row in answer.counts})
    assert found == _expected_counts(made)
    assert len({d["outcome"]["utfall"] for d in made.decisions}) > 1, "the facts should give several outcomes"
    assert answer.total == len(made.decisions) and answer.outcome_field == "utfall"
    with_id = _count(made, ruleset="rett-til-helsehjelp", national_id=NATIONAL_ID, **period)
    assert sum(row.count for row in with_id.counts) == 2
    other = _count(made, ruleset="utskrivningsklar", **period)
    assert not other.counts and other.total == 0
    recorded = [json_format.MessageToDict(entry.detail) for entry in _list(made, method="CountDecisions").entries
                if entry.formaal == PURPOSE]
    assert [detail["ruleset"] for detail in recorded[:3]] == ["utskrivningsklar", "rett-til-helsehjelp",
                                                              "rett-til-helsehjelp"]
    assert all(detail["count_outcome"] == "utfall" for detail in recorded)
    assert "subject" in recorded[1] and NATIONAL_ID not in str(recorded)


def test_count_per_day_splits_days_at_midnight_in_oslo_across_summer_time(tmp_path: Any) -> None:
    """Days in Oslo are 23 and 25 hours long at the changes: records just either side of each local midnight."""
    for backend in ("sqlite", "postgres"):
        with store_location(backend) as location:
            url = str(tmp_path / f"{uuid.uuid4().hex}.db") if location == "sqlite" else location
            with open_log(url) as log:
                moments = [datetime(2026, 3, 28, 22, 59, tzinfo=UTC), datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
                           datetime(2026, 3, 29, 21, 59, tzinfo=UTC), datetime(2026, 3, 29, 22, 0, tzinfo=UTC),
                           datetime(2026, 10, 24, 21, 59, tzinfo=UTC), datetime(2026, 10, 24, 22, 0, tzinfo=UTC),
                           datetime(2026, 10, 25, 22, 59, tzinfo=UTC), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)]
                values: list[Any] = ["ja", "nei", None, True, 3, 3.5, {"a": 1}, "ja"]
                records = [make_record(n, recorded_at=moment, outcome={"utfall": value} if value is not None else {})
                           for n, (moment, value) in enumerate(zip(moments, values, strict=True))]
                log.append(records)
                period = ListFilter(recorded_from=datetime(2026, 1, 1, tzinfo=UTC),
                                    recorded_to=datetime(2026, 12, 31, tzinfo=UTC), ruleset="rett-til-helsehjelp")
                counts = [(c.day, c.value, c.count) for c in log.count_per_day(period, "utfall")]
        oslo = [(moment.astimezone(_oslo()).date().isoformat(), value) for moment, value in zip(moments, values,
                                                                                                 strict=True)]
        assert sorted(counts, key=str) == sorted([(day, value, 1) for day, value in oslo], key=str), backend
        assert [day for day, _, _ in counts] == ["2026-03-28", "2026-03-29", "2026-03-29", "2026-03-30",
                                                 "2026-10-24", "2026-10-25", "2026-10-25", "2026-10-26"], backend


BAD_LISTINGS = [
    ({"at_from": timestamp_pb2.Timestamp(seconds=10**12)}, "filter.at_from", "must be a time"),
    ({"at_from": _stamp(datetime(2026, 5, 2, tzinfo=UTC)), "at_to": _stamp(datetime(2026, 5, 1, tzinfo=UTC))},
     "filter.at_to", "must be after filter.at_from"),
    ({"reader": "revisor\nforfalsket"}, "filter.reader", "control characters"),
    ({"formaal_contains": "x" * 501}, "filter.formaal_contains", "at most 500 characters, not 501"),
    ({"method": "m" * 101}, "filter.method", "at most 100 characters"),
    ({"page_size": 501}, "page_size", "between 1 and 500"),
    ({"page_token": "ikke-et-merke"}, "page_token", "not a token from this service"),
    ({"formaal": "x"}, "formaal", "must be 3 to 500 characters"),
]


@pytest.mark.parametrize(("fields", "field", "reason"), BAD_LISTINGS, ids=[case[1] for case in BAD_LISTINGS])
def test_a_bad_access_log_search_is_invalid_argument_naming_the_field(made: Made, fields: dict[str, Any],
                                                                      field: str, reason: str) -> None:
    logged = len(made.log.access_log())
    with pytest.raises(grpc.RpcError, match=f"{re.escape(field)}: .*{reason}") as caught:
        _list(made, **{"formaal": PURPOSE, **fields})
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details(caught.value)["BadRequest"].field_violations] == [field]
    if field != "page_token":  # a token is read with the log, after the read is recorded
        assert len(made.log.access_log()) == logged


_DAY = datetime(2026, 4, 16, tzinfo=UTC)
BAD_COUNTS = [
    ({"recorded_from": _stamp(_DAY), "recorded_to": _stamp(_DAY + timedelta(days=1))}, "filter.ruleset",
     "required"),
    ({"ruleset": "rett-til-helsehjelp", "recorded_to": _stamp(_DAY)}, "filter.recorded_from", "required"),
    ({"ruleset": "rett-til-helsehjelp", "recorded_from": _stamp(_DAY)}, "filter.recorded_to", "required"),
    ({"ruleset": "rett-til-helsehjelp", "recorded_from": _stamp(_DAY),
      "recorded_to": _stamp(_DAY + timedelta(days=401))}, "filter.recorded_to", "at most 400 days"),
    ({"ruleset": "rett-til-helsehjelp", "recorded_from": _stamp(_DAY), "recorded_to": _stamp(_DAY)},
     "filter.recorded_to", "must be after"),
    ({"ruleset": "rett-til-helsehjelp", "recorded_from": _stamp(_DAY), "recorded_to": _stamp(_DAY + timedelta(1)),
      "outcome_field": ""}, "outcome_field", "required"),
    ({"ruleset": "rett-til-helsehjelp", "recorded_from": _stamp(_DAY), "recorded_to": _stamp(_DAY + timedelta(1)),
      "outcome_field": 'ut"fall'}, "outcome_field", "no quotes"),
    ({"ruleset": "rett-til-helsehjelp", "recorded_from": _stamp(_DAY), "recorded_to": _stamp(_DAY + timedelta(1)),
      "national_id": "12345678901"}, "filter.national_id", "."),
    ({"ruleset": "rett-til-helsehjelp", "recorded_from": _stamp(_DAY), "recorded_to": _stamp(_DAY + timedelta(1)),
      "formaal": ""}, "formaal", "required"),
]


@pytest.mark.parametrize(("fields", "field", "reason"), BAD_COUNTS, ids=[f"{c[1]}-{i}" for i, c in
                                                                         enumerate(BAD_COUNTS)])
def test_a_bad_count_is_invalid_argument_naming_the_field(made: Made, fields: dict[str, Any], field: str,
                                                          reason: str) -> None:
    logged = len(made.log.access_log())
    fields = dict(fields)  # the case is shared by both backends' runs
    formaal = fields.pop("formaal", PURPOSE)
    with pytest.raises(grpc.RpcError, match=f"{re.escape(field)}: .*{reason}") as caught:
        _count(made, formaal=formaal, **fields)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details(caught.value)["BadRequest"].field_violations] == [field]
    assert len(made.log.access_log()) == logged
