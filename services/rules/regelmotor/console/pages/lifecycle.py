"""The `behandling` blueprint: policy staff edit a draft of a ruleset version in the browser, check and propose
it, and a second person reviews a proposed version with its impact on logged decisions and approves or rejects
it. The routes are here; what each page does is in lifecycle_draft and lifecycle_review."""

from __future__ import annotations

from flask import Blueprint

from . import lifecycle_draft, lifecycle_review

blueprint = Blueprint("behandling", __name__)

blueprint.add_url_rule("/regelsett/<name>/utkast", "utkast", lifecycle_draft.show, methods=["GET"])
blueprint.add_url_rule("/regelsett/<name>/utkast", "sjekk", lifecycle_draft.submit, methods=["POST"])
blueprint.add_url_rule("/regelsett/<name>/<version>/behandle", "behandle", lifecycle_review.show, methods=["GET"])
blueprint.add_url_rule("/regelsett/<name>/<version>/godkjenn", "godkjenn", lifecycle_review.approve,
                       methods=["POST"])
blueprint.add_url_rule("/regelsett/<name>/<version>/avvis", "avvis", lifecycle_review.reject, methods=["POST"])
