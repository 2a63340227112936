"""The gRPC servicers (grpc.aio): thin, they move bytes to the workers and statuses back.

No call holds a thread while it waits: an evaluation is awaited on its worker's pipe, so idle streams and
slow callers cost the front nothing but memory, and health checks are always answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from regelmotor.core.api import Regelmotor
from regelmotor.core.errors import FieldViolation, RegelmotorError
from regelmotor.core.json_schema import input_schema, outcome_schema
from regelmotor.core.model import Ruleset
from regelmotor.core.moments import moment_text
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository
from regelmotor.store import DecisionLog, RequestIdConflict, unpack_response
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import ruleset_pb2 as rpb
from regelmotor_api.v1 import ruleset_pb2_grpc as rpb_grpc

from .convert import to_struct
from .errors import (
    bad_request,
    control_characters,
    error_result,
    not_found,
    not_kept,
    pool_failure,
    recording_failure,
    source_failure,
    stream_idle,
    to_status,
    worker_failed,
)
from .limits import CallerLimiter
from .pool import DeadlineExpired, PoolError
from .protocol import (
    DiffSources,
    Evaluate,
    EvaluateBatch,
    Failed,
    Reply,
    Request,
    SourceReply,
    Summary,
    TestSource,
    ValidateSource,
    answers,
)
from .recording import FrontRecording, caller_of, stream_item
from .sources import diff_response
from .stream_inbox import read_requests, take_batch
from .telemetry import Telemetry, traceparent_of
from .worker import Worker

log = logging.getLogger("regelmotor.server")
_T = TypeVar("_T")
DECISION_SERVICE = "regelmotor.v1.DecisionService"
BATCH_BYTES = 1024 * 1024  # the request bytes one stream batch carries to a worker, at about most
RULESET_SERVICE = "regelmotor.v1.RulesetService"


class Engine(Protocol):
    async def call(self, message: Request, timeout: float | None) -> object: ...


async def ask(engine: Engine, message: Request, timeout: float | None) -> object:
    """The answer of `engine` (a worker pool, or the inline engine) to `message`: of the kind `message` asks for
    (`protocol.answers`), or a `Failed` - never an answer of some other kind, which is logged and replaced by a
    `Failed` naming both kinds. Every call of the front to its workers goes through here. Raises what
    `engine.call` raises (PoolError)."""
    answer = await engine.call(message, timeout)
    if isinstance(answer, Failed) or answers(message, answer):
        return answer
    wrong = {"request": type(message).__name__, "answer": type(answer).__name__}
    log.error("a worker answered with the wrong kind", extra=wrong)
    return Failed(f"a worker answered {wrong['request']} with {wrong['answer']}")


class InlineEngine:
    """Evaluates inside the server process (workers = 0), on one thread: for tests and small deployments."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="regelmotor-inline")

    async def call(self, message: Request, timeout: float | None) -> object:
        work = asyncio.get_running_loop().run_in_executor(self._executor, self.worker.handle, message)
        try:
            return await asyncio.wait_for(asyncio.shield(work), timeout)
        except TimeoutError:
            raise DeadlineExpired("the deadline passed before the answer was ready") from None

    def close(self) -> None:
        # An evaluation in the front has no time limit of its own: do not let shutdown wait for one.
        self._executor.shutdown(wait=False, cancel_futures=True)


class RecordingHealth(Protocol):
    """Told whether the decision log took the decisions the servicer tried to record."""

    def log_ok(self) -> None: ...

    def log_failed(self) -> None: ...


def time_left(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    """The caller's remaining deadline (None: it set none)."""
    remaining = context.time_remaining()
    return None if remaining is None else max(0.0, remaining)


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: pb.ErrorResult) -> None:
    await context.abort_with_status(rpc_status.to_status(to_status(error)))


