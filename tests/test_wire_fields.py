"""Every field of a Decision, and of every message type a Decision holds, is written by the hand-written
writer (regelmotor.server.wire): a field added to the .proto that the writer does not write fails here,
instead of being silently left out of every answer.

The walk goes over the `Decision` descriptor and every message type reachable from it (Explanation,
RuleTrace, ConditionTrace, Hjemmel, ..., and google.protobuf's Struct, its map entry, Value and ListValue).
A field counts as written when it is present in the bytes `wire.decision_bytes` wrote for at least one of
the bundled test cases, or for the one ruleset below that cites a hjemmel with every part (no bundled
ruleset cites a chapter). A field the writer leaves out on purpose is listed in NOT_WRITTEN with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, struct_pb2
from google.protobuf.message import Message

from regelmotor.core.decision import Correction, Selection
from regelmotor.core.evaluator import Evaluation, Evaluator
from regelmotor.core.loader import load_ruleset_text
from regelmotor.server import wire
from regelmotor_api.v1 import decision_pb2 as pb
from tests.test_wire import VERSIONS, case_evaluations

# Fields of the Decision's message types that the writer never writes, by full name, with the reason.
NOT_WRITTEN: dict[str, str] = {
    "google.protobuf.Value.struct_value": (
        "no value of a ruleset is a JSON object (core.types.Kind: scalars and lists); protowire.value_bytes writes "
        "one all the same (tests/test_wire.py checks it against the library on random JSON values)"),
}

# A hjemmel citing every part a Hjemmel message has room for.
EVERY_HJEMMEL_PART = """\
name: hjemmel-parts
version: "1"
title: Test
status: draft
gyldig_fra: 2020-01-01
hjemler:
  h1:
    kilde: LOV-1999-07-02-63
    navn: pasient- og brukerrettighetsloven
    kapittel: "2"
    paragraf: "2-2"
    ledd: 1
    punktum: 2
    bokstav: a
    i_kraft: 2020-01-01
    url: https://lovdata.no/lov/1999-07-02-63/§2-2
    verified: false
    merknad: ikke kontrollert mot kilden
facts:
  x: {type: int}
rules:
  - id: r1
    title: R1
    hjemmel: h1
    when: "x > 1"
    then: {ok: true}
outcomes:
  ok: {type: bool, default: false, combine: any}
