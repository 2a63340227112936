"""RulesetService.AnalyseImpact over a real server and a real decision log (SQLite, and PostgreSQL).

The log is filled through EvaluateStream with utskrivningsklar decisions whose payment period and notice time
the test chooses; the candidate raises the 2025 døgnpris and shortens the notice limit from 24 to 12 hours. What
it must change is worked out here from the chosen facts alone (rates and rules as the test states them), not by
the engine, and compared with the report."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, timestamp_pb2

from regelmotor.core.calendar_no import OSLO
from regelmotor.core.loader import load_ruleset_text
from regelmotor.server.app import RunningServer
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.conftest import BUNDLED_RULESETS
from tests.grpc_support import details, request, server_in_process, struct
from tests.postgres_support import postgres_schema

RATES = {2024: 5745, 2025: 5981}  # the døgnpris of 2019.1 for these years
NEW_RATES = {2024: 5745, 2025: 6100}
OLD_LIMIT, NEW_LIMIT = 24, 12  # hours after admission the notice may come
PURPOSE = "ny døgnpris 2025, sak 2026/12"
MAX_DECISIONS = 50
AUTHOR = [("regelmotor-caller", "fagstab-ola")]


def candidate_source() -> str:
    text = (BUNDLED_RULESETS / "utskrivningsklar" / "2019.1.yaml").read_text(encoding="utf-8")
    for old, new in (('version: "2019.1"', 'version: "2026.1"'), ("status: published", "status: draft"),
                     ("gyldig_fra: 2019-01-01\nselected_by", "gyldig_fra: 2026-01-01\nselected_by"),
                     ("{gyldig_fra: 2025-01-01, value: 5981}", "{gyldig_fra: 2025-01-01, value: 6100}"),
                     ("when: varsel_timer <= 24", "when: varsel_timer <= 12"),
                     ("when: varsel_timer > 24", "when: varsel_timer > 12")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


@dataclass(frozen=True)
class Stay:
    """A discharge-ready patient who waited `days` days from `start` for the municipality; the notice of admission
    came `notice_hours` after admission."""

    start: date
    days: int
    notice_hours: int

    def facts(self) -> dict[str, Any]:
        admitted = datetime(self.start.year, self.start.month, self.start.day, 9, tzinfo=UTC) - timedelta(days=3)
        return {
            "utskrivningsklar_dato": self.start.isoformat(), "sektor": "somatikk",
            "innlagt": admitted.isoformat(), "forventet_behov_kommunale_tjenester": True,
            "varsel_innlagt": (admitted + timedelta(hours=self.notice_hours)).isoformat(),
            "problemstillinger_innleggelse_avklart": True, "ovrige_problemstillinger_avklart": True,
            "uavklarte_problemstillinger_begrunnet": True, "funksjonsniva_vurdert": True,
            "lege_vurdert_utskrivningsklar": True, "melding_utskrivningsklar": f"{self.start.isoformat()}T10:00:00Z",
            "kommune_svar": "kan_ikke_ta_imot", "utskrevet_dato": (self.start + timedelta(days=self.days)).isoformat(),
            "oppholdskommune": "4601"}

    def amount(self, rates: dict[int, int]) -> int:
        return sum(rates[(self.start + timedelta(days=d)).year] for d in range(self.days))

    def outcome(self, rates: dict[int, int], limit: int) -> tuple[str, int | None]:
        """utfall and belop, by the rules as the test states them."""
        if self.notice_hours > limit:
            return "ingen_betalingsplikt", None
        return "betalingsplikt", self.amount(rates)


def stays(count: int, offset: int = 0) -> list[Stay]:
    """Stays in 2024 and 2025, some across new year; every third with the notice after 18 hours."""
    starts = [date(2024, 3, 4), date(2024, 12, 29), date(2025, 2, 10), date(2025, 6, 1), date(2024, 7, 15)]
    return [Stay(starts[(i + offset) % len(starts)] + timedelta(days=i % 3), 1 + (i + offset) % 6,
                 18 if (i + offset) % 3 == 0 else 2) for i in range(count)]


def record(server: RunningServer, chosen: list[Stay], tag: str, rates: dict[int, int] = RATES) -> list[str]:
    """Evaluate each stay through EvaluateStream (recorded in the log); the decision ids, in order."""
    requests = [pb.EvaluateRequest(ruleset="utskrivningsklar", as_of=(s.start + timedelta(days=s.days)).isoformat(),
                                   facts=struct(s.facts()), request_id=f"{tag}-{i}") for i, s in enumerate(chosen)]
    with grpc.insecure_channel(server.address) as channel:
        answers = list(pb_grpc.DecisionServiceStub(channel).EvaluateStream(
            iter(requests), metadata=[("regelmotor-caller", "sykehus-a")], timeout=60))
    assert all(a.HasField("decision") for a in answers), [a.error.message for a in answers if a.HasField("error")]
    for stay, answer in zip(chosen, answers, strict=True):  # the log holds what the test expects as "before"
        outcome = json_format.MessageToDict(answer.decision.outcome)
        assert (outcome["utfall"], outcome.get("belop")) == stay.outcome(rates, OLD_LIMIT)
    return [a.decision.decision_id for a in answers]


def stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(moment)
    return result


@dataclass
class Logged:
    server: RunningServer
    window: tuple[datetime, datetime]  # recorded_from, recorded_to of the first batch only
    chosen: list[Stay]
    ids: list[str]


def fill(server: RunningServer) -> Logged:
    began = datetime.now(UTC) - timedelta(seconds=1)
    chosen = stays(40)
    ids = record(server, chosen, "a")
    with grpc.insecure_channel(server.address) as channel:  # another ruleset in the same window: not analysed
        pb_grpc.DecisionServiceStub(channel).Evaluate(request(request_id="other"), metadata=AUTHOR, timeout=30)
    ended = datetime.now(UTC) + timedelta(milliseconds=1)
    time.sleep(0.01)
    record(server, stays(20, offset=1), "b")  # after the window: together with it, more than MAX_DECISIONS
    return Logged(server, (began, ended), chosen, ids)


@pytest.fixture(scope="module")
def logged() -> Iterator[Logged]:
    with server_in_process(workers=1, impact_workers=2, impact_max_decisions=MAX_DECISIONS) as (server, _, _):
        yield fill(server)


def analyse(server: RunningServer, window: tuple[datetime, datetime] | None, *, source: str | None = None,
            ruleset: str = "utskrivningsklar", formaal: str = PURPOSE, **fields: Any,
            ) -> list[rpb.AnalyseImpactResponse]:
    chosen = apb.DecisionFilter() if window is None else apb.DecisionFilter(recorded_from=stamp(window[0]),
                                                                           recorded_to=stamp(window[1]))
    if "stored" not in fields:
        fields["source"] = candidate_source() if source is None else source
    message = rpb.AnalyseImpactRequest(ruleset=ruleset, filter=chosen, formaal=formaal, **fields)
    with grpc.insecure_channel(server.address) as channel:
        return list(rpb_grpc.RulesetServiceStub(channel).AnalyseImpact(message, metadata=AUTHOR, timeout=120))


def value(message: Any) -> Any:
    return json_format.MessageToDict(message)


def expected(chosen: list[Stay], ids: list[str]) -> dict[str, Any]:
    before = [s.outcome(RATES, OLD_LIMIT) for s in chosen]
    after = [s.outcome(NEW_RATES, NEW_LIMIT) for s in chosen]
    utfall = Counter((b[0], a[0]) for b, a in zip(before, after, strict=True))
    belop_changed = [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if b[1] != a[1]]
    return {"utfall": utfall, "utfall_changed": [i for i, (b, a) in enumerate(zip(before, after, strict=True))
                                                 if b[0] != a[0]],
            "belop_changed": belop_changed, "sum_before": sum(b[1] or 0 for b in before),
            "sum_after": sum(a[1] or 0 for a in after),
            "belop_examples": [(ids[i], before[i][1], after[i][1]) for i in belop_changed[:5]]}


def check_report(report: rpb.ImpactReport, chosen: list[Stay], ids: list[str]) -> None:
    want = expected(chosen, ids)
    fields = {o.field: o for o in report.outcomes}
    assert (report.ruleset, report.candidate_version, report.analysed, report.refused) == (
        "utskrivningsklar", "2026.1", len(chosen), 0)
    utfall = fields["utfall"]
    assert utfall.kind == "enum"
    assert Counter({(value(t.before), value(t.after)): t.count for t in utfall.transitions}) == want["utfall"]
    assert utfall.changed == len(want["utfall_changed"])
    assert [e.decision_id for e in utfall.examples] == [ids[i] for i in want["utfall_changed"][:5]]
    assert {(value(e.before), value(e.after), e.first_rule) for e in utfall.examples} == {
        ("betalingsplikt", "ingen_betalingsplikt", "varsel-innlagt-rettidig")}
    belop = fields["belop"]
    assert (belop.kind, belop.changed) == ("int", len(want["belop_changed"]))
    assert (int(belop.sum_before), int(belop.sum_after)) == (want["sum_before"], want["sum_after"])
    assert [(e.decision_id, value(e.before), value(e.after)) for e in belop.examples] == want["belop_examples"]
    changed = set(want["utfall_changed"]) | set(want["belop_changed"])
    assert report.changed == len(changed)


def test_the_report_matches_the_changes_worked_out_from_the_facts(logged: Logged) -> None:
    before = logged.server.log.access_log() if logged.server.log else []
    messages = analyse(logged.server, logged.window)
    *progress, last = messages
    assert last.WhichOneof("item") == "report"
    assert [m.WhichOneof("item") for m in progress] == ["progress"] * len(progress)
    assert progress[0].progress.done == 0 and progress[-1].progress.done == progress[-1].progress.total == 40
    check_report(last.report, logged.chosen, logged.ids)
    assert logged.server.log is not None
    reads = logged.server.log.access_log(before[-1]["id"] + 1 if before else 0)
    assert [(r["who"], r["action"]) for r in reads] == [("fagstab-ola", "AnalyseImpact")]
    assert reads[0]["detail"]["formaal"] == PURPOSE and reads[0]["detail"]["decisions"] == 40


def test_the_same_window_gives_the_same_report(logged: Logged) -> None:
    first = analyse(logged.server, logged.window, max_examples=3)[-1].report
    second = analyse(logged.server, logged.window, max_examples=3)[-1].report
    first.seconds = second.seconds = 0
    assert first == second
    assert all(len(o.examples) <= 3 for o in first.outcomes)


def test_facts_the_candidate_refuses_are_counted_with_the_reason(logged: Logged) -> None:
    stricter = candidate_source().replace("  bostedskommune:\n    type: string\n",
                                          "  bostedskommune:\n    type: string\n    required: true\n")
    report = analyse(logged.server, logged.window, source=stricter)[-1].report
    assert (report.analysed, report.refused, report.changed) == (40, 40, 0)
    assert len(report.refusals) == 5 and "bostedskommune" in report.refusals[0].message


def _refused(server: RunningServer, field: str, **kwargs: Any) -> str:
    assert server.log is not None
    access_before = len(server.log.access_log())
    decisions_before = server.log.count(_everything(), 10_000)
    with pytest.raises(grpc.RpcError, match=r"StatusCode.INVALID_ARGUMENT") as caught:
        analyse(server, kwargs.pop("window", None), **kwargs)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = details(caught.value)["BadRequest"].field_violations
    assert [v.field for v in violations][:1] == [field]
    assert len(server.log.access_log()) == access_before  # nothing read, nothing recorded
    assert server.log.count(_everything(), 10_000) == decisions_before
    return str(violations[0].description)


def _everything() -> Any:
    from regelmotor.store import ListFilter

    return ListFilter()


def test_an_invalid_source_is_refused_naming_the_source_with_its_line(logged: Logged) -> None:
    reason = _refused(logged.server, "source", source="name: utskrivningsklar\nversion: [\n", window=logged.window)
    assert reason.startswith("line ")
    assert "required" in _refused(logged.server, "source", source="", window=logged.window)
    assert "bytes" in _refused(logged.server, "source", source="#" * (1024 * 1024 + 1), window=logged.window)


def test_an_unknown_ruleset_or_another_ruleset_s_candidate_is_refused(logged: Logged) -> None:
    assert "unknown ruleset" in _refused(logged.server, "ruleset", ruleset="utskrivningsklarr")
    assert "version of 'utskrivningsklar'" in _refused(logged.server, "ruleset", ruleset="rett-til-helsehjelp")


def test_a_window_larger_than_the_limit_is_refused(logged: Logged) -> None:
    assert "more than 50" in _refused(logged.server, "filter")


def test_a_missing_purpose_is_refused(logged: Logged) -> None:
    _refused(logged.server, "formaal", formaal=" ", window=logged.window)


def test_too_many_examples_are_refused(logged: Logged) -> None:
    _refused(logged.server, "max_examples", max_examples=51, window=logged.window)


def test_the_report_holds_on_postgresql() -> None:
    with postgres_schema() as dsn, server_in_process(workers=1, impact_workers=2, decision_log=dsn) as (server, _, _):
        began = datetime.now(UTC) - timedelta(seconds=1)
        chosen = stays(12, offset=2)
        ids = record(server, chosen, "pg")
        report = analyse(server, (began, datetime.now(UTC) + timedelta(seconds=1)))[-1].report
        check_report(report, chosen, ids)


def _cli(logged: Logged, tmp_path: Any, *extra: str, source: str | None = None,
         window: tuple[str, str] | None = None) -> list[str]:
    candidate = tmp_path / "2026.1.yaml"
    candidate.write_text(candidate_source() if source is None else source, encoding="utf-8")
    start, end = window or (logged.window[0].isoformat(), logged.window[1].isoformat())
    return ["ruleset", "impact", str(candidate), "--ruleset", "utskrivningsklar", "--recorded-from", start,
            "--recorded-to", end, "--formaal", PURPOSE, "--address", logged.server.address, *extra]


def test_the_cli_prints_the_report_as_json_and_as_a_table(logged: Logged, tmp_path: Any,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from regelmotor.cli.main import main

    assert main(_cli(logged, tmp_path, "--json")) == 0
    printed = capsys.readouterr()
    assert printed.err == ""  # no progress bar into a pipe
    report = json_format.Parse(printed.out, rpb.ImpactReport())
    check_report(report, logged.chosen, logged.ids)
    assert main(_cli(logged, tmp_path)) == 0
    table = capsys.readouterr().out
    want = expected(logged.chosen, logged.ids)
    assert f"utfall (enum): {len(want['utfall_changed'])} endret" in table
    assert f"belop (int): {len(want['belop_changed'])} endret" in table
    assert f"sum før {want['sum_before']:,}".replace(",", " ") in table
    assert "(første regel som gir annet: varsel-innlagt-rettidig)" in table


def test_the_cli_exit_status_says_who_refused(logged: Logged, tmp_path: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from regelmotor.cli.main import main

    today = datetime.now(OSLO).date().isoformat()  # the CLI's days are Oslo days
    # What the command sent, refused as invalid (INVALID_ARGUMENT): 2, as the lifecycle commands' refused arguments.
    assert main(_cli(logged, tmp_path, window=(today, today))) == 2  # both batches: more than MAX_DECISIONS
    assert "  filter: the window holds more than 50" in capsys.readouterr().err
    assert main(_cli(logged, tmp_path, source="name: [")) == 2
    assert "  source: line " in capsys.readouterr().err
    with server_in_process(workers=0, decision_log="off") as (unlogged, _, _):  # the service refuses: 3
        command = _cli(logged, tmp_path)
        assert main([*command[:-1], unlogged.address]) == 3
        assert "FAILED_PRECONDITION: this service keeps no decision log" in capsys.readouterr().err
    assert main(_cli(logged, tmp_path, window=("2025-13-01", today))) == 2
    assert "--recorded-from" in capsys.readouterr().err
    assert main([*_cli(logged, tmp_path), "--from", "1.1.2025"]) == 2
    assert "--from: '1.1.2025' is not a date YYYY-MM-DD" in capsys.readouterr().err
    assert main([*_cli(logged, tmp_path)[:-2], "--address", "127.0.0.1:1"]) == 2
    assert "cannot reach the service" in capsys.readouterr().err
    token = tmp_path / "token"
    token.write_text("a.b.c", encoding="utf-8")
    # A token is never sent in the clear beyond this machine, and an unreadable CA file is named, not a traceback.
    assert main([*_cli(logged, tmp_path)[:-2], "--address", "10.0.0.1:50051", "--token-file", str(token)]) == 2
    assert "--token-file: a token is sent only over TLS or to a loopback" in capsys.readouterr().err
    assert main([*_cli(logged, tmp_path), "--ca-file", str(tmp_path / "missing.pem")]) == 2
    assert "--ca-file" in capsys.readouterr().err


def _zero_time(report: rpb.ImpactReport) -> rpb.ImpactReport:
    report.seconds = 0
    return report


def _store_proposal(server: RunningServer, source: str) -> None:
    """The candidate kept in the store as a proposed version, as ProposeRuleset keeps one."""
    from regelmotor.core.loader import load_ruleset_text
    from regelmotor.server.seeding import meta_of
    from regelmotor.store import VersionText

    assert server.log is not None
    ruleset = load_ruleset_text(source, "2026.1.yaml")
    text = VersionText(ruleset.meta.name, ruleset.meta.version, source, "", ruleset.sha256, meta_of(ruleset))
    assert server.log.rulesets().propose(text, "fagstab-kari").state.value == "proposed"


def test_a_stored_proposed_version_gives_the_report_of_its_source(logged: Logged, tmp_path: Any,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from regelmotor.cli.main import main

    source = candidate_source().replace('version: "2026.1"', 'version: "2026.9"')
    _store_proposal(logged.server, source)
    stored = rpb.VersionRef(name="utskrivningsklar", version="2026.9")
    by_name = analyse(logged.server, logged.window, stored=stored, source=None)[-1].report
    by_source = analyse(logged.server, logged.window, source=source)[-1].report
    assert by_name.candidate_version == "2026.9" and by_name.changed > 0
    assert _zero_time(by_name) == _zero_time(by_source)
    command = _cli(logged, tmp_path, "--json")
    assert main([command[0], command[1], "--version", "2026.9", *command[3:]]) == 0
    assert _zero_time(json_format.Parse(capsys.readouterr().out, rpb.ImpactReport())) == by_source
    unknown = rpb.VersionRef(name="utskrivningsklar", version="2099.1")
    assert "holds no version '2099.1'" in _refused(logged.server, "stored.version", stored=unknown,
                                                   window=logged.window, source=None)


def test_a_window_of_decision_dates_selects_the_decisions_of_those_days(logged: Logged, tmp_path: Any,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from regelmotor.cli.main import main

    def dated(stay: Stay) -> str:
        return (stay.start + timedelta(days=stay.days)).isoformat()  # the as_of each was decided for

    in_2025 = [i for i, stay in enumerate(logged.chosen) if "2025-01-01" <= dated(stay) <= "2025-12-31"]
    assert 0 < len(in_2025) < len(logged.chosen)
    report = analyse(logged.server, logged.window, as_of_from="2025-01-01", as_of_to="2025-12-31")[-1].report
    check_report(report, [logged.chosen[i] for i in in_2025], [logged.ids[i] for i in in_2025])
    last_day = max(dated(stay) for stay in logged.chosen)
    only_last = analyse(logged.server, logged.window, as_of_from=last_day, as_of_to=last_day)[-1].report
    assert only_last.analysed == sum(dated(stay) == last_day for stay in logged.chosen)
    assert main([*_cli(logged, tmp_path, "--json"), "--from", "2025-01-01", "--to", "2025-12-31"]) == 0
    assert _zero_time(json_format.Parse(capsys.readouterr().out, rpb.ImpactReport())) == _zero_time(report)
    assert "YYYY-MM-DD" in _refused(logged.server, "as_of_from", as_of_from="2025-1-1", window=logged.window)
    assert "before as_of_from" in _refused(logged.server, "as_of_to", as_of_from="2025-02-01",
                                           as_of_to="2025-01-31", window=logged.window)


def test_the_impact_workers_know_a_version_published_after_they_started() -> None:
    """The examples name the first rule that differs also for decisions of a version published (and hot reloaded)
    after the impact workers started, not only for the versions they started with."""
    published = candidate_source()
    for new, old in (('version: "2026.1"', 'version: "2026.0"'), ("status: draft", "status: published"),
                     ("value: 6100}", "value: 5981}"), ("<= 12", "<= 24"), ("> 12", "> 24")):
        published = published.replace(new, old)  # 2019.1's rules, in force from 2026
    rate_2026 = ('{gyldig_fra: 2026-01-01, value: null, '
                 'note: "2026-satsen er ikke verifisert; legges inn i en ny versjon."}')
    published = published.replace(rate_2026, "{gyldig_fra: 2026-01-01, value: 6000}")
    candidate = candidate_source().replace('version: "2026.1"', 'version: "2026.2"').replace(
        rate_2026, "{gyldig_fra: 2026-01-01, value: 6200}")
    with server_in_process(workers=1, impact_workers=1) as (server, _, _):
        nothing = datetime(2000, 1, 1, tzinfo=UTC)
        assert analyse(server, (nothing, nothing), source=candidate)[-1].report.analysed == 0  # the worker starts
        _store_proposal(server, published)
        assert server.log is not None
        ruleset = load_ruleset_text(published, "2026.0.yaml")
        server.log.rulesets().approve("utskrivningsklar", "2026.0", ruleset.sha256, "fagstab-ola",
                                      [h.id for h in ruleset.hjemler.values() if not h.verified])
        chosen = [Stay(date(2026, 3, 2) + timedelta(days=i), 2, 18) for i in range(3)]
        probe = Stay(date(2026, 2, 2), 1, 2)
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)

            def served() -> bool:  # 2019.1 has no døgnpris for 2026: refused until 2026.0 is served
                with contextlib.suppress(grpc.RpcError):
                    return bool(stub.Evaluate(pb.EvaluateRequest(ruleset="utskrivningsklar", as_of="2026-02-03",
                                                                 facts=struct(probe.facts())),
                                              metadata=AUTHOR, timeout=30).version == "2026.0")
                return False

            _seconds_until(served)
        began = datetime.now(UTC) - timedelta(seconds=1)
        ids = record(server, chosen, "late", rates={2026: 6000})
        window = (began, datetime.now(UTC) + timedelta(seconds=1))

        def first_rules() -> set[str]:
            report = analyse(server, window, source=candidate)[-1].report
            utfall = {o.field: o for o in report.outcomes}["utfall"]
            assert [e.decision_id for e in utfall.examples] == ids
            return {e.first_rule for e in utfall.examples}

        _seconds_until(lambda: first_rules() == {"varsel-innlagt-rettidig"}, limit=10)


def _seconds_until(condition: Callable[[], bool], limit: float = 30.0) -> None:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < limit, "never held"
        time.sleep(0.1)
