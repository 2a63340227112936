"""`regelmotor console`, and the console beside the service for `regelmotor serve --console` (the README's
start command), run as a child process so its pages never take CPU from the gRPC front."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any


def add_console(sub: Any) -> None:
    p = sub.add_parser("console", help="start the web console for policy staff and auditors (docs/console.md)")
    p.add_argument("--host", help="address to listen on (REGELMOTOR_CONSOLE_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (REGELMOTOR_CONSOLE_PORT, default 8080)")
    p.add_argument("--api-address", help="the gRPC API, host:port (REGELMOTOR_CONSOLE_API_ADDRESS, default "
                                         "127.0.0.1:50051)")
    p.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_console)


def cmd_console(args: argparse.Namespace) -> int:
    from regelmotor.console.serve import main

    overrides = {key: getattr(args, key) for key in ("host", "port", "api_address") if getattr(args, key) is not None}
    if args.exit_with_parent:
        _exit_with(os.getppid())
    return main(overrides)


def _exit_with(parent: int) -> None:
    """Stop when the process that started us is gone (a SIGKILLed `serve` must not leave a console behind)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def split_address(address: str) -> tuple[str, int]:
    """host:port as `--console` takes it; ValueError naming the problem."""
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--console {address!r}: give host:port, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def start_beside(listen: str, api_address: str) -> subprocess.Popen[bytes]:
    """The console as a child process, calling the service at `api_address`."""
    host, port = split_address(listen)
    command = [sys.executable, "-m", "regelmotor.cli.main", "console", "--host", host, "--port", str(port),
               "--api-address", api_address, "--exit-with-parent"]
    return subprocess.Popen(command)


def stop_beside(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
