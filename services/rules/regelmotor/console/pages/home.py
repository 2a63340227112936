"""The start page: what the console offers, and what the service serves now."""

from __future__ import annotations

from flask import Blueprint, render_template

from regelmotor_api.v1 import ruleset_pb2

from ..api import console_api
from ..errors import ApiProblem
from ..person import current_person

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
def index() -> str:
    api = console_api()
    try:
        listed = api.call(api.rulesets.ListRulesets, ruleset_pb2.ListRulesetsRequest(), current_person().metadata())
    except ApiProblem as problem:
        if problem.code != "PERMISSION_DENIED":
            raise
        # An auditor without ruleset:read still gets the start page, with the parts they may use.
        return render_template("start.html", regelsett=None, reload_problem="")
    return render_template("start.html", regelsett=listed["rulesets"], reload_problem=listed["reload_problem"])
