"""Library errors as gRPC statuses with rich details (google.rpc.BadRequest, ErrorInfo, ...).

Bad input is always INVALID_ARGUMENT with the field and the reason; INTERNAL is kept for our own
faults (an engine disagreement, a ruleset whose rules conflict).
"""

from __future__ import annotations

from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from regelmotor.core.errors import (
    EngineFailure,
    FieldViolation,
    InvalidFacts,
    NoVersionInForce,
    OutcomeConflict,
    ParameterValueMissing,
    RegelmotorError,
    RulesetInvalid,
    RulesetNotFound,
    VersionNotFound,
)
from regelmotor_api.v1 import decision_pb2 as pb

DOMAIN = "regelmotor.no"


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def bad_request(violations: list[FieldViolation], message: str | None = None) -> pb.ErrorResult:
    details = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.reason) for v in violations
    ])
    text = message or "invalid request: " + "; ".join(f"{v.field}: {v.reason}" for v in violations)
    return pb.ErrorResult(code=code_pb2.INVALID_ARGUMENT, message=text, details=[_pack(details)])


def error_result(exc: Exception) -> pb.ErrorResult:
    """The status for a library error (or any other exception: INTERNAL, without its text)."""
    if isinstance(exc, InvalidFacts):
        return bad_request(exc.violations)
    if isinstance(exc, (RulesetNotFound, VersionNotFound)):
        kind = "ruleset" if isinstance(exc, RulesetNotFound) else "ruleset version"
        name = exc.name if isinstance(exc, RulesetNotFound) else f"{exc.name}@{exc.version}"
        info = error_details_pb2.ResourceInfo(resource_type=kind, resource_name=name, description=str(exc))
        return pb.ErrorResult(code=code_pb2.NOT_FOUND, message=str(exc), details=[_pack(info)])
    if isinstance(exc, NoVersionInForce):
        failure = error_details_pb2.PreconditionFailure(violations=[error_details_pb2.PreconditionFailure.Violation(
            type="VERSION_IN_FORCE", subject=f"{exc.name}:{exc.selecting_fact}={exc.on.isoformat()}",
            description=str(exc))])
        info = error_details_pb2.ErrorInfo(reason="NO_VERSION_IN_FORCE", domain=DOMAIN, metadata={
            "ruleset": exc.name, "selected_by": exc.selecting_fact, "date": exc.on.isoformat()})
        return pb.ErrorResult(code=code_pb2.FAILED_PRECONDITION, message=str(exc),
                              details=[_pack(info), _pack(failure)])
    if isinstance(exc, ParameterValueMissing):
        failure = error_details_pb2.PreconditionFailure(violations=[error_details_pb2.PreconditionFailure.Violation(
            type="PARAMETER_VALUE", subject=f"{exc.parameter}:{exc.on.isoformat()}", description=str(exc))])
        info = error_details_pb2.ErrorInfo(reason="PARAMETER_VALUE_MISSING", domain=DOMAIN, metadata={
            "parameter": exc.parameter, "date": exc.on.isoformat(), "year": str(exc.on.year)})
        return pb.ErrorResult(code=code_pb2.FAILED_PRECONDITION, message=str(exc),
                              details=[_pack(info), _pack(failure)])
    if isinstance(exc, RulesetInvalid):
        return bad_request([FieldViolation(f"source:{d.line}:{d.column}", d.message) for d in exc.diagnostics],
                           "the ruleset source has problems")
    if isinstance(exc, OutcomeConflict):
        info = error_details_pb2.ErrorInfo(reason="OUTCOME_CONFLICT", domain=DOMAIN,
                                           metadata={"outcome": exc.conflict.outcome})
        return pb.ErrorResult(code=code_pb2.INTERNAL, message=str(exc), details=[_pack(info)])
    if isinstance(exc, EngineFailure):
        info = error_details_pb2.ErrorInfo(reason="ENGINE_FAILURE", domain=DOMAIN)
        return pb.ErrorResult(code=code_pb2.INTERNAL, message=str(exc), details=[_pack(info)])
    if isinstance(exc, RegelmotorError):
        return pb.ErrorResult(code=code_pb2.INTERNAL, message=str(exc))
    return pb.ErrorResult(code=code_pb2.INTERNAL, message="internal error")


def unavailable(message: str, reason: str = "WORKER_UNAVAILABLE") -> pb.ErrorResult:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromMilliseconds(200)
    return pb.ErrorResult(code=code_pb2.UNAVAILABLE, message=message, details=[_pack(info), _pack(retry)])


def not_recorded() -> pb.ErrorResult:
    """The answer to a decision that the decision log could not store: it is not answered (and safe to retry)."""
    return unavailable("the decision could not be recorded, so it is not answered; retry", "DECISION_NOT_RECORDED")


def deadline_exceeded(message: str) -> pb.ErrorResult:
    return pb.ErrorResult(code=code_pb2.DEADLINE_EXCEEDED, message=message)


def to_status(error: pb.ErrorResult) -> status_pb2.Status:
    return status_pb2.Status(code=error.code, message=error.message, details=list(error.details))
