"""Library errors as gRPC statuses with rich details (google.rpc.BadRequest, ErrorInfo, ...).

Bad input is always INVALID_ARGUMENT with the field and the reason; INTERNAL is kept for our own
faults (an engine disagreement, a ruleset whose rules conflict).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from regelmotor.core.errors import (
    EngineFailure,
    FieldViolation,
    InvalidFacts,
    LifecycleRefused,
    NoVersionInForce,
    OutcomeConflict,
    ParameterValueMissing,
    RegelmotorError,
    RulesetInvalid,
    RulesetNotFound,
    VersionNotFound,
    VersionRetired,
    VersionTaken,
)
from regelmotor.core.limits import MAX_VIOLATIONS
from regelmotor.store import RequestIdConflict
from regelmotor_api.v1 import decision_pb2 as pb

from .pool import Busy, DeadlineExpired, EvaluationTimeLimit, PoolClosed, PoolError, WorkerCrashed

DOMAIN = "regelmotor.no"
log = logging.getLogger("regelmotor.server")


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


# A status travels in the trailers, which gRPC limits to 8 KiB in all: the message (percent-encoded, so up
# to three times its UTF-8 size) and the whole google.rpc.Status again (base64, four thirds of its size). These
# caps keep any bad request's status near 4 KiB on the wire, whatever the request echoed.
MESSAGE_BYTES = 400
FIELD_BYTES = 120
DESCRIPTION_BYTES = 400
VIOLATION_BYTES = 2400  # all fields and descriptions together


def _cut(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes, cut at a character and marked with '…'."""
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode("utf-8", "ignore") + "…"


# Unicode's control characters (category Cc: U+0000-U+001F, U+007F-U+009F). No name, id or key holds one, and
# PostgreSQL cannot store NUL in text: a request's text that reaches the log or a query is refused with them.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")


def control_characters(fields: Iterable[tuple[str, str]]) -> list[FieldViolation]:
    """A violation for each (field, text) whose text holds a control character."""
    return [FieldViolation(field, "must not contain control characters (NUL, line breaks, tabs)")
            for field, text in fields if _CONTROL_CHARACTER.search(text)]


def bad_request(violations: list[FieldViolation], message: str | None = None) -> pb.ErrorResult:
    """INVALID_ARGUMENT with a BadRequest of at most MAX_VIOLATIONS violations in a bounded number of bytes,
    the last one saying how many more there were."""
    shown: list[FieldViolation] = []
    budget = VIOLATION_BYTES
    for violation in violations[:MAX_VIOLATIONS]:
        cut = FieldViolation(_cut(violation.field, FIELD_BYTES), _cut(violation.reason, DESCRIPTION_BYTES))
        size = len(cut.field.encode()) + len(cut.reason.encode())
        if size > budget or (len(shown) == MAX_VIOLATIONS - 1 and len(violations) > MAX_VIOLATIONS):
            break
        shown.append(cut)
        budget -= size
    if len(shown) < len(violations):
        shown.append(FieldViolation("", f"and {len(violations) - len(shown)} more"))
    details = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.reason) for v in shown
    ])
    text = message or "invalid request: " + "; ".join(f"{v.field}: {v.reason}" if v.field else v.reason
                                                      for v in shown)
    return pb.ErrorResult(code=code_pb2.INVALID_ARGUMENT, message=_cut(text, MESSAGE_BYTES), details=[_pack(details)])


