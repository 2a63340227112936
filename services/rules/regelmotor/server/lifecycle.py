"""The lifecycle RPCs of RulesetService: propose, approve, reject and retire ruleset versions kept in the store,
and read their history (regelmotor.store.versions decides and records each step).

A proposed source is a caller's source: it is checked in the sandbox (`ProposeSource`), which also reads what
the store keeps of it; the front only stores it. Who acts is the person the verified token names (its `sub`),
else the calling system as `caller_of` finds it: four eyes compare these.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import grpc

from regelmotor.core.api import Regelmotor
from regelmotor.core.errors import FieldViolation, LifecycleRefused
from regelmotor.core.limits import MAX_NAME_CHARS as MAX_NAME
from regelmotor.core.model import Ruleset
from regelmotor.core.moments import moment_text
from regelmotor.store import (
    MAX_REASON,
    Event,
    RulesetStore,
    State,
    StoredText,
    VersionMeta,
    VersionState,
    VersionText,
)
from regelmotor_api.v1 import ruleset_pb2 as rpb

from .caller import current
from .errors import bad_request, not_found
from .protocol import ProposeSource
from .recording import caller_of
from .servicers import Engine, ImpactAnalysis, RulesetServicer, abort
from .telemetry import Telemetry

Context = grpc.aio.ServicerContext[Any, Any]
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_ACKNOWLEDGED = 100
MAX_LISTED = 30  # versions a NOT_FOUND names, at most


def actor_of(context: Context) -> str:
    """The person who acts: the verified token's subject, else the caller as `caller_of` finds it."""
    identity = current()
    return identity.subject[:200] if identity is not None else caller_of(context)


def version_message(state: VersionState) -> rpb.StoredVersion:
    meta = state.meta
    return rpb.StoredVersion(
        name=state.name, version=state.version, sha256=state.sha256, state=state.state.value, title=meta.title,
        gyldig_fra=meta.gyldig_fra.isoformat(), gyldig_til=meta.gyldig_til.isoformat() if meta.gyldig_til else "",
        proposed_by=state.proposed_by or "",
        retired_from=state.retired_from.isoformat() if state.retired_from else "",
        unverified_hjemler=list(meta.unverified), allow_gap_before=meta.allow_gap_before,
        selected_by=meta.selected_by or "as_of", supersedes=meta.supersedes or "",
        correction_reason=meta.correction_reason,
        published_at=moment_text(state.published_at) if state.published_at else "")


def event_message(event: Event) -> rpb.LifecycleEvent:
    rest = {k: v for k, v in event.detail.items() if k != "reason"}
    return rpb.LifecycleEvent(id=event.id, at=event.at.isoformat(), who=event.who, action=event.action,
                              version=event.version, sha256=event.sha256, reason=str(event.detail.get("reason", "")),
                              detail_json=_json(rest), hash=event.hash)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _text(proposed: rpb.ProposeRulesetRequest, read: rpb.StoredVersion) -> VersionText:
    meta = VersionMeta(read.title, date.fromisoformat(read.gyldig_fra),
                       date.fromisoformat(read.gyldig_til) if read.gyldig_til else None, read.allow_gap_before,
                       read.selected_by or None, tuple(read.unverified_hjemler), read.supersedes or None,
                       read.correction_reason)
    return VersionText(read.name, read.version, proposed.source, proposed.cases, read.sha256, meta)


def _named(name: str, version: str) -> list[FieldViolation]:
    problems = [FieldViolation(field, f"required, at most {MAX_NAME} characters")
                for field, value in (("name", name), ("version", version)) if not 0 < len(value) <= MAX_NAME]
    return problems


def _get_problems(request: rpb.GetRulesetRequest) -> list[FieldViolation]:
    problems = [] if 0 < len(request.name) <= MAX_NAME else [
        FieldViolation("name", f"required, at most {MAX_NAME} characters")]
    if len(request.version) > MAX_NAME:
        problems.append(FieldViolation("version", f"at most {MAX_NAME} characters (empty: the newest served)"))
    return problems


