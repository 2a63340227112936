"""The console's pages, one blueprint per concern."""

from __future__ import annotations

from flask import Blueprint

from .. import purpose
from . import home, lifecycle

PAGES: list[Blueprint] = [home.blueprint, purpose.blueprint, lifecycle.blueprint]
