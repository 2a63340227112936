"""The auditor's page of one recorded decision: where it came from (ruleset version and its hash, engine, trace,
when, who asked, the log hash), the facts it was given and its explanation tree; and a replay on the recorded
version, compared field by field. Every read carries the auditor's purpose (formål), which the API records."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template

from regelmotor_api.v1 import audit_pb2, ruleset_pb2

from ..api import console_api
from ..errors import ApiProblem
from ..money import kroner_outcomes
from ..person import current_person
from ..purpose import current_purpose, purpose_required

blueprint = Blueprint("beslutning", __name__)

MAX_ID_CHARS = 100  # a decision id is a UUID; anything far longer is no id of this service


def _recorded(decision_id: str) -> dict[str, Any]:
    if len(decision_id) > MAX_ID_CHARS:
        abort(404)
    api = console_api()
    return api.call(api.audit.GetDecision, audit_pb2.GetDecisionRequest(
        decision_id=decision_id, formaal=current_purpose() or ""), current_person().metadata())


def _kroner(decision: dict[str, Any]) -> frozenset[str]:
    """The outcome fields in kroner, from the version's outcome schema; none when the auditor may not read it."""
    api = console_api()
    try:
        ruleset = api.call(api.rulesets.GetRuleset, ruleset_pb2.GetRulesetRequest(
            name=decision.get("ruleset", ""), version=decision.get("version", "")), current_person().metadata())
    except ApiProblem as problem:
        if problem.code not in ("PERMISSION_DENIED", "NOT_FOUND"):
            raise
        return frozenset()
    return kroner_outcomes(ruleset.get("outcome_schema") or {})


def _page(decision_id: str, replay: dict[str, Any] | None) -> str:
    recorded = _recorded(decision_id)
    decision = recorded.get("decision") or {}
    return render_template("beslutning_side.html", lagret=recorded, beslutning=decision,
                           kroner=_kroner(decision), avspilling=replay, formaal=current_purpose())


@blueprint.get("/revisjon/beslutning/<decision_id>")
@purpose_required
def show(decision_id: str) -> str:
    return _page(decision_id, None)


@blueprint.post("/revisjon/beslutning/<decision_id>/spill-av")
@purpose_required
def replay(decision_id: str) -> str:
    if len(decision_id) > MAX_ID_CHARS:
        abort(404)
    api = console_api()
    replayed = api.call(api.audit.ReplayDecision, audit_pb2.ReplayDecisionRequest(
        decision_id=decision_id, formaal=current_purpose() or ""), current_person().metadata())
    return _page(decision_id, replayed)
