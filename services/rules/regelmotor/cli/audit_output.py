"""What `regelmotor audit` prints for a person: the AuditService's answers (in their JSON form, field names as in
audit.proto) as a table, a decision's provenance and tree, a replay's differences and a chain check."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from regelmotor.core.calendar_no import OSLO
from regelmotor.core.decision import decision_from_dict

from .render import render_decision

HEADLINE_CHARS = 48
# The API's Decision fields the engine's own Decision does not have (ids of the call, the level it was answered at).
_CALL_FIELDS = ("request_id", "trace_id", "explanation_level")


def plain(value: Any) -> Any:
    """protobuf Struct holds every number as a double: whole numbers back as ints, as the ruleset declared them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def local_time(stamp: str) -> str:
    """An RFC 3339 time from the API as Oslo time to the second."""
    return datetime.fromisoformat(stamp).astimezone(OSLO).strftime("%Y-%m-%d %H:%M:%S")


def headline(outcome: dict[str, Any], field: str | None) -> str:
    """The outcome the ruleset names as its headline, else every field (shortened)."""
    chosen = {field: outcome[field]} if field is not None and field in outcome else outcome
    return _shortened(", ".join(f"{k}={_text(v)}" for k, v in chosen.items()))


COLUMNS = ("registrert", "beslutning", "regelsett", "versjon", "utfall", "spurt av")


def table_rows(decisions: list[dict[str, Any]], headlines: dict[str, str | None]) -> list[tuple[str, ...]]:
    """A row per decision; `headlines`: each decision's headline outcome field, if its ruleset names one."""
    return [(local_time(d["recorded_at"]), d["decision_id"], d.get("ruleset", ""), d.get("version", ""),
             headline(d.get("outcome", {}), headlines.get(d["decision_id"])), d.get("caller", ""))
            for d in decisions]


ACCESS_COLUMNS = ("lest", "leser", "metode", "beslutning", "formål", "spurt om")


def _shortened(text: str) -> str:
    return text if len(text) <= HEADLINE_CHARS else text[: HEADLINE_CHARS - 1] + "…"


def access_rows(entries: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """A row per read in the access log: when, who, which call, the decision it named, why, and what it asked."""
    return [(local_time(e["at"]), e.get("reader", ""), e.get("method", ""), e.get("decision_id", "") or "–",
             _shortened(e.get("formaal", "")) or "–",
             _shortened(_asked(e.get("detail", {}))) or "–") for e in entries]


def _asked(detail: dict[str, Any]) -> str:
    """What a read asked, without the parts it left empty (no page token, an empty filter)."""
    return ", ".join(f"{k}={_text(v)}" for k, v in detail.items() if v not in ("", {}, [], None))


def table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in [columns, *rows])


def _filled(items: list[dict[str, Any]], defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """Items of a trace with the message fields the JSON form leaves out when they were never set (an empty
    Struct, a null Value)."""
    return [{**defaults, **item} for item in items]


def engine_decision(decision: dict[str, Any]) -> Any:
    """The API's Decision (JSON form with every field) as the engine's Decision, which render_decision shows."""
    data = {"facts": {}, "outcome": {}, **{k: v for k, v in plain(decision).items() if k not in _CALL_FIELDS}}
    explanation = data.get("explanation") or {}
    rules = [{**rule, "conditions": _filled(rule.get("conditions", []), {"reads": {}})}
             for rule in _filled(explanation.get("rules", []), {"result": {}})]
    data["explanation"] = {"rules": rules,
                           "derived": _filled(explanation.get("derived", []), {"inputs": {}, "value": None}),
                           "parameters": [{**p, "sekundaerkilde": p.get("sekundaerkilde") or None}
                                          for p in _filled(explanation.get("parameters", []), {"value": None})],
                           "outcomes": _filled(explanation.get("outcomes", []), {"value": None})}
    return decision_from_dict(data)


def show_text(answer: dict[str, Any]) -> str:
    """GetDecision's answer: where the decision stands in the log, its facts, and its explanation tree."""
    s = answer["summary"]
    lines = ["Opphav",
             f"  registrert   {local_time(s['recorded_at'])}  (plass {s['seq']} i loggen)",
             f"  spurt av     {s.get('caller', '')}  (forespørsel {s.get('request_id', '')})",
             f"  motor        {answer.get('engine_version', '')}",
             f"  pasient      {'pseudonym ' + s['subject'][:16] + '…' if s.get('subject') else '–'}",
             f"  kjede        hash {s['hash'][:16]}…  forrige {answer.get('prev_hash', '')[:16]}…",
             f"  svar sha256  {answer.get('answer_sha256', '')}",
             f"  sporing      {answer.get('trace_id', '') or '–'}",
             "", "Fakta"]
    lines += [f"  {k} = {_text(v)}" for k, v in plain(answer.get("facts", {})).items()]
    decision = answer["decision"]
    lines += ["", render_decision(engine_decision(decision))]
    if not (decision.get("explanation") or {}).get("outcomes"):  # answered without explanation: the bare outcome
        lines += ["", "Utfall som svart (uten forklaring)"]
        lines += [f"  {k} = {json.dumps(v, ensure_ascii=False)}" for k, v in plain(decision.get("outcome", {})).items()]
    if decision.get("explanation_level", "EXPLANATION_LEVEL_FULL") != "EXPLANATION_LEVEL_FULL":
        lines += ["", f"Svaret ble gitt med forklaringsnivå {decision['explanation_level']}: se hele treet med "
                      f"`regelmotor audit replay {s['decision_id']}`"]
    return "\n".join(lines)


def replay_text(answer: dict[str, Any]) -> str:
    identical = answer.get("identical", False)
    lines = [f"Gjenkjøring med {answer.get('version', '')} (sha256 {answer.get('ruleset_sha256', '')[:16]}…): "
             + ("identisk med det registrerte" if identical else "AVVIKER fra det registrerte")]
    for difference in answer.get("differences", []):
        recorded, replayed = (json.dumps(plain(difference.get(side)), ensure_ascii=False)
                              for side in ("recorded", "replayed"))
        lines.append(f"  {difference['path']}: registrert {recorded} → nå {replayed}")
    if not answer.get("answer_matches", False):
        lines.append("  svaret som ble gitt kan ikke bygges på nytt byte for byte (answer_sha256 avviker)")
    return "\n".join(lines)


def verify_text(answer: dict[str, Any]) -> str:
    checked = int(answer.get("checked", 0))
    if answer.get("ok", False):
        lines = [f"Kjeden er hel: {checked} poster kontrollert, ingen endret, fjernet, satt inn eller flyttet."]
    else:
        problem = answer.get("first_problem", {})
        where = f"plass {problem.get('seq', '?')}" + (f" (beslutning {problem['decision_id']})"
                                                       if problem.get("decision_id") else "")
        lines = [f"Kjeden er BRUTT ved {where}: {problem.get('kind', '')} — {problem.get('message', '')}",
                 f"  {checked} poster var i orden før dette."]
    point = answer.get("checkpoint")
    if point:
        lines.append(f"  kontrollert mot signert sjekkpunkt {point.get('at', '')} (plass {point.get('seq', 0)})")
    cut = answer.get("retention_cut")
    if cut:
        lines.append(f"  kontrollert fra oppbevaringskuttet {cut.get('at', '')}: poster til og med plass "
                     f"{cut.get('seq', 0)}, registrert før {cut.get('cutoff', '')}, er slettet etter endt "
                     f"oppbevaringstid (signert med nøkkel {cut.get('key_id', '')})")
    return "\n".join(lines)
