"""A Decision written straight to protobuf wire bytes, for the hot path of Evaluate.

Building the answer as protobuf messages field by field (`convert.decision_to_proto`) cost about a third
of an engine worker's time per decision: some 20 rule traces, each with its hjemmel, conditions and one
`Struct` per condition's values. Most of that never changes for one ruleset version, so here it is
serialised once by the protobuf library and kept as bytes; each evaluation only appends what varies
(fired, applied, the values read) and joins the parts. Protobuf allows this: a message is the
concatenation of its fields, in any order, and an embedded message is its bytes behind a tag and a
length.

The explanation is written from the evaluation's read-only face (`regelmotor.core.view.EvaluationView`)
rather than from a `Decision`: building the trace dataclasses first and then encoding them cost about
twice as much as writing the bytes straight from the evaluation's verdicts and values, each value and
each shared condition encoded once.

`decision_to_proto` stays the reference: `tests/test_wire.py` checks that the bytes made here parse to
a message equal to it, on every bundled test case and on random JSON values. A field added to the .proto
would be missing from both, so `tests/test_wire_fields.py` walks the Decision's descriptor and fails on a
field that no case gets written. Why this module rather than the protobuf library with cached rule
templates: BENCHMARKS.md, 2026-12-06 (`bench/wire_alternative.py`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

from regelmotor.core.decision import DecisionHead, DerivedTrace, OutcomeTrace, ParameterTrace
from regelmotor.core.model import Rule
from regelmotor.core.view import EvaluationView
from regelmotor_api.v1 import decision_pb2 as pb

from .convert import rule_template

_VARINT = 0
_FIXED64 = 1
_LENGTH = 2
_pack_double = struct.Struct("<d").pack


def _tag(descriptor: Any, name: str, wire_type: int) -> bytes:
    # Any: the stubs type message descriptors as a union of the upb and the pure-Python classes.
    return _varint((descriptor.fields_by_name[name].number << 3) | wire_type)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if not value:
            out.append(bits)
            return bytes(out)
        out.append(bits | 0x80)


# Lengths below this are looked up rather than encoded: nearly every field of a decision is shorter.
_SHORT = 1 << 14
_SHORT_VARINTS = tuple(_varint(n) for n in range(_SHORT))


def _field(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: tag, length, body."""
    size = len(body)
    return tag + (_SHORT_VARINTS[size] if size < _SHORT else _varint(size)) + body


length_delimited = _field


def _text(tag: bytes, value: str | None) -> bytes:
    # proto3 leaves an empty string out; so does the reference encoder.
    return _field(tag, value.encode("utf-8")) if value else b""


_S = struct_pb2.Struct.DESCRIPTOR
_E = _S.fields_by_name["fields"].message_type  # the map entry (key, value)
_V = struct_pb2.Value.DESCRIPTOR
_L = struct_pb2.ListValue.DESCRIPTOR
_STRUCT_FIELDS = _tag(_S, "fields", _LENGTH)
_ENTRY_KEY = _tag(_E, "key", _LENGTH)
_ENTRY_VALUE = _tag(_E, "value", _LENGTH)
_NULL = _tag(_V, "null_value", _VARINT) + b"\x00"
_TRUE = _tag(_V, "bool_value", _VARINT) + b"\x01"
_FALSE = _tag(_V, "bool_value", _VARINT) + b"\x00"
_NUMBER = _tag(_V, "number_value", _FIXED64)
_STRING = _tag(_V, "string_value", _LENGTH)
_STRUCT = _tag(_V, "struct_value", _LENGTH)
_LIST = _tag(_V, "list_value", _LENGTH)
_LIST_VALUES = _tag(_L, "values", _LENGTH)

# Caches of encoded parts hold at most this many entries and are emptied when full, so unusual values
# cannot grow them without end.
CACHE_LIMIT = 50_000


def _remember(cache: dict[Any, bytes], key: Any, encoded: bytes) -> bytes:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = encoded
    return encoded


# Encoded scalar map entries, by (key, type, value): the same few names and values recur in every
# decision (booleans, dates, codes).
_ENTRY_CACHE: dict[tuple[str, type, Any], bytes] = {}


def cached_entries() -> int:
    """How many encoded map entries are cached now (at most CACHE_LIMIT)."""
    return len(_ENTRY_CACHE)


