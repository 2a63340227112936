"""Run the real service as a child process for tests: `regelmotor serve` on a free loopback port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import ROOT

_ADDRESS = re.compile(r"serving gRPC on (\S+) ")


class ServerProcess:
    def __init__(self, *, workers: int = 2, drafts: bool = True, rulesets: Path | None = None,
                 env: dict[str, str] | None = None, credentials: grpc.ChannelCredentials | None = None) -> None:
        args = [sys.executable, "-m", "regelmotor.cli.main", "serve", "--port", "0", "--workers", str(workers)]
        if drafts:
            args.append("--drafts")
        if rulesets is not None:
            args += ["--rulesets", str(rulesets)]
        self._data_dir = tempfile.TemporaryDirectory(prefix="regelmotor-server-")
        self.data_dir = Path(self._data_dir.name)
        self._key_dir = tempfile.TemporaryDirectory(prefix="regelmotor-keys-")  # the key apart from the log
        self.credentials = credentials  # for a server on TLS (env with REGELMOTOR_TLS_*)
        source = os.pathsep.join(str(p) for p in (ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT))
        environment = {**os.environ, "PYTHONPATH": source,
                       "REGELMOTOR_DATA_DIR": str(self.data_dir),
                       "REGELMOTOR_PSEUDONYM_KEY_FILE": str(Path(self._key_dir.name) / "pseudonym.key"), **(env or {})}
        # A session of its own: a start that fails can take the server and its engine workers down together.
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=environment, cwd=ROOT, start_new_session=True)
        self.banner = ""
        self._stderr: list[str] = []
        try:
            self.address = self._await_address()
            # Read stderr continuously: the server logs a line per call, and a full pipe would block it.
            self._drain = threading.Thread(target=self._read_stderr, daemon=True)
            self._drain.start()
            self.wait_serving()
        except BaseException:
            self._kill_all()
            self._data_dir.cleanup()
            self._key_dir.cleanup()
            raise

    def _kill_all(self) -> None:
        """SIGKILL the server and every process of its session (the engine workers), and reap the server."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line)

    def _await_address(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                if self.process.poll() is not None:
                    error = self.process.stderr.read() if self.process.stderr else ""
                    raise RuntimeError(f"server exited: {error}")
                continue
            found = _ADDRESS.search(line)
            if found:
                # The line after the address says how the server can be reached ("Security: ...").
                self.banner = line + self.process.stdout.readline()
                return found.group(1)
        raise RuntimeError("server did not start in time")

    def wait_serving(self, timeout: float = 60.0) -> None:
        with (grpc.secure_channel(self.address, self.credentials) if self.credentials
              else grpc.insecure_channel(self.address)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise RuntimeError("server never became SERVING")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False)
        return [int(p) for p in out.stdout.split()]

    def terminate(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def close(self) -> None:
        """Stop the server (if it still runs) and remove its data and key directories."""
        self.terminate()
        self._data_dir.cleanup()
        self._key_dir.cleanup()

    def logs(self) -> str:
        self.terminate()
        self._drain.join(5)
        return "".join(self._stderr)


@contextmanager
def running_server(**kwargs: object) -> Iterator[ServerProcess]:
    server = ServerProcess(**kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.close()


def serve_once(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`regelmotor serve` with these REGELMOTOR_* variables, in a fresh data directory, run to its end: for a start
    that a setting stops (exit code 2, one line on stderr)."""
    data = tempfile.mkdtemp(prefix="regelmotor-start-")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "services" / "rules"), str(ROOT / "protos" / "python"), str(ROOT)]),
        "REGELMOTOR_DATA_DIR": data, "REGELMOTOR_PORT": "0", "REGELMOTOR_WORKERS": "1", **env}
    return subprocess.run([sys.executable, "-m", "regelmotor.cli.main", "serve", *args], env=environment,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)
