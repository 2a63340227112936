"""A rule's title or begrunnelse may name a parameter (`{vurderingsfrist_virkedager}`): the explanation shows the
value in force on the decision's selection date. An unknown name in braces is a located error; a title stating a
number that a parameter holds is a warning, which `ruleset validate` and ValidateRuleset report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import grpc
import pytest

from regelmotor.cli.main import main
from regelmotor.core.errors import RulesetInvalid, Severity
from regelmotor.core.evaluator import Evaluator
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.model import Ruleset
from regelmotor.server import wire
from regelmotor.server.convert import decision_to_proto
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc
from tests.conftest import ruleset_text
from tests.grpc_support import server_in_process

BODY = """
    facts:
      henvist: {type: bool, required: true}
    parameters:
      vurderingsfrist_virkedager:
        type: int
        unit: virkedager
        source: test
        values:
          - {gyldig_fra: 2020-01-01, value: 10}
          - {gyldig_fra: 2022-01-01, value: 15}
          - {gyldig_fra: 2023-01-01, value: null, note: ikke fastsatt}
    rules:
      - id: vurdering
        title: Henvisningen skal vurderes innen {vurderingsfrist_virkedager} virkedager
        hjemmel: h1
        when: henvist
        then: {vurdert: true}
        begrunnelse: "Fristen er { vurderingsfrist_virkedager } virkedager."
      - id: fast
        title: Ingen henvisning
        hjemmel: h1
        when: not henvist
        then: {vurdert: false}
    outcomes:
      vurdert: {type: bool}
    """


def _trace(evaluator: Evaluator, as_of: date, rule_id: str = "vurdering") -> pb.RuleTrace:
    """The rule's trace as the wire writer gives it, checked against the Decision the protobuf library builds."""
    evaluation = evaluator.run({"henvist": True}, as_of)
    decision = evaluation.decision("d-1")
    reference = decision_to_proto(decision, request_id="r", trace_id="ab" * 16)
    written = pb.Decision.FromString(wire.decision_bytes(evaluation, evaluation.head("d-1"), request_id="r",
                                                         trace_id="ab" * 16))
    assert written == reference
    (trace,) = [rule for rule in written.explanation.rules if rule.id == rule_id]
    (traced,) = [rule for rule in decision.explanation.rules if rule.id == rule_id]
    assert (traced.title, traced.begrunnelse or "") == (trace.title, trace.begrunnelse)
    return trace


def test_title_and_begrunnelse_show_the_value_in_force_on_the_decision_date(
        make_evaluator: Callable[..., Evaluator]) -> None:
    evaluator = make_evaluator(BODY)
    first = _trace(evaluator, date(2021, 6, 1))
    assert first.title == "Henvisningen skal vurderes innen 10 virkedager"
    assert first.begrunnelse == "Fristen er 10 virkedager."
    later = _trace(evaluator, date(2022, 6, 1))
    assert (later.title, later.begrunnelse) == ("Henvisningen skal vurderes innen 15 virkedager",
                                                "Fristen er 15 virkedager.")
    # Back again: the wire writer keeps each wording apart.
    assert _trace(evaluator, date(2021, 6, 2)).title == first.title
    assert _trace(evaluator, date(2021, 6, 2), "fast").title == "Ingen henvisning"


def test_a_parameter_without_a_value_that_day_is_left_as_written(make_evaluator: Callable[..., Evaluator]) -> None:
    trace = _trace(make_evaluator(BODY), date(2023, 6, 1))
    assert trace.title == "Henvisningen skal vurderes innen {vurderingsfrist_virkedager} virkedager"


def test_cli_evaluate_shows_the_rendered_title(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "test"
    folder.mkdir()
    (folder / "1.yaml").write_text(ruleset_text(BODY), encoding="utf-8")
    facts = tmp_path / "facts.json"
    facts.write_text('{"henvist": true}', encoding="utf-8")
    assert main(["evaluate", "--ruleset", "test", "--facts", str(facts), "--as-of", "2022-03-01", "--drafts",
                 "--rulesets", str(tmp_path)]) == 0
    assert "vurdering: Henvisningen skal vurderes innen 15 virkedager" in capsys.readouterr().out


def test_an_unknown_name_in_braces_is_an_error_at_its_line() -> None:
    text = ruleset_text(BODY).replace("innen {vurderingsfrist_virkedager}", "innen {vurderingsfrist}")
    with pytest.raises(RulesetInvalid, match=r"\{vurderingsfrist\} in the title of rule 'vurdering' is not a "
                                             r"parameter; parameters: vurderingsfrist_virkedager") as caught:
        load_ruleset_text(text, "test.yaml")
    (diagnostic,) = caught.value.diagnostics
    lines = text.splitlines()
    assert lines[diagnostic.line - 1].strip().startswith("title: Henvisningen")
    assert diagnostic.severity is Severity.ERROR


def _stating(number: str) -> str:
    return ruleset_text(BODY).replace("innen {vurderingsfrist_virkedager} virkedager", f"innen {number} virkedager")


def test_a_title_stating_a_number_a_parameter_holds_is_a_warning(make_ruleset: Callable[..., Ruleset]) -> None:
    ruleset = load_ruleset_text(_stating("10"), "test.yaml")
    (warning,) = ruleset.warnings
    assert warning.severity is Severity.WARNING
    assert _stating("10").splitlines()[warning.line - 1].strip().startswith("title: Henvisningen")
    assert str(warning).startswith(f"test.yaml:{warning.line}:{warning.column}: warning: the title of rule "
                                   "'vurdering' states 10, a value of parameter 'vurderingsfrist_virkedager' "
                                   "(from 2020-01-01); write {vurderingsfrist_virkedager} instead")
    assert len(load_ruleset_text(_stating("15"), "test.yaml").warnings) == 1  # any period's value


@pytest.mark.parametrize("number", ["11", "1.1.2020", "F10", "10a", "{vurderingsfrist_virkedager}"])
def test_numbers_no_parameter_holds_and_dates_are_not_warned_about(number: str) -> None:
    assert load_ruleset_text(_stating(number), "test.yaml").warnings == ()


def test_ruleset_validate_prints_the_warning_and_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "1.yaml"
    source.write_text(_stating("10"), encoding="utf-8")
    assert main(["ruleset", "validate", str(source)]) == 0
    out = capsys.readouterr().out
    assert f"{source}:" in out and ": warning: the title of rule 'vurdering' states 10" in out
    assert "ok: test@1 sha256 " in out and out.rstrip().endswith(", with 1 warning(s)")


def test_validate_ruleset_answers_warnings_and_errors_with_their_severity() -> None:
    with server_in_process(workers=0) as (running, _, _), \
            grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = rpb_grpc.RulesetServiceStub(channel)
        warned = stub.ValidateRuleset(rpb.ValidateRulesetRequest(source=_stating("10")), timeout=30)
        clean = stub.ValidateRuleset(rpb.ValidateRulesetRequest(source=ruleset_text(BODY)), timeout=30)
        broken = stub.ValidateRuleset(rpb.ValidateRulesetRequest(
            source=ruleset_text(BODY).replace("{vurderingsfrist_virkedager} virkedager", "{frist} virkedager")),
            timeout=30)
    assert warned.valid and warned.sha256
    (warning,) = warned.diagnostics
    assert warning.severity == rpb.DIAGNOSTIC_SEVERITY_WARNING and "states 10" in warning.message
    assert clean.valid and not clean.diagnostics
    assert not broken.valid
    (error,) = broken.diagnostics
    assert error.severity == rpb.DIAGNOSTIC_SEVERITY_ERROR and "{frist} in the title" in error.message
