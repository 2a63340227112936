"""Between the engine's plain decisions and the API's protobuf messages."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from regelmotor.core.decision import Decision as CoreDecision
from regelmotor.core.decision import HjemmelRef
from regelmotor.v1 import decision_pb2 as pb


def to_struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def to_value(value: Any) -> struct_pb2.Value:
    message = struct_pb2.Value()
    json_format.ParseDict(value, message)
    return message


def struct_to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def _hjemmel(ref: HjemmelRef) -> pb.Hjemmel:
    return pb.Hjemmel(id=ref.id, kilde=ref.kilde, sitat=ref.sitat, kapittel=ref.kapittel or "",
                      paragraf=ref.paragraf or "", ledd=ref.ledd or 0, punktum=ref.punktum or 0,
                      bokstav=ref.bokstav or "", i_kraft=ref.i_kraft or "", url=ref.url or "",
                      verified=ref.verified, merknad=ref.merknad or "")


def decision_to_proto(decision: CoreDecision, *, request_id: str = "", trace_id: str = "") -> pb.Decision:
    exp = decision.explanation
    rules = [
        pb.RuleTrace(
            id=r.id, title=r.title, hjemmel=[_hjemmel(h) for h in r.hjemmel], condition=r.condition,
            fired=r.fired, applied=r.applied, result=to_struct(r.result),
            conditions=[pb.ConditionTrace(condition=c.condition, held=c.held, reads=to_struct(c.reads),
                                          negated=c.negated) for c in r.conditions],
            unntak_fra=r.unntak_fra or "",
            exceptions=[pb.ExceptionTrace(rule_id=e.rule_id, held=e.held) for e in r.exceptions],
            overridden_by=r.overridden_by, manuell_vurdering=r.manuell_vurdering or "",
            begrunnelse=r.begrunnelse or "", round=r.round,
        )
        for r in exp.rules
    ]
    explanation = pb.Explanation(
        rules=rules,
        derived=[pb.DerivedTrace(name=d.name, expression=d.expression, inputs=to_struct(d.inputs),
                                 value=to_value(d.value)) for d in exp.derived],
        parameters=[pb.ParameterTrace(name=p.name, on=p.on, gyldig_fra=p.gyldig_fra, value=to_value(p.value),
                                      unit=p.unit) for p in exp.parameters],
        outcomes=[pb.OutcomeTrace(name=o.name, value=to_value(o.value), combine=o.combine, from_rules=o.from_rules,
                                  internal=o.internal) for o in exp.outcomes],
    )
    return pb.Decision(
        decision_id=decision.decision_id, request_id=request_id, ruleset=decision.ruleset,
        version=decision.version, ruleset_sha256=decision.ruleset_sha256, engine_version=decision.engine_version,
        as_of=decision.as_of, selected_by=decision.selected_by, selection_date=decision.selection_date,
        facts=to_struct(decision.facts), outcome=to_struct(decision.outcome),
        manuell_vurdering=[pb.ManualReview(rule_id=m.rule_id, begrunnelse=m.begrunnelse)
                           for m in decision.manuell_vurdering],
        explanation=explanation, trace_id=trace_id, content_sha256=decision.content_sha256,
    )
