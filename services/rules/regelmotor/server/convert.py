"""Between the engine's plain decisions and the API's protobuf messages."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from regelmotor.core.decision import Correction, DecisionBasis, HjemmelRef, RuleTrace
from regelmotor.core.decision import Decision as CoreDecision
from regelmotor_api.v1 import decision_pb2 as pb


def to_struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def to_value(value: Any) -> struct_pb2.Value:
    message = struct_pb2.Value()
    if value is None:
        message.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        message.bool_value = value
    elif isinstance(value, (int, float)):
        message.number_value = value
    elif isinstance(value, str):
        message.string_value = value
    else:
        json_format.ParseDict(value, message)
    return message


_LEVELS = {int(level): level for level in (pb.EXPLANATION_LEVEL_FULL, pb.EXPLANATION_LEVEL_FIRED,
                                            pb.EXPLANATION_LEVEL_NONE)}


def explanation_level(level: int) -> pb.ExplanationLevel:
    """An explanation level (FULL, FIRED or NONE, as a plain int) as the API's enum value."""
    return _LEVELS[level]


def struct_to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def _hjemmel(ref: HjemmelRef) -> pb.Hjemmel:
    return pb.Hjemmel(id=ref.id, kilde=ref.kilde, sitat=ref.sitat, kapittel=ref.kapittel or "",
                      paragraf=ref.paragraf or "", ledd=ref.ledd or 0, punktum=ref.punktum or 0,
                      bokstav=ref.bokstav or "", i_kraft=ref.i_kraft or "", url=ref.url or "",
                      verified=ref.verified, merknad=ref.merknad or "")


# The parts of a rule's trace that never change for one ruleset version, built once and copied:
# building protobuf messages field by field is the costly part of answering.
_templates: dict[tuple[str, str, str, str | None], pb.RuleTrace] = {}


def rule_template(sha256: str, rule: RuleTrace) -> pb.RuleTrace:
    """The fields of a rule's trace that one ruleset version fixes (id, title, hjemmel, ...), built once (once per
    wording, for a rule whose title or begrunnelse names a parameter)."""
    key = (sha256, rule.id, rule.title, rule.begrunnelse)
    found = _templates.get(key)
    if found is None:
        found = _templates[key] = pb.RuleTrace(
            id=rule.id, title=rule.title, hjemmel=[_hjemmel(h) for h in rule.hjemmel], condition=rule.condition,
            unntak_fra=rule.unntak_fra or "", manuell_vurdering=rule.manuell_vurdering or "",
            begrunnelse=rule.begrunnelse or "", round=rule.round)
    return found


def _rule(sha256: str, rule: RuleTrace) -> pb.RuleTrace:
    message = pb.RuleTrace()
    message.CopyFrom(rule_template(sha256, rule))
    message.fired = rule.fired
    message.applied = rule.applied
    message.result.update(rule.result)
    for condition in rule.conditions:
        added = message.conditions.add(condition=condition.condition, held=condition.held, negated=condition.negated)
        added.reads.update(condition.reads)
    for exception in rule.exceptions:
        message.exceptions.add(rule_id=exception.rule_id, held=exception.held)
    message.overridden_by.extend(rule.overridden_by)
    return message


def decision_to_proto(decision: CoreDecision, *, request_id: str = "", trace_id: str = "",
                      level: int = pb.EXPLANATION_LEVEL_FULL) -> pb.Decision:
    """The Decision message with as much explanation as `level` says (the reference the answer writer,
    regelmotor.server.wire, is checked against)."""
    exp = decision.explanation
    only_fired = level == pb.EXPLANATION_LEVEL_FIRED
    rules = [_rule(decision.ruleset_sha256, r) for r in exp.rules if r.fired or not only_fired]
    explanation = pb.Explanation(
        rules=rules,
        derived=[pb.DerivedTrace(name=d.name, expression=d.expression, inputs=to_struct(d.inputs),
                                 value=to_value(d.value)) for d in exp.derived],
        parameters=[pb.ParameterTrace(name=p.name, on=p.on, gyldig_fra=p.gyldig_fra, value=to_value(p.value),
                                      unit=p.unit, sekundaerkilde=p.sekundaerkilde or "") for p in exp.parameters],
        outcomes=[pb.OutcomeTrace(name=o.name, value=to_value(o.value), combine=o.combine, from_rules=o.from_rules,
                                  internal=o.internal) for o in exp.outcomes],
    )
    message = pb.Decision(
        decision_id=decision.decision_id, request_id=request_id, ruleset=decision.ruleset,
        version=decision.version, ruleset_sha256=decision.ruleset_sha256, engine_version=decision.engine_version,
        as_of=decision.as_of, selected_by=decision.selected_by, selection_date=decision.selection_date,
        facts=to_struct(decision.facts), outcome=to_struct(decision.outcome),
        manuell_vurdering=[pb.ManualReview(rule_id=m.rule_id, begrunnelse=m.begrunnelse)
                           for m in decision.manuell_vurdering],
        explanation=explanation, trace_id=trace_id,
    )
    if level == pb.EXPLANATION_LEVEL_NONE:
        message.ClearField("explanation")
    if level != pb.EXPLANATION_LEVEL_FULL:  # a full explanation leaves the level unset
        message.explanation_level = explanation_level(level)
    if decision.correction is not None:
        message.correction.CopyFrom(correction_message(decision.correction))
    message.known_at = decision.known_at or ""
    return message


def correction_message(correction: Correction) -> pb.Correction:
    return pb.Correction(supersedes=correction.supersedes, published_at=correction.published_at or "")


def selection_json(decision: DecisionBasis) -> dict[str, Any]:
    """A decision's correction and known_at as its record in the log keeps them: only those it has (a record
    without them is as it was before corrections)."""
    found: dict[str, Any] = {}
    if decision.correction is not None:
        found["correction"] = {"supersedes": decision.correction.supersedes,
                               "published_at": decision.correction.published_at}
    if decision.known_at is not None:
        found["known_at"] = decision.known_at
    return found