def value_bytes(value: Any) -> bytes:
    """A google.protobuf.Value holding a JSON value, as `Struct.update` would set it."""
    if value is None:
        return _NULL
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    if isinstance(value, str):
        return _field(_STRING, value.encode("utf-8"))
    if isinstance(value, (int, float)):
        return _NUMBER + _pack_double(float(value))
    if isinstance(value, dict):
        return _field(_STRUCT, struct_bytes(value))
    if isinstance(value, (list, tuple)):
        return _field(_LIST, b"".join([_field(_LIST_VALUES, value_bytes(item)) for item in value]))
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _entry(key: str, value: Any) -> bytes:
    # Floats are left out: 0.0 and -0.0 are equal keys but different bytes.
    scalar = value is None or isinstance(value, (str, int))  # bool is an int
    if scalar:
        cache_key = (key, type(value), value)
        found = _ENTRY_CACHE.get(cache_key)
        if found is not None:
            return found
    body = _field(_ENTRY_KEY, key.encode("utf-8")) + _field(_ENTRY_VALUE, value_bytes(value))
    encoded = _field(_STRUCT_FIELDS, body)
    return _remember(_ENTRY_CACHE, cache_key, encoded) if scalar else encoded


def struct_bytes(values: dict[str, Any]) -> bytes:
    """A google.protobuf.Struct holding a dict of JSON values."""
    return b"".join([_entry(key, value) for key, value in values.items()])


_D = pb.Decision.DESCRIPTOR
_X = pb.Explanation.DESCRIPTOR
_R = pb.RuleTrace.DESCRIPTOR
_C = pb.ConditionTrace.DESCRIPTOR
_EX = pb.ExceptionTrace.DESCRIPTOR
_DT = pb.DerivedTrace.DESCRIPTOR
_PT = pb.ParameterTrace.DESCRIPTOR
_OT = pb.OutcomeTrace.DESCRIPTOR
_M = pb.ManualReview.DESCRIPTOR

_RULE_FIRED = _tag(_R, "fired", _VARINT) + b"\x01"
_RULE_APPLIED = _tag(_R, "applied", _VARINT) + b"\x01"
_RULE_RESULT = _tag(_R, "result", _LENGTH)
_RULE_CONDITION = _tag(_R, "conditions", _LENGTH)
_RULE_EXCEPTION = _tag(_R, "exceptions", _LENGTH)
_RULE_OVERRIDDEN_BY = _tag(_R, "overridden_by", _LENGTH)
_CONDITION_TEXT = _tag(_C, "condition", _LENGTH)
_CONDITION_HELD = _tag(_C, "held", _VARINT) + b"\x01"
_CONDITION_READS = _tag(_C, "reads", _LENGTH)
_CONDITION_NEGATED = _tag(_C, "negated", _VARINT) + b"\x01"
_EXCEPTION_RULE = _tag(_EX, "rule_id", _LENGTH)
_EXCEPTION_HELD = _tag(_EX, "held", _VARINT) + b"\x01"


# --- what one ruleset version fixes, worked out once ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _ConditionPlan:
    slot: int  # the same atom (round, text, polarity) in several rules shares a slot, so it is written once
    round: int
    text: str
    reads: tuple[str, ...]
    unheld: bytes  # the condition's text and polarity, encoded
    held: bytes  # the same with held = true


@dataclass(frozen=True, slots=True)
class _ExceptionPlan:
    rule_id: str
    unheld: bytes  # the ExceptionTrace field with held = false
    held: bytes  # ... with held = true
    overriding: bytes  # the rule's overridden_by entry, when it held


@dataclass(frozen=True, slots=True)
class _RulePlan:
    rule: Rule
    static: bytes  # id, title, hjemmel, condition, unntak_fra, ... (`convert.rule_template`)
    fields: tuple[str, ...]  # the outcomes it sets
    conditions: tuple[_ConditionPlan, ...]
    exceptions: tuple[_ExceptionPlan, ...]  # the rules that are exceptions to it


@dataclass(frozen=True, slots=True)
class _Plan:
    rules: tuple[_RulePlan, ...]
    slots: int
    derived: dict[str, bytes]  # derived value -> its name and expression, encoded


_plans: dict[tuple[str, str], _Plan] = {}


def _plan(evaluation: EvaluationView) -> _Plan:
    ruleset = evaluation.ruleset
    key = (ruleset.key, ruleset.sha256)
    found = _plans.get(key)
    if found is None:
        found = _plans[key] = _make_plan(evaluation)
    return found


