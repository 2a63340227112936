"""AuditService: find, read, replay and verify recorded decisions. Every call is itself recorded in the
log's access log (who, when, what was read), as Normen requires for health records."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format, timestamp_pb2
from grpc_status import rpc_status

from regelmotor.core.errors import FieldViolation
from regelmotor.core.identity import InvalidIdentityNumber, Pseudonymiser
from regelmotor.store import (
    Checkpoint,
    Checkpointer,
    DecisionLog,
    ListFilter,
    StoredRecord,
    TooManyGroups,
    unpack_response,
)
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2 as pb

from .audit_queries import access_filter, count_violations, filter_time
from .convert import explanation_level, to_struct, to_value
from .errors import bad_request, control_characters, error_result, pool_failure, to_status, worker_failed
from .limits import CallerLimiter
from .pool import PoolError
from .protocol import Evaluate, Reply
from .recording import caller_of
from .replay_proof import prove, recorded_answer_sha256, recorded_known_at
from .servicers import Engine, ask
from .telemetry import Telemetry

Context = grpc.aio.ServicerContext[Any, Any]
_EXPORT_CHUNK = 200
log = logging.getLogger("regelmotor.audit")

# Why an auditor reads (formål): at least a few letters, so "." or "x" is no reason; at most a paragraph, so the
# access log, kept for years, grows by a bounded amount per read.
PURPOSE_CHARS = (3, 500)

_T = TypeVar("_T")
# A replay is a new evaluation: it has its own id and trace, and no caller request.
_IGNORED_IN_REPLAY = {"decision_id", "trace_id", "request_id"}


def decision_json(decision: bytes) -> dict[str, Any]:
    """Decision protobuf bytes as JSON, field names as in the .proto."""
    return json_format.MessageToDict(pb.Decision.FromString(decision), preserving_proto_field_name=True)


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def _outcome_value(message: apb.DecisionFilter, violations: list[FieldViolation]) -> Any:
    """The filter's outcome value as JSON, after the checks of the texts a filter compares (violations added):
    none holds a control character, the outcome's name no quote or backslash, and the value no NaN or
    infinity - no recorded decision could match them, and the log cannot take some of them in a query."""
    violations.extend(control_characters((f"filter.{name}", getattr(message, name))
                                         for name in ("ruleset", "version", "caller", "outcome_field")))
    if '"' in message.outcome_field or "\\" in message.outcome_field:
        violations.append(FieldViolation("filter.outcome_field", "must be the name of an outcome (no quotes or "
                                                                 "backslashes)"))
    if not message.HasField("outcome_value"):
        if message.outcome_field:
            violations.append(FieldViolation("filter.outcome_value", "required with outcome_field"))
        return None
    try:
        value = json_format.MessageToDict(message.outcome_value)
    except ValueError:  # the JSON form has no NaN or infinity
        violations.append(FieldViolation("filter.outcome_value", "numbers must be finite (not NaN or infinity)"))
        return None
    if _holds_nul(value):  # PostgreSQL's jsonb cannot hold one, so no decision can; the query would fail on it
        violations.append(FieldViolation("filter.outcome_value", "must not contain NUL characters"))
        return None
    return value


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


async def checked_decision_id(decision_id: str, context: Context) -> None:
    """End the call with INVALID_ARGUMENT naming `decision_id` if it holds a control character."""
    violations = control_characters([("decision_id", decision_id)])
    if violations:
        await context.abort_with_status(rpc_status.to_status(to_status(bad_request(violations))))


async def _internal(name: str, exc: Exception, context: Context) -> None:
    """End a read that failed through no fault of the caller's (the log cannot be read, a bug): INTERNAL without
    the exception's text, which could tell a caller about the store; the log gets the whole of it."""
    log.error("audit read failed", exc_info=exc, extra={"method": name})
    await context.abort_with_status(rpc_status.to_status(to_status(error_result(exc))))


