"""The console in tests: the real service as a child process, the console serving on a free loopback port in a
thread, and Debian's chromium driven by Playwright with axe-core checking every page it is shown."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from regelmotor.console.serve import ConsoleServer
from regelmotor.console.settings import ConsoleSettings
from tests.conftest import ROOT
from tests.system_tools import debian_programs

AXE = ROOT / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA, the level Norwegian public-sector web solutions must meet (forskrift om universell utforming).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@contextmanager
def running_console(api_address: str, **settings: Any) -> Iterator[ConsoleServer]:
    """The console on 127.0.0.1 and a free port, calling the API at `api_address`, until the block ends."""
    for name in [n for n in os.environ if n.startswith("REGELMOTOR_CONSOLE_")]:
        os.environ.pop(name)  # a developer's own settings must not leak into a test
    console = ConsoleServer(ConsoleSettings(host="127.0.0.1", port=0, api_address=api_address, **settings))
    thread = threading.Thread(target=console.run, name="console", daemon=True)
    thread.start()
    try:
        yield console
    finally:
        console.close()
        thread.join(10)


def chromium_path() -> str:
    """Debian's chromium, installed by the test set-up when missing (never a browser Playwright downloads)."""
    return debian_programs("chromium", ("chromium",), "the console's browser tests")["chromium"]


def launched_browser() -> Iterator[Any]:
    """Chromium for the session (the `browser` fixture of conftest.py)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                              args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            yield launched
        finally:
            launched.close()


def fresh_page(browser: Any) -> Iterator[Any]:
    """A fresh browser context per test, Norwegian, failing the test on any Content-Security-Policy violation."""
    context = browser.new_context(locale="nb-NO", timezone_id="Europe/Oslo")
    opened = context.new_page()
    refused: list[str] = []
    opened.on("console", lambda message: refused.append(message.text)
              if "Content Security Policy" in message.text else None)
    try:
        yield opened
    finally:
        context.close()
    assert not refused, f"the page broke its own Content-Security-Policy: {refused}"


def axe_source() -> str:
    if not AXE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{AXE} is missing: `npm ci --prefix tests/node` (make pytest runs it)")
        pytest.skip("axe-core is not installed: run `npm ci --prefix tests/node`")
    return AXE.read_text(encoding="utf-8")


def assert_accessible(page: Any) -> None:
    """axe-core's WCAG 2.1 A and AA rules on the page as shown now: zero violations, each named if any."""
    # page.evaluate runs outside the page's Content-Security-Policy, so the policy stays on while axe runs.
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)
    violations = [f"{v['id']} ({v['impact']}): {v['help']} — "
                  + "; ".join(node["target"][0] if isinstance(node["target"][0], str) else str(node["target"])
                              for node in v["nodes"][:5])
                  for v in result["violations"]]
    assert violations == [], f"WCAG 2.1 AA violations on {page.url}:\n" + "\n".join(violations)


def tab_to(page: Any, selector: str, limit: int = 60) -> None:
    """Press Tab until the element matching `selector` has focus (the keyboard alone reaches it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} was not reached with Tab in {limit} presses on {page.url}")

