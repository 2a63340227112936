"""The hand-written Decision writer (`server/wire.py`) against the cheaper alternative: the protobuf
library (upb) with the static parts of each rule's trace cached per ruleset version.

Not a test, and not wired into the service: it prints figures (the architecture issue, point 6; the
figures and the decision are in BENCHMARKS.md, 2026-12-06). Run from the repository root:

    PYTHONPATH=services/rules:protos/python:. python bench/wire_alternative.py [--repeats N] [--passes P]

The alternative (`library_decision_bytes` below) builds a `regelmotor.v1.Decision` with the generated
classes straight from the evaluation's read-only view (`EvaluationView`), as `wire.decision_bytes` does,
and serialises it:
- per ruleset version, each rule's static fields (id, title, hjemmel, condition, ...) are a pre-built
  `RuleTrace` (`convert.rule_template`), copied into the answer with `CopyFrom` (measured faster than
  `MergeFromString` of the pre-serialised bytes: 14.6 against 19.8 µs for a version's 27 rules);
- a condition that several rules share is built once per evaluation and appended to the others (a copy);
- everything else is set field by field, the Structs with `Struct.update`.
Two forms of it are measured: `library` fills each Struct with `Struct.update`; `library+` builds each
value the evaluation holds once as a `Value` and copies it into every Struct that reads it (a further
cut: `Struct.update` was a third of `library`'s time under cProfile). Both are checked first: on every
bundled case their bytes parse to the message `wire.decision_bytes` writes.

The worker path is measured in-process: the whole work of an engine worker,
`EvaluationHandler.evaluate_batch` over the bundled requests (serialised `EvaluateRequest`s) in batches of
32, once with `wire.decision_bytes` and once with the alternative put in its place (the handler module's
`decision_bytes`). Two figures, in µs per decision: the worker's whole work, and the part of it spent in
the encoder (timed around each call). Each figure of a round is the best of `--passes` passes over all
requests; the rounds interleave the encoders, in an order that turns (the machine's speed drifts).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from google.protobuf import __version__ as protobuf_version  # noqa: E402
from google.protobuf import struct_pb2  # noqa: E402
from google.protobuf.internal import api_implementation  # noqa: E402

from regelmotor.core.api import Regelmotor  # noqa: E402
from regelmotor.core.cases import load_cases  # noqa: E402
from regelmotor.core.decision import DecisionHead  # noqa: E402
from regelmotor.core.evaluator import Evaluation  # noqa: E402
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository  # noqa: E402
from regelmotor.core.view import EvaluationView  # noqa: E402
from regelmotor.server import handler as handler_module  # noqa: E402
from regelmotor.server import wire  # noqa: E402
from regelmotor.server.convert import rule_template  # noqa: E402
from regelmotor.server.handler import EvaluationHandler  # noqa: E402
from regelmotor.server.telemetry import tracer_provider  # noqa: E402
from regelmotor_api.v1 import decision_pb2 as pb  # noqa: E402

Encoder = Callable[..., bytes]
BATCH = 32

# --- the alternative -----------------------------------------------------------------------------


def _set_value(message: struct_pb2.Value, value: Any) -> None:
    """A google.protobuf.Value set in place, as `convert.to_value` builds it."""
    if value is None:
        message.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        message.bool_value = value
    elif isinstance(value, (int, float)):
        message.number_value = value
    elif isinstance(value, str):
        message.string_value = value
    elif isinstance(value, dict):
        message.struct_value.SetInParent()  # an empty one is still there
        message.struct_value.update(value)
    else:
        message.list_value.SetInParent()
        message.list_value.extend(value)


_templates: dict[tuple[str, str], list[pb.RuleTrace]] = {}


def _rule_templates(evaluation: EvaluationView) -> list[pb.RuleTrace]:
    """Each rule's static fields as a built RuleTrace, in file order, once per ruleset version."""
    ruleset = evaluation.ruleset
    key = (ruleset.key, ruleset.sha256)
    found = _templates.get(key)
    if found is None:
        found = _templates[key] = [rule_template(ruleset.sha256, shape.static_trace()) for shape in evaluation.rules]
    return found


class _ByUpdate:
    """Structs filled with the library's `Struct.update` from JSON values."""

    def __init__(self, evaluation: EvaluationView) -> None:
        self.json_of = evaluation.json_of

    def names(self, struct: struct_pb2.Struct, names: Iterable[str]) -> None:
        """{name: the evaluation's value of name} for each name."""
        struct.update({name: self.json_of(name) for name in names})

    def values(self, struct: struct_pb2.Struct, values: dict[str, Any]) -> None:
        struct.update(values)