def _approval_problems(request: rpb.ApproveRulesetRequest) -> list[FieldViolation]:
    problems = _named(request.name, request.version)
    if not _SHA256.fullmatch(request.sha256):
        problems.append(FieldViolation("sha256", "required: the 64 lowercase hex digits of the version you "
                                                 "reviewed (`regelmotor ruleset history NAME` shows it)"))
    if len(request.acknowledge_unverified) > MAX_ACKNOWLEDGED or any(
            not 0 < len(h) <= MAX_NAME for h in request.acknowledge_unverified):
        problems.append(FieldViolation("acknowledge_unverified", f"at most {MAX_ACKNOWLEDGED} hjemmel ids of at "
                                                                 f"most {MAX_NAME} characters"))
    return problems


def _reason_problems(reason: str, *, required: bool) -> list[FieldViolation]:
    if required and not reason.strip():
        return [FieldViolation("reason", "required: say why, for the author")]
    if len(reason) > MAX_REASON:
        return [FieldViolation("reason", f"at most {MAX_REASON} characters")]
    return []


def _from_date(text: str) -> tuple[date | None, list[FieldViolation]]:
    try:
        return date.fromisoformat(text), [] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else [
            FieldViolation("from_date", "must be YYYY-MM-DD")]
    except ValueError:
        return None, [FieldViolation("from_date", f"required: the first day it no longer answers, YYYY-MM-DD "
                                                  f"(got {text[:20]!r})")]


