"""The client's own errors for settings that cannot work (kept apart so every module can raise them)."""

from __future__ import annotations


class ClientConfigError(ValueError):
    """A client setting that cannot work (a TLS file that cannot be read, a certificate without its key,
    a token that cannot be got): which parameter, and why."""

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter
        self.problem = problem
        super().__init__(f"{parameter}: {problem}")