def _make_plan(evaluation: EvaluationView) -> _Plan:
    slots: dict[tuple[int, str, bool], int] = {}
    rules = []
    sha256 = evaluation.ruleset.sha256
    for shape in evaluation.rules:
        conditions = []
        for atom, negated in shape.conditions:
            slot = slots.setdefault((shape.round, atom.text, negated), len(slots))
            unheld = _text(_CONDITION_TEXT, atom.text) + (_CONDITION_NEGATED if negated else b"")
            conditions.append(_ConditionPlan(slot, shape.round, atom.text, tuple(atom.reads), unheld,
                                             unheld + _CONDITION_HELD))
        static = rule_template(sha256, shape.static_trace()).SerializeToString()
        exceptions = tuple(
            _ExceptionPlan(e.id, _field(_RULE_EXCEPTION, _text(_EXCEPTION_RULE, e.id)),
                           _field(_RULE_EXCEPTION, _text(_EXCEPTION_RULE, e.id) + _EXCEPTION_HELD),
                           _text(_RULE_OVERRIDDEN_BY, e.id))
            for e in shape.exceptions)
        rules.append(_RulePlan(shape.rule, static, tuple(shape.rule.effects), tuple(conditions), exceptions))
    derived = {name: _text(_DERIVED_NAME, d.name) + _text(_DERIVED_EXPRESSION, d.text)
               for name, d in evaluation.ruleset.derived.items()}
    return _Plan(tuple(rules), len(slots), derived)


# --- one evaluation ------------------------------------------------------------------------------


class _Writer:
    """Writes one evaluation's explanation. A value read by several conditions, derived values and the
    facts is encoded once, and so is a condition that several rules share."""

    def __init__(self, evaluation: EvaluationView) -> None:
        self.evaluation = evaluation
        self.plan = _plan(evaluation)
        self.fired, self.applied, self.held = evaluation.rule_fired, evaluation.applied, evaluation.held
        self._entries: dict[str, bytes] = {}  # name -> its map entry {name: value}
        self._conditions: list[bytes | None] = [None] * self.plan.slots

    def entry(self, name: str) -> bytes:
        found = self._entries.get(name)
        if found is None:
            found = self._entries[name] = _entry(name, self.evaluation.json_of(name))
        return found

    def rule(self, plan: _RulePlan) -> bytes:
        rule = plan.rule
        fired = self.fired
        parts = [plan.static]
        if fired[rule.id]:
            parts.append(_RULE_FIRED)
        if self.applied[rule.id]:
            parts.append(_RULE_APPLIED)
        if plan.fields:
            effect_json = self.evaluation.effect_json
            result = b"".join([_entry(field, effect_json(rule, field)) for field in plan.fields])
            parts.append(_field(_RULE_RESULT, result))
        held = self.held
        written = self._conditions
        for condition in plan.conditions:
            encoded = written[condition.slot]
            if encoded is None:
                body = condition.held if held[condition.round][condition.text] else condition.unheld
                if condition.reads:
                    body += _field(_CONDITION_READS, b"".join([self.entry(name) for name in condition.reads]))
                encoded = written[condition.slot] = _field(_RULE_CONDITION, body)
            parts.append(encoded)
        if plan.exceptions:
            overriding = []
            for exception in plan.exceptions:
                if fired.get(exception.rule_id):
                    parts.append(exception.held)
                    overriding.append(exception.overriding)
                else:
                    parts.append(exception.unheld)
            parts.extend(overriding)
        return b"".join(parts)

    def derived(self, d: DerivedTrace) -> bytes:
        # The inputs are the values as the evaluation holds them ({name: json_of(name)}).
        inputs = b"".join([self.entry(name) for name in d.inputs])
        value = _field(_DERIVED_VALUE, value_bytes(d.value))
        return self.plan.derived[d.name] + _field(_DERIVED_INPUTS, inputs) + value

    def explanation(self) -> bytes:
        evaluation = self.evaluation
        parts = [_field(_EXPLANATION_RULE, self.rule(plan)) for plan in self.plan.rules]
        parts.extend([_field(_EXPLANATION_DERIVED, self.derived(d)) for d in evaluation.derived])
        parts.extend([_field(_EXPLANATION_PARAMETER, _parameter(p)) for p in evaluation.parameters])
        parts.extend([_field(_EXPLANATION_OUTCOME, _outcome(o)) for o in evaluation.outcomes])
        return b"".join(parts)


