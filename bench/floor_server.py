"""The floor of a unary Evaluate: a minimal Python gRPC server that answers every
`regelmotor.v1.DecisionService/Evaluate` with the same pre-serialised Decision bytes.

Built as the service builds its server (`regelmotor.server.app.build`): grpc.aio, the same grpcio, the same server
options (largest request and response, no SO_REUSEPORT) and the same limit of concurrent calls, all read from the
service's own defaults (`Settings`), and a generic handler moving raw bytes. No interceptor, no worker, no log: what
is left is what any Python gRPC service pays per call. It runs in a process of its own (spawned), as the service
does, so the two are measured alike by `bench/grpc_load.py`'s clients and CPU meter.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from types import TracebackType
from typing import Any

DECISION_SERVICE = "regelmotor.v1.DecisionService"
HOST = "127.0.0.1"


def server_options() -> tuple[list[tuple[str, Any]], int]:
    """The service's server options and its maximum of concurrent calls, from its default settings."""
    from regelmotor.server.config import Settings

    settings = Settings()
    options = [("grpc.max_receive_message_length", settings.max_message_bytes),
               ("grpc.max_send_message_length", settings.max_response_bytes),
               ("grpc.so_reuseport", 0)]
    return options, settings.max_concurrent_rpcs


async def _serve(answer: bytes, ready: Any, stop: EventType) -> None:
    import grpc

    options, max_calls = server_options()
    server = grpc.aio.server(options=options, maximum_concurrent_rpcs=max_calls)

    async def evaluate(_request: bytes, _context: Any) -> bytes:
        return answer

    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(DECISION_SERVICE, {
        "Evaluate": grpc.unary_unary_rpc_method_handler(evaluate)}),))
    port = server.add_insecure_port(f"{HOST}:0")
    await server.start()
    ready.put(port)
    await asyncio.to_thread(stop.wait)
    await server.stop(grace=None)


def serve(answer: bytes, ready: Any, stop: EventType) -> None:
    """The floor server's process: serve until `stop` is set; its port is put on `ready`."""
    asyncio.run(_serve(answer, ready, stop))


@dataclass
class FloorServer:
    """A running floor server, shaped as `grpc_load.measure_unary` expects a server (address, process, workers)."""

    address: str
    process: BaseProcess
    stop_event: EventType

    @classmethod
    def start(cls, answer: bytes) -> FloorServer:
        context = multiprocessing.get_context("spawn")
        ready, stop = context.Queue(), context.Event()
        process = context.Process(target=serve, args=(answer, ready, stop), daemon=True)
        process.start()
        port = ready.get(timeout=60)
        return cls(f"{HOST}:{port}", process, stop)

    def worker_pids(self) -> list[int]:
        return []

    def stop(self) -> None:
        self.stop_event.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)

    def __enter__(self) -> FloorServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
