"""The console's pages, one blueprint per concern."""

from __future__ import annotations

from flask import Blueprint

from .. import purpose
from . import audit, home, rulesets

PAGES: list[Blueprint] = [home.blueprint, purpose.blueprint, rulesets.blueprint, audit.blueprint]
