"""Serve the console with waitress (a production WSGI server in pure Python), and `regelmotor console`."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, cast

from pydantic import ValidationError
from waitress import wasyncore
from waitress.server import create_server

from .app import create_app
from .security import MAX_BODY_BYTES
from .settings import ConsoleSettings

log = logging.getLogger("regelmotor.console")

# Above the app's own bound: a body just over it gets the console's Norwegian page (413), not waitress' English
# text; waitress still stops what is far over it.
WEB_SERVER_BODY_BYTES = 2 * MAX_BODY_BYTES


class ConsoleServer:
    """The console listening on its port; `run` serves until the process is stopped, `close` stops it."""

    def __init__(self, settings: ConsoleSettings, *, threads: int = 8) -> None:
        # Bind first (port 0 picks a free one), then build the app for the address browsers will use.
        # Our own socket map: closing what is in it ends the server's loop (waitress has no stop of its own).
        self._sockets: dict[int, Any] = {}
        self._looping = threading.Event()
        self._ended = threading.Event()
        # One host, so one TCP server (the stubs' union also has the multi-socket kind).
        self._server: Any = cast(Any, create_server(
            _Deferred(), map=self._sockets, host=settings.host, port=settings.port, threads=threads,
            ident="regelmotor-konsoll", max_request_body_size=WEB_SERVER_BODY_BYTES))
        self.port: int = self._server.effective_port
        self.url = settings.base_url(self.port)
        self.app = create_app(settings, base_url=self.url)
        self._server.application = self.app

    def run(self) -> None:
        self._looping.set()
        try:
            self._server.run()
        finally:
            self._looping.clear()
            self._ended.set()

    def close(self) -> None:
        """Stop serving, also from another thread than `run`: finish the pages being made, then close the
        listening socket and every open connection, which ends `run`. While `run` loops, its own thread closes
        them (handed over through waitress' trigger; closed from here, a socket the loop waits on in select()
        fails it with EBADF) and lets go of the trigger; the trigger is closed here once the loop has ended (closed
        by the loop, a wake-up already on its way would write to a closed pipe)."""
        self._server.task_dispatcher.shutdown(timeout=10)
        if self._looping.is_set():
            self._server.trigger.pull_trigger(self._close_connections)
            self._ended.wait(10)
        else:
            self._close_connections()
        self._server.trigger.close()
        self.app.extensions["regelmotor_api"].close()

    def _close_connections(self) -> None:
        """Close all but the trigger and take the trigger out of the loop's map: an empty map ends the loop."""
        trigger = self._server.trigger
        for dispatcher in list(self._sockets.values()):
            if dispatcher is self._server:
                # The listening socket only: the server's own close() closes the trigger too, under a wake-up
                # that may still be on its way.
                wasyncore.dispatcher.close(dispatcher)
            elif dispatcher is not trigger:
                dispatcher.close()
        trigger.del_channel()


class _Deferred:
    """Stands in until the app exists (waitress wants one when it binds)."""

    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"starting"]


def main(overrides: dict[str, Any]) -> int:
    """`regelmotor console`: serve until stopped; exit 2 with one line naming a bad setting."""
    try:
        settings = ConsoleSettings(**overrides)
        server = ConsoleServer(settings)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        print(f"regelmotor console: cannot start: {where}: {problem['msg']}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"regelmotor console: cannot start: {error}", file=sys.stderr)
        return 2
    print(f"console on {server.url} (API at {settings.api_address})", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
