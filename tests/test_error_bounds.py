"""The status of any refused request fits gRPC's 8 KiB of trailers, whatever the request echoed: at most
20 violations (the last saying how many more), each field, description and the message cut."""

from __future__ import annotations

import base64

import pytest
from google.rpc import code_pb2, error_details_pb2

from regelmotor.core.errors import Diagnostic, FieldViolation, InvalidFacts, RulesetInvalid, RulesetNotFound
from regelmotor.core.limits import MAX_VIOLATIONS
from regelmotor.server.errors import bad_request, error_result, to_status
from regelmotor_api.v1 import decision_pb2 as pb

WIDE = "\U0010ffff"  # four UTF-8 bytes, each percent-encoded to three characters in grpc-message
HUGE = 1_000_000


def trailer_bytes(error: pb.ErrorResult) -> int:
    """What the status costs in trailers: grpc-status, grpc-message (percent-encoded) and
    grpc-status-details-bin (the whole google.rpc.Status, base64), with their names."""
    status = to_status(error).SerializeToString()
    message = sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in error.message.encode("utf-8"))
    return (len("grpc-status") + 2 + len("grpc-message") + message
            + len("grpc-status-details-bin") + len(base64.b64encode(status)))


def violations_of(error: pb.ErrorResult) -> list[error_details_pb2.BadRequest.FieldViolation]:
    found = error_details_pb2.BadRequest()
    assert error.details[0].Unpack(found)
    return list(found.field_violations)


ADVERSARIAL = {
    "one huge field and reason": [FieldViolation(WIDE * HUGE, WIDE * HUGE)],
    "100 000 huge violations": [FieldViolation(WIDE * 1000, "€" * 10_000)] * 100_000,  # one object, shared
    "100 000 small violations": [FieldViolation(f"ukjent_{n}", "unknown fact") for n in range(100_000)],
    "exactly the limit, each huge": [FieldViolation("x" * 5000, WIDE * 5000) for _ in range(MAX_VIOLATIONS)],
    "one over the limit": [FieldViolation(f"f{n}", "r") for n in range(MAX_VIOLATIONS + 1)],
}


@pytest.mark.parametrize("violations", list(ADVERSARIAL.values()), ids=list(ADVERSARIAL))
def test_any_bad_request_fits_the_trailers_with_room_to_spare(violations: list[FieldViolation]) -> None:
    error = bad_request(violations)
    assert error.code == code_pb2.INVALID_ARGUMENT
    assert len(to_status(error).SerializeToString()) <= 4096
    assert trailer_bytes(error) <= 6 * 1024  # well under gRPC's 8 KiB limit for trailers
    shown = violations_of(error)
    assert 1 <= len(shown) <= MAX_VIOLATIONS
    assert violations[0].field.startswith(shown[0].field.rstrip("…"))  # the first field is always named
    if len(shown) < len(violations):
        assert shown[-1].description == f"and {len(violations) - len(shown) + 1} more"


def test_a_small_bad_request_is_passed_whole() -> None:
    violations = [FieldViolation("fagomrade", "'x' is not a known value"), FieldViolation("ukjent", "unknown fact")]
    error = bad_request(violations)
    assert [(v.field, v.description) for v in violations_of(error)] == [
        ("fagomrade", "'x' is not a known value"), ("ukjent", "unknown fact")]
    assert error.message == "invalid request: fagomrade: 'x' is not a known value; ukjent: unknown fact"


def test_one_over_the_limit_shows_the_limit_less_one_and_how_many_more() -> None:
    shown = violations_of(bad_request(ADVERSARIAL["one over the limit"]))
    assert [v.field for v in shown[:-1]] == [f"f{n}" for n in range(MAX_VIOLATIONS - 1)]
    assert (shown[-1].field, shown[-1].description) == ("", "and 2 more")


def test_other_library_errors_are_bounded_too() -> None:
    many = RulesetInvalid([Diagnostic("source", n, 1, WIDE * 100) for n in range(10_000)])
    unknown = RulesetNotFound("x" * HUGE, ["rett-til-helsehjelp"])
    facts = InvalidFacts([FieldViolation(WIDE * 1000, "r")] * 10_000)
    for exc in (many, unknown, facts):
        assert trailer_bytes(error_result(exc)) <= 6 * 1024, type(exc).__name__