def summary(record: StoredRecord) -> apb.DecisionSummary:
    return apb.DecisionSummary(
        seq=record.seq, decision_id=record.decision_id, recorded_at=_timestamp(record.recorded_at),
        caller=record.caller, request_id=record.request_id, ruleset=record.ruleset, version=record.version,
        as_of=record.as_of, outcome=to_struct(record.outcome), subject=record.subject or "", hash=record.hash)


def differences(recorded: Any, replayed: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Field-by-field differences between two JSON values (paths like `outcome.frist` or `rules[3].fired`)."""
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in sorted(set(recorded) | set(replayed)):
            if not path and key in _IGNORED_IN_REPLAY:
                continue
            found += differences(recorded.get(key), replayed.get(key), f"{path}.{key}" if path else key)
        return found
    if isinstance(recorded, list) and isinstance(replayed, list) and len(recorded) == len(replayed):
        found = []
        for index, (a, b) in enumerate(zip(recorded, replayed, strict=True)):
            found += differences(a, b, f"{path}[{index}]")
        return found
    return [] if recorded == replayed else [(path, recorded, replayed)]


def purpose_problem(formaal: str) -> str | None:
    """Why `formaal` is not an acceptable purpose for a read (None: it is)."""
    low, high = PURPOSE_CHARS
    text = formaal.strip()
    if not text:
        return "required: say why you read (e.g. the case number), it is recorded in the access log"
    if not low <= len(text) <= high:
        return f"must be {low} to {high} characters, not {len(text)}"
    if any(unicodedata.category(char) == "Cc" for char in text):
        return "must not contain control characters (line breaks, tabs)"
    return None


async def checked_purpose(formaal: str, context: Context) -> str:
    """The request's purpose, stripped; the call is ended with INVALID_ARGUMENT naming `formaal` if it has none."""
    problem = purpose_problem(formaal)
    if problem is not None:
        await context.abort_with_status(rpc_status.to_status(to_status(
            bad_request([FieldViolation("formaal", problem)]))))
    return formaal.strip()


async def decision_filter(message: apb.DecisionFilter, pseudonymiser: Pseudonymiser,
                          context: Context) -> tuple[ListFilter, dict[str, Any]]:
    """The log's filter for a request's DecisionFilter, and what was asked for the access log (a national_id as its
    pseudonym); the call is ended with INVALID_ARGUMENT naming the field for one that cannot be used."""
    violations: list[FieldViolation] = []
    subject = None
    if message.national_id:
        try:
            subject = pseudonymiser.pseudonym(message.national_id)
        except InvalidIdentityNumber as exc:
            violations.append(FieldViolation("filter.national_id", str(exc)))
    recorded_from, recorded_to = (filter_time(message, bound, violations) for bound in ("recorded_from",
                                                                                          "recorded_to"))
    outcome_value = _outcome_value(message, violations)
    if violations:
        await context.abort_with_status(rpc_status.to_status(to_status(bad_request(violations))))
    filters = ListFilter(
        recorded_from=recorded_from, recorded_to=recorded_to,
        ruleset=message.ruleset or None, version=message.version or None,
        outcome_field=message.outcome_field or None, outcome_value=outcome_value,
        subject=subject, caller=message.caller or None)
    # What was asked, for the access log: the pseudonym, never the number.
    detail = {k: v for k, v in {"ruleset": message.ruleset, "version": message.version,
                                "outcome_field": message.outcome_field, "outcome_value": outcome_value,
                                "subject": subject, "caller": message.caller}.items() if v}
    return filters, detail


class AuditServicer(apb_grpc.AuditServiceServicer):
    def __init__(self, log: DecisionLog, engine: Engine, pseudonymiser: Pseudonymiser, telemetry: Telemetry,
                 max_seconds: float, checkpointer: Checkpointer | None = None,
                 exports: CallerLimiter | None = None) -> None:
        self.log = log
        self.checkpointer = checkpointer  # None: the chain alone is verified
        self.engine = engine
        self.pseudonymiser = pseudonymiser
        self.telemetry = telemetry
        self.max_seconds = max_seconds
        # Exports are the heaviest reads: a caller may run only a few at once.
        self._export_limited = exports.streaming(self._export) if exports else self._export

    async def _call(self, name: str, context: Context, detail: dict[str, Any],
                    work: Callable[[], Awaitable[_T]]) -> _T:
        with self.telemetry.rpc_span(f"/regelmotor.v1.AuditService/{name}", context):
            try:
                await self._log_access(name, context, detail)
                return await work()
            except grpc.aio.AbortError:  # an answer already given (context.abort)
                raise
            except Exception as exc:
                await _internal(name, exc, context)
                raise


    async def _log_access(self, name: str, context: Context, detail: dict[str, Any]) -> None:
        # The read is logged before it is answered: no unlogged read of health records.
        await asyncio.to_thread(self.log.log_access, caller_of(context), name, detail)

    async def _filter(self, message: apb.DecisionFilter, context: Context) -> tuple[ListFilter, dict[str, Any]]:
        return await decision_filter(message, self.pseudonymiser, context)

    async def ListDecisions(self, request: apb.ListDecisionsRequest, context: Context) -> apb.ListDecisionsResponse:
        formaal = await checked_purpose(request.formaal, context)
        filters, detail = await self._filter(request.filter, context)
        size = request.page_size or 50
        if not 0 < size <= 500:
            await context.abort_with_status(rpc_status.to_status(to_status(
                bad_request([FieldViolation("page_size", "between 1 and 500")]))))

        async def work() -> apb.ListDecisionsResponse:
            try:
                records, cursor = await asyncio.to_thread(self.log.list, filters, request.page_token or None, size)
            except ValueError:
                await context.abort_with_status(rpc_status.to_status(to_status(
                    bad_request([FieldViolation("page_token", "not a token from this service")]))))
                raise
            return apb.ListDecisionsResponse(decisions=[summary(r) for r in records], next_page_token=cursor or "")

        return await self._call("ListDecisions", context, {**detail, "page_token": request.page_token,
                                                           "formaal": formaal}, work)

    async def GetDecision(self, request: apb.GetDecisionRequest, context: Context) -> apb.GetDecisionResponse:
        formaal = await checked_purpose(request.formaal, context)
        await checked_decision_id(request.decision_id, context)

        async def work() -> apb.GetDecisionResponse:
            record = await asyncio.to_thread(self.log.get, request.decision_id)
            if record is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no recorded decision {request.decision_id[:100]!r}")
                raise AssertionError("abort raises")
            return apb.GetDecisionResponse(
                summary=summary(record), decision=pb.Decision.FromString(unpack_response(record.response)),
                facts=to_struct(record.facts), prev_hash=record.prev_hash, ruleset_sha256=record.ruleset_sha256,
                engine_version=record.engine_version, trace_id=record.trace_id,
                answer_sha256=recorded_answer_sha256(record))

        return await self._call("GetDecision", context, {"decision_id": request.decision_id, "formaal": formaal},
                                work)

    async def ReplayDecision(self, request: apb.ReplayDecisionRequest, context: Context) -> apb.ReplayDecisionResponse:
        formaal = await checked_purpose(request.formaal, context)
        await checked_decision_id(request.decision_id, context)

        async def work() -> apb.ReplayDecisionResponse:
            record = await asyncio.to_thread(self.log.get, request.decision_id)
            if record is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no recorded decision {request.decision_id[:100]!r}")
                raise AssertionError("abort raises")
            # known_at as the decision was asked for (the version is pinned; the answer echoes the moment).
            replay = pb.EvaluateRequest(ruleset=record.ruleset, version=record.version, as_of=record.as_of,
                                        facts=to_struct(record.facts), known_at=recorded_known_at(record))
            try:  # no caller: a replay is not recorded; its version answers it even if retired since it decided
                reply = await ask(self.engine, Evaluate(replay.SerializeToString(), replay=True), self.max_seconds)
            except PoolError as exc:
                await context.abort_with_status(rpc_status.to_status(to_status(pool_failure(exc))))
                raise
            if not isinstance(reply, Reply):  # a fault of ours, not of the recorded decision
                await context.abort_with_status(rpc_status.to_status(to_status(worker_failed(repr(reply)))))
                raise AssertionError("abort raises")
            if reply.decision is None:
                error = pb.ErrorResult.FromString(reply.error or b"")
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"the replay failed: {error.message}")
                raise AssertionError("abort raises")
            # Replayed at FULL (the request leaves the level unset), then compared at the level answered.
            proof = prove(record, reply.decision)
            replayed = decision_json(proof.rederived)
            found = differences(decision_json(proof.answered), replayed)
            return apb.ReplayDecisionResponse(
                identical=not found, version=record.version, ruleset_sha256=replayed["ruleset_sha256"],
                differences=[apb.FieldDifference(path=p, recorded=to_value(a), replayed=to_value(b))
                             for p, a, b in found],
                decision=pb.Decision.FromString(proof.full), explanation_level=explanation_level(proof.level),
                answer_sha256=proof.answer_sha256, replayed_answer_sha256=proof.rederived_sha256,
                answer_matches=proof.matches)

        return await self._call("ReplayDecision", context, {"decision_id": request.decision_id, "formaal": formaal},
                                work)

    async def VerifyLog(self, request: apb.VerifyLogRequest, context: Context) -> apb.VerifyLogResponse:
        formaal = await checked_purpose(request.formaal, context)

        async def work() -> apb.VerifyLogResponse:
            checkpoint: Checkpoint | None = None
            if self.checkpointer is None:
                result = await asyncio.to_thread(self.log.verify)
            else:
                checked = await asyncio.to_thread(self.checkpointer.check)
                result, checkpoint = checked.result, checked.checkpoint
            response = apb.VerifyLogResponse(ok=result.ok, checked=result.checked)
            if checkpoint is not None:
                response.checkpoint.CopyFrom(apb.LogCheckpoint(
                    seq=checkpoint.seq, hash=checkpoint.hash, access_id=checkpoint.access_id,
                    access_hash=checkpoint.access_hash, at=checkpoint.at, lifecycle_id=checkpoint.lifecycle_id,
                    lifecycle_hash=checkpoint.lifecycle_hash if checkpoint.lifecycle_id else ""))
            if result.cut is not None:
                cut = result.cut
                response.retention_cut.CopyFrom(apb.RetentionCut(
                    seq=cut.seq, hash=cut.hash, cutoff=cut.cutoff, at=cut.at, key_id=cut.key_id,
                    signature=base64.b64encode(cut.signature).decode("ascii")))
            problem = result.first_problem
            if problem is not None:
                response.first_problem.CopyFrom(apb.ChainProblem(seq=problem.seq, decision_id=problem.decision_id or "",
                                                                 kind=problem.kind, message=problem.message))
            return response

        return await self._call("VerifyLog", context, {"formaal": formaal}, work)

    async def ListAccessLog(self, request: apb.ListAccessLogRequest, context: Context) -> apb.ListAccessLogResponse:
        formaal = await checked_purpose(request.formaal, context)
        violations: list[FieldViolation] = []
        filters, asked = access_filter(request.filter, violations)
        size = request.page_size or 50
        if not 0 < size <= 500:
            violations.append(FieldViolation("page_size", "between 1 and 500"))
        await _refuse(violations, context)

        async def work() -> apb.ListAccessLogResponse:
            try:
                rows, cursor = await asyncio.to_thread(self.log.list_access, filters, request.page_token or None, size)
            except ValueError:
                await _refuse([FieldViolation("page_token", "not a token from this service")], context)
                raise
            return apb.ListAccessLogResponse(entries=[access_entry(row) for row in rows], next_page_token=cursor or "")

        # The filter under a key of its own: a search for a decision's reads is not itself a read of the decision.
        return await self._call("ListAccessLog", context, {"access_filter": asked, "page_token": request.page_token,
                                                           "formaal": formaal}, work)

    async def CountDecisions(self, request: apb.CountDecisionsRequest,
                             context: Context) -> apb.CountDecisionsResponse:
        formaal = await checked_purpose(request.formaal, context)
        await _refuse(count_violations(request, None), context)
        filters, detail = await self._filter(request.filter, context)
        await _refuse(count_violations(request, filters), context)

        async def work() -> apb.CountDecisionsResponse:
            try:
                counts = await asyncio.to_thread(self.log.count_per_day, filters, request.outcome_field)
            except TooManyGroups:
                await _refuse([FieldViolation("outcome_field", "has too many different values to count per day; "
                                                               "choose an outcome with few values or a shorter "
                                                               "period")], context)
                raise
            return apb.CountDecisionsResponse(
                counts=[apb.DecisionCount(day=c.day, value=to_value(c.value), count=c.count) for c in counts],
                outcome_field=request.outcome_field, total=sum(c.count for c in counts))

        period = {name: moment.isoformat() for name, moment in (("recorded_from", filters.recorded_from),
                                                                 ("recorded_to", filters.recorded_to)) if moment}
        return await self._call("CountDecisions", context, {**detail, **period, "count_outcome": request.outcome_field,
                                                            "formaal": formaal}, work)

    async def ExportDecisions(self, request: apb.ExportDecisionsRequest,
                              context: Context) -> AsyncIterator[apb.ExportDecisionsResponse]:
        try:
            async for item in self._export_limited(request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _internal("ExportDecisions", exc, context)
            raise

    async def _export(self, request: apb.ExportDecisionsRequest,
                      context: Context) -> AsyncIterator[apb.ExportDecisionsResponse]:
        formaal = await checked_purpose(request.formaal, context)
        filters, detail = await self._filter(request.filter, context)
        with self.telemetry.rpc_span("/regelmotor.v1.AuditService/ExportDecisions", context):
            await self._log_access("ExportDecisions", context, {**detail, "formaal": formaal})
            records = self.log.iterate(filters)
            try:
                while chunk := await asyncio.to_thread(_export_lines, records, _EXPORT_CHUNK):
                    for line in chunk:
                        yield apb.ExportDecisionsResponse(json_line=line)
            finally:
                close = getattr(records, "close", None)
                if close is not None:
                    await asyncio.to_thread(close)


async def _refuse(violations: list[FieldViolation], context: Context) -> None:
    """End the call with INVALID_ARGUMENT naming each field, if there is any violation."""
    if violations:
        await context.abort_with_status(rpc_status.to_status(to_status(bad_request(violations))))


def access_entry(row: dict[str, Any]) -> apb.AccessLogEntry:
    """An access-log row as the API shows it: the purpose and the decision read taken out of what was asked."""
    detail = row["detail"] if isinstance(row["detail"], dict) else {"detail": row["detail"]}
    asked = {key: value for key, value in detail.items() if key != "formaal"}
    decision_id = asked.get("decision_id")
    return apb.AccessLogEntry(id=int(row["id"]), at=_timestamp(row["at"]), reader=row["who"], method=row["action"],
                              detail=to_struct(asked), formaal=str(detail.get("formaal") or ""),
                              decision_id=decision_id if isinstance(decision_id, str) else "")


def _export_lines(records: Iterator[StoredRecord], count: int) -> list[str]:
    """The next `count` records as JSON lines (read and formatted off the event loop)."""
    lines: list[str] = []
    for record in records:
        line = {"seq": record.seq, "decision_id": record.decision_id,
                "recorded_at": record.recorded_at.isoformat(), "caller": record.caller,
                "request_id": record.request_id, "subject": record.subject, "hash": record.hash,
                "prev_hash": record.prev_hash, "decision": decision_json(unpack_response(record.response)),
                "answer_sha256": recorded_answer_sha256(record)}
        lines.append(json.dumps(line, ensure_ascii=False, sort_keys=True))
        if len(lines) >= count:
            break
    return lines
