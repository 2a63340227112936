"""The console's pages, one blueprint per concern."""

from __future__ import annotations

from flask import Blueprint

from .. import purpose
from . import decide, decision, forklaring, home

PAGES: list[Blueprint] = [home.blueprint, purpose.blueprint, forklaring.blueprint, decide.blueprint,
                          decision.blueprint]
