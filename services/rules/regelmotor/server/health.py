"""What the gRPC health service says, worked out from the conditions that decide it.

- DecisionService (and the server as a whole, service ""): SERVING only while at least one engine worker
  is ready and the decision log takes records; NOT_SERVING otherwise, with the reason logged and counted.
- RulesetService and AuditService: SERVING until shutdown (they answer from the snapshot and the log).
- A published or retired version the instance could not load (hot reload, server/reload.py) is the condition
  `ruleset_reload`: logged and counted like the others, but no reason for NOT_SERVING, since the instance
  decides on, with the versions it served before.
- On shutdown everything turns NOT_SERVING at once and stays so.

While the log refuses records, a probe (a write rolled back) runs every `probe_seconds` until it succeeds,
so health recovers without waiting for a caller's decision to be refused or stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from grpc_health.v1 import health, health_pb2

log = logging.getLogger("regelmotor.health")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ServiceHealth:
    def __init__(self, servicer: health.aio.HealthServicer, decision_service: str, other_services: tuple[str, ...], *,
                 probe: Callable[[], None] | None = None, probe_seconds: float = 1.0,
                 on_change: Callable[[str, bool], None] | None = None) -> None:
        self.servicer = servicer
        self.decision_service = decision_service
        self.other_services = other_services
        self.probe = probe
        self.probe_seconds = probe_seconds
        self.on_change = on_change
        self.workers_ready = 0
        self.reload_problem = ""  # why the newest stored versions are not served ("": they are)
        self.log_writable = True
        self.shutting_down = False
        self._probing: asyncio.Task[None] | None = None
        self._reported: dict[str, bool] = {}

    @property
    def deciding(self) -> bool:
        return self.workers_ready > 0 and self.log_writable and not self.shutting_down

    async def publish(self) -> None:
        """Set every service's status from the conditions."""
        if self.shutting_down:
            await self.servicer.enter_graceful_shutdown()
            return
        await self.servicer.set(self.decision_service, SERVING if self.deciding else NOT_SERVING)
        await self.servicer.set("", SERVING if self.deciding else NOT_SERVING)
        for service in self.other_services:
            await self.servicer.set(service, SERVING)

    def _changed(self, condition: str, ok: bool) -> None:
        if self._reported.get(condition) == ok:
            return
        self._reported[condition] = ok
        (log.info if ok else log.error)("health", extra={"condition": condition, "ok": ok,
                                                         "decisions": "SERVING" if self.deciding else "NOT_SERVING"})
        if self.on_change is not None:
            self.on_change(condition, ok)
        asyncio.get_running_loop().create_task(self.publish())

    def workers(self, ready: int) -> None:
        self.workers_ready = ready
        self._changed("engine_workers", ready > 0)

    def rulesets_loaded(self, ok: bool, problem: str = "") -> None:
        """Whether the newest versions in the store were loaded (reported from the first failure on); `problem`:
        why not (a file and line, never a source's text), shown by ListRulesets."""
        self.reload_problem = "" if ok else problem
        if ok and "ruleset_reload" not in self._reported:
            return
        self._changed("ruleset_reload", ok)

    def log_ok(self) -> None:
        if not self.log_writable:
            self.log_writable = True
            self._changed("decision_log", True)

    def log_failed(self) -> None:
        if self.log_writable:
            self.log_writable = False
            self._changed("decision_log", False)
        if self.probe is not None and (self._probing is None or self._probing.done()):
            self._probing = asyncio.get_running_loop().create_task(self._probe_until_writable())

    async def _probe_until_writable(self) -> None:
        assert self.probe is not None
        while not self.log_writable and not self.shutting_down:
            await asyncio.sleep(self.probe_seconds)
            try:
                await asyncio.to_thread(self.probe)
            except Exception as exc:
                log.warning("decision log still refuses writes", extra={"error": type(exc).__name__})
                continue
            self.log_ok()

    async def shut_down(self) -> None:
        self.shutting_down = True
        if self._probing is not None:
            self._probing.cancel()
        await self.publish()
