"""The start page: the way in for a person who knows no addresses. Each ruleset with its version in force today
(its page, and «Prøv en beslutning» on it), the proposals waiting for review (each to its review page), and the
auditor's pages. An auditor without ruleset:read still gets the start page, with the parts they may use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import Blueprint, render_template

from regelmotor_api.v1 import ruleset_pb2

from ..api import ConsoleApi, Metadata, console_api
from ..errors import ApiProblem
from ..formatting import OSLO
from ..person import current_person
from .rulesets_timeline import SELECTABLE, spans
from .rulesets_version import history_of

blueprint = Blueprint("home", __name__)


@dataclass(frozen=True)
class RulesetLine:
    """A ruleset as the start page lists it: its name, the version in force today ("" when none is) and how
    many versions the service serves."""

    name: str
    current: str
    versions: int


def in_force(versions: list[dict[str, Any]], today: date) -> str:
    """The served version that governs `today` (a correction in place of the version it corrects); else the latest
    that has started; else the first to start."""
    periods = [p for p in spans(versions) if p.state in SELECTABLE]
    corrected = {p.supersedes for p in periods if p.supersedes and p.start <= today
                 and (p.end is None or today <= p.end)}
    periods = [p for p in periods if p.version not in corrected]
    started = [p for p in periods if p.start <= today]
    now = [p for p in started if p.end is None or today <= p.end]
    chosen = now or started or periods[:1]
    return chosen[-1].version if chosen else ""


def _proposals(api: ConsoleApi, metadata: Metadata, names: list[str]) -> list[dict[str, Any]]:
    """The stored versions in state proposed, of every ruleset (none where the service keeps no store)."""
    found = []
    for name in names:
        history = history_of(api, metadata, name)
        found += [v for v in (history or {}).get("versions", []) if v.get("state") == "proposed"]
    return sorted(found, key=lambda v: (v["name"], v["version"]))


@blueprint.get("/")
def index() -> str:
    api = console_api()
    metadata = current_person().metadata()
    try:
        listed = api.call(api.rulesets.ListRulesets, ruleset_pb2.ListRulesetsRequest(), metadata)
    except ApiProblem as problem:
        if problem.code != "PERMISSION_DENIED":
            raise
        return render_template("start.html", regelsett=None, forslag=[], reload_problem="")
    today = datetime.now(OSLO).date()
    lines = [RulesetLine(s["name"], in_force(s["versions"], today), len(s["versions"])) for s in listed["rulesets"]]
    return render_template("start.html", regelsett=lines, forslag=_proposals(api, metadata, [s.name for s in lines]),
                           reload_problem=listed["reload_problem"])
