"""Per-caller concurrency limits: one caller (a hospital system, an auditor) cannot hold all of the service's
calls. A call counts from when it is let in until it ends; a stream counts while it is open. The metric
`regelmotor.calls.in_progress` reads `in_progress` of each limit when the metrics are collected (telemetry.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc_status import rpc_status

from .errors import caller_limit, to_status
from .recording import caller_of

Context = grpc.aio.ServicerContext[Any, Any]
_In = TypeVar("_In")
_Out = TypeVar("_Out")


class CallerLimiter:
    """At most `limit` calls at once per caller (as `caller_of` names it); the next gets RESOURCE_EXHAUSTED with
    reason CALLER_CONCURRENCY_LIMIT naming `setting`. All calls run on the server's one event loop: no lock."""

    def __init__(self, setting: str, limit: int) -> None:
        self.setting = setting
        self.limit = limit
        self._held: dict[str, int] = {}

    async def _admit(self, context: Context) -> str:
        caller = caller_of(context)
        if self._held.get(caller, 0) >= self.limit:
            await context.abort_with_status(rpc_status.to_status(to_status(caller_limit(self.setting, self.limit))))
        self._held[caller] = self._held.get(caller, 0) + 1
        return caller

    def in_progress(self) -> int:
        """The calls let in and not yet ended, of every caller. Read by the metrics' collecting thread: the
        values are copied in one step (list() runs in C under the GIL), as the event loop changes the table."""
        return sum(list(self._held.values()))

    def _release(self, caller: str) -> None:
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