class _ByCachedValues(_ByUpdate):
    """Each value the evaluation holds built once as a `Value` and copied into every Struct that reads it;
    other values set in place. About 2.5 times as fast as `Struct.update` for a condition's reads."""

    def __init__(self, evaluation: EvaluationView) -> None:
        super().__init__(evaluation)
        self._values: dict[str, struct_pb2.Value] = {}

    def names(self, struct: struct_pb2.Struct, names: Iterable[str]) -> None:
        fields = struct.fields
        for name in names:
            value = self._values.get(name)
            if value is None:
                value = self._values[name] = struct_pb2.Value()
                _set_value(value, self.json_of(name))
            fields[name].CopyFrom(value)

    def values(self, struct: struct_pb2.Struct, values: dict[str, Any]) -> None:
        fields = struct.fields
        for key, value in values.items():
            _set_value(fields[key], value)


def library_decision_bytes(evaluation: EvaluationView, head: DecisionHead, *, request_id: str = "",
                           trace_id: str = "", structs: type[_ByUpdate] = _ByUpdate) -> bytes:
    """What `wire.decision_bytes` gives, built with the protobuf library."""
    fill = structs(evaluation)
    decision = pb.Decision(
        decision_id=head.decision_id, request_id=request_id, ruleset=head.ruleset, version=head.version,
        ruleset_sha256=head.ruleset_sha256, engine_version=head.engine_version, as_of=head.as_of,
        selected_by=head.selected_by, selection_date=head.selection_date, trace_id=trace_id)
    decision.facts.SetInParent()  # there even when empty, as in the reference
    fill.names(decision.facts, head.facts)
    decision.outcome.SetInParent()
    fill.names(decision.outcome, head.outcome)
    for review in head.manuell_vurdering:
        decision.manuell_vurdering.add(rule_id=review.rule_id, begrunnelse=review.begrunnelse)
    explanation = decision.explanation
    fired, applied, held = evaluation.rule_fired, evaluation.applied, evaluation.held
    shared: dict[tuple[int, str, bool], pb.ConditionTrace] = {}
    for shape, template in zip(evaluation.rules, _rule_templates(evaluation), strict=True):
        rule = shape.rule
        message = explanation.rules.add()
        message.CopyFrom(template)
        message.fired = fired[rule.id]
        message.applied = applied[rule.id]
        if rule.effects:
            fill.values(message.result, {field: evaluation.effect_json(rule, field) for field in rule.effects})
        for atom, negated in shape.conditions:
            key = (shape.round, atom.text, negated)
            condition = shared.get(key)
            if condition is None:
                condition = shared[key] = message.conditions.add(
                    condition=atom.text, held=held[shape.round][atom.text], negated=negated)
                fill.names(condition.reads, atom.reads)
            else:
                message.conditions.append(condition)
        for exception in shape.exceptions:
            exception_held = bool(fired.get(exception.id))
            message.exceptions.add(rule_id=exception.id, held=exception_held)
            if exception_held:
                message.overridden_by.append(exception.id)
    for d in evaluation.derived:
        derived = explanation.derived.add(name=d.name, expression=d.expression)
        derived.inputs.SetInParent()
        fill.names(derived.inputs, d.inputs)  # the inputs are {name: the evaluation's value}
        _set_value(derived.value, d.value)
    for p in evaluation.parameters:
        parameter = explanation.parameters.add(name=p.name, on=p.on, gyldig_fra=p.gyldig_fra, unit=p.unit)
        _set_value(parameter.value, p.value)
    for o in evaluation.outcomes:
        outcome = explanation.outcomes.add(name=o.name, combine=o.combine, from_rules=o.from_rules,
                                           internal=o.internal)
        _set_value(outcome.value, o.value)
    return decision.SerializeToString()


ALTERNATIVES: dict[str, Encoder] = {
    "library": library_decision_bytes,
    "library+": partial(library_decision_bytes, structs=_ByCachedValues),
}


# --- the bundled requests ------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    motor: Regelmotor
    requests: list[bytes]  # serialised EvaluateRequests, every version's cases round-robin
    evaluations: list[tuple[Evaluation, DecisionHead]]  # the same, evaluated (for the check)


def workload(rulesets: Path) -> Workload:
    motor = Regelmotor(RulesetRepository.load(rulesets, include_drafts=True))
    per_version: list[list[tuple[bytes, Evaluation]]] = []
    for name in motor.repository.names():
        for ruleset in motor.repository.all_versions(name):
            version = ruleset.meta.version
            path = rulesets / name / f"{version}{CASES_SUFFIX}"
            if not path.exists():
                continue
            items = []
            for case in load_cases(path, ruleset):
                if case.expect_error is None:
                    request = pb.EvaluateRequest(ruleset=name, version=version, as_of=case.as_of.isoformat(),
                                                 facts=case.facts)
                    evaluation = motor.run(name, case.facts, as_of=case.as_of, version=version)
                    items.append((request.SerializeToString(), evaluation))
            per_version.append(items)
    mixed = [items[i] for i in range(max(map(len, per_version))) for items in per_version if i < len(items)]
    return Workload(motor, [r for r, _ in mixed], [(e, e.head(f"d-{n}")) for n, (_, e) in enumerate(mixed)])


