"""A ruleset declares which outcome sums up its decisions (`headline:`), and the service reports that
outcome's value - in span attributes and the front's summary - without knowing any outcome by name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from regelmotor.core.api import Regelmotor
from regelmotor.core.errors import Diagnostic, RulesetInvalid
from regelmotor.core.evaluator import Evaluator
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.model import Ruleset
from regelmotor.core.repository import RulesetRepository
from regelmotor.core.view import Headline
from regelmotor.server.handler import EvaluationHandler
from regelmotor_api.v1 import decision_pb2 as pb
from tests.conftest import BUNDLED_RULESETS, ruleset_text

OUTCOMES = """\
facts:
  alder: {type: int, required: true}
rules:
  - id: voksen
    title: Voksen
    hjemmel: h1
    when: alder >= 18
    then: {utfall: voksen, voksen: true, frist: 2030-01-01, koder: a}
outcomes:
  utfall: {type: enum, values: [voksen, barn], default: barn}
  voksen: {type: bool, default: false}
  frist: {type: date}
  koder: {type: list, items: {type: string}, combine: collect}
  mellom: {type: bool, default: false, internal: true}
"""


def with_headline(headline: str) -> str:
    return ruleset_text(f"headline: {headline}\n" + OUTCOMES)


def refused(text: str) -> list[Diagnostic]:
    with pytest.raises(RulesetInvalid, match=r"headline\.yaml:\d+:\d+: ") as caught:
        load_ruleset_text(text, "headline.yaml")
    return caught.value.diagnostics


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_a_declared_public_outcome_with_one_value_is_a_headline() -> None:
    for name in ("utfall", "voksen", "frist"):
        assert load_ruleset_text(with_headline(name), "headline.yaml").meta.headline == name
    assert load_ruleset_text(ruleset_text(OUTCOMES), "headline.yaml").meta.headline is None  # optional


@pytest.mark.parametrize(("headline", "reason"), [
    ("resultat", "'resultat' is not a declared outcome; declared: utfall, voksen, frist, koder, mellom"),
    ("alder", "'alder' is not a declared outcome"),  # a fact
    ("mellom", "'mellom' is an internal outcome: it must be part of the public outcome"),
    ("koder", "'koder' is a list: it must be an outcome with one value"),
    ("'5'", "'5' is not a declared outcome"),
], ids=["unknown", "a fact", "internal", "a list", "a number as text"])
def test_a_headline_that_is_no_public_outcome_with_one_value_is_refused_at_its_line(headline: str,
                                                                                     reason: str) -> None:
    text = with_headline(headline)
    (diagnostic,) = refused(text)
    assert reason in diagnostic.message
    assert diagnostic.line == line_of(text, "headline:")


def test_a_headline_must_be_text() -> None:
    text = with_headline("[utfall]")
    (diagnostic,) = refused(text)
    assert "`headline` of the ruleset must be text, not a list" in diagnostic.message
    assert diagnostic.line == line_of(text, "headline:")


def test_a_headline_naming_an_outcome_with_problems_adds_no_second_error() -> None:
    text = with_headline("utfall").replace("values: [voksen, barn], default: barn", "values: [voksen], default: barn")
    (diagnostic,) = refused(text)
    assert "barn" in diagnostic.message and "headline" not in diagnostic.message


@pytest.fixture
def evaluator(make_ruleset: Callable[..., Ruleset]) -> Callable[[str | None], Evaluator]:
    def make(headline: str | None) -> Evaluator:
        return Evaluator(make_ruleset((f"headline: {headline}\n" if headline else "") + OUTCOMES))

    return make


def test_an_evaluation_gives_the_headline_and_its_value(evaluator: Callable[[str | None], Evaluator]) -> None:
    adult, child = {"alder": 40}, {"alder": 4}
    assert evaluator("utfall").run(adult, date(2026, 1, 1)).headline == Headline("utfall", "voksen")
    assert evaluator("voksen").run(child, date(2026, 1, 1)).headline == Headline("voksen", False)
    assert evaluator("frist").run(adult, date(2026, 1, 1)).headline == Headline("frist", "2030-01-01")
    assert evaluator("frist").run(child, date(2026, 1, 1)).headline == Headline("frist", None)
    assert evaluator(None).run(adult, date(2026, 1, 1)).headline is None


@pytest.mark.parametrize(("value", "text"), [("rett", "rett"), (True, "true"), (False, "false"), (3, "3"),
                                             ("2026-04-13", "2026-04-13"), (None, "")])
def test_a_headline_is_shown_as_short_text(value: object, text: str) -> None:
    assert Headline("x", value).text == text


def test_the_bundled_rulesets_declare_their_headline() -> None:
    repository = RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True)
    declared = {r.key: r.meta.headline for name in repository.names() for r in repository.all_versions(name)}
    assert declared == {
        "prioriterte-pasientgrupper@2020.1": "store_og_sammensatte_behov",
        "prioriterte-pasientgrupper@2024.1": "store_og_sammensatte_behov",
        "prioriterte-pasientgrupper@2020.1.1": "store_og_sammensatte_behov",
        "prioriterte-pasientgrupper@2024.1.1": "store_og_sammensatte_behov",
        "rett-til-helsehjelp@2015.11": "utfall", "rett-til-helsehjelp@2015.11.1": "utfall",
        "rett-til-helsehjelp@2024.07": "utfall", "rett-til-helsehjelp@2024.07.1": "utfall",
        "utskrivningsklar@2012.1": "utfall", "utskrivningsklar@2012.1.1": "utfall", "utskrivningsklar@2019.1": "utfall",
        "utskrivningsklar@2019.1.1": "utfall",
    }


@pytest.mark.parametrize(("headline", "attributes"), [
    ("voksen", {"regelmotor.headline": "true", "regelmotor.headline_outcome": "voksen"}),
    ("frist", {"regelmotor.headline": "2030-01-01", "regelmotor.headline_outcome": "frist"}),
    (None, {}),
], ids=["a bool", "a date", "none declared"])
def test_the_service_reports_the_declared_headline_whatever_its_name(
        make_ruleset: Callable[..., Ruleset], headline: str | None, attributes: dict[str, str]) -> None:
    ruleset = make_ruleset((f"headline: {headline}\n" if headline else "") + OUTCOMES, name="overskrift")
    spans = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(spans))
    handler = EvaluationHandler(Regelmotor(RulesetRepository({"overskrift": {"1": ruleset}})),
                                tracers.get_tracer("test"))
    asked = pb.EvaluateRequest(ruleset="overskrift", version="1", as_of="2026-01-01")
    asked.facts.update({"alder": 40})
    reply = handler.evaluate(asked.SerializeToString())
    assert reply.decision is not None
    assert dict(reply.summary.headline_attributes()) == attributes
    (span,) = spans.get_finished_spans()
    shown = {k: v for k, v in (span.attributes or {}).items() if k.startswith("regelmotor.headline")}
    assert shown == attributes
