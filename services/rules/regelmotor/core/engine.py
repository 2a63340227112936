"""The one place that talks to durable_rules.

We drive durable_rules' C engine (`durable_rules_engine`) directly rather than through
`durable.engine.Host`, for three measured reasons:
- `Host()` starts timer threads that run actions on their own thread (some calls came back empty);
- `Host` actions re-serialise the whole session state through JSON after every fired rule (about
  12 µs each), while all we need from a firing is the rule's name (about 2 µs);
- an exception in a `Host` action is swallowed into the state instead of raised.
The engine still does all matching: we assert one fact and read back the names of the rules that
fired. The C engine is not thread-safe, so one process-wide lock serialises every call.

Sessions: each engine ruleset keeps one session, and every fact asserted into it is retracted as soon as
its firings are read, so the session is empty again for the next fact. A session of its own per fact,
deleted after it, cost about 40 % more of the engine's time (durable_rules makes each new session a state
record and matches that too; BENCHMARKS.md, 2026-12-06, late night). Our rules each match one fact, with
no joins and no negations, so a fact can only ever fire on its own assert, never meet another, and its
retraction fires nothing. Whenever a fact's firing fails part way, its session is deleted instead and the
next fact opens a new one, so nothing it left behind meets a later fact. At most one session per engine
ruleset lives at a time (a ruleset holds at most 1024).
"""

from __future__ import annotations

import itertools
import json
import threading
from importlib.metadata import version
from typing import Any

import durable_rules_engine
from pydantic_core import to_json

from .errors import EngineFailure

_RULES_OK = 0
_NOT_HANDLED = 1
_lock = threading.Lock()
_handles: dict[str, tuple[int, str]] = {}  # engine name -> (handle, definition json)
_sessions: dict[str, str] = {}  # engine name -> the sid of its session
_sids = itertools.count(1)
_fact_ids = itertools.count(1)  # each fact's `id`: what durable_rules retracts a fact by

DURABLE_RULES_VERSION = version("durable_rules")


def register(name: str, definition: dict[str, Any]) -> None:
    """Create the engine ruleset `name` once per process. A name can never be replaced, so the same
    name with another definition is refused (callers put a content hash in the name)."""
    text = json.dumps(definition, ensure_ascii=False, sort_keys=True)
    with _lock:
        existing = _handles.get(name)
        if existing is not None:
            if existing[1] != text:
                raise EngineFailure(f"engine ruleset {name!r} is already registered with another definition")
            return
        try:
            handle = durable_rules_engine.create_ruleset(name, text)
        except durable_rules_engine.error as exc:
            raise EngineFailure(f"durable_rules refused ruleset {name!r}: {exc}") from None
        _handles[name] = (handle, text)


def fire(names: list[str], fact: dict[str, Any]) -> set[str]:
    """Assert `fact` into each engine ruleset in `names` and return the names of the rules that fired.

    The whole sequence holds the process lock, so concurrent callers never interleave engine calls.
    """
    fired: set[str] = set()
    with _lock:
        for name in names:
            sid = _sessions.get(name)
            if sid is None:
                sid = _sessions[name] = str(next(_sids))
            # pydantic-core's encoder writes the same JSON as json.dumps, about 4 µs faster per fact.
            payload = to_json({**fact, "sid": sid, "id": next(_fact_ids)}).decode()
            _fire_one(name, sid, payload, fired)
    return fired


def live_sessions() -> int:
    """How many engine sessions are open: at most one per registered engine ruleset."""
    with _lock:
        return len(_sessions)


def _fire_one(name: str, sid: str, payload: str, fired: set[str]) -> None:
    """Assert one fact into the session `sid` of `name`, add the names of the rules that fired to `fired`, and
    leave the session empty: the fact retracted, or the session deleted when anything went wrong."""
    handle = _handles[name][0]
    try:
        code, state = durable_rules_engine.assert_fact(handle, payload)
    except durable_rules_engine.error as exc:
        # Nothing was stored for this fact when the assert itself failed.
        raise EngineFailure(f"durable_rules could not assert into {name!r}: {exc}") from None
    except MemoryError:
        raise EngineFailure(f"durable_rules is out of sessions or memory in {name!r}") from None
    if code == _NOT_HANDLED:
        # Every compiled ruleset has a rule that always matches, so this is a compiler bug. Deleting
        # the state of an unhandled fact segfaults durable_rules, so the session is left alone, unused.
        del _sessions[name]
        raise EngineFailure(f"no rule matched in {name!r}, not even the catch-all rule")
    emptied = False
    try:
        if code != _RULES_OK:
            raise EngineFailure(f"durable_rules answered code {code} for {name!r}")
        _read_firings(handle, state, fired)
        retracted, _ = durable_rules_engine.retract_fact(handle, payload)
        emptied = retracted == _RULES_OK  # else the session is deleted: the firings read are right all the same
    except durable_rules_engine.error as exc:
        raise EngineFailure(f"durable_rules failed while firing {name!r}: {exc}") from None
    finally:
        if not emptied:
            del _sessions[name]
            durable_rules_engine.delete_state(handle, sid)


def _read_firings(handle: int, state: int, fired: set[str]) -> None:
    next_firing = durable_rules_engine.complete_and_start_action
    result = durable_rules_engine.start_action_for_state(handle, state)
    message: str | None = result[1] if result else None
    while message:
        # A firing is reported as {"<rule name>": {...the fact...}}; our rule names never hold quotes,
        # so slicing is enough and avoids decoding the whole fact again.
        if message[:2] != '{"':
            raise EngineFailure(f"unexpected firing message from durable_rules: {message[:80]!r}")
        fired.add(message[2 : message.index('"', 2)])
        message = next_firing(handle, state)
