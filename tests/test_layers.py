"""The layers keep to their faces: no module reaches into another's private names, and an evaluation is
read only through its public, read-only view (regelmotor.core.view). The import rules between packages
(core, store, server, cli, the stubs) are import-linter contracts in pyproject.toml (`make lint`)."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import get_args, get_origin, get_type_hints

import pytest

from regelmotor.core.api import Regelmotor
from regelmotor.core.evaluator import Evaluation, Evaluator
from regelmotor.core.repository import RulesetRepository
from regelmotor.core.view import EvaluationView
from tests.conftest import BUNDLED_RULESETS, ROOT
from tests.grpc_support import VALID_FACTS

SCANNED = ("services", "bench", "tests", "clients", "protos/python")
GENERATED = ROOT / "protos" / "python" / "regelmotor_api" / "v1"


def _python_files() -> Iterator[Path]:
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if GENERATED not in path.parents and ".venv" not in path.parts:
                yield path


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_names(tree: ast.Module) -> set[str]:
    """The private names a module defines itself: functions, classes, assignments, attributes of its objects."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if _private(name)}


def _by_name(call: ast.Call) -> str:
    """The attribute a call reaches by its name as text (getattr, setattr, delattr, hasattr,
    monkeypatch.setattr); "" for any other call."""
    func = call.func
    called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if called not in ("getattr", "setattr", "delattr", "hasattr") or len(call.args) < 2:
        return ""
    name = call.args[1]
    return name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else ""


def reaches_into_others(source: str) -> list[str]:
    """Where a module uses a private name that is not its own: `other._name`, `from m import _name`,
    `import m._private`. A module's own private names (`self._x`, `evaluation._run()` on a class of the same
    module) are its business."""
    tree = ast.parse(source)
    own = _own_names(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            modules = (node.module or "").split(".")
            found += [f"line {node.lineno}: from {node.module} import {alias.name}" for alias in node.names
                      if _private(alias.name)]
            if any(_private(part) for part in modules):
                found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call) and (name := _by_name(node)) and _private(name) and name not in own:
            # setattr(obj, "_x", ...), monkeypatch.setattr(module, "_x", ...)
            found.append(f"line {node.lineno}: {ast.unparse(node.func)}(..., {name!r}, ...)")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {alias.name}" for alias in node.names
                      if any(_private(part) for part in alias.name.split("."))]
    return found


def test_no_module_reaches_into_another_modules_private_names() -> None:
    offences = {str(path.relative_to(ROOT)): found for path in _python_files()
                if (found := reaches_into_others(path.read_text(encoding="utf-8")))}
    assert offences == {}


@pytest.mark.parametrize(("source", "expected"), [
    ("import wire\nwire._CACHE[1] = 2\n", ["line 2: wire._CACHE"]),
    ("from a.b import _helper\n", ["line 1: from a.b import _helper"]),
    ("from grpc_health.v1._async import HealthServicer\n", ["line 1: from grpc_health.v1._async import ..."]),
    ("class A:\n    def __init__(self):\n        self._x = 1\n\ndef f(a: A):\n    return a._x\n", []),
    ("def f(log):\n    return log._writer()\n", ["line 2: log._writer"]),
    ("def t(monkeypatch, wire):\n    monkeypatch.setattr(wire, '_LIMIT', 3)\n",
     ["line 2: monkeypatch.setattr(..., '_LIMIT', ...)"]),
    ("class A:\n    def __repr__(self):\n        return super().__repr__()\n", []),
], ids=["attribute", "from-import", "private module", "own class", "another's method", "by name", "dunder"])
def test_the_scan_tells_own_private_names_from_others(source: str, expected: list[str]) -> None:
    assert reaches_into_others(source) == expected


# --- the evaluation's public face ----------------------------------------------------------------

MOTOR = Regelmotor(RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True))


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    return MOTOR.run("rett-til-helsehjelp", VALID_FACTS, as_of=date(2026, 4, 20), version="2024.07")


def _view_members() -> set[str]:
    return {name for name in vars(EvaluationView) if not name.startswith("_")}


def test_an_evaluation_shows_its_read_only_view_and_nothing_else(evaluation: Evaluation) -> None:
    public = {name for name in dir(Evaluation) if not name.startswith("_")}
    assert public == _view_members() | {"head", "decision"}  # the two answers the core builds from the view
    assert [name for name in vars(evaluation) if not name.startswith("_")] == []


def test_an_evaluator_shows_what_it_evaluates_with_and_nothing_of_its_working_state() -> None:
    evaluator = MOTOR.evaluator(MOTOR.repository.get("rett-til-helsehjelp", "2024.07"))
    assert {name for name in dir(Evaluator) if not name.startswith("_")} == {
        "ruleset", "compiled", "engine_version", "rules", "validate", "run", "evaluate"}
    assert [name for name in vars(evaluator) if not name.startswith("_")] == []


def test_the_view_hands_out_its_mappings_read_only() -> None:
    # Typed Mapping (no __setitem__), so mypy refuses a writer that would change them; no proxy at run time,
    # which would slow every answer (BENCHMARKS.md, 2026-12-06, the layers).
    for name in ("facts", "held", "rule_fired", "applied"):
        for face in (EvaluationView, Evaluation):
            returned = get_type_hints(getattr(face, name).fget)["return"]
            assert get_origin(returned) is Mapping, (face.__name__, name, returned)
    assert get_origin(get_args(get_type_hints(vars(EvaluationView)["held"].fget)["return"])[1]) is Mapping


def test_the_rules_shape_is_the_versions_and_the_same_for_every_evaluation(evaluation: Evaluation) -> None:
    again = MOTOR.run("rett-til-helsehjelp", VALID_FACTS, as_of=date(2026, 4, 21), version="2024.07")
    assert again.rules is evaluation.rules
    assert [shape.rule.id for shape in evaluation.rules] == [rule.id for rule in evaluation.ruleset.rules]
    decision = evaluation.decision("d-1")
    for shape, trace in zip(evaluation.rules, decision.explanation.rules, strict=True):
        static = shape.static_trace()
        assert (static.id, static.hjemmel, static.condition, static.round) == (
            trace.id, trace.hjemmel, trace.condition, trace.round)
