"""The console's pages, one blueprint per concern."""

from __future__ import annotations

from flask import Blueprint

from .. import purpose
from . import audit, decide, decision, forklaring, home, lifecycle, rulesets

PAGES: list[Blueprint] = [home.blueprint, purpose.blueprint, forklaring.blueprint, rulesets.blueprint,
                          decide.blueprint, lifecycle.blueprint, audit.blueprint, decision.blueprint]
