"""The worker protocol as types (regelmotor.server.protocol): every request kind has the one kind of answer the
front takes for it, a new request kind cannot be added without saying which, and the front takes any other
answer as a failure, never as some other kind (`servicers.ask`, the one place where the front receives what
its workers answer). How a worker answers a kind it does not handle is tested in test_worker_pool.py."""

from __future__ import annotations

import ast
import asyncio
from typing import get_args

import pytest

from regelmotor.core.impact import ImpactTally
from regelmotor.core.repository import RulesetSnapshot
from regelmotor.server import protocol
from regelmotor.server.protocol import (
    AnalyseChunk,
    DiffSources,
    Evaluate,
    EvaluateBatch,
    EvaluateCalls,
    Failed,
    ImpactPart,
    ImpactPrepared,
    PrepareImpact,
    ProposeSource,
    Ready,
    Reload,
    Reloaded,
    Reply,
    Request,
    Skipped,
    SourceReply,
    Stop,
    Summary,
    ValidateSource,
    answers,
)
from regelmotor.server.servicers import ask
from regelmotor.store import ListFilter
from tests.conftest import ROOT

REPLY = Reply(Summary(0))
REQUESTS: dict[str, Request] = {
    "Evaluate": Evaluate(b""),
    "EvaluateBatch": EvaluateBatch(((0, b""), (1, b""))),
    "ValidateSource": ValidateSource(b""),
    "TestSource": protocol.TestSource(b""),  # by the module: pytest would collect a Test* name
    "DiffSources": DiffSources(b""),
    "ProposeSource": ProposeSource(b""),
    "PrepareImpact": PrepareImpact(""),
    "AnalyseChunk": AnalyseChunk("", ListFilter(), 1, 1, 0),
    "EvaluateCalls": EvaluateCalls(((b"", None, None, None),)),
    "Reload": Reload(RulesetSnapshot("store", (), "")),
    "Stop": Stop(),
}
ANSWERS: dict[str, object] = {
    "Reply": REPLY,
    "two Replies": [REPLY, REPLY],
    "one Reply": [REPLY],
    "two SourceReplies": [SourceReply(), SourceReply()],
    "SourceReply": SourceReply(),
    "ImpactPrepared": ImpactPrepared(),
    "ImpactPart": ImpactPart(ImpactTally()),
    "Reloaded": Reloaded(),
    "Failed": Failed("a fault of ours"),
    "Skipped": Skipped(),
    "Ready": Ready(1),
    "None": None,
}
# The one answer each request kind is read as. EvaluateCalls (the pool answers its items one by one, each a Reply
# or Skipped) and Stop (answered by the worker's exit) are never sent to wait for an answer.
TAKES = {"Evaluate": "Reply", "EvaluateBatch": "two Replies", "ValidateSource": "SourceReply",
         "TestSource": "SourceReply", "DiffSources": "SourceReply", "ProposeSource": "SourceReply",
         "PrepareImpact": "ImpactPrepared", "AnalyseChunk": "ImpactPart", "Reload": "Reloaded"}


@pytest.mark.parametrize("request_kind", REQUESTS)
def test_each_request_kind_takes_its_own_kind_of_answer_and_no_other(request_kind: str) -> None:
    taken = {name for name, answer in ANSWERS.items() if answers(REQUESTS[request_kind], answer)}
    assert taken == ({TAKES[request_kind]} if request_kind in TAKES else set())


def test_every_request_kind_is_in_the_table() -> None:
    # A kind added to `Request` must be added here, and to `answers` with the answer it takes.
    assert {kind.__name__ for kind in get_args(Request)} == set(REQUESTS)
    assert {type(request).__name__ for request in REQUESTS.values()} == set(REQUESTS)


class Answering:
    """An engine whose worker answers `answer` to anything: the stand-in for a worker out of step with the front,
    which a real worker cannot be made to be."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    async def call(self, message: Request, timeout: float | None) -> object:
        return self.answer


@pytest.mark.parametrize(("request_kind", "answer", "reason"), [
    ("Evaluate", "SourceReply", "a worker answered Evaluate with SourceReply"),
    ("Evaluate", "one Reply", "a worker answered Evaluate with list"),
    ("EvaluateBatch", "one Reply", "a worker answered EvaluateBatch with list"),
    ("EvaluateBatch", "two SourceReplies", "a worker answered EvaluateBatch with list"),
    ("ValidateSource", "Reply", "a worker answered ValidateSource with Reply"),
    ("DiffSources", "Skipped", "a worker answered DiffSources with Skipped"),
    ("Evaluate", "None", "a worker answered Evaluate with NoneType"),
])
def test_the_front_takes_an_answer_of_the_wrong_kind_as_a_failure(request_kind: str, answer: str,
                                                                   reason: str) -> None:
    got = asyncio.run(ask(Answering(ANSWERS[answer]), REQUESTS[request_kind], None))
    assert got == Failed(reason)


@pytest.mark.parametrize("request_kind", TAKES)
def test_the_front_takes_the_right_kind_and_a_failure_as_they_are(request_kind: str) -> None:
    right = ANSWERS[TAKES[request_kind]]
    assert asyncio.run(ask(Answering(right), REQUESTS[request_kind], None)) is right
    failed = ANSWERS["Failed"]
    assert asyncio.run(ask(Answering(failed), REQUESTS[request_kind], None)) is failed


def _calls_outside_ask(source: str) -> list[str]:
    """`<something>.call(...)` outside a function named `ask`: a call to a worker pool or the inline engine that
    would take their answer unchecked."""
    tree = ast.parse(source)
    inside_ask = {id(node) for function in ast.walk(tree)
                  if isinstance(function, ast.AsyncFunctionDef) and function.name == "ask"
                  for node in ast.walk(function)}
    return [f"line {node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "call"
            and id(node) not in inside_ask]


def test_the_front_receives_its_workers_answers_only_through_ask() -> None:
    server = ROOT / "services" / "rules" / "regelmotor" / "server"
    found = {path.name: calls for path in sorted(server.glob("*.py"))
             if (calls := _calls_outside_ask(path.read_text(encoding="utf-8")))}
    assert found == {}
    assert _calls_outside_ask("async def f(pool):\n    return await pool.call(m, 1)\n") == [
        "line 2: pool.call(m, 1)"]
