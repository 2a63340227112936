"""The inbox between an EvaluateStream's requests and the batches sent to the engine: the reader moves each
request in, then an end mark; the batching loop takes what has arrived, bounded in count and bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc


async def read_requests(requests: AsyncIterator[bytes], inbox: asyncio.Queue[tuple[int, bytes] | None]) -> None:
    """Move the stream's requests into `inbox`, then its end mark (None). Cancelled only when nobody reads any
    more; otherwise the end mark waits for room like any request (a stream whose last request filled the inbox
    must still end)."""
    index = 0
    try:
        async for request in requests:
            await inbox.put((index, request))
            index += 1
    except grpc.RpcError:
        pass  # the client went away; what was read is still answered
    await inbox.put(None)


async def take_batch(inbox: asyncio.Queue[tuple[int, bytes] | None], size: int, max_bytes: int,
                      in_flight: asyncio.Future[Any] | None,
                      idle_seconds: float | None = None) -> list[tuple[int, bytes]] | None:
    """Up to `size` requests (and about `max_bytes`) that have arrived; [] when the batch in flight finished
    first (its answers are due); None at the end. It waits on both without polling. TimeoutError: nothing was in
    flight and nothing arrived for `idle_seconds`."""
    if in_flight is None:
        first = await asyncio.wait_for(inbox.get(), idle_seconds)
    else:
        getter = asyncio.ensure_future(inbox.get())
        await asyncio.wait({getter, in_flight}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            return []
        first = getter.result()
    if first is None:
        return None
    batch = [first]
    total = len(first[1])
    # A batch crosses to the worker in one pipe write on the event loop: keep it to about max_bytes.
    while len(batch) < size and total < max_bytes:
        try:
            item = inbox.get_nowait()
        except asyncio.QueueEmpty:
            break
        if item is None:
            inbox.put_nowait(None)
            break
        batch.append(item)
        total += len(item[1])
    return batch
