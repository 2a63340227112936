"""A seeded store is what an instance serves: a version added to the rulesets directory afterwards is not served,
and the start says so once, naming the version and the fix (`regelmotor ruleset import DIR`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from regelmotor.server.seeding import served_rulesets
from regelmotor.store import open_log
from tests.lifecycle_support import cases, seed_directory, source


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "regelmotor.server" and r.levelno == logging.WARNING]


def test_a_directory_version_the_seeded_store_lacks_is_named_with_the_fix(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rulesets = seed_directory(tmp_path / "rulesets")
    with open_log(tmp_path / "decisions.db") as log, caplog.at_level(logging.WARNING, "regelmotor.server"):
        served_rulesets(rulesets, log, include_drafts=False)  # the first start seeds the store
        served_rulesets(rulesets, log, include_drafts=False)
        assert _warnings(caplog) == []  # the directory and the store agree
        (rulesets / "sats" / "2025.1.yaml").write_text(source("2025.1", "2025-01-01"), encoding="utf-8")
        (rulesets / "sats" / "2025.1.cases.yaml").write_text(cases("2025-01-01"), encoding="utf-8")
        _, repository = served_rulesets(rulesets, log, include_drafts=False)
    assert [v.meta.version for v in repository.all_versions("sats")] == ["2024.1"]  # the store is served
    [warning] = _warnings(caplog)
    assert warning.__dict__["versions"] == ["sats@2025.1"]
    assert warning.__dict__["fix"].startswith(f"regelmotor ruleset import {rulesets}")
    assert "another person approve" in warning.__dict__["fix"]  # import proposes; it never publishes alone