def error_result(exc: Exception) -> pb.ErrorResult:
    """The status for a library error (or any other exception: INTERNAL, without its text)."""
    if isinstance(exc, InvalidFacts):
        return bad_request(exc.violations)
    text = _cut(str(exc), MESSAGE_BYTES)  # library messages name what was asked for: bounded like the rest
    if isinstance(exc, (RulesetNotFound, VersionNotFound)):
        kind = "ruleset" if isinstance(exc, RulesetNotFound) else "ruleset version"
        name = exc.name if isinstance(exc, RulesetNotFound) else f"{exc.name}@{exc.version}"
        info = error_details_pb2.ResourceInfo(resource_type=kind, resource_name=_cut(name, FIELD_BYTES),
                                                   description=text)
        return pb.ErrorResult(code=code_pb2.NOT_FOUND, message=text, details=[_pack(info)])
    if isinstance(exc, NoVersionInForce):
        failure = error_details_pb2.PreconditionFailure(violations=[error_details_pb2.PreconditionFailure.Violation(
            type="VERSION_IN_FORCE", subject=f"{exc.name}:{exc.selecting_fact}={exc.on.isoformat()}",
            description=text)])
        info = error_details_pb2.ErrorInfo(reason="NO_VERSION_IN_FORCE", domain=DOMAIN, metadata={
            "ruleset": exc.name, "selected_by": exc.selecting_fact, "date": exc.on.isoformat()})
        return pb.ErrorResult(code=code_pb2.FAILED_PRECONDITION, message=text,
                              details=[_pack(info), _pack(failure)])
    if isinstance(exc, ParameterValueMissing):
        failure = error_details_pb2.PreconditionFailure(violations=[error_details_pb2.PreconditionFailure.Violation(
            type="PARAMETER_VALUE", subject=f"{exc.parameter}:{exc.on.isoformat()}", description=text)])
        info = error_details_pb2.ErrorInfo(reason="PARAMETER_VALUE_MISSING", domain=DOMAIN, metadata={
            "parameter": exc.parameter, "date": exc.on.isoformat(), "year": str(exc.on.year)})
        return pb.ErrorResult(code=code_pb2.FAILED_PRECONDITION, message=text,
                              details=[_pack(info), _pack(failure)])
    if isinstance(exc, (LifecycleRefused, VersionRetired)):
        return refused_step(exc, text)
    if isinstance(exc, RulesetInvalid):
        return bad_request([FieldViolation(f"source:{d.line}:{d.column}", d.message) for d in exc.diagnostics],
                           "the ruleset source has problems")
    if isinstance(exc, OutcomeConflict):
        info = error_details_pb2.ErrorInfo(reason="OUTCOME_CONFLICT", domain=DOMAIN,
                                           metadata={"outcome": exc.conflict.outcome})
        return pb.ErrorResult(code=code_pb2.INTERNAL, message=text, details=[_pack(info)])
    if isinstance(exc, EngineFailure):
        info = error_details_pb2.ErrorInfo(reason="ENGINE_FAILURE", domain=DOMAIN)
        return pb.ErrorResult(code=code_pb2.INTERNAL, message=text, details=[_pack(info)])
    if isinstance(exc, RegelmotorError):
        return pb.ErrorResult(code=code_pb2.INTERNAL, message=text)
    return pb.ErrorResult(code=code_pb2.INTERNAL, message="internal error")


def refused_step(exc: LifecycleRefused | VersionRetired, text: str) -> pb.ErrorResult:
    """A lifecycle step the store's state does not allow (FAILED_PRECONDITION; a version string already used:
    ALREADY_EXISTS), or a retired version asked for a date it no longer covers; ErrorInfo says which."""
    if isinstance(exc, VersionRetired):
        info = error_details_pb2.ErrorInfo(reason="VERSION_RETIRED", domain=DOMAIN, metadata={
            "ruleset": exc.name, "version": exc.version, "retired_from": exc.retired_from.isoformat()})
        return pb.ErrorResult(code=code_pb2.FAILED_PRECONDITION, message=text, details=[_pack(info)])
    info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN,
                                       metadata={k: _cut(v, FIELD_BYTES) for k, v in exc.metadata.items()})
    code = code_pb2.ALREADY_EXISTS if isinstance(exc, VersionTaken) else code_pb2.FAILED_PRECONDITION
    return pb.ErrorResult(code=code, message=text, details=[_pack(info)])


def not_found(kind: str, name: str, message: str) -> pb.ErrorResult:
    info = error_details_pb2.ResourceInfo(resource_type=kind, resource_name=name[:100], description=message)
    return pb.ErrorResult(code=code_pb2.NOT_FOUND, message=message, details=[_pack(info)])


def not_kept() -> pb.ErrorResult:
    """The answer to a read of recorded decisions from a service that keeps no decision log."""
    failure = error_details_pb2.PreconditionFailure(violations=[error_details_pb2.PreconditionFailure.Violation(
        type="DECISION_LOG", subject="decision_log", description="this service keeps no decision log")])
    return pb.ErrorResult(code=code_pb2.FAILED_PRECONDITION, message="this service keeps no decision log",
                          details=[_pack(failure)])


def unavailable(message: str, reason: str = "WORKER_UNAVAILABLE") -> pb.ErrorResult:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromMilliseconds(200)
    return pb.ErrorResult(code=code_pb2.UNAVAILABLE, message=message, details=[_pack(info), _pack(retry)])


def not_recorded() -> pb.ErrorResult:
    """The answer to a decision that the decision log could not store: it is not answered (and safe to retry)."""
    return unavailable("the decision could not be recorded, so it is not answered; retry", "DECISION_NOT_RECORDED")


def deadline_exceeded(message: str, reason: str = "DEADLINE_EXCEEDED") -> pb.ErrorResult:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    return pb.ErrorResult(code=code_pb2.DEADLINE_EXCEEDED, message=message, details=[_pack(info)])


def pool_failure(exc: PoolError) -> pb.ErrorResult:
    """The status for a call the worker pool could not complete; the same for decision, ruleset and audit calls.

    DEADLINE_EXCEEDED when time ran out (the caller's deadline, or the evaluation's own limit: reason
    EVALUATION_TIME_LIMIT); UNAVAILABLE, safe to retry, when no worker could answer."""
    if isinstance(exc, EvaluationTimeLimit):
        return deadline_exceeded(str(exc), "EVALUATION_TIME_LIMIT")
    if isinstance(exc, DeadlineExpired):
        return deadline_exceeded(str(exc))
    if isinstance(exc, WorkerCrashed):
        return unavailable(str(exc), "WORKER_CRASHED")
    if isinstance(exc, PoolClosed):
        return unavailable(str(exc), "SHUTTING_DOWN")
    if isinstance(exc, Busy):
        return unavailable(str(exc), "WORKERS_BUSY")
    return unavailable(str(exc), "NO_WORKER")


