"""The gRPC servicers: thin, they move bytes to the engine and statuses back."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import grpc
from grpc_status import rpc_status

from regelmotor.core.api import Regelmotor
from regelmotor.core.diff import diff_rulesets
from regelmotor.core.errors import RegelmotorError, RulesetInvalid
from regelmotor.core.identity import Pseudonymiser
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.model import Ruleset
from regelmotor.store.base import DecisionLog
from regelmotor.v1 import decision_pb2 as pb
from regelmotor.v1 import ruleset_pb2 as rpb
from regelmotor.v1 import ruleset_pb2_grpc as rpb_grpc

from .convert import to_struct
from .errors import deadline_exceeded, error_result, not_recorded, to_status, unavailable
from .handler import EvaluationHandler, Reply, Summary
from .json_schema import input_schema, outcome_schema
from .recording import Recorder, caller_of, stream_item
from .telemetry import Telemetry, current_traceparent
from .workers import NoWorker, WorkerCrashed, WorkerTimeout

log = logging.getLogger("regelmotor.server")
_T = TypeVar("_T")
DECISION_SERVICE = "regelmotor.v1.DecisionService"
RULESET_SERVICE = "regelmotor.v1.RulesetService"


class Engine(Protocol):
    def call(self, message: tuple[Any, ...], timeout: float | None) -> Any: ...


class InlineEngine:
    """Evaluates inside the server process (workers = 0): for tests and small deployments."""

    def __init__(self, motor: Regelmotor, telemetry: Telemetry, pseudonymiser: Pseudonymiser | None = None,
                 records: bool = False, log: DecisionLog | None = None) -> None:
        self.handler = EvaluationHandler(motor, telemetry.tracer, pseudonymiser, records, log)

    def call(self, message: tuple[Any, ...], timeout: float | None) -> Any:
        kind = message[0]
        if kind == "evaluate":
            return self.handler.evaluate(*message[1:])
        if kind == "batch":
            return self.handler.evaluate_batch(*message[1:])
        return self.handler.test_ruleset(message[1])


def _time_left(context: grpc.ServicerContext, cap: float) -> float:
    remaining = context.time_remaining()
    return cap if remaining is None else max(0.0, min(cap, remaining))


class DecisionServicer:
    def __init__(self, engine: Engine, telemetry: Telemetry, max_seconds: float, batch: int, parallel: int,
                 recorder: Recorder | None = None) -> None:
        self.engine = engine
        self.recorder = recorder
        self.telemetry = telemetry
        self.max_seconds = max_seconds
        self.batch = batch
        self.parallel = max(1, parallel)
        self._executor = ThreadPoolExecutor(max_workers=4 * self.parallel, thread_name_prefix="regelmotor-stream")

    def handler(self) -> grpc.GenericRpcHandler:
        # Raw bytes both ways: the engine worker parses the request and builds the response.
        return grpc.method_handlers_generic_handler(DECISION_SERVICE, {
            "Evaluate": grpc.unary_unary_rpc_method_handler(self.evaluate),
            "EvaluateStream": grpc.stream_stream_rpc_method_handler(self.evaluate_stream),
        })

    def _engine_call(self, message: tuple[Any, ...], timeout: float) -> tuple[Any, pb.ErrorResult | None]:
        try:
            return self.engine.call(message, timeout), None
        except WorkerCrashed as exc:
            return None, unavailable(str(exc))
        except NoWorker as exc:
            return None, unavailable(str(exc))
        except WorkerTimeout as exc:
            return None, deadline_exceeded(str(exc))

    def _record(self, summary: Summary, started: float) -> None:
        labels = {"ruleset": summary.ruleset or "unknown", "code": _status_name(summary.code)}
        self.telemetry.evaluations.add(1, labels)
        if summary.code:
            self.telemetry.errors.add(1, {"method": "Evaluate", "code": labels["code"]})
        self.telemetry.latency.record(time.perf_counter() - started, {"ruleset": labels["ruleset"]})

    def evaluate(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        started = time.perf_counter()
        with self.telemetry.rpc_span(f"/{DECISION_SERVICE}/Evaluate", context) as span:
            caller = caller_of(context)
            reply, failure = self._engine_call(("evaluate", request, current_traceparent(), caller),
                                               _time_left(context, self.max_seconds))
            if failure is not None:
                self._finish(span, Summary(failure.code), started)
                context.abort_with_status(rpc_status.to_status(to_status(failure)))
            assert isinstance(reply, Reply)
            if reply.error is None:
                answer, failure = self._recorded(reply)
                if failure is not None:
                    self._finish(span, Summary(failure.code), started)
                    context.abort_with_status(rpc_status.to_status(to_status(failure)))
                self._finish(span, reply.summary, started)
                return answer
            self._finish(span, reply.summary, started)
            context.abort_with_status(rpc_status.to_status(to_status(pb.ErrorResult.FromString(reply.error))))
            raise AssertionError("abort_with_status raises")

    def _recorded(self, reply: Reply) -> tuple[bytes, pb.ErrorResult | None]:
        """The answer for a decision: stored first when the front keeps the log (never answered unstored). When
        the engine workers keep it, they have stored the decision before replying."""
        assert reply.decision is not None
        if self.recorder is None:
            return reply.decision, None
        try:
            return self.recorder.record(reply), None
        except Exception:
            log.exception("decision log write failed")
            return b"", not_recorded()

    def _finish(self, span: Any, summary: Summary, started: float) -> None:
        span.set_attribute("rpc.grpc.status_code", summary.code)
        for key, value in (("regelmotor.ruleset", summary.ruleset), ("regelmotor.version", summary.version),
                           ("regelmotor.decision_id", summary.decision_id), ("regelmotor.utfall", summary.utfall)):
            if value:
                span.set_attribute(key, value)
        self._record(summary, started)
        log.info("evaluate", extra={k: v for k, v in {
            "code": _status_name(summary.code), "ruleset": summary.ruleset,
            "version": summary.version, "decision_id": summary.decision_id, "request_id": summary.request_id,
            "trace_id": summary.trace_id, "ms": round((time.perf_counter() - started) * 1000, 2)}.items() if v})

    def evaluate_stream(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        with self.telemetry.rpc_span(f"/{DECISION_SERVICE}/EvaluateStream", context):
            traceparent = current_traceparent()
            caller = caller_of(context)
            inbox: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=4 * self.batch * self.parallel)
            reader = threading.Thread(target=_read_all, args=(requests, inbox), daemon=True)
            reader.start()
            pending: deque[tuple[list[int], Future[Any]]] = deque()
            finished = False
            while not finished or pending:
                while pending and (pending[0][1].done() or len(pending) >= self.parallel or finished):
                    yield from self._results(*pending.popleft(), context)
                if finished:
                    continue
                batch = _take_batch(inbox, self.batch, wait=0.002 if pending else None)
                if batch is None:
                    finished = True
                elif batch:
                    future = self._executor.submit(self._engine_call, ("batch", batch, traceparent, caller),
                                                   _time_left(context, self.max_seconds))
                    pending.append(([index for index, _ in batch], future))

    def _results(self, indexes: list[int], future: Future[Any], context: grpc.ServicerContext) -> Iterator[bytes]:
        started = time.perf_counter()
        replies, failure = future.result()
        if failure is not None:
            for index in indexes:  # every item of a lost batch gets the same retryable error
                yield pb.EvaluateStreamResponse(index=index, error=failure).SerializeToString()
            return
        for index, reply in zip(indexes, replies, strict=True):
            self._record(reply.summary, started)
            if reply.error is not None:
                yield stream_item(index, reply.summary.request_id, error=reply.error)
                continue
            answer, problem = self._recorded(reply)
            if problem is not None:
                yield pb.EvaluateStreamResponse(index=index, request_id=reply.summary.request_id,
                                                error=problem).SerializeToString()
            else:
                yield stream_item(index, reply.summary.request_id, decision=answer)


_STATUS_NAMES = {status.value[0]: status.name for status in grpc.StatusCode}


def _status_name(code: int) -> str:
    """The name of a numeric gRPC status code (looked up once per call for metrics and the log line)."""
    return _STATUS_NAMES.get(code, "UNKNOWN")


def _read_all(requests: Iterator[bytes], inbox: queue.Queue[tuple[int, bytes] | None]) -> None:
    try:
        for index, request in enumerate(requests):
            inbox.put((index, request))
    except grpc.RpcError:
        pass  # the client went away; what was read is still answered
    finally:
        inbox.put(None)


def _take_batch(inbox: queue.Queue[tuple[int, bytes] | None], size: int,
                wait: float | None) -> list[tuple[int, bytes]] | None:
    """Up to `size` requests that have arrived; [] if none came within `wait`; None at the end."""
    try:
        first = inbox.get(timeout=wait)
    except queue.Empty:
        return []
    if first is None:
        return None
    batch = [first]
    while len(batch) < size:
        try:
            item = inbox.get_nowait()
        except queue.Empty:
            break
        if item is None:
            inbox.put(None)
            break
        batch.append(item)
    return batch


def _version_info(ruleset: Ruleset) -> rpb.VersionInfo:
    meta = ruleset.meta
    return rpb.VersionInfo(version=meta.version, title=meta.title, status=meta.status.value,
                           gyldig_fra=meta.gyldig_fra.isoformat(),
                           gyldig_til=meta.gyldig_til.isoformat() if meta.gyldig_til else "", sha256=ruleset.sha256)


class RulesetServicer(rpb_grpc.RulesetServiceServicer):
    def __init__(self, motor: Regelmotor, engine: Engine, telemetry: Telemetry, max_seconds: float) -> None:
        self.motor = motor
        self.engine = engine
        self.telemetry = telemetry
        self.max_seconds = max_seconds

    def _traced(self, name: str, context: grpc.ServicerContext, work: Callable[[], _T]) -> _T:
        with self.telemetry.rpc_span(f"/{RULESET_SERVICE}/{name}", context):
            try:
                return work()
            except (RegelmotorError, WorkerCrashed, WorkerTimeout, NoWorker) as exc:
                failure = error_result(exc) if isinstance(exc, RegelmotorError) else unavailable(str(exc))
                self.telemetry.errors.add(1, {"method": name, "code": _status_name(failure.code)})
                context.abort_with_status(rpc_status.to_status(to_status(failure)))
                raise AssertionError("abort_with_status raises") from exc

    def _summary(self, name: str) -> rpb.RulesetSummary:
        versions = self.motor.repository.all_versions(name)
        return rpb.RulesetSummary(name=name, selected_by=self.motor.repository.selecting_fact(name) or "as_of",
                                  versions=[_version_info(r) for r in versions])

    def ListRulesets(self, request: rpb.ListRulesetsRequest, context: grpc.ServicerContext) -> rpb.ListRulesetsResponse:
        return self._traced("ListRulesets", context, lambda: rpb.ListRulesetsResponse(
            rulesets=[self._summary(n) for n in self.motor.repository.names()]))

    def GetRuleset(self, request: rpb.GetRulesetRequest, context: grpc.ServicerContext) -> rpb.GetRulesetResponse:
        def work() -> rpb.GetRulesetResponse:
            versions = self.motor.repository.all_versions(request.name)
            ruleset = self.motor.repository.get(request.name, request.version) if request.version else versions[-1]
            with open(ruleset.source_path, encoding="utf-8") as source:
                text = source.read()
            return rpb.GetRulesetResponse(ruleset=self._summary(request.name), version=_version_info(ruleset),
                                          input_schema=to_struct(input_schema(ruleset)),
                                          outcome_schema=to_struct(outcome_schema(ruleset)), source=text)

        return self._traced("GetRuleset", context, work)

    def ValidateRuleset(self, request: rpb.ValidateRulesetRequest,
                        context: grpc.ServicerContext) -> rpb.ValidateRulesetResponse:
        def work() -> rpb.ValidateRulesetResponse:
            try:
                ruleset = load_ruleset_text(request.source, "source")
            except RulesetInvalid as exc:
                return rpb.ValidateRulesetResponse(valid=False, diagnostics=[
                    rpb.Diagnostic(line=d.line, column=d.column, message=d.message) for d in exc.diagnostics])
            return rpb.ValidateRulesetResponse(valid=True, name=ruleset.meta.name, version=ruleset.meta.version,
                                               sha256=ruleset.sha256)

        return self._traced("ValidateRuleset", context, work)

    def TestRuleset(self, request: rpb.TestRulesetRequest, context: grpc.ServicerContext) -> rpb.TestRulesetResponse:
        def work() -> rpb.TestRulesetResponse:
            # Authors' sources are untrusted: they run in an engine worker like any evaluation.
            answer = self.engine.call(("test", request.SerializeToString()), _time_left(context, self.max_seconds))
            return rpb.TestRulesetResponse.FromString(answer)

        return self._traced("TestRuleset", context, work)

    def DiffRulesets(self, request: rpb.DiffRulesetsRequest, context: grpc.ServicerContext) -> rpb.DiffRulesetsResponse:
        def work() -> rpb.DiffRulesetsResponse:
            if request.source_a or request.source_b:
                a = load_ruleset_text(request.source_a, "source_a")
                b = load_ruleset_text(request.source_b, "source_b")
            else:
                a = self.motor.repository.get(request.name, request.version_a)
                b = self.motor.repository.get(request.name, request.version_b)
            diff = diff_rulesets(a, b)
            return rpb.DiffRulesetsResponse(
                metadata=diff.metadata, rules_added=diff.rules_added, rules_removed=diff.rules_removed,
                rules_changed=[rpb.RuleChange(rule_id=k, changes=v) for k, v in diff.rules_changed.items()],
                parameters=diff.parameters, facts=diff.facts, derived=diff.derived, outcomes=diff.outcomes,
                tables=diff.tables, hjemler=diff.hjemler, constraints=diff.constraints, lines=diff.lines())

        return self._traced("DiffRulesets", context, work)