class RulesetLifecycleServicer(RulesetServicer):
    """RulesetService with the lifecycle RPCs, over the store beside the decision log (None: the service keeps
    no log, and the lifecycle RPCs say so)."""

    def __init__(self, motor: Regelmotor, sources: Engine, telemetry: Telemetry, store: RulesetStore | None,
                 impact: ImpactAnalysis | None = None, reload_problem: Callable[[], str] | None = None) -> None:
        super().__init__(motor, sources, telemetry, impact, reload_problem)
        self.store = store

    async def cases_of(self, ruleset: Ruleset) -> str:
        """With a store, the cases stored with the version (the served versions are the store's)."""
        if self.store is None:
            return await super().cases_of(ruleset)
        stored = await asyncio.to_thread(self.store.text, ruleset.meta.name, ruleset.meta.version)
        return stored.cases if stored is not None else ""

    async def GetRuleset(self, request: rpb.GetRulesetRequest, context: Context) -> rpb.GetRulesetResponse:
        """A served version as RulesetServicer describes it, with its state in the store; or a stored version this
        service does not serve (proposed, rejected), described from the store alone. A proposal's text is a
        caller's source: it is returned as stored, never parsed or compiled here (that happens only in the
        sandbox), which is why such an answer has no schemas."""
        if self.store is None:
            response = await super().GetRuleset(request, context)
            response.served = True
            return response
        problems = _get_problems(request)
        if problems:
            await self._refuse(context, problems)
        store = self.store
        states = {s.version: s for s in await asyncio.to_thread(store.states, request.name)}
        served = self.motor.repository.versions.get(request.name, {})
        if request.version and request.version not in served:
            stored = await asyncio.to_thread(store.text, request.name, request.version)
            if stored is not None:
                return await self._traced("GetRuleset", context, lambda: self._stored_answer(stored))
            if states or served:
                known = ", ".join(sorted(set(states) | set(served))[:MAX_LISTED])
                await abort(context, not_found("ruleset version", f"{request.name}@{request.version}",
                                               f"version: ruleset {request.name!r} has no version "
                                               f"{request.version!r}; its versions: {known}"))
        response = await super().GetRuleset(request, context)  # an unknown ruleset: NOT_FOUND naming it
        response.served = True
        if (state := states.get(response.version.version)) is not None:
            response.version.state = state.state.value
        return response

    async def _stored_answer(self, stored: StoredText) -> rpb.GetRulesetResponse:
        state = stored.state
        meta = state.meta
        name = state.name
        if name in self.motor.repository.versions:
            summary = self._summary(name)
        else:  # a ruleset with no published version yet
            summary = rpb.RulesetSummary(name=name, selected_by=meta.selected_by or "as_of")
        # The source's `status:` without reading it: a draft is stored only by an import of a draft; every other
        # stored version was imported as published or proposed, which needs `status: published`
        # (sources.check_proposal).
        status = "draft" if state.state is State.DRAFT else "published"
        version = rpb.VersionInfo(version=state.version, title=meta.title, status=status,
                                  gyldig_fra=meta.gyldig_fra.isoformat(),
                                  gyldig_til=meta.gyldig_til.isoformat() if meta.gyldig_til else "",
                                  sha256=state.sha256, state=state.state.value)
        return rpb.GetRulesetResponse(ruleset=summary, version=version, source=stored.source, cases=stored.cases,
                                      served=False)

    def _kept(self) -> RulesetStore:
        if self.store is None:
            raise LifecycleRefused("NO_STORE", "this service keeps no decision log, so no ruleset versions either: "
                                   "configure REGELMOTOR_DECISION_LOG")
        return self.store

    async def _refuse(self, context: Context, problems: list[FieldViolation]) -> None:
        await abort(context, bad_request(problems))

    async def ProposeRuleset(self, request: rpb.ProposeRulesetRequest, context: Context) -> rpb.ProposeRulesetResponse:
        who = actor_of(context)
        answer = await self._sandboxed("ProposeRuleset", ProposeSource(request.SerializeToString()), context)
        response = rpb.ProposeRulesetResponse.FromString(answer)
        if not response.accepted:
            return response

        async def work() -> rpb.ProposeRulesetResponse:
            stored = await asyncio.to_thread(self._kept().propose, _text(request, response.version), who)
            response.version.CopyFrom(version_message(stored))
            return response

        return await self._traced("ProposeRuleset", context, work)

    async def ApproveRuleset(self, request: rpb.ApproveRulesetRequest, context: Context) -> rpb.ApproveRulesetResponse:
        problems = _approval_problems(request)
        if problems:
            await self._refuse(context, problems)
        who = actor_of(context)

        async def work() -> rpb.ApproveRulesetResponse:
            stored = await asyncio.to_thread(self._kept().approve, request.name, request.version, request.sha256,
                                             who, list(request.acknowledge_unverified))
            return rpb.ApproveRulesetResponse(version=version_message(stored))

        return await self._traced("ApproveRuleset", context, work)

    async def RejectRuleset(self, request: rpb.RejectRulesetRequest, context: Context) -> rpb.RejectRulesetResponse:
        problems = _named(request.name, request.version) + _reason_problems(request.reason, required=True)
        if problems:
            await self._refuse(context, problems)
        who = actor_of(context)

        async def work() -> rpb.RejectRulesetResponse:
            stored = await asyncio.to_thread(self._kept().reject, request.name, request.version, who, request.reason)
            return rpb.RejectRulesetResponse(version=version_message(stored))

        return await self._traced("RejectRuleset", context, work)

    async def RetireRuleset(self, request: rpb.RetireRulesetRequest, context: Context) -> rpb.RetireRulesetResponse:
        from_day, problems = _from_date(request.from_date)
        problems = _named(request.name, request.version) + problems + _reason_problems(request.reason, required=False)
        if problems or from_day is None:
            await self._refuse(context, problems)
            raise AssertionError("abort raises")
        who = actor_of(context)

        async def work() -> rpb.RetireRulesetResponse:
            stored = await asyncio.to_thread(self._kept().retire, request.name, request.version, who, from_day,
                                             request.reason)
            return rpb.RetireRulesetResponse(version=version_message(stored))

        return await self._traced("RetireRuleset", context, work)

    async def GetRulesetHistory(self, request: rpb.GetRulesetHistoryRequest,
                                context: Context) -> rpb.GetRulesetHistoryResponse:
        if not 0 < len(request.name) <= MAX_NAME:
            await self._refuse(context, [FieldViolation("name", f"required, at most {MAX_NAME} characters")])

        async def work() -> rpb.GetRulesetHistoryResponse:
            store = self._kept()
            states = await asyncio.to_thread(store.states, request.name)
            events = await asyncio.to_thread(store.history, request.name)
            corrections: dict[str, list[str]] = {}
            for state in states:
                if state.meta.supersedes and state.state is State.PUBLISHED:
                    corrections.setdefault(state.meta.supersedes, []).append(state.version)
            versions = [version_message(s) for s in states]
            for version in versions:
                version.corrected_by.extend(corrections.get(version.version, []))
            return rpb.GetRulesetHistoryResponse(versions=versions,
                                                 events=[event_message(e) for e in events])

        response = await self._traced("GetRulesetHistory", context, work)
        if not response.versions:
            await abort(context, not_found("ruleset", request.name, f"the store has no ruleset named {request.name!r}"))
        return response