def source_failure(exc: PoolError) -> pb.ErrorResult:
    """The status when the sandbox could not finish with a caller's ruleset source: a source that crashes it
    (its memory limit) is the source's problem (INVALID_ARGUMENT); a timeout is answered as for an evaluation."""
    if isinstance(exc, WorkerCrashed):
        return bad_request([FieldViolation("source", "could not be handled within the memory limit for a ruleset "
                                                     "source; make it smaller or simpler")])
    return pool_failure(exc)


def worker_failed(reason: str) -> pb.ErrorResult:
    """A request a worker could not handle through a fault of ours (the reason is logged, not sent)."""
    info = error_details_pb2.ErrorInfo(reason="WORKER_FAILED", domain=DOMAIN)
    return pb.ErrorResult(code=code_pb2.INTERNAL, message="internal error", details=[_pack(info)])


def request_id_reused(request_id: str) -> pb.ErrorResult:
    """The answer to a request_id this caller already used for a different request. It names nothing of the
    decision stored for it: that may be another patient's."""
    info = error_details_pb2.ErrorInfo(reason="REQUEST_ID_REUSED", domain=DOMAIN, metadata={"request_id": request_id})
    message = (f"request_id {request_id!r} was already used for a different request (another ruleset, version, "
               "as_of, facts or national_id); send this request with a new request_id")
    return pb.ErrorResult(code=code_pb2.ALREADY_EXISTS, message=message, details=[_pack(info)])


def recording_failure(exc: BaseException) -> pb.ErrorResult:
    """The answer to a decision the decision log did not store: REQUEST_ID_REUSED when the request_id was
    already used for a different request (the caller's mistake), else DECISION_NOT_RECORDED (logged: ours)."""
    if isinstance(exc, RequestIdConflict):
        return request_id_reused(exc.request_id)
    log.error("decision log write failed", exc_info=exc)
    return not_recorded()


def to_status(error: pb.ErrorResult) -> status_pb2.Status:
    return status_pb2.Status(code=error.code, message=error.message, details=list(error.details))


def unauthenticated(reason: str, message: str) -> pb.ErrorResult:
    """A call whose token is missing or not accepted: `reason` is TOKEN_* (see docs/security.md)."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    return pb.ErrorResult(code=code_pb2.UNAUTHENTICATED, message=_cut(message, MESSAGE_BYTES), details=[_pack(info)])


def scope_missing(method: str, role: str, granted_by: list[str]) -> pb.ErrorResult:
    """A valid token without the role `method` needs: names the role and the scopes that grant it."""
    scopes = _cut(" ".join(granted_by), DESCRIPTION_BYTES)
    info = error_details_pb2.ErrorInfo(reason="SCOPE_MISSING", domain=DOMAIN,
                                       metadata={"scope": role, "granted_by": scopes,
                                                 "method": _cut(method, FIELD_BYTES)})
    message = f"{method} needs the scope {role!r}" + (f" (granted by: {scopes})" if scopes else "")
    return pb.ErrorResult(code=code_pb2.PERMISSION_DENIED, message=_cut(message, MESSAGE_BYTES), details=[_pack(info)])


def method_not_listed(method: str) -> pb.ErrorResult:
    """A method the access table has no entry for: refused, so a new RPC is never open by mistake."""
    info = error_details_pb2.ErrorInfo(reason="METHOD_NOT_LISTED", domain=DOMAIN,
                                       metadata={"method": _cut(method, FIELD_BYTES)})
    return pb.ErrorResult(code=code_pb2.PERMISSION_DENIED, message=_cut(f"{method} has no entry in the access table",
                                                                        MESSAGE_BYTES), details=[_pack(info)])


def caller_limit(setting: str, limit: int) -> pb.ErrorResult:
    """The answer to a call beyond its caller's share (`setting` calls at once): one caller cannot take the
    service from the others. Retry when a call of yours has finished."""
    info = error_details_pb2.ErrorInfo(reason="CALLER_CONCURRENCY_LIMIT", domain=DOMAIN,
                                       metadata={"setting": setting, "limit": str(limit)})
    message = f"this caller already has {limit} such calls in progress ({setting}); retry when one has finished"
    return pb.ErrorResult(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[_pack(info)])


def stream_idle(seconds: float) -> pb.ErrorResult:
    """The end of an EvaluateStream whose client sent nothing for `seconds` while nothing was in flight."""
    info = error_details_pb2.ErrorInfo(reason="STREAM_IDLE", domain=DOMAIN,
                                       metadata={"setting": "stream_idle_seconds", "seconds": f"{seconds:g}"})
    message = f"the stream sent nothing for {seconds:g} s (stream_idle_seconds) and was closed; open a new one"
    return pb.ErrorResult(code=code_pb2.DEADLINE_EXCEEDED, message=message, details=[_pack(info)])
