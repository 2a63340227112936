"""The work of one request, as done inside an engine worker (or inline when there are no workers).

It takes the request's wire bytes and gives back the response's wire bytes, so the gRPC front
process only moves bytes and never parses facts or builds explanations: one channel can keep every
worker busy.

Recording: the handler asks its `EngineRecording` (regelmotor.server.recording), made once from the service's
`RecordingPlan`, whether to record a decision and where: it stores every decision before it answers (a SQLite
log, which each worker opens itself, so the front never touches the log on the way), or hands each decision
back with its record for the front's group committer to store (PostgreSQL, which charges per transaction).
A decision is recorded only when it has a caller: a replay (caller None) never is. A record with a request_id
carries the request's fingerprint (regelmotor.server.fingerprint), so that the log answers a retry with the
stored decision and refuses the request_id reused for another request (ALREADY_EXISTS, REQUEST_ID_REUSED).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from regelmotor.core.api import Regelmotor, as_of_date
from regelmotor.core.decision import DecisionHead, new_decision_id
from regelmotor.core.errors import FieldViolation, InvalidFacts, RegelmotorError
from regelmotor.core.identity import InvalidIdentityNumber, Pseudonymiser
from regelmotor.core.identity import validate as validate_identity
from regelmotor.store import DecisionRecord, RequestIdConflict, StoredRecord, answer_for, answered_record
from regelmotor_api.v1 import decision_pb2 as pb

from .answer_levels import LEVEL_NAMES
from .convert import selection_json, struct_to_dict
from .errors import bad_request, control_characters, error_result, not_recorded, recording_failure
from .fingerprint import request_fingerprint
from .moments import DEFAULT_SETTLE_SECONDS, BadMoment, past_moment
from .protocol import Reply, Summary
from .recording import EngineRecording
from .wire import FULL, decision_bytes

_propagator = TraceContextTextMapPropagator()
log = logging.getLogger("regelmotor.engine")


class _BadRequest(Exception):
    def __init__(self, violations: list[FieldViolation]) -> None:
        super().__init__("bad request")
        self.violations = violations


_MAX_NAME_CHARS = 200  # ruleset, version and request_id: names, echoed in errors and stored with decisions


def _known_at(text: str, settle: float) -> datetime:
    try:
        return past_moment(text, settle)
    except BadMoment as exc:
        raise _BadRequest([FieldViolation("known_at", str(exc))]) from None


def _parse(request_bytes: bytes) -> tuple[pb.EvaluateRequest, date | None, int]:
    try:
        request = pb.EvaluateRequest.FromString(request_bytes)
    except DecodeError:
        raise _BadRequest([FieldViolation("request", "not a valid EvaluateRequest message")]) from None
    problems: list[FieldViolation] = []
    if not request.ruleset:
        problems.append(FieldViolation("ruleset", "required: the name of a ruleset"))
    names = (("ruleset", request.ruleset), ("version", request.version), ("request_id", request.request_id))
    for name, text in names:
        if len(text) > _MAX_NAME_CHARS:
            problems.append(FieldViolation(name, f"at most {_MAX_NAME_CHARS} characters, got {len(text)}"))
    problems.extend(control_characters(names))
    as_of: date | None = None
    if request.as_of:
        try:
            as_of = as_of_date(request.as_of)  # the core's rules for a date: form, ASCII digits, range
        except InvalidFacts as exc:
            problems.extend(exc.violations)
    level = request.explanation or FULL  # unset: the full explanation
    if level not in LEVEL_NAMES:
        problems.append(FieldViolation("explanation", f"unknown explanation level {level}: one of "
                                                      "EXPLANATION_LEVEL_FULL, EXPLANATION_LEVEL_FIRED, "
                                                      "EXPLANATION_LEVEL_NONE"))
    if problems:
        raise _BadRequest(problems)
    return request, as_of, level


def _record(head: DecisionHead, level: int, answer: bytes) -> dict[str, Any]:
    """The decision as the log keeps it: its head (no explanation: a replay on the recorded version rebuilds
    that), the level it was answered at and the sha256 of the exact bytes answered, which the replay proves."""
    return {
        "decision_id": head.decision_id, "ruleset": head.ruleset, "version": head.version,
        "ruleset_sha256": head.ruleset_sha256, "engine_version": head.engine_version,
        "as_of": head.as_of, "selected_by": head.selected_by, "selection_date": head.selection_date,
        "facts": head.facts, "outcome": head.outcome,
        "manuell_vurdering": [{"rule_id": m.rule_id, "begrunnelse": m.begrunnelse}
                              for m in head.manuell_vurdering],
        "applied_rules": head.applied_rules,
        "explanation_level": LEVEL_NAMES[level], "answer_sha256": hashlib.sha256(answer).hexdigest(),
        **selection_json(head),
    }


def _log_record(head: DecisionHead, level: int, answer: bytes, caller: str, request_id: str, subject: str | None,
                trace_id: str, *, prepare: bool, fingerprints: tuple[str, ...]) -> DecisionRecord:
    """The decision as the log stores it; with `prepare`, its large fields' canonical text made here too.
    Raises TypeError or ValueError for a record the log cannot hold."""
    return answered_record(
        decision_id=head.decision_id, caller=caller, request_id=request_id, ruleset=head.ruleset,
        version=head.version, ruleset_sha256=head.ruleset_sha256, engine_version=head.engine_version,
        as_of=head.as_of, subject=subject, facts=head.facts, outcome=head.outcome,
        decision=_record(head, level, answer),
        answer=answer, trace_id=trace_id, request_fingerprint=fingerprints[0] if fingerprints else None,
        earlier_fingerprints=fingerprints[1:], prepare=prepare)


# A request's reply, and the record to store before it is answered (None: nothing to store here).
Decided = tuple[Reply, DecisionRecord | None]


class EvaluationHandler:
    def __init__(self, motor: Regelmotor, tracer: trace.Tracer | None = None,
                 pseudonymiser: Pseudonymiser | None = None, recording: EngineRecording | None = None,
                 known_at_settle: float = DEFAULT_SETTLE_SECONDS) -> None:
        self.motor = motor
        self.known_at_settle = known_at_settle  # how long ago a known_at must be (regelmotor.server.moments)
        self.tracer = tracer or trace.get_tracer("regelmotor.engine")
        self.pseudonymiser = pseudonymiser
        self.recording = recording or EngineRecording()  # whether, and where, decisions are recorded

    def evaluate(self, request_bytes: bytes, traceparent: str | None = None, caller: str | None = None,
                 replay: bool = False) -> Reply:
        """Evaluate one request. `caller` (the calling system) is given when the decision is to be recorded;
        `replay`: a recorded decision evaluated again on its pinned version, even one retired since."""
        return self.store([self.decide(request_bytes, traceparent, caller, replay)])[0]

    def evaluate_batch(self, items: list[tuple[int, bytes]], traceparent: str | None = None,
                       caller: str | None = None) -> list[Reply]:
        """One reply per (index, request bytes), in order; those stored here, stored in one transaction."""
        return self.store([self.decide(request_bytes, traceparent, caller) for _, request_bytes in items])

    def store(self, decided: list[Decided]) -> list[Reply]:
        """The replies to decided requests, in order, after storing those to be stored here in one transaction
        (one commit for many decisions: most of a recorded decision's cost when each has its own)."""
        pending = [(index, record) for index, (_, record) in enumerate(decided) if record is not None]
        replies = [reply for reply, _ in decided]
        if not pending:
            return replies
        results = self.recording.append([record for _, record in pending])
        for (index, record), result in zip(pending, results, strict=True):
            replies[index] = self._recorded(replies[index], record, result)
        return replies

    @staticmethod
    def _recorded(reply: Reply, record: DecisionRecord, result: StoredRecord | Exception) -> Reply:
        if not isinstance(result, StoredRecord):
            failure = recording_failure(result)
            return Reply(Summary(failure.code, trace_id=reply.summary.trace_id, request_id=reply.summary.request_id,
                                 log_failed=not isinstance(result, RequestIdConflict)),
                         error=failure.SerializeToString())
        assert reply.decision is not None
        # A retried request_id gets the decision stored the first time, and no second record.
        answer = answer_for(record.decision_id, reply.decision, result.decision_id, result.response)
        return Reply(replace(reply.summary, decision_id=result.decision_id), decision=answer)

    def decide(self, request_bytes: bytes, traceparent: str | None = None, caller: str | None = None,
               replay: bool = False) -> Decided:
        """The reply to one request, and the record to store here (`store`) before answering it."""
        context = _propagator.extract({"traceparent": traceparent}) if traceparent else None
        with self.tracer.start_as_current_span("regelmotor.evaluate", context=context) as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            request_id = ""
            try:
                request, as_of, level = _parse(request_bytes)
                request_id = request.request_id
                subject = self._subject(request.national_id)
                span.set_attribute("regelmotor.ruleset", request.ruleset)
                try:
                    facts = struct_to_dict(request.facts)
                except ValueError:  # e.g. NaN or infinity, which JSON cannot carry
                    problem = FieldViolation("facts", "numbers must be finite (no NaN or infinity)")
                    raise _BadRequest([problem]) from None
                known_at = _known_at(request.known_at, self.known_at_settle) if request.known_at else None
                evaluation = self.motor.run(request.ruleset, facts, as_of=as_of, version=request.version or None,
                                            replay=replay, known_at=known_at)
                head = evaluation.head(new_decision_id())
            except _BadRequest as exc:
                return self._error(bad_request(exc.violations), span, trace_id, request_id), None
            except RegelmotorError as exc:
                return self._error(error_result(exc), span, trace_id, request_id), None
            except Exception as exc:
                span.record_exception(exc)
                return self._error(error_result(exc), span, trace_id, request_id), None
            headline = evaluation.headline
            summary = Summary(0, head.ruleset, head.version, headline.outcome if headline else "",
                              headline.text if headline else "", head.decision_id, request_id, trace_id)
            span.set_attribute("regelmotor.version", head.version)
            span.set_attribute("regelmotor.decision_id", head.decision_id)
            for key, value in summary.headline_attributes():
                span.set_attribute(key, value)
            span.set_attribute("regelmotor.explanation_level", LEVEL_NAMES[level])
            answer = decision_bytes(evaluation, head, request_id=request_id, trace_id=trace_id, level=level)
            recording = self.recording
            if caller is None or not recording.records:
                return Reply(summary, decision=answer), None
            try:
                # Only a request_id makes a retry, so only then is what was asked worth a fingerprint: under the
                # current pseudonym key, then each retired one (a retry of a request recorded before a rotation).
                explanation = None if level == FULL else LEVEL_NAMES[level]
                fingerprints = tuple(
                    request_fingerprint(request.ruleset, request.version, request.as_of, facts, asked, explanation,
                                        request.known_at or None)
                    for asked in (subject, *self._previous_subjects(request.national_id))) if request_id else ()
                record = _log_record(head, level, answer, caller, request_id, subject, trace_id,
                                     prepare=recording.hands_back, fingerprints=fingerprints)
            except (TypeError, ValueError) as exc:  # a record the log could not hold is not answered either
                span.record_exception(exc)
                log.error("decision cannot be recorded", exc_info=exc)
                return self._error(not_recorded(), span, trace_id, request_id), None
            if recording.hands_back:
                return Reply(summary, decision=answer, record=record), None  # for the front to store
            return Reply(summary, decision=answer), record

    def _subject(self, national_id: str) -> str | None:
        if not national_id:
            return None
        try:
            if self.pseudonymiser is None:  # nothing to record it with: only checked (no synthetic numbers)
                validate_identity(national_id)
                return None
            return self.pseudonymiser.pseudonym(national_id)  # validated under the service's allow_synthetic_ids
        except InvalidIdentityNumber as exc:
            raise _BadRequest([FieldViolation("national_id", str(exc))]) from None

    def _previous_subjects(self, national_id: str) -> tuple[str, ...]:
        if not national_id or self.pseudonymiser is None:
            return ()
        return self.pseudonymiser.previous_pseudonyms(national_id)  # validated already (_subject)

    def _error(self, error: pb.ErrorResult, span: trace.Span, trace_id: str, request_id: str) -> Reply:
        span.set_attribute("rpc.grpc.status_code", error.code)
        return Reply(Summary(error.code, trace_id=trace_id, request_id=request_id), error=error.SerializeToString())
