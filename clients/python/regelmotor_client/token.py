"""Bearer tokens for the client: from a file, an environment variable or a command, refreshed near expiry.

The token's `exp` is read from the JWT payload without verifying anything (the server verifies); it only
decides when to get a new one. A token whose expiry cannot be read counts as expiring now, so it is got
again for every call. The token itself is never logged nor put in an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import selectors
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import ClientConfigError

REFRESH_BEFORE_EXPIRY_SECONDS = 60.0
MAX_TOKEN_BYTES = 16 * 1024
COMMAND_TIMEOUT_SECONDS = 30.0


def _checked(parameter: str, source: str, raw: bytes) -> str:
    """The token in `raw` (surrounding whitespace dropped); ClientConfigError naming `source`, not the token."""
    if len(raw) > MAX_TOKEN_BYTES:
        raise ClientConfigError(parameter, f"{source} holds more than {MAX_TOKEN_BYTES} bytes")
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ClientConfigError(parameter, f"{source} holds a token that is not ASCII") from None
    if not token:
        raise ClientConfigError(parameter, f"{source} holds no token")
    if any(not ch.isprintable() or ch.isspace() for ch in token):
        raise ClientConfigError(parameter, f"{source} holds more than one word or a control character")
    return token


def expiry(token: str) -> float | None:
    """The JWT's `exp` (seconds since the epoch), unverified; None when the token has no readable one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


class _Cached:
    """A token and when it has to be got again; the lock keeps threads from refreshing it twice at once."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.token: str | None = None
        self._expires: float | None = None

    def fresh(self) -> bool:
        return (self.token is not None and self._expires is not None
                and self._expires - self._clock() > REFRESH_BEFORE_EXPIRY_SECONDS)

    def keep(self, token: str) -> str:
        self.token, self._expires = token, expiry(token)
        return token


class TokenFile:
    """A token in a file, read again when the file changes (a rotation moves a new file over it) and when the
    token it holds expires within a minute."""

    parameter = "token_file"

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._cached = _Cached(clock)
        self._seen: tuple[int, int, int] | None = None
        self.token()  # a file that cannot be used is refused when the client is made

    def token(self) -> str:
        with self._cached._lock:
            try:
                status = self.path.stat()
            except OSError as exc:
                raise ClientConfigError(self.parameter, f"cannot read {self.path} ({exc.strerror or exc})") from None
            seen = (status.st_ino, status.st_mtime_ns, status.st_size)
            if seen == self._seen and self._cached.fresh() and self._cached.token is not None:
                return self._cached.token
            try:
                with open(self.path, "rb") as handle:
                    raw = handle.read(MAX_TOKEN_BYTES + 1)
            except OSError as exc:
                raise ClientConfigError(self.parameter, f"cannot read {self.path} ({exc.strerror or exc})") from None
            token = self._cached.keep(_checked(self.parameter, str(self.path), raw))
            self._seen = seen
            return token


class TokenEnv:
    """A token in an environment variable, read for every call."""

    parameter = "token_env"

    def __init__(self, name: str) -> None:
        if not name or "=" in name or "\0" in name:
            raise ClientConfigError(self.parameter, f"{name!r} is not an environment variable name")
        self.name = name
        self.token()

    def token(self) -> str:
        value = os.environ.get(self.name)
        if value is None:
            raise ClientConfigError(self.parameter, f"the environment variable {self.name} is not set")
        return _checked(self.parameter, f"the environment variable {self.name}",
                        value.encode("utf-8", "surrogateescape"))


class TokenCommand:
    """A command (run without a shell) whose standard output is the token; run again when the token expires
    within a minute. It gets `COMMAND_TIMEOUT_SECONDS` and at most `MAX_TOKEN_BYTES` of output; its standard
    error goes to ours."""

    parameter = "token_command"

    def __init__(self, command: str | Sequence[str], *, clock: Callable[[], float] = time.time,
                 timeout: float = COMMAND_TIMEOUT_SECONDS) -> None:
        try:
            self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        except ValueError as exc:
            raise ClientConfigError(self.parameter, f"cannot split the command ({exc})") from None
        if not self.argv:
            raise ClientConfigError(self.parameter, "the command is empty")
        self.timeout = timeout
        self._cached = _Cached(clock)
        self.token()

    def token(self) -> str:
        with self._cached._lock:
            if self._cached.fresh() and self._cached.token is not None:
                return self._cached.token
            return self._cached.keep(_checked(self.parameter, f"the output of {self.argv[0]}", self._run()))

    def _run(self) -> bytes:
        name = self.argv[0]
        try:
            process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        except OSError as exc:
            raise ClientConfigError(self.parameter, f"cannot run {name} ({exc.strerror or exc})") from None
        try:
            output = self._read(process)
            status = process.wait(timeout=max(0.1, self.timeout))
        except subprocess.TimeoutExpired:
            raise ClientConfigError(self.parameter, f"{name} did not finish within {self.timeout:g} s") from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if status != 0:
            raise ClientConfigError(self.parameter, f"{name} exited with status {status}")
        return output

    def _read(self, process: subprocess.Popen[bytes]) -> bytes:
        """Standard output until end of file, within the time and size bounds."""
        assert process.stdout is not None
        deadline = time.monotonic() + self.timeout
        chunks: list[bytes] = []
        size = 0
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise subprocess.TimeoutExpired(self.argv, self.timeout)
                if not selector.select(remaining):
                    continue
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > MAX_TOKEN_BYTES:
                    raise ClientConfigError(self.parameter,
                                            f"{self.argv[0]} printed more than {MAX_TOKEN_BYTES} bytes")
                chunks.append(chunk)


TokenSource = TokenFile | TokenEnv | TokenCommand


def token_source(*, token_file: str | Path | None = None, token_env: str | None = None,
                 token_command: str | Sequence[str] | None = None) -> TokenSource | None:
    """The one token source given, or None; ClientConfigError when more than one is given."""
    given = [name for name, value in (("token_file", token_file), ("token_env", token_env),
                                      ("token_command", token_command)) if value is not None]
    if len(given) > 1:
        raise ClientConfigError(given[1], f"give only one of token_file, token_env and token_command "
                                          f"(also given: {given[0]})")
    if token_file is not None:
        return TokenFile(token_file)
    if token_env is not None:
        return TokenEnv(token_env)
    if token_command is not None:
        return TokenCommand(token_command)
    return None
