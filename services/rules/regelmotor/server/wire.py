"""A Decision written straight to protobuf wire bytes, at an explanation level, for the hot path of Evaluate.

Building the answer as protobuf messages field by field (`convert.decision_to_proto`) cost about a third
of an engine worker's time per decision: some 20 rule traces, each with its hjemmel, conditions and one
`Struct` per condition's values. Most of that never changes for one ruleset version, so it is serialised
once per version and kept as bytes (regelmotor.server.answer_plan); each evaluation only writes what varies
(the verdicts and the values read) and joins the parts. Protobuf allows it: a message is the concatenation
of its fields, in any order, and an embedded message is its bytes behind a tag and a length
(regelmotor.server.protowire). What varies is kept too, by what it is made of (a rule's verdicts and the
values it reads, a derived value's inputs and value, an outcome's value and deciding rules): the same few
codes, booleans, ages and dates recur in most evaluations, so most of it is found rather than written.

The level (`EXPLANATION_LEVEL_*` of regelmotor.v1) says how much of the explanation is written: FULL all of
it, FIRED only the rules that fired, NONE none. A partial answer says so in `explanation_level` (field 15,
written last); a full one leaves it out, so that it is byte for byte the answer of before the levels. An
answer at a level is the FULL answer with the rules that did not fire (FIRED) or the explanation (NONE) taken
out and the level added: `answer_levels.at_level` does exactly that to a FULL answer's bytes, which is how a
replay re-derives an answer given at a level.

The explanation is written from the evaluation's read-only face (`regelmotor.core.view.EvaluationView`)
rather than from a `Decision`: building the trace dataclasses first and then encoding them cost about twice
as much. What guards it: `decision_to_proto` is the reference for what is written (`tests/test_wire.py`,
message by message at every level, on every bundled case and on random facts);
`tests/test_answer_bytes_unchanged.py` holds every bundled case's FULL answer to its bytes of before the
levels; `tests/test_answer_levels.py` checks that the levels derive from FULL byte for byte and that the
caches change no byte (random facts, written with and without them); `tests/test_wire_fields.py` fails on a
field of the Decision that no case gets written. Why hand-written bytes rather than the protobuf library with
cached rule templates: BENCHMARKS.md, 2026-12-06 (`bench/wire_alternative.py`); what the caches save, and
on which values: BENCHMARKS.md, issue 13.
"""

from __future__ import annotations

from typing import Any

from regelmotor.core.decision import DecisionHead, ParameterTrace
from regelmotor.core.view import EvaluationView
from regelmotor_api.v1 import decision_pb2 as pb

from . import protowire
from .answer_plan import AnswerPlan, ConditionPlan, RulePlan, heads_on, plan_of
from .protowire import (
    CACHE_LIMIT,
    LENGTH,
    SHORT,
    SHORT_VARINTS,
    VARINT,
    entry,
    field,
    remember,
    scalar_value_bytes,
    tag,
    text,
    varint,
)

# The levels as plain ints (the stubs give each enum value a type of its own).
FULL, FIRED, NONE = int(pb.EXPLANATION_LEVEL_FULL), int(pb.EXPLANATION_LEVEL_FIRED), int(pb.EXPLANATION_LEVEL_NONE)
LEVELS = (FULL, FIRED, NONE)

_D = pb.Decision.DESCRIPTOR
_X = pb.Explanation.DESCRIPTOR
_R = pb.RuleTrace.DESCRIPTOR
_C = pb.ConditionTrace.DESCRIPTOR
_DT = pb.DerivedTrace.DESCRIPTOR
_PT = pb.ParameterTrace.DESCRIPTOR
_OT = pb.OutcomeTrace.DESCRIPTOR
_M = pb.ManualReview.DESCRIPTOR

