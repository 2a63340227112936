"""The one place that talks to durable_rules.

We drive durable_rules' C engine (`durable_rules_engine`) directly rather than through
`durable.engine.Host`, for three measured reasons:
- `Host()` starts timer threads that run actions on their own thread (some calls came back empty);
- `Host` actions re-serialise the whole session state through JSON after every fired rule (about
  12 µs each), while all we need from a firing is the rule's name (about 2 µs);
- an exception in a `Host` action is swallowed into the state instead of raised.
The engine still does all matching: we assert one fact and read back the names of the rules that
fired. The C engine is not thread-safe, so one process-wide lock serialises every call; each
evaluation's session is deleted in `finally` (a ruleset holds at most 1024 live sessions).
"""

from __future__ import annotations

import itertools
import json
import threading
from importlib.metadata import version
from typing import Any

import durable_rules_engine

from .errors import EngineFailure

_RULES_OK = 0
_NOT_HANDLED = 1
_lock = threading.Lock()
_handles: dict[str, tuple[int, str]] = {}  # engine name -> (handle, definition json)
_sids = itertools.count(1)

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


def fire(names: list[str], members: str) -> set[str]:
    """Assert a fact into each engine ruleset in `names` and return the names of the rules that fired.

    `members` is the fact as the members of a JSON object, without the braces (`"alder":42,"_r":1`): the
    caller writes each value's JSON once, however many rounds assert it. Each assert gets its own session,
    named in a `sid` member added here. The whole sequence holds the process lock, so concurrent callers
    never interleave engine calls.
    """
    fired: set[str] = set()
    with _lock:
        for name in names:
            handle = _handles[name][0]
            sid = str(next(_sids))
            fired |= _fire_one(name, handle, sid, f'{{{members},"sid":"{sid}"}}')
    return fired


def _fire_one(name: str, handle: int, sid: str, payload: str) -> set[str]:
    try:
        code, state = durable_rules_engine.assert_fact(handle, payload)
    except durable_rules_engine.error as exc:
        # Nothing was stored for this sid when the assert itself failed.
        raise EngineFailure(f"durable_rules could not assert into {name!r}: {exc}") from None
    except MemoryError:
        raise EngineFailure(f"durable_rules is out of sessions or memory in {name!r}") from None
    if code == _NOT_HANDLED:
        # Every compiled ruleset has a rule that always matches, so this is a compiler bug. Deleting
        # the state of an unhandled fact segfaults durable_rules, so it is left alone.
        raise EngineFailure(f"no rule matched in {name!r}, not even the catch-all rule")
    fired: set[str] = set()
    try:
        if code != _RULES_OK:
            raise EngineFailure(f"durable_rules answered code {code} for {name!r}")
        result = durable_rules_engine.start_action_for_state(handle, state)
        message: str | None = result[1] if result else None
        while message:
            fired.add(_rule_name(message))
            message = durable_rules_engine.complete_and_start_action(handle, state)
    except durable_rules_engine.error as exc:
        raise EngineFailure(f"durable_rules failed while firing {name!r}: {exc}") from None
    finally:
        durable_rules_engine.delete_state(handle, sid)
    return fired


def _rule_name(message: str) -> str:
    # A firing is reported as {"<rule name>": {...the fact...}}; our rule names never hold quotes,
    # so slicing is enough and avoids decoding the whole fact again.
    if not message.startswith('{"'):
        raise EngineFailure(f"unexpected firing message from durable_rules: {message[:80]!r}")
    return message[2 : message.index('"', 2)]
