"""A decision as a readable tree for a terminal."""

from __future__ import annotations

import json
from typing import Any

from regelmotor.core.decision import Decision, RuleTrace


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_decision(decision: Decision) -> str:
    lines = [
        f"Beslutning {decision.decision_id}",
        f"  regelsett  {decision.ruleset} {decision.version}  sha256 {decision.ruleset_sha256[:16]}…",
        f"  motor      {decision.engine_version}",
        f"  as_of      {decision.as_of}   versjon valgt etter {decision.selected_by} = {decision.selection_date}",
        "",
        "Utfall",
        *_outcomes(decision),
        "",
        "Regler",
    ]
    for rule in decision.explanation.rules:
        lines += _rule(rule)
    if decision.explanation.derived:
        lines += ["", "Avledede verdier"]
        for d in decision.explanation.derived:
            inputs = ", ".join(f"{k}={_value(v)}" for k, v in d.inputs.items())
            lines.append(f"  {d.name} = {_value(d.value)}   ← {d.expression}   ({inputs})")
    if decision.explanation.parameters:
        lines += ["", "Parametere"]
        for p in decision.explanation.parameters:
            secondary = f" — hviler på sekundærkilde: {p.sekundaerkilde}" if p.sekundaerkilde else ""
            lines.append(f"  {p.name} på {p.on}: {_value(p.value)} {p.unit} (gyldig fra {p.gyldig_fra}){secondary}")
    return "\n".join(lines)


def _outcomes(decision: Decision) -> list[str]:
    lines = []
    for trace in decision.explanation.outcomes:
        source = ", ".join(trace.from_rules) if trace.from_rules else "standardverdi"
        internal = ", mellomresultat" if trace.internal else ""
        lines.append(f"  {trace.name} = {_value(trace.value)}   ({trace.combine}; fra {source}{internal})")
    for review in decision.manuell_vurdering:
        lines.append(f"  ! manuell vurdering ({review.rule_id}): {review.begrunnelse}")
    return lines


def _rule(rule: RuleTrace) -> list[str]:
    """A rule's state, its references and conditions, and what it gave."""
    mark = "✓" if rule.applied else ("↷" if rule.fired else "✗")
    state = "anvendt" if rule.applied else ("overstyrt av " + ", ".join(rule.overridden_by) if rule.fired
                                             else "ikke oppfylt")
    lines = [f"  {mark} {rule.id}: {rule.title}  [{state}]"]
    for ref in rule.hjemmel:
        lines.append(f"      hjemmel: {ref.sitat}" + (f" — {ref.merknad}" if ref.merknad else ""))
    if rule.unntak_fra:
        lines.append(f"      unntak fra: {rule.unntak_fra}")
    for cond in rule.conditions:
        reads = ", ".join(f"{k}={_value(v)}" for k, v in cond.reads.items())
        met = cond.held != cond.negated
        text = f"not {cond.condition}" if cond.negated else cond.condition
        lines.append(f"      {'✓' if met else '✗'} {text}" + (f"   ({reads})" if reads else ""))
    for exc in rule.exceptions:
        lines.append(f"      unntak {exc.rule_id}: {'slo til' if exc.held else 'slo ikke til'}")
    return lines + _rule_result(rule)


def _rule_result(rule: RuleTrace) -> list[str]:
    lines = []
    if rule.fired and rule.result:
        gives = ", ".join(f"{k}={_value(v)}" for k, v in rule.result.items())
        lines.append(f"      {'gir' if rule.applied else 'ville gitt'}: {gives}")
    if rule.manuell_vurdering and rule.applied:
        lines.append(f"      manuell vurdering: {rule.manuell_vurdering}")
    if rule.begrunnelse and rule.fired:
        lines.append(f"      begrunnelse: {rule.begrunnelse}")
    return lines
