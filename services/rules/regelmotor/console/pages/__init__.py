"""The console's pages, one blueprint per concern."""

from __future__ import annotations

from flask import Blueprint

from .. import purpose
from . import audit, home, lifecycle, rulesets

PAGES: list[Blueprint] = [home.blueprint, purpose.blueprint, rulesets.blueprint, lifecycle.blueprint,
                          audit.blueprint]
