from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from regelmotor.core.evaluator import Evaluator
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.model import Ruleset

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
BUNDLED_RULESETS = ROOT / "rulesets"

HEADER = """\
name: {name}
version: "{version}"
title: Test
status: draft
gyldig_fra: 2020-01-01
hjemler:
  h1: {{kilde: LOV-1999-07-02-63, paragraf: "2-2", verified: true}}
"""


def ruleset_text(body: str, name: str = "test", version: str = "1") -> str:
    return HEADER.format(name=name, version=version) + textwrap.dedent(body)


@pytest.fixture
def make_ruleset() -> Callable[..., Ruleset]:
    def make(body: str, name: str = "test", version: str = "1") -> Ruleset:
        return load_ruleset_text(ruleset_text(body, name, version), f"{name}.yaml")

    return make


@pytest.fixture
def make_evaluator(make_ruleset: Callable[..., Ruleset]) -> Callable[..., Evaluator]:
    def make(body: str, name: str = "test", version: str = "1") -> Evaluator:
        return Evaluator(make_ruleset(body, name, version))

    return make
