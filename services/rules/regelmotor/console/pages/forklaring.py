"""How a decision's values and legal references read on a page: the filters the explanation tree
(`_forklaring.html`) uses, shared by the pages that show a decision (prøv en beslutning, the auditor's page)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint

from ..formatting import kroner, norsk_dato, norsk_tall, norsk_tid
from ..money import is_kroner_unit

# No routes: the blueprint only installs the filters on the app.
blueprint = Blueprint("forklaring", __name__)

_CHOICE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")  # an enum value with underscores, not a free text
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_LOVDATA = re.compile(r"^(LOV|FOR)-(\d{4}-\d{2}-\d{2}-\d+)$")


def _number(value: float | int, in_kroner: bool) -> str:
    # JSON (a protobuf Struct) carries every number as a float: 12.0 is the whole number 12.
    shown: float | int = int(value) if isinstance(value, float) and value.is_integer() else value
    return kroner(shown) if in_kroner else norsk_tall(shown)


@blueprint.app_template_filter("verdi")
def verdi(value: Any, in_kroner: bool = False, words: bool = False) -> str:
    """A value as a person reads it: ja/nei, 16. april 2026, 29 612 kr, «ingen verdi»; with `words`, a choice
    such as flere_kroniske_lidelser as «flere kroniske lidelser» (for the outcome a person reads first)."""
    if words and isinstance(value, str) and _CHOICE.match(value):
        return value.replace("_", " ")
    if words and isinstance(value, list):
        return ", ".join(verdi(item, in_kroner, words) for item in value) if value else "ingen"
    if value is None:
        return "ingen verdi"
    if isinstance(value, bool):
        return "ja" if value else "nei"
    if isinstance(value, int | float):
        return _number(value, in_kroner)
    if isinstance(value, str):
        if _DATE.match(value):
            return norsk_dato(value)
        return norsk_tid(value) if _DATETIME.match(value) else value
    if isinstance(value, list):
        return ", ".join(verdi(item, in_kroner) for item in value) if value else "ingen"
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {verdi(item, in_kroner)}" for key, item in value.items())
    return str(value)


@blueprint.app_template_filter("lesbart_navn")
def lesbart_navn(name: str) -> str:
    """fristbrudd_dato -> «Fristbrudd dato»: a fact's or outcome's name without the underscores."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@blueprint.app_template_filter("lovdata_lenke")
def lovdata_lenke(hjemmel: Mapping[str, Any]) -> str:
    """Where the cited text can be read: the reference's own link, else Lovdata's page for a LOV-/FOR- id."""
    url = str(hjemmel.get("url") or "")
    if url.startswith("https://"):
        return url
    found = _LOVDATA.match(str(hjemmel.get("kilde") or ""))
    if found is None:
        return ""
    kind = "lov" if found.group(1) == "LOV" else "forskrift"
    return f"https://lovdata.no/{kind}/{found.group(2)}"


@blueprint.app_template_filter("i_kroner")
def i_kroner(unit: str) -> bool:
    """A parameter's unit that is Norwegian kroner."""
    return is_kroner_unit(unit)



# How an outcome's values from several rules are combined (the ruleset format's `combine`), in words.
_COMBINED = {"unique": "alle regler må gi samme verdi", "priority": "høyeste prioritet gjelder",
             "any": "ja hvis én regel sier ja", "all": "ja bare hvis alle regler sier ja", "min": "minste verdi",
             "max": "største verdi", "collect": "alle verdiene samlet"}


@blueprint.app_template_filter("kombinert")
def kombinert(combine: str) -> str:
    """«største verdi» for max; a way the console does not know yet is shown as the ruleset names it."""
    return _COMBINED.get(combine, combine)


@blueprint.app_template_filter("sekundaere_verdier")
def sekundaere_verdier(parameters: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The parameter values read that rest on a secondary source, each value once (a stay over many days reads one
    value once per period, but a decision may read it for several dates)."""
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for parameter in parameters:
        if parameter.get("sekundaerkilde"):
            found.setdefault((str(parameter.get("name")), str(parameter.get("gyldig_fra"))), parameter)
    return list(found.values())