class DecisionServicer:
    def __init__(self, engine: Engine, telemetry: Telemetry, *, batch: int, parallel: int,
                 recording: FrontRecording, health: RecordingHealth | None = None,
                 limiter: CallerLimiter | None = None, idle_seconds: float | None = None,
                 log: DecisionLog | None = None) -> None:
        self.engine = engine
        self.log = log  # read by FetchDecision
        self.limiter = limiter  # Evaluate and EvaluateStream calls in progress per caller
        self.idle_seconds = idle_seconds  # a stream that sends nothing this long, with nothing in flight, is ended
        self.recording = recording  # the front's part in recording decisions
        self.telemetry = telemetry
        self.batch = batch
        self.parallel = max(1, parallel)
        self.health = health

    def handler(self) -> grpc.GenericRpcHandler:
        # Raw bytes both ways: the engine worker parses the request and builds the response.
        limiter = self.limiter
        return grpc.method_handlers_generic_handler(DECISION_SERVICE, {
            "Evaluate": grpc.unary_unary_rpc_method_handler(
                limiter.unary(self.evaluate) if limiter else self.evaluate),
            "EvaluateStream": grpc.stream_stream_rpc_method_handler(
                limiter.streaming(self.evaluate_stream) if limiter else self.evaluate_stream),
            "FetchDecision": grpc.unary_unary_rpc_method_handler(self.fetch_decision),
        })

    async def fetch_decision(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """A decision this caller was answered, as answered; any other id is NOT_FOUND (nothing is revealed
        about other callers' decisions)."""
        with self.telemetry.rpc_span(f"/{DECISION_SERVICE}/FetchDecision", context):
            failure = None
            try:
                decision_id = pb.FetchDecisionRequest.FromString(request).decision_id
            except DecodeError:
                decision_id = ""
            if not 0 < len(decision_id) <= 100:
                failure = bad_request([FieldViolation("decision_id", "required: the decision_id of an answered "
                                                                     "Decision (at most 100 characters)")])
            elif violations := control_characters([("decision_id", decision_id)]):
                failure = bad_request(violations)
            elif self.log is None:
                failure = not_kept()
            else:
                record = await asyncio.to_thread(self.log.get, decision_id)
                if record is not None and record.caller == caller_of(context):
                    return unpack_response(record.response)
                failure = not_found("decision", decision_id, "no decision with this id was answered to you")
        await abort(context, failure)
        raise AssertionError("abort raises")

    async def _engine_call(self, message: Request, timeout: float | None) -> tuple[Any, pb.ErrorResult | None]:
        try:
            answer = await ask(self.engine, message, timeout)
        except PoolError as exc:
            return None, pool_failure(exc)
        if isinstance(answer, Failed):
            log.error("engine worker failed", extra={"reason": answer.reason})
            return None, worker_failed(answer.reason)
        return answer, None

    def _measure(self, summary: Summary, started: float) -> None:
        labels = {"ruleset": summary.ruleset or "unknown", "code": _status_name(summary.code)}
        self.telemetry.evaluations.add(1, labels)
        if summary.code:
            self.telemetry.errors.add(1, {"method": "Evaluate", "code": labels["code"]})
        self.telemetry.latency.record(time.perf_counter() - started, {"ruleset": labels["ruleset"]})
        if self.health is not None:
            if summary.log_failed:
                self.health.log_failed()
            elif summary.code == 0 and summary.decision_id:
                self.health.log_ok()

    async def evaluate(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        started = time.perf_counter()
        answer = b""
        # The span ends before an error is sent: a caller that sees the error finds the call's span finished.
        with self.telemetry.rpc_span(f"/{DECISION_SERVICE}/Evaluate", context) as span:
            message = Evaluate(request, traceparent_of(span), caller_of(context))
            reply, failure = await self._engine_call(message, time_left(context))
            if failure is None:
                if reply.error is not None:
                    failure = pb.ErrorResult.FromString(reply.error)
                    summary = reply.summary
                else:
                    answer, failure, log_failed = await self._recorded(reply)
                    summary = reply.summary if failure is None else Summary(failure.code, log_failed=log_failed)
            else:
                summary = Summary(failure.code)
            self._finish(span, summary, started)
        if failure is not None:
            await abort(context, failure)
        return answer

    async def _recorded(self, reply: Reply) -> tuple[bytes, pb.ErrorResult | None, bool]:
        """The answer for a decision: stored first when the engine handed back its record for the front to store
        (never answered unstored). Otherwise the engine stored it before replying, or there is no log. The
        flag: the log failed."""
        assert reply.decision is not None
        if reply.record is None:
            return reply.decision, None, False
        try:
            return await self.recording.record(reply.record, reply.decision), None, False
        except Exception as exc:
            return b"", recording_failure(exc), not isinstance(exc, RequestIdConflict)

    def _finish(self, span: Any, summary: Summary, started: float) -> None:
        if span.is_recording():  # spans are not recorded when there is nowhere to send them (telemetry.py)
            span.set_attribute("rpc.grpc.status_code", summary.code)
            for key, value in (("regelmotor.ruleset", summary.ruleset), ("regelmotor.version", summary.version),
                               ("regelmotor.decision_id", summary.decision_id), *summary.headline_attributes()):
                if value:
                    span.set_attribute(key, value)
        self._measure(summary, started)
        log.info("evaluate", extra={k: v for k, v in {
            "code": _status_name(summary.code), "ruleset": summary.ruleset,
            "version": summary.version, "decision_id": summary.decision_id, "request_id": summary.request_id,
            "trace_id": summary.trace_id, "ms": round((time.perf_counter() - started) * 1000, 2)}.items() if v})

    async def evaluate_stream(self, requests: AsyncIterator[bytes],
                              context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
        with self.telemetry.rpc_span(f"/{DECISION_SERVICE}/EvaluateStream", context) as span:
            traceparent = traceparent_of(span)
            caller = caller_of(context)
            inbox: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(maxsize=4 * self.batch * self.parallel)
            reader = asyncio.create_task(read_requests(requests, inbox))
            pending: deque[tuple[list[int], asyncio.Task[tuple[Any, pb.ErrorResult | None]]]] = deque()
            finished = False
            try:
                while not finished or pending:
                    while pending and (pending[0][1].done() or len(pending) >= self.parallel or finished):
                        indexes, task = pending.popleft()
                        for item in await self._results(indexes, task):
                            yield item
                    if finished:
                        continue
                    try:
                        batch = await take_batch(inbox, self.batch, BATCH_BYTES, pending[0][1] if pending else None,
                                                  self.idle_seconds)
                    except TimeoutError:  # answers were all sent; the client is sending nothing
                        assert self.idle_seconds is not None
                        await abort(context, stream_idle(self.idle_seconds))
                        raise
                    if batch is None:
                        finished = True
                    elif batch:
                        message = EvaluateBatch(tuple(batch), traceparent, caller)
                        task = asyncio.create_task(self._engine_call(message, time_left(context)))
                        pending.append(([index for index, _ in batch], task))
            finally:
                reader.cancel()
                for _, task in pending:
                    task.cancel()

    async def _results(self, indexes: list[int],
                       task: asyncio.Task[tuple[Any, pb.ErrorResult | None]]) -> list[bytes]:
        started = time.perf_counter()
        replies, failure = await task
        if failure is not None:  # every item of a lost batch gets the same error
            return [pb.EvaluateStreamResponse(index=index, error=failure).SerializeToString() for index in indexes]
        out: list[bytes] = []
        for index, reply in zip(indexes, replies, strict=True):
            if reply.error is not None:
                self._measure(reply.summary, started)
                out.append(stream_item(index, reply.summary.request_id, error=reply.error))
                continue
            answer, problem, log_failed = await self._recorded(reply)
            self._measure(reply.summary if problem is None else Summary(problem.code, log_failed=log_failed), started)
            if problem is not None:
                out.append(pb.EvaluateStreamResponse(index=index, request_id=reply.summary.request_id,
                                                     error=problem).SerializeToString())
            else:
                out.append(stream_item(index, reply.summary.request_id, decision=answer))
        return out


_STATUS_NAMES = {status.value[0]: status.name for status in grpc.StatusCode}


def _status_name(code: int) -> str:
    """The name of a numeric gRPC status code (looked up once per call for metrics and the log line)."""
    return _STATUS_NAMES.get(code, "UNKNOWN")


def _version_info(ruleset: Ruleset, repository: RulesetRepository) -> rpb.VersionInfo:
    meta = ruleset.meta
    published_at = repository.published_at.get(ruleset.key)
    return rpb.VersionInfo(version=meta.version, title=meta.title, status=meta.status.value,
                           gyldig_fra=meta.gyldig_fra.isoformat(),
                           gyldig_til=meta.gyldig_til.isoformat() if meta.gyldig_til else "", sha256=ruleset.sha256,
                           supersedes=meta.supersedes or "", correction_reason=meta.correction_reason,
                           published_at=moment_text(published_at) if published_at else "",
                           corrected_by=[r.meta.version for r in repository.all_versions(meta.name)
                                         if r.meta.supersedes == meta.version and not repository.is_retired(r)])


def _read_if_there(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


class ImpactAnalysis(Protocol):
    def analyse(self, request: rpb.AnalyseImpactRequest, context: grpc.aio.ServicerContext[Any, Any]
                ) -> AsyncIterator[rpb.AnalyseImpactResponse]: ...


class RulesetServicer(rpb_grpc.RulesetServiceServicer):
    """Versions of the instance's snapshot are read in the front; callers' sources go to the sandbox."""

    def __init__(self, motor: Regelmotor, sources: Engine, telemetry: Telemetry,
                 impact: ImpactAnalysis | None = None, reload_problem: Callable[[], str] | None = None) -> None:
        self.motor = motor
        self.sources = sources
        self.telemetry = telemetry
        self.impact = impact  # AnalyseImpact (server/impact.py)
        self.reload_problem = reload_problem  # why the newest stored versions are not served ("": they are)

    async def _traced(self, name: str, context: grpc.aio.ServicerContext[Any, Any],
                      work: Callable[[], Awaitable[_T]]) -> _T:
        with self.telemetry.rpc_span(f"/{RULESET_SERVICE}/{name}", context):
            try:
                return await work()
            except RegelmotorError as exc:
                failure = error_result(exc)
            self.telemetry.errors.add(1, {"method": name, "code": _status_name(failure.code)})
        await abort(context, failure)
        raise AssertionError("abort raises")

    async def _sandboxed(self, name: str, message: Request, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """The response bytes for a caller's source, worked out in the sources worker."""
        with self.telemetry.rpc_span(f"/{RULESET_SERVICE}/{name}", context):
            try:
                answer = await ask(self.sources, message, time_left(context))
            except PoolError as exc:
                failure = source_failure(exc)
            else:
                if isinstance(answer, SourceReply) and not answer.error:
                    return answer.response
                if isinstance(answer, SourceReply):
                    failure = pb.ErrorResult.FromString(answer.error)
                else:
                    assert isinstance(answer, Failed)
                    log.error("sources worker failed", extra={"reason": answer.reason})
                    failure = worker_failed(answer.reason)
            self.telemetry.errors.add(1, {"method": name, "code": _status_name(failure.code)})
        await abort(context, failure)
        raise AssertionError("abort raises")

    async def cases_of(self, ruleset: Ruleset) -> str:
        """The text of a served version's cases file: without a store, the file beside it in the operator's
        directory (as seeding reads it); "" when there is none."""
        path = Path(ruleset.source_path[: -len(".yaml")] + CASES_SUFFIX)
        return await asyncio.to_thread(_read_if_there, path)

    def _summary(self, name: str) -> rpb.RulesetSummary:
        versions = self.motor.repository.all_versions(name)
        return rpb.RulesetSummary(name=name, selected_by=self.motor.repository.selecting_fact(name) or "as_of",
                                  versions=[_version_info(r, self.motor.repository) for r in versions])

    async def ListRulesets(self, request: rpb.ListRulesetsRequest,
                           context: grpc.aio.ServicerContext[Any, Any]) -> rpb.ListRulesetsResponse:
        async def work() -> rpb.ListRulesetsResponse:
            return rpb.ListRulesetsResponse(rulesets=[self._summary(n) for n in self.motor.repository.names()],
                                            reload_problem=self.reload_problem() if self.reload_problem else "")

        return await self._traced("ListRulesets", context, work)

    async def GetRuleset(self, request: rpb.GetRulesetRequest,
                         context: grpc.aio.ServicerContext[Any, Any]) -> rpb.GetRulesetResponse:
        async def work() -> rpb.GetRulesetResponse:
            repository = self.motor.repository
            versions = repository.all_versions(request.name)
            ruleset = repository.get(request.name, request.version) if request.version else versions[-1]
            info = _version_info(ruleset, repository)
            return rpb.GetRulesetResponse(ruleset=self._summary(request.name), version=info,
                                          input_schema=to_struct(input_schema(ruleset)),
                                          outcome_schema=to_struct(outcome_schema(ruleset)),
                                          source=repository.source(ruleset),
                                          cases=await self.cases_of(ruleset))

        return await self._traced("GetRuleset", context, work)

    async def ValidateRuleset(self, request: rpb.ValidateRulesetRequest,
                              context: grpc.aio.ServicerContext[Any, Any]) -> rpb.ValidateRulesetResponse:
        answer = await self._sandboxed("ValidateRuleset", ValidateSource(request.SerializeToString()), context)
        return rpb.ValidateRulesetResponse.FromString(answer)

    async def TestRuleset(self, request: rpb.TestRulesetRequest,
                          context: grpc.aio.ServicerContext[Any, Any]) -> rpb.TestRulesetResponse:
        answer = await self._sandboxed("TestRuleset", TestSource(request.SerializeToString()), context)
        return rpb.TestRulesetResponse.FromString(answer)

    async def DiffRulesets(self, request: rpb.DiffRulesetsRequest,
                           context: grpc.aio.ServicerContext[Any, Any]) -> rpb.DiffRulesetsResponse:
        if request.source_a or request.source_b:
            answer = await self._sandboxed("DiffRulesets", DiffSources(request.SerializeToString()), context)
            return rpb.DiffRulesetsResponse.FromString(answer)

        async def work() -> rpb.DiffRulesetsResponse:
            repository = self.motor.repository
            return diff_response(repository.get(request.name, request.version_a),
                                 repository.get(request.name, request.version_b))

        return await self._traced("DiffRulesets", context, work)

    async def AnalyseImpact(self, request: rpb.AnalyseImpactRequest,
                            context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[rpb.AnalyseImpactResponse]:
        with self.telemetry.rpc_span(f"/{RULESET_SERVICE}/AnalyseImpact", context):
            if self.impact is None:
                await abort(context, not_kept())
                return
            async for item in self.impact.analyse(request, context):
                yield item
