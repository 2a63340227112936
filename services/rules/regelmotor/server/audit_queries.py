"""The requests of AuditService.ListAccessLog and CountDecisions checked and turned into the log's queries; each
problem is a FieldViolation naming the request's field (the servicer, server/audit.py, answers INVALID_ARGUMENT)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message

from regelmotor.core.errors import FieldViolation
from regelmotor.store import MAX_DAYS, AccessFilter, ListFilter
from regelmotor_api.v1 import audit_pb2 as apb

from .errors import control_characters

# Longest text of each AccessLogFilter field: a reader's or decision's id, a purpose, an RPC's name.
_ACCESS_TEXT_CHARS = {"reader": 500, "decision_id": 500, "formaal_contains": 500, "method": 100}
MAX_OUTCOME_FIELD = 200


def filter_time(message: Message, bound: str, violations: list[FieldViolation]) -> datetime | None:
    """A filter's time bound, if given; one the Timestamp type cannot hold (seconds outside year 1 to 9999,
    nanos outside one second: the proto runtime refuses to read it) is a violation naming the field."""
    if not message.HasField(bound):
        return None
    try:
        moment: datetime = getattr(message, bound).ToDatetime(UTC)
    except ValueError:
        violations.append(FieldViolation(f"filter.{bound}", "must be a time from 0001-01-01T00:00:00Z to "
                                                            "9999-12-31T23:59:59.999999999Z"))
        return None
    return moment


def access_filter(message: apb.AccessLogFilter, violations: list[FieldViolation]) -> tuple[AccessFilter,
                                                                                               dict[str, Any]]:
    """The log's AccessFilter for a request's filter (violations added), and the filter as recorded."""
    at_from, at_to = (filter_time(message, bound, violations) for bound in ("at_from", "at_to"))
    if at_from is not None and at_to is not None and at_to <= at_from:
        violations.append(FieldViolation("filter.at_to", "must be after filter.at_from"))
    texts = {name: getattr(message, name) for name in _ACCESS_TEXT_CHARS}
    violations.extend(control_characters((f"filter.{name}", text) for name, text in texts.items()))
    violations.extend(FieldViolation(f"filter.{name}", f"must be at most {_ACCESS_TEXT_CHARS[name]} characters, "
                                                       f"not {len(text)}")
                      for name, text in texts.items() if len(text) > _ACCESS_TEXT_CHARS[name])
    filters = AccessFilter(at_from=at_from, at_to=at_to, who=message.reader or None, action=message.method or None,
                           decision_id=message.decision_id or None,
                           formaal_contains=message.formaal_contains or None)
    asked: dict[str, Any] = {name: text for name, text in texts.items() if text}
    asked.update({name: moment.isoformat() for name, moment in (("at_from", at_from), ("at_to", at_to)) if moment})
    return filters, asked


def count_violations(message: apb.CountDecisionsRequest, filters: ListFilter | None) -> list[FieldViolation]:
    """What keeps a CountDecisions request from being counted (`filters`: its DecisionFilter as the log's, None
    when that already failed): a ruleset, a bounded period and an outcome to count are required."""
    violations: list[FieldViolation] = []
    if not message.filter.ruleset:
        violations.append(FieldViolation("filter.ruleset", "required: the ruleset whose decisions are counted"))
    field = message.outcome_field
    if not field:
        violations.append(FieldViolation("outcome_field", "required: the outcome whose values are counted"))
    elif len(field) > MAX_OUTCOME_FIELD or '"' in field or "\\" in field:
        violations.append(FieldViolation("outcome_field", f"must be the name of an outcome (at most "
                                                          f"{MAX_OUTCOME_FIELD} characters, no quotes or backslashes)"))
    violations.extend(control_characters([("outcome_field", field)]))
    if filters is not None:
        violations.extend(_period_violations(filters))
    return violations


def _period_violations(filters: ListFilter) -> list[FieldViolation]:
    start, stop = filters.recorded_from, filters.recorded_to
    missing = [FieldViolation(f"filter.{name}", f"required: the period is at most {MAX_DAYS} days")
               for name, moment in (("recorded_from", start), ("recorded_to", stop)) if moment is None]
    if missing or start is None or stop is None:
        return missing
    if stop <= start:
        return [FieldViolation("filter.recorded_to", "must be after filter.recorded_from")]
    if stop - start > timedelta(days=MAX_DAYS):
        return [FieldViolation("filter.recorded_to", f"the period must be at most {MAX_DAYS} days, "
                                                     f"not {(stop - start).days + 1}")]
    return []