def check_alternatives(work: Workload) -> None:
    """Each alternative writes what wire.py writes, on every request (else the figures mean nothing)."""
    for evaluation, head in work.evaluations:
        ours = pb.Decision.FromString(wire.decision_bytes(evaluation, head, request_id="r", trace_id="t"))
        for name, encoder in ALTERNATIVES.items():
            for _ in range(2):  # the second time with warm caches
                if pb.Decision.FromString(encoder(evaluation, head, request_id="r", trace_id="t")) != ours:
                    raise SystemExit(f"{name} differs from wire.py on {head.ruleset}@{head.version}")


# --- measuring -----------------------------------------------------------------------------------


class _Timed:
    """An encoder that adds up the time spent in it."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.seconds = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        start = time.perf_counter()
        try:
            return self.encoder(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def worker_pass(handler: EvaluationHandler, requests: Sequence[bytes]) -> None:
    items = list(enumerate(requests))
    for start in range(0, len(items), BATCH):
        replies = handler.evaluate_batch(items[start:start + BATCH])
        if any(reply.decision is None for reply in replies):
            raise SystemExit("a bundled request was not answered with a decision")


def best_pass(handler: EvaluationHandler, requests: Sequence[bytes], encoder: Encoder,
              passes: int) -> tuple[float, float]:
    """µs per decision of the best pass: the whole worker's work, and the encoder's part of it."""
    timed = _Timed(encoder)
    # What the handler calls to write the answer (imported there from wire, hence not exported).
    handler_module.decision_bytes = timed  # type: ignore[attr-defined]
    best = (float("inf"), 0.0)
    try:
        for _ in range(passes):
            timed.seconds = 0.0
            start = time.perf_counter()
            worker_pass(handler, requests)
            best = min(best, (time.perf_counter() - start, timed.seconds))
    finally:
        handler_module.decision_bytes = wire.decision_bytes  # type: ignore[attr-defined]
    return best[0] / len(requests) * 1e6, best[1] / len(requests) * 1e6


Figures = dict[str, dict[str, list[float]]]  # "worker" | "encoder" -> encoder name -> one figure per round


def measure(work: Workload, encoders: dict[str, Encoder], repeats: int, passes: int) -> Figures:
    handler = EvaluationHandler(work.motor, tracer_provider().get_tracer("regelmotor.engine"))
    figures: Figures = {"worker": {n: [] for n in encoders}, "encoder": {n: [] for n in encoders}}
    names = list(encoders)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            worker_us, encoder_us = best_pass(handler, work.requests, encoders[name], passes)
            figures["worker"][name].append(worker_us)
            figures["encoder"][name].append(encoder_us)
    return figures


def report(figures: Figures, reference: str) -> list[str]:
    lines = []
    for kind, by_encoder in figures.items():
        for name, values in by_encoder.items():
            lines.append(f"{kind:7} | {name:9} | median {statistics.median(values):6.1f} µs | "
                         f"range {min(values):.1f}–{max(values):.1f} | rounds "
                         + " ".join(f"{v:.1f}" for v in values))
        for name, theirs in by_encoder.items():
            if name != reference:
                gains = [1 - o / t for o, t in zip(by_encoder[reference], theirs, strict=True)]
                lines.append(f"{kind:7} | {reference} takes {statistics.median(gains):.1%} less time than {name} "
                             f"(median of the rounds' ratios; {min(gains):.1%}–{max(gains):.1%})")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rulesets", type=Path, default=ROOT / "rulesets")
    parser.add_argument("--repeats", type=int, default=6, help="interleaved rounds")
    parser.add_argument("--passes", type=int, default=5, help="passes over all requests per figure (best counts)")
    args = parser.parse_args(argv)
    work = workload(args.rulesets)
    check_alternatives(work)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
          f"Python {platform.python_version()}, protobuf {protobuf_version} ({api_implementation.Type()}); "
          f"{len(work.requests)} bundled requests; checked: each alternative writes what wire.py writes")
    encoders: dict[str, Encoder] = {"wire.py": wire.decision_bytes, **ALTERNATIVES}
    for line in report(measure(work, encoders, args.repeats, args.passes), "wire.py"):
        print(line)


if __name__ == "__main__":
    main()
