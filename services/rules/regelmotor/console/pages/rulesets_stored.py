"""A stored version the service does not serve (proposed or rejected), as its approver must see it: the text
exactly as stored, what it changes against the version it follows, and its cases as the service runs them.

The console does not parse that text. A proposed source is an author's input, and the service parses, compiles
and runs such sources only in its sandbox (server/sources.py: a worker process with a memory limit and a
deadline). The core's source limits (core/yamlsource.py: 1 000 000 characters, 100 000 values, 50 levels) bound
one read, but a read near them is heavy work that this shared web process (no memory limit, every person's pages
on its threads) should not do for an untrusted text at every page view, nor meet a flaw of the parser outside a
sandbox. So the service does the reading: DiffRulesets with both sources and TestRuleset run in the sandbox, and
the page shows the source with line numbers - which is also exactly the text an approval publishes, with nothing
a rendering might leave out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import render_template, request

from regelmotor.core.limits import MAX_NAME_CHARS
from regelmotor_api.v1 import ruleset_pb2

from ..api import ConsoleApi, Metadata
from ..errors import ApiProblem
from ..formatting import norsk_dato
from .rulesets_diff import Section, sections
from .rulesets_words import action_word, state_word

COMPARED_STATES = ("published", "retired")  # what a stored version replaces: a version that has been served
_SERVICE_DOWN = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "UNAUTHENTICATED", "PERMISSION_DENIED")


@dataclass(frozen=True)
class Choice:
    version: str
    label: str  # "2024.1 – publisert, fra 1. januar 2024"


@dataclass(frozen=True)
class Comparison:
    """The diff of a stored version against an older one (or one the person chose)."""

    older: str  # the version compared with; "": there is none
    choices: tuple[Choice, ...]  # the ruleset's other stored versions
    sections: list[Section]
    problem: str = ""  # why the diff could not be made, in plain words
    choice_problem: str = ""  # the version asked for is not one of the choices


def predecessor(versions: list[dict[str, Any]], version: str) -> str:
    """The version `version` follows: the latest published or retired one starting on or before its first day;
    else (it starts before all of them) the newest of them; "" when the ruleset has none."""
    target = next((v for v in versions if v["version"] == version), None)
    served = [v for v in versions if v["state"] in COMPARED_STATES and v["version"] != version]
    before = [v for v in served if target is not None and v["gyldig_fra"] <= target["gyldig_fra"]]
    ordered = sorted(before or served, key=lambda v: (v["gyldig_fra"], v["version"]))
    return str(ordered[-1]["version"]) if ordered else ""


def compare(api: ConsoleApi, metadata: Metadata, versions: list[dict[str, Any]], stored: dict[str, Any],
            wanted: str) -> Comparison:
    """`stored` (a GetRuleset answer) against `wanted`, or against its predecessor when `wanted` is empty or not a
    version of the ruleset. Both texts are read by the service in its sandbox (DiffRulesets with sources)."""
    name, version = stored["ruleset"]["name"], stored["version"]["version"]
    choices = tuple(Choice(v["version"], f"{v['version']} – {state_word(v['state']).lower()}, "
                                         f"fra {norsk_dato(v['gyldig_fra'])}")
                    for v in versions if v["version"] != version)
    known = {c.version for c in choices}
    choice_problem = ""
    if wanted and wanted not in known:
        choice_problem = f"Velg en versjon fra listen: regelsettet har ingen annen versjon «{wanted[:40]}»."
    older = wanted if wanted in known else predecessor(versions, version)
    if not older:
        return Comparison("", choices, [], choice_problem=choice_problem)
    try:
        older_text = api.call(api.rulesets.GetRuleset, ruleset_pb2.GetRulesetRequest(name=name, version=older),
                              metadata)["source"]
        diff = api.call(api.rulesets.DiffRulesets, ruleset_pb2.DiffRulesetsRequest(
            source_a=older_text, source_b=stored["source"]), metadata)
    except ApiProblem as problem:
        if problem.code in _SERVICE_DOWN:
            raise
        return Comparison(older, choices, [], f"{problem.headline}. {problem.detail}".strip(), choice_problem)
    return Comparison(older, choices, sections(diff), choice_problem=choice_problem)


@dataclass(frozen=True)
class StoredTesting:
    """The stored cases as TestRuleset ran them with the stored source, in the sandbox."""

    results: tuple[dict[str, Any], ...]  # CaseResult as the API gives it: name, line, passed, failures, fired
    passed: int
    failed: int
    problems: tuple[dict[str, Any], ...]  # Diagnostic: line, message (why they could not run)
    coverage: dict[str, Any]


def run_stored_cases(api: ConsoleApi, metadata: Metadata, stored: dict[str, Any]) -> StoredTesting | None:
    """None when the version has no cases."""
    if not stored["cases"].strip():
        return None
    tested = api.call(api.rulesets.TestRuleset, ruleset_pb2.TestRulesetRequest(
        source=stored["source"], cases=stored["cases"], coverage=True), metadata)
    return StoredTesting(tuple(tested["results"]), tested["passed"], tested["failed"], tuple(tested["diagnostics"]),
                         tested.get("coverage") or {})


def rejection(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The event that turned the version down (who, when, reason), if it was."""
    return next((e for e in reversed(events) if e["action"] == "rejected"), None)


def page(api: ConsoleApi, metadata: Metadata, answer: dict[str, Any], versions: list[dict[str, Any]],
         stored: dict[str, Any] | None, events: list[dict[str, Any]]) -> str:
    """The version page of a stored version not served (`answer`: its GetRuleset answer, `served` false)."""
    name, version = answer["ruleset"]["name"], answer["version"]["version"]
    comparison = compare(api, metadata, versions, answer, request.args.get("mot", "")[:MAX_NAME_CHARS])
    return render_template("regelsett_versjon.html", name=name, version=version, stored=stored or answer["version"],
                           document=None, events=events, previous=None, tilstand=state_word, hendelse=action_word,
                           innhold=answer, sammenligning=comparison, lagret_testing=run_stored_cases(
                               api, metadata, answer), avvisning=rejection(events))