_EXPLANATION_RULE = _tag(_X, "rules", _LENGTH)
_EXPLANATION_DERIVED = _tag(_X, "derived", _LENGTH)
_EXPLANATION_PARAMETER = _tag(_X, "parameters", _LENGTH)
_EXPLANATION_OUTCOME = _tag(_X, "outcomes", _LENGTH)
_DERIVED_NAME = _tag(_DT, "name", _LENGTH)
_DERIVED_EXPRESSION = _tag(_DT, "expression", _LENGTH)
_DERIVED_INPUTS = _tag(_DT, "inputs", _LENGTH)
_DERIVED_VALUE = _tag(_DT, "value", _LENGTH)
_PARAMETER_NAME = _tag(_PT, "name", _LENGTH)
_PARAMETER_ON = _tag(_PT, "on", _LENGTH)
_PARAMETER_GYLDIG_FRA = _tag(_PT, "gyldig_fra", _LENGTH)
_PARAMETER_VALUE = _tag(_PT, "value", _LENGTH)
_PARAMETER_UNIT = _tag(_PT, "unit", _LENGTH)
_OUTCOME_NAME = _tag(_OT, "name", _LENGTH)
_OUTCOME_VALUE = _tag(_OT, "value", _LENGTH)
_OUTCOME_COMBINE = _tag(_OT, "combine", _LENGTH)
_OUTCOME_FROM_RULES = _tag(_OT, "from_rules", _LENGTH)
_OUTCOME_INTERNAL = _tag(_OT, "internal", _VARINT) + b"\x01"


def _parameter(p: ParameterTrace) -> bytes:
    return (_text(_PARAMETER_NAME, p.name) + _text(_PARAMETER_ON, p.on) + _text(_PARAMETER_GYLDIG_FRA, p.gyldig_fra)
            + _field(_PARAMETER_VALUE, value_bytes(p.value)) + _text(_PARAMETER_UNIT, p.unit))


def _outcome(o: OutcomeTrace) -> bytes:
    return (_text(_OUTCOME_NAME, o.name) + _field(_OUTCOME_VALUE, value_bytes(o.value))
            + _text(_OUTCOME_COMBINE, o.combine) + b"".join([_text(_OUTCOME_FROM_RULES, r) for r in o.from_rules])
            + (_OUTCOME_INTERNAL if o.internal else b""))


_DECISION_TEXT = {name: _tag(_D, name, _LENGTH) for name in (
    "decision_id", "request_id", "ruleset", "version", "ruleset_sha256", "engine_version", "as_of", "selected_by",
    "selection_date", "trace_id")}
_DECISION_FACTS = _tag(_D, "facts", _LENGTH)
_DECISION_OUTCOME = _tag(_D, "outcome", _LENGTH)
_DECISION_MANUAL = _tag(_D, "manuell_vurdering", _LENGTH)
_DECISION_EXPLANATION = _tag(_D, "explanation", _LENGTH)
_MANUAL_RULE = _tag(_M, "rule_id", _LENGTH)
STREAM_DECISION_TAG = _tag(pb.EvaluateStreamResponse.DESCRIPTOR, "decision", _LENGTH)
STREAM_ERROR_TAG = _tag(pb.EvaluateStreamResponse.DESCRIPTOR, "error", _LENGTH)
_MANUAL_BEGRUNNELSE = _tag(_M, "begrunnelse", _LENGTH)


def decision_bytes(evaluation: EvaluationView, head: DecisionHead, *, request_id: str = "",
                   trace_id: str = "") -> bytes:
    """The serialised `regelmotor.v1.Decision` of an evaluation whose head is `head` (`evaluation.head(...)`):
    what `decision_to_proto(evaluation.decision(...)).SerializeToString()` gives, up to the order of fields,
    without building the explanation's dataclasses first."""
    writer = _Writer(evaluation)
    text = _DECISION_TEXT
    parts = [
        _text(text["decision_id"], head.decision_id), _text(text["request_id"], request_id),
        _text(text["ruleset"], head.ruleset), _text(text["version"], head.version),
        _text(text["ruleset_sha256"], head.ruleset_sha256), _text(text["engine_version"], head.engine_version),
        _text(text["as_of"], head.as_of), _text(text["selected_by"], head.selected_by),
        _text(text["selection_date"], head.selection_date),
        # The head's facts and outcome are the evaluation's values ({name: json_of(name)}).
        _field(_DECISION_FACTS, b"".join([writer.entry(name) for name in head.facts])),
        _field(_DECISION_OUTCOME, b"".join([writer.entry(name) for name in head.outcome])),
    ]
    parts.extend([_field(_DECISION_MANUAL, _text(_MANUAL_RULE, m.rule_id) + _text(_MANUAL_BEGRUNNELSE,
                                                                                    m.begrunnelse))
                  for m in head.manuell_vurdering])
    parts.append(_field(_DECISION_EXPLANATION, writer.explanation()))
    parts.append(_text(text["trace_id"], trace_id))
    return b"".join(parts)
