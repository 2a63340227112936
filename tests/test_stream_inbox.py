"""The stream's reader hands every request and then its end mark to the batching loop, however full the inbox."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from regelmotor.server.stream_inbox import read_requests, take_batch


async def _requests(count: int) -> AsyncIterator[bytes]:
    for number in range(count):
        yield f"r{number}".encode()


@pytest.mark.parametrize("count", [0, 3, 4, 5, 9])
def test_the_end_mark_arrives_even_when_the_last_request_filled_the_inbox(count: int) -> None:
    async def scenario() -> list[int]:
        inbox: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(maxsize=4)
        reader = asyncio.create_task(read_requests(_requests(count), inbox))
        await asyncio.sleep(0.05)  # the reader fills the inbox while nobody takes from it (a busy worker)
        seen: list[int] = []
        while True:
            batch = await asyncio.wait_for(take_batch(inbox, 2, 1 << 20, None), 5)
            if batch is None:
                break
            seen.extend(index for index, _ in batch)
        await asyncio.wait_for(reader, 5)
        return seen

    assert asyncio.run(scenario()) == list(range(count))


def test_a_cancelled_reader_stops_without_waiting_for_room() -> None:
    async def scenario() -> bool:
        inbox: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(maxsize=2)
        reader = asyncio.create_task(read_requests(_requests(2), inbox))
        await asyncio.sleep(0.05)  # full, waiting to put its end mark
        reader.cancel()
        with pytest.raises(asyncio.CancelledError, match=r"^$"):  # a cancellation without a message
            await asyncio.wait_for(reader, 5)
        return reader.cancelled()

    assert asyncio.run(scenario())
