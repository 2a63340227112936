"""Ruleset sources sent by callers (ValidateRuleset, TestRuleset, DiffRulesets with sources, ProposeRuleset),
handled in the sandboxed sources worker: a source is untrusted input, so it is parsed, compiled and run only there."""

from __future__ import annotations

from collections.abc import Iterable

from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import parse_cases, run_case
from regelmotor.core.coverage import Coverage, coverage
from regelmotor.core.diff import diff_rulesets
from regelmotor.core.errors import Diagnostic, RegelmotorError, RulesetInvalid, Severity
from regelmotor.core.evaluator import Evaluator
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.model import Ruleset, Status
from regelmotor.core.repository import RulesetRepository
from regelmotor_api.v1 import ruleset_pb2 as rpb

from .errors import error_result
from .protocol import SourceReply

_SEVERITY = {Severity.ERROR: rpb.DIAGNOSTIC_SEVERITY_ERROR, Severity.WARNING: rpb.DIAGNOSTIC_SEVERITY_WARNING}


def _diagnostics(found: Iterable[Diagnostic]) -> list[rpb.Diagnostic]:
    return [rpb.Diagnostic(line=d.line, column=d.column, message=d.message, severity=_SEVERITY[d.severity])
            for d in found]


def _problems(exc: RegelmotorError) -> list[Diagnostic]:
    """Diagnostics for any library error a source caused (an engine refusal is placed at the top)."""
    if isinstance(exc, RulesetInvalid):
        return exc.diagnostics
    return [Diagnostic("source", 1, 1, str(exc))]


def validate_source(request_bytes: bytes) -> SourceReply:
    request = rpb.ValidateRulesetRequest.FromString(request_bytes)
    try:
        ruleset = load_ruleset_text(request.source, "source")
    except RulesetInvalid as exc:
        response = rpb.ValidateRulesetResponse(valid=False, diagnostics=_diagnostics(exc.diagnostics))
        return SourceReply(response.SerializeToString())
    response = rpb.ValidateRulesetResponse(valid=True, name=ruleset.meta.name, version=ruleset.meta.version,
                                           sha256=ruleset.sha256, diagnostics=_diagnostics(ruleset.warnings))
    return SourceReply(response.SerializeToString())


def run_source_cases(request_bytes: bytes) -> SourceReply:
    request = rpb.TestRulesetRequest.FromString(request_bytes)
    response = rpb.TestRulesetResponse()
    try:
        ruleset = load_ruleset_text(request.source, "source")
        repository = RulesetRepository(include_drafts=True, alone=True)
        repository.add(ruleset, request.source)
        motor = Regelmotor(repository)
        Evaluator(ruleset)  # registers it with durable_rules now, so a refusal is a diagnostic, not a failed case
        cases = parse_cases(request.cases, "cases", ruleset)
    except RegelmotorError as exc:
        response.diagnostics.extend(_diagnostics(_problems(exc)))
        return SourceReply(response.SerializeToString())
    results = [run_case(motor, ruleset, case) for case in cases]
    for result in results:
        response.results.append(rpb.CaseResult(
            name=result.case.name, line=result.case.line, passed=result.passed, failures=result.failures,
            fired=result.decision.fired_rules if result.decision else []))
    response.passed = sum(1 for r in response.results if r.passed)
    response.failed = len(response.results) - response.passed
    if request.coverage:
        response.coverage.CopyFrom(_coverage(coverage(ruleset, results)))
    return SourceReply(response.SerializeToString())


def _coverage(found: Coverage) -> rpb.CaseCoverage:
    return rpb.CaseCoverage(
        rules_not_fired=found.rules_not_fired, exceptions_not_fired=found.exceptions_not_fired,
        values_not_expected=[rpb.UntestedValues(outcome=name, values=values)
                             for name, values in found.values_not_expected.items()],
        cases=found.cases)


def diff_sources(request_bytes: bytes) -> SourceReply:
    request = rpb.DiffRulesetsRequest.FromString(request_bytes)
    try:
        a = load_ruleset_text(request.source_a, "source_a")
        b = load_ruleset_text(request.source_b, "source_b")
    except RegelmotorError as exc:
        return SourceReply(error=error_result(exc).SerializeToString())
    return SourceReply(diff_response(a, b).SerializeToString())


def diff_response(a: Ruleset, b: Ruleset) -> rpb.DiffRulesetsResponse:
    diff = diff_rulesets(a, b)
    return rpb.DiffRulesetsResponse(
        metadata=diff.metadata, rules_added=diff.rules_added, rules_removed=diff.rules_removed,
        rules_changed=[rpb.RuleChange(rule_id=k, changes=v) for k, v in diff.rules_changed.items()],
        parameters=diff.parameters, facts=diff.facts, derived=diff.derived, outcomes=diff.outcomes,
        tables=diff.tables, hjemler=diff.hjemler, constraints=diff.constraints, lines=diff.lines())


def stored_version(ruleset: Ruleset) -> rpb.StoredVersion:
    """What the store keeps of a version besides its texts (read here, in the sandbox, for a caller's source)."""
    meta = ruleset.meta
    return rpb.StoredVersion(
        name=meta.name, version=meta.version, sha256=ruleset.sha256, title=meta.title,
        gyldig_fra=meta.gyldig_fra.isoformat(), gyldig_til=meta.gyldig_til.isoformat() if meta.gyldig_til else "",
        unverified_hjemler=sorted(h.id for h in ruleset.hjemler.values() if not h.verified),
        allow_gap_before=meta.allow_gap_before, selected_by=meta.selected_by or "",
        supersedes=meta.supersedes or "", correction_reason=meta.correction_reason)


def check_proposal(request_bytes: bytes) -> SourceReply:
    """A proposal is accepted when its source validates, says `status: published` (it is the text to publish) and
    has cases that all pass."""
    request = rpb.ProposeRulesetRequest.FromString(request_bytes)
    response = rpb.ProposeRulesetResponse()
    try:
        ruleset = load_ruleset_text(request.source, "source")
    except RulesetInvalid as exc:
        response.diagnostics.extend(_diagnostics(exc.diagnostics))
        return SourceReply(response.SerializeToString())
    response.version.CopyFrom(stored_version(ruleset))
    if ruleset.meta.status is not Status.PUBLISHED:
        response.diagnostics.append(rpb.Diagnostic(
            line=ruleset.meta.lines.get("status", 1), column=1,
            message=f"status is {ruleset.meta.status.value}: a proposal is the text to publish, so it must say "
                    "`status: published`"))
    tested = run_source_cases(rpb.TestRulesetRequest(source=request.source, cases=request.cases).SerializeToString())
    response.test.ParseFromString(tested.response)
    if not response.test.results and not response.test.diagnostics:
        response.diagnostics.append(rpb.Diagnostic(line=1, column=1, message="a proposal needs its cases: give at "
                                                                             "least one case that passes"))
    response.accepted = not (response.diagnostics or response.test.diagnostics or response.test.failed)
    return SourceReply(response.SerializeToString())
