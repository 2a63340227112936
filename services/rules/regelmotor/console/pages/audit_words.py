"""Recorded values as an auditor reads them: outcomes in words, the access log's methods by what they do."""

from __future__ import annotations

from typing import Any

from ..formatting import norsk_dato, norsk_tall, norsk_tid

# The AuditService's (and AnalyseImpact's) RPCs by what the reader did.
METHODS = {
    "ListDecisions": "Søkte i beslutninger",
    "GetDecision": "Leste en beslutning",
    "ReplayDecision": "Etterprøvde en beslutning",
    "VerifyLog": "Kontrollerte loggen",
    "ExportDecisions": "Eksporterte beslutninger",
    "ListAccessLog": "Leste tilgangsloggen",
    "CountDecisions": "Telte beslutninger",
    "AnalyseImpact": "Konsekvensanalyse av en ny versjon",
}
# What was asked, as the access log keeps it (the API's names) -> the words shown.
_ASKED = {
    "ruleset": "regelsett", "version": "versjon", "outcome_field": "utfall", "outcome_value": "verdi",
    "caller": "kaller", "subject": "pasient (pseudonym)", "decision_id": "beslutning", "page_token": "side",
    "recorded_from": "fra", "recorded_to": "til", "count_outcome": "telt utfall", "access_filter": "søk",
    "reader": "leser", "method": "handling", "formaal_contains": "formålet inneholder", "at_from": "fra",
    "at_to": "til",
}


def in_words(value: Any) -> str:
    """One value: ja/nei, 29 612, 16. april 2026, 16. april 2026 kl. 14:05, a text as it is; none: «(ingen)»."""
    if value is None:
        return "(ingen)"
    if isinstance(value, bool):
        return "ja" if value else "nei"
    if isinstance(value, (int, float)):
        return norsk_tall(value)
    if isinstance(value, str):
        looks_like_day = len(value) >= 10 and value[4:5] == "-" and value[7:8] == "-"
        if looks_like_day and len(value) > 10 and value[10] == "T":  # a time, as the access log keeps a period's
            return norsk_tid(value)
        return norsk_dato(value) if looks_like_day and len(value) == 10 else value
    if isinstance(value, list):
        return ", ".join(in_words(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {in_words(item)}" for key, item in value.items())
    return str(value)


def outcome_in_words(outcome: dict[str, Any]) -> list[str]:
    """Each outcome as «name: value in words»."""
    return [f"{name}: {in_words(value)}" for name, value in outcome.items()]


def asked_in_words(detail: dict[str, Any]) -> list[str]:
    """What a read asked for, as the access log keeps it, each part in words (a long pseudonym shortened)."""
    parts = []
    for key, value in detail.items():
        if value in ("", None, {}):
            continue
        if key == "access_filter" and isinstance(value, dict):
            parts += [f"søk etter {part}" for part in asked_in_words(value)]
            continue
        if key == "page_token":
            parts.append("neste side")
            continue
        shown = f"{value[:12]}…" if key == "subject" and isinstance(value, str) and len(value) > 12 else in_words(value)
        parts.append(f"{_ASKED.get(key, key)}: {shown}")
    return parts