"""

Descriptor = Any  # the stubs type descriptors as a union of the upb and the pure-Python classes


def reachable_fields(decision: Descriptor) -> set[str]:
    """The full names of the fields of `decision` and of every message type reachable from it."""
    fields: set[str] = set()
    seen: set[str] = set()
    pending = [decision]
    while pending:
        message = pending.pop()
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        for field in message.fields:
            fields.add(field.full_name)
            if field.message_type is not None:
                pending.append(field.message_type)
    return fields


def present_fields(message: Message, found: set[str]) -> None:
    """Adds the full names of the fields present in `message` and in the messages it holds."""
    for field, value in message.ListFields():
        found.add(field.full_name)
        entry = field.message_type
        if entry is None:
            continue
        if entry.GetOptions().map_entry:  # a map: each entry is a (key, value) message on the wire
            for key in value:
                found.update(f.full_name for f in entry.fields)
                if entry.fields_by_name["value"].message_type is not None:
                    present_fields(value[key], found)
        elif field.is_repeated:
            for item in value:
                present_fields(item, found)
        else:
            present_fields(value, found)


def unwritten_fields(decision: Descriptor, written: set[str]) -> set[str]:
    """The fields a Decision can hold that the writer wrote for no case and that are not listed as left out."""
    return reachable_fields(decision) - written - NOT_WRITTEN.keys()


def _written(evaluation: Evaluation) -> set[str]:
    found: set[str] = set()
    for level in wire.LEVELS:  # a partial answer says so in a field a full one leaves out
        answer = wire.decision_bytes(evaluation, evaluation.head("d-1"), request_id="req-1", trace_id="ab" * 16,
                                     level=level)
        present_fields(pb.Decision.FromString(answer), found)
    return found


@pytest.fixture(scope="module")
def written() -> set[str]:
    """The fields the writer wrote for at least one bundled case, or for the ruleset citing every hjemmel part."""
    found: set[str] = set()
    for ruleset in VERSIONS:
        for evaluation in case_evaluations(ruleset):
            found |= _written(evaluation)
    every_part = Evaluator(load_ruleset_text(EVERY_HJEMMEL_PART, "hjemmel-parts.yaml"))
    found |= _written(every_part.run({"x": 2}, every_part.ruleset.meta.gyldig_fra))
    corrected = Selection(Correction("0", "2026-03-01T12:00:00.000000+00:00"), "2026-03-02T00:00:00.000000+00:00")
    found |= _written(every_part.run({"x": 2}, every_part.ruleset.meta.gyldig_fra, selection=corrected))
    return found


def test_every_field_a_decision_can_hold_is_written(written: set[str]) -> None:
    assert unwritten_fields(pb.Decision.DESCRIPTOR, written) == set(), (
        "server/wire.py (or convert.rule_template, which makes each rule's static part) does not write these "
        "fields: write them, or list them in NOT_WRITTEN with the reason")


def test_the_fields_listed_as_not_written_exist_and_are_not_written(written: set[str]) -> None:
    assert NOT_WRITTEN.keys() <= reachable_fields(pb.Decision.DESCRIPTOR)
    assert NOT_WRITTEN.keys().isdisjoint(written)


def test_the_walk_reaches_every_message_type_of_a_decision() -> None:
    types = {name.rsplit(".", 1)[0] for name in reachable_fields(pb.Decision.DESCRIPTOR)}
    assert types == {
        "regelmotor.v1.Decision", "regelmotor.v1.ManualReview", "regelmotor.v1.Explanation",
        "regelmotor.v1.RuleTrace", "regelmotor.v1.Hjemmel", "regelmotor.v1.ConditionTrace",
        "regelmotor.v1.ExceptionTrace", "regelmotor.v1.DerivedTrace", "regelmotor.v1.ParameterTrace",
        "regelmotor.v1.OutcomeTrace", "regelmotor.v1.Correction", "google.protobuf.Struct",
        "google.protobuf.Struct.FieldsEntry",
        "google.protobuf.Value", "google.protobuf.ListValue"}


# --- the check catches a .proto change -----------------------------------------------------------


def _decision_changed(change: Callable[[descriptor_pb2.FileDescriptorProto], None]) -> Descriptor:
    """The Decision descriptor of regelmotor/v1/decision.proto with `change` made to it, as a new .proto
    would be after `make protos`, in a pool of its own."""
    pool = descriptor_pool.DescriptorPool()
    for module in (struct_pb2, any_pb2):
        dependency = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(dependency)
        pool.AddSerializedFile(dependency.SerializeToString())
    file = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(file)
    change(file)
    pool.AddSerializedFile(file.SerializeToString())
    return pool.FindMessageTypeByName("regelmotor.v1.Decision")


def _message(file: descriptor_pb2.FileDescriptorProto, name: str) -> descriptor_pb2.DescriptorProto:
    return next(m for m in file.message_type if m.name == name)


_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING


def _field_added_to_rule_trace(file: descriptor_pb2.FileDescriptorProto) -> None:
    _message(file, "RuleTrace").field.add(name="tillegg", number=15, type=_STRING)


def _message_added_to_explanation(file: descriptor_pb2.FileDescriptorProto) -> None:
    merknad = file.message_type.add(name="Merknad")
    merknad.field.add(name="tekst", number=1, type=_STRING)
    _message(file, "Explanation").field.add(
        name="merknader", number=5, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED, type_name=".regelmotor.v1.Merknad")


def _field_added_to_hjemmel(file: descriptor_pb2.FileDescriptorProto) -> None:
    _message(file, "Hjemmel").field.add(name="endret_ved", number=13, type=_STRING)


@pytest.mark.parametrize(("change", "expected"), [
    (_field_added_to_rule_trace, {"regelmotor.v1.RuleTrace.tillegg"}),
    (_message_added_to_explanation, {"regelmotor.v1.Explanation.merknader", "regelmotor.v1.Merknad.tekst"}),
    (_field_added_to_hjemmel, {"regelmotor.v1.Hjemmel.endret_ved"}),
], ids=["field in RuleTrace", "message type under Explanation", "field in Hjemmel"])
def test_a_field_added_to_the_proto_is_reported_as_not_written(
        written: set[str], change: Callable[[descriptor_pb2.FileDescriptorProto], None], expected: set[str]) -> None:
    assert unwritten_fields(_decision_changed(change), written) == expected
