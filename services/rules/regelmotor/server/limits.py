"""Per-caller concurrency limits: one caller (a hospital system, an auditor) cannot hold all of the service's
calls. A call counts from when it is let in until it ends; a stream counts while it is open. The calls let in
are also counted in the metric `regelmotor.calls.in_progress` (by the limit's setting), so open streams show."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc_status import rpc_status
from opentelemetry import metrics

from .errors import caller_limit, to_status
from .recording import caller_of

Context = grpc.aio.ServicerContext[Any, Any]
_In = TypeVar("_In")
_Out = TypeVar("_Out")


class CallerLimiter:
    """At most `limit` calls at once per caller (as `caller_of` names it); the next gets RESOURCE_EXHAUSTED with
    reason CALLER_CONCURRENCY_LIMIT naming `setting`. All calls run on the server's one event loop: no lock."""

    def __init__(self, setting: str, limit: int, in_progress: metrics.UpDownCounter | None = None) -> None:
        self.setting = setting
        self.limit = limit
        self._held: dict[str, int] = {}
        self._in_progress = in_progress
        self._attributes = {"regelmotor.limit": setting}

    async def _admit(self, context: Context) -> str:
        caller = caller_of(context)
        if self._held.get(caller, 0) >= self.limit:
            await context.abort_with_status(rpc_status.to_status(to_status(caller_limit(self.setting, self.limit))))
        self._held[caller] = self._held.get(caller, 0) + 1
        if self._in_progress is not None:
            self._in_progress.add(1, self._attributes)
        return caller

    def _release(self, caller: str) -> None:
        if self._in_progress is not None:
            self._in_progress.add(-1, self._attributes)
        left = self._held[caller] - 1
        if left:
            self._held[caller] = left
        else:
            del self._held[caller]  # the table holds only callers with calls in progress

    def unary(self, handler: Callable[[_In, Context], Awaitable[_Out]]) -> Callable[[_In, Context], Awaitable[_Out]]:
        """`handler`, counted against its caller's limit."""
        async def limited(request: _In, context: Context) -> _Out:
            caller = await self._admit(context)
            try:
                return await handler(request, context)
            finally:
                self._release(caller)

        return limited

    def streaming(self, handler: Callable[[_In, Context], AsyncIterator[_Out]]
                  ) -> Callable[[_In, Context], AsyncIterator[_Out]]:
        """A response-streaming `handler`, counted against its caller's limit while the stream is open."""
        async def limited(request: _In, context: Context) -> AsyncIterator[_Out]:
            caller = await self._admit(context)
            try:
                async for item in handler(request, context):
                    yield item
            finally:
                self._release(caller)

        return limited