_RULE_RESULT = tag(_R, "result", LENGTH)
_RULE_CONDITION = tag(_R, "conditions", LENGTH)
_CONDITION_READS = tag(_C, "reads", LENGTH)
_EXPLANATION_RULE = tag(_X, "rules", LENGTH)
_EXPLANATION_DERIVED = tag(_X, "derived", LENGTH)
_EXPLANATION_PARAMETER = tag(_X, "parameters", LENGTH)
_EXPLANATION_OUTCOME = tag(_X, "outcomes", LENGTH)
_DERIVED_INPUTS = tag(_DT, "inputs", LENGTH)
_DERIVED_VALUE = tag(_DT, "value", LENGTH)
_PARAMETER_NAME = tag(_PT, "name", LENGTH)
_PARAMETER_ON = tag(_PT, "on", LENGTH)
_PARAMETER_GYLDIG_FRA = tag(_PT, "gyldig_fra", LENGTH)
_PARAMETER_VALUE = tag(_PT, "value", LENGTH)
_PARAMETER_UNIT = tag(_PT, "unit", LENGTH)
_PARAMETER_SEKUNDAERKILDE = tag(_PT, "sekundaerkilde", LENGTH)
_OUTCOME_NAME = tag(_OT, "name", LENGTH)
_OUTCOME_VALUE = tag(_OT, "value", LENGTH)
_OUTCOME_COMBINE = tag(_OT, "combine", LENGTH)
_OUTCOME_INTERNAL = tag(_OT, "internal", VARINT) + b"\x01"


def _length(size: int) -> bytes:
    return SHORT_VARINTS[size] if size < SHORT else varint(size)


# The variable part of encoded rule traces, by what each is made of (see `_Writer.rules`). Only that part: a
# whole trace would hold a copy of its rule's static bytes (hjemmel and all, 0.3-1.5 kB) per entry, and joining
# such copies from all over memory was slower than joining the one static copy with a short tail.
RULE_CACHE_LIMIT = CACHE_LIMIT // 5
_RULES: dict[tuple[Any, ...], bytes] = {}
# Rules whose values seldom recur (one reading the dates of a referral): looking them up costs more than it
# saves, so each rule is tried for its first RULE_TRIAL writes, and one found less than half the time is written
# without the cache from then on. (What is written never depends on it: tests/test_answer_levels.py.)
RULE_TRIAL = 256
_DECIDED: set[int] = set()  # rule keys whose trial is over
_UNCACHED: set[int] = set()  # ... and that are not worth caching
_trials: dict[int, list[int]] = {}  # rule key -> [writes, of which not found]


def _tried(rule: int, missed: bool) -> None:
    counts = _trials.setdefault(rule, [0, 0])
    counts[0] += 1
    counts[1] += missed
    if counts[0] >= RULE_TRIAL:
        _DECIDED.add(rule)
        if counts[1] * 2 > counts[0]:
            _UNCACHED.add(rule)
        del _trials[rule]


# Encoded derived value and outcome traces, likewise (each a few dozen bytes).
_DERIVED: dict[tuple[Any, ...], bytes] = {}
_OUTCOMES: dict[tuple[Any, ...], bytes] = {}


def clear_caches() -> None:
    """Empty every cache of encoded parts, here and in protowire: what is written does not depend on them
    (tests/test_answer_levels.py writes random answers with and without them and compares the bytes)."""
    for cache in (_RULES, _DERIVED, _OUTCOMES, _PARAMETER_CACHE, _trials):
        cache.clear()
    _DECIDED.clear()
    _UNCACHED.clear()
    protowire.clear_caches()


