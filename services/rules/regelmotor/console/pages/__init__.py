"""The console's pages, one blueprint per concern."""

from __future__ import annotations

from flask import Blueprint

from . import home

PAGES: list[Blueprint] = [home.blueprint]
