from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


# The ruleset lifecycle tests (tests/test_ruleset_lifecycle*.py, tests/lifecycle_support.py): an identity provider
# of their own, its JWKS, and the store on SQLite and on PostgreSQL.
@pytest.fixture(scope="module")
def idp() -> Any:
    from tests.auth_support import Issuer

    made = Issuer()
    made.add_rsa("k1")
    return made


@pytest.fixture(scope="module")
def idp_jwks(idp: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = idp.write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def store_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    from tests.lifecycle_support import store_location

    with store_location(request.param) as location:
        yield location


# The console's browser tests (tests/test_console_*.py, tests/console_support.py): Debian's chromium, one per module,
# and a fresh Norwegian page per test that fails on any Content-Security-Policy violation. Per module, not per
# session: Playwright's sync API runs an event loop in the main thread while it is open, and a later module's
# asyncio.run() would find it running.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from tests.console_support import launched_browser

    yield from launched_browser()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    from tests.console_support import fresh_page

    yield from fresh_page(browser)