def _values_key(given: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """Values as part of a cache key: with their types, since 1, 1.0 and True are equal keys; a list as a tuple
    of its items with their types. None for values not to cache by: a float (0.0 and -0.0 are equal keys too,
    but different bytes), or anything but scalars and lists of scalars (which is all a ruleset's values are)."""
    types = tuple(map(type, given))
    if list in types:
        items: list[Any] = []
        kinds: list[Any] = []
        for value, kind in zip(given, types, strict=True):
            if kind is list:
                inner = tuple(map(type, value))
                if not _SCALARS.issuperset(inner):
                    return None
                items.append(tuple(value))
                kinds.append(inner)
            else:
                items.append(value)
                kinds.append(kind)
        given, types = tuple(items), tuple(kinds)
    elif not _SCALARS.issuperset(types):
        return None
    return given, types


# The types of the values cached by (no float: see `_values_key`).
_SCALARS = frozenset({str, int, bool, type(None)})


class _Writer:
    """Writes one evaluation's explanation. A value read by several conditions, derived values and the
    facts is encoded once, and so is a condition that several rules share."""

    def __init__(self, evaluation: EvaluationView) -> None:
        self.evaluation = evaluation
        self.plan: AnswerPlan = plan_of(evaluation)
        self._entries: dict[str, bytes] = {}  # name -> its map entry {name: value}
        self._conditions: list[bytes | None] = [None] * self.plan.slots

    def entry(self, name: str) -> bytes:
        found = self._entries.get(name)
        if found is None:
            found = self._entries[name] = entry(name, self.evaluation.json_of(name))
        return found

    def rules(self, only_fired: bool) -> list[bytes]:
        """The parts of each rule's trace as an Explanation.rules field (tag and length, the version's bytes for
        its flags, the rest); with `only_fired`, those of the rules that fired.

        What follows a rule's static bytes - the values it gives, its conditions with their verdicts and the
        values they read, its exceptions' verdicts - is kept under those verdicts and values: with the types of
        the values (1, 1.0 and True are equal keys, and so are 0.0 and -0.0, which are therefore never cached),
        they are all it is made of. Most rules of most evaluations read values that recur (codes, booleans, ages,
        the dates of the same weeks), so most are found there, and finding one costs a fraction of writing it."""
        evaluation = self.evaluation
        fired, applied, held = evaluation.rule_fired, evaluation.applied, evaluation.held
        json_of = evaluation.json_of
        values = {name: json_of(name) for name in self.plan.read}
        out: list[bytes] = []
        for plan in self.plan.rules:
            rule_id = plan.rule.id
            rule_fired = fired[rule_id]
            if only_fired and not rule_fired:
                continue
            heads = plan.heads if plan.worded is None else heads_on(plan, evaluation)
            head = heads[2 * rule_fired + applied[rule_id]]
            given = None if plan.values is None or plan.key in _UNCACHED else _values_key(plan.values(values))
            if given is None:
                tail = self.tail(plan)
            else:
                key = (plan.key, plan.verdicts(held[plan.round]), given,
                       tuple([bool(fired.get(e.rule_id)) for e in plan.exceptions]))
                found = _RULES.get(key)
                if plan.key not in _DECIDED:
                    _tried(plan.key, found is None)
                if found is None:
                    found = self.tail(plan)
                    if len(_RULES) >= RULE_CACHE_LIMIT:
                        _RULES.clear()
                    _RULES[key] = found
                tail = found
            out += (_EXPLANATION_RULE + _length(len(head) + len(tail)), head, tail)
        return out

    def tail(self, plan: RulePlan) -> bytes:
        """What follows a rule's static bytes and flags in its trace: result, conditions, exceptions."""
        parts = []
        if plan.fields:
            effect_json, rule = self.evaluation.effect_json, plan.rule
            result = b"".join([entry(name, effect_json(rule, name)) for name in plan.fields])
            parts.append(_RULE_RESULT + _length(len(result)) + result)
        written = self._conditions
        for condition in plan.conditions:
            encoded = written[condition.slot]
            if encoded is None:
                encoded = written[condition.slot] = self.condition(condition)
            parts.append(encoded)
        if plan.exceptions:
            fired = self.evaluation.rule_fired
            overriding = []
            for exception in plan.exceptions:
                if fired.get(exception.rule_id):
                    parts.append(exception.held)
                    overriding.append(exception.overriding)
                else:
                    parts.append(exception.unheld)
            parts += overriding
        return b"".join(parts)

    def condition(self, condition: ConditionPlan) -> bytes:
        """One condition's trace as a RuleTrace.conditions field."""
        verdict = self.evaluation.held[condition.round][condition.text]
        if not condition.reads:
            return condition.held if verdict else condition.unheld
        value = self.entry
        reads = b"".join([value(name) for name in condition.reads])
        body = (condition.held if verdict else condition.unheld) + _CONDITION_READS + _length(len(reads)) + reads
        return _RULE_CONDITION + _length(len(body)) + body

    def derived(self) -> list[bytes]:
        """Each derived value's trace as an Explanation.derived field (kept by its name and values, as rules are)."""
        names = self.plan.derived
        value = self.entry
        out = []
        for d in self.evaluation.derived:
            given = _values_key((*d.inputs.values(), d.value))
            key = (names[d.name], given)  # the name and expression of this version, and the values
            found = _DERIVED.get(key) if given is not None else None
            if found is None:
                # The inputs are the values as the evaluation holds them ({name: json_of(name)}).
                inputs = b"".join([value(name) for name in d.inputs])
                encoded = scalar_value_bytes(d.value)
                body = (names[d.name] + _DERIVED_INPUTS + _length(len(inputs)) + inputs
                        + _DERIVED_VALUE + _length(len(encoded)) + encoded)
                found = _EXPLANATION_DERIVED + _length(len(body)) + body
                if given is not None:
                    remember(_DERIVED, key, found)
            out.append(found)
        return out

    def outcomes(self) -> list[bytes]:
        """Each outcome's trace as an Explanation.outcomes field (kept by what it holds)."""
        from_rules = self.plan.from_rules
        out = []
        for o in self.evaluation.outcomes:
            given = _values_key((o.value,))
            key = (o.name, given, o.combine, o.internal, *o.from_rules)
            found = _OUTCOMES.get(key) if given is not None else None
            if found is None:
                encoded = scalar_value_bytes(o.value)
                body = (text(_OUTCOME_NAME, o.name) + _OUTCOME_VALUE + _length(len(encoded)) + encoded
                        + text(_OUTCOME_COMBINE, o.combine) + b"".join([from_rules[r] for r in o.from_rules])
                        + (_OUTCOME_INTERNAL if o.internal else b""))
                found = _EXPLANATION_OUTCOME + _length(len(body)) + body
                if given is not None:
                    remember(_OUTCOMES, key, found)
            out.append(found)
        return out

    def explanation(self, level: int) -> bytes:
        parts = self.rules(only_fired=level == FIRED)
        parts += self.derived()
        parts += [field(_EXPLANATION_PARAMETER, _parameter(p)) for p in self.evaluation.parameters]
        parts += self.outcomes()
        return b"".join(parts)


_PARAMETER_CACHE: dict[tuple[Any, ...], bytes] = {}


def _parameter(p: ParameterTrace) -> bytes:
    given = _values_key((p.value,))
    key = (p.name, p.on, p.gyldig_fra, p.unit, given, p.sekundaerkilde)
    found = _PARAMETER_CACHE.get(key) if given is not None else None
    if found is None:
        # A secondary source is written only when the value rests on one (`text` leaves out None), so every other
        # answer stays byte for byte what it was.
        found = (text(_PARAMETER_NAME, p.name) + text(_PARAMETER_ON, p.on) + text(_PARAMETER_GYLDIG_FRA, p.gyldig_fra)
                 + field(_PARAMETER_VALUE, scalar_value_bytes(p.value)) + text(_PARAMETER_UNIT, p.unit)
                 + text(_PARAMETER_SEKUNDAERKILDE, p.sekundaerkilde))
        if given is not None:
            remember(_PARAMETER_CACHE, key, found)
    return found


_DECISION_TEXT = {name: tag(_D, name, LENGTH) for name in (
    "decision_id", "request_id", "ruleset", "version", "ruleset_sha256", "engine_version", "as_of", "selected_by",
    "selection_date", "trace_id", "known_at")}
_DECISION_FACTS = tag(_D, "facts", LENGTH)
_DECISION_OUTCOME = tag(_D, "outcome", LENGTH)
_DECISION_MANUAL = tag(_D, "manuell_vurdering", LENGTH)
_DECISION_EXPLANATION = tag(_D, "explanation", LENGTH)
_DECISION_CORRECTION = tag(_D, "correction", LENGTH)
_CORRECTION_SUPERSEDES = tag(pb.Correction.DESCRIPTOR, "supersedes", LENGTH)
_CORRECTION_PUBLISHED = tag(pb.Correction.DESCRIPTOR, "published_at", LENGTH)
# Written only for a partial explanation, after the trace id and before a correction and known_at (field
# numbers in order).
LEVEL_FIELD = {level: tag(_D, "explanation_level", VARINT) + varint(level) for level in (FIRED, NONE)}
_MANUAL_RULE = tag(_M, "rule_id", LENGTH)
_MANUAL_BEGRUNNELSE = tag(_M, "begrunnelse", LENGTH)
STREAM_DECISION_TAG = tag(pb.EvaluateStreamResponse.DESCRIPTOR, "decision", LENGTH)
STREAM_ERROR_TAG = tag(pb.EvaluateStreamResponse.DESCRIPTOR, "error", LENGTH)


def decision_bytes(evaluation: EvaluationView, head: DecisionHead, *, request_id: str = "", trace_id: str = "",
                   level: int = FULL) -> bytes:
    """The serialised `regelmotor.v1.Decision` of an evaluation whose head is `head` (`evaluation.head(...)`),
    with as much explanation as `level` (FULL, FIRED or NONE) says: at FULL what
    `decision_to_proto(evaluation.decision(...)).SerializeToString()` gives, up to the order of fields, without
    building the explanation's dataclasses first."""
    if level not in LEVELS:
        raise ValueError(f"not an explanation level: {level!r}")
    writer = _Writer(evaluation)
    labels = _DECISION_TEXT
    facts = b"".join([writer.entry(name) for name in head.facts])
    outcome = b"".join([writer.entry(name) for name in head.outcome])
    parts = [
        text(labels["decision_id"], head.decision_id), text(labels["request_id"], request_id),
        text(labels["ruleset"], head.ruleset), text(labels["version"], head.version),
        text(labels["ruleset_sha256"], head.ruleset_sha256), text(labels["engine_version"], head.engine_version),
        text(labels["as_of"], head.as_of), text(labels["selected_by"], head.selected_by),
        text(labels["selection_date"], head.selection_date),
        # The head's facts and outcome are the evaluation's values ({name: json_of(name)}).
        _DECISION_FACTS + _length(len(facts)) + facts, _DECISION_OUTCOME + _length(len(outcome)) + outcome,
    ]
    parts += [field(_DECISION_MANUAL, text(_MANUAL_RULE, m.rule_id) + text(_MANUAL_BEGRUNNELSE, m.begrunnelse))
              for m in head.manuell_vurdering]
    if level != NONE:
        explanation = writer.explanation(level)
        parts.append(_DECISION_EXPLANATION + _length(len(explanation)) + explanation)
    parts.append(text(labels["trace_id"], trace_id))
    if level != FULL:
        parts.append(LEVEL_FIELD[level])
    correction = head.correction
    if correction is not None:
        body = text(_CORRECTION_SUPERSEDES, correction.supersedes) + text(_CORRECTION_PUBLISHED,
                                                                           correction.published_at or "")
        parts.append(field(_DECISION_CORRECTION, body))
    if head.known_at is not None:
        parts.append(text(labels["known_at"], head.known_at))
    return b"".join(parts)
