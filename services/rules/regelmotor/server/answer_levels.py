"""The explanation levels of an answer, and an answer at a level re-derived from the FULL answer's bytes.

An answer at a level is defined from the FULL one: the same fields, in the same order, with the rules that did
not fire taken out of the explanation (FIRED) or the explanation taken out (NONE), and `explanation_level`
added after the trace id, before the fields numbered after it (a correction, known_at), as field order
says. The answer writer (regelmotor.server.wire) writes that straight away, without
the FULL answer; `at_level` here makes it from a FULL answer's bytes, which is how a replay re-derives the
answer given at a level and proves it against the sha256 the decision log recorded (server/audit.py).
`tests/test_answer_levels.py` checks that the two agree byte for byte.

Only the fields named here are looked at; every other field is carried over as it is, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator

from regelmotor_api.v1 import decision_pb2 as pb

from .protowire import LENGTH, VARINT, field, text, varint
from .wire import FIRED, FULL, LEVEL_FIELD, NONE

# The names a decision log record uses for the levels (and the client's --explanation option).
LEVEL_NAMES = {FULL: "full", FIRED: "fired", NONE: "none"}

_DECISION = pb.Decision.DESCRIPTOR.fields_by_name
_DECISION_ID = _DECISION["decision_id"].number
_REQUEST_ID = _DECISION["request_id"].number
_EXPLANATION = _DECISION["explanation"].number
_TRACE_ID = _DECISION["trace_id"].number
_LEVEL = _DECISION["explanation_level"].number
_EXPLANATION_TAG = varint(_EXPLANATION << 3 | LENGTH)
_RULES = pb.Explanation.DESCRIPTOR.fields_by_name["rules"].number
_FIRED = pb.RuleTrace.DESCRIPTOR.fields_by_name["fired"].number


class MalformedAnswer(ValueError):
    """Bytes that are not a Decision as the answer writer writes them."""


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise MalformedAnswer("a varint runs past the end")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int, bytes, bytes]]:
    """Each top-level field of a message: (number, wire type, its whole encoding, its value: the body of a
    length-delimited field, the varint's bytes of a varint). Only the two wire types a Decision uses."""
    at = 0
    while at < len(data):
        start = at
        key, at = _read_varint(data, at)
        number, wire_type = key >> 3, key & 7
        if wire_type == LENGTH:
            size, at = _read_varint(data, at)
            if at + size > len(data):
                raise MalformedAnswer(f"field {number} runs past the end")
            body_start, at = at, at + size
            yield number, wire_type, data[start:at], data[body_start:at]
        elif wire_type == VARINT:
            _, end = _read_varint(data, at)
            yield number, wire_type, data[start:end], data[at:end]
            at = end
        else:
            raise MalformedAnswer(f"field {number} has wire type {wire_type}, which a Decision does not use")


def level_of(answer: bytes) -> int:
    """The level an answer carries: FULL, FIRED or NONE (an answer without the field is FULL)."""
    for number, wire_type, _, value in fields(answer):
        if number == _LEVEL and wire_type == VARINT:
            level, _ = _read_varint(value, 0)
            if level not in LEVEL_NAMES:
                raise MalformedAnswer(f"unknown explanation level {level}")
            return level
    return FULL


def _fired_rules_only(explanation: bytes) -> bytes:
    kept = []
    for number, _, whole, body in fields(explanation):
        if number == _RULES and not any(n == _FIRED and value != b"\x00" for n, _, _, value in fields(body)):
            continue
        kept.append(whole)
    return b"".join(kept)


def at_level(full_answer: bytes, level: int) -> bytes:
    """The answer at `level` that the FULL answer `full_answer` stands for (see the module docstring)."""
    if level == FULL:
        return full_answer
    if level not in (FIRED, NONE):
        raise ValueError(f"not an explanation level: {level!r}")
    parts = []
    after: list[bytes] = []  # the fields numbered after the level's (correction, known_at) follow it
    for number, _, whole, body in fields(full_answer):
        if number == _LEVEL:
            raise MalformedAnswer("not a FULL answer: it carries an explanation level")
        if number == _EXPLANATION:
            if level == FIRED:
                parts.append(field(_EXPLANATION_TAG, _fired_rules_only(body)))
            continue
        (after if number > _LEVEL else parts).append(whole)
    return b"".join([*parts, LEVEL_FIELD[level], *after])


def with_ids(answer: bytes, decision_id: str, request_id: str, trace_id: str) -> bytes:
    """The answer with these ids: the decision id first, then the request id, the trace id after the explanation
    (where the writer puts them; an empty one is left out, as the writer does)."""
    labels = {n: varint(n << 3 | LENGTH) for n in (_DECISION_ID, _REQUEST_ID, _TRACE_ID)}
    head = [text(labels[_DECISION_ID], decision_id), text(labels[_REQUEST_ID], request_id)]
    middle: list[bytes] = []
    tail: list[bytes] = []
    for number, _, whole, _ in fields(answer):
        if number in labels:
            continue
        (tail if number > _TRACE_ID else middle).append(whole)
    return b"".join([*head, *middle, text(labels[_TRACE_ID], trace_id), *tail])
