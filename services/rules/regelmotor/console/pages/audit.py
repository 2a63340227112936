"""The auditor's pages, blueprint `revisjon`: search decisions and export them (audit_search), the log's
verification and the access log (audit_log), and decisions counted per day (audit_stats). Every page reads audit
data, so each needs a purpose first (purpose_required) and sends it with its call."""

from __future__ import annotations

from flask import Blueprint

from ..purpose import purpose_required
from . import audit_log, audit_search, audit_stats

blueprint = Blueprint("revisjon", __name__, url_prefix="/revisjon")

_PAGES = (
    ("/", "search", audit_search.show_search, "GET"),
    ("/", "search_posted", audit_search.search, "POST"),
    ("/eksport", "export", audit_search.export, "POST"),
    ("/logg", "verification", audit_log.verification, "GET"),
    ("/tilgang", "access", audit_log.show_access, "GET"),
    ("/tilgang", "access_posted", audit_log.search_access, "POST"),
    ("/statistikk", "statistics", audit_stats.show_statistics, "GET"),
    ("/statistikk", "statistics_posted", audit_stats.count, "POST"),
)
for path, endpoint, view, method in _PAGES:
    blueprint.add_url_rule(path, endpoint, purpose_required(view), methods=[method])
