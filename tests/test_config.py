"""Settings come from flags, then REGELMOTOR_* variables, then the TOML file in REGELMOTOR_CONFIG."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from regelmotor.server.config import Settings
from tests.conftest import BUNDLED_RULESETS, ROOT


def test_embedded_defaults() -> None:
    settings = Settings()
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 50051, os.cpu_count())
    assert settings.rulesets == BUNDLED_RULESETS and settings.allow_drafts is False
    assert settings.allow_synthetic_ids is False  # synthetic test identity numbers: only where asked for


def test_environment_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "regelmotor.toml"
    config.write_text('port = 6000\nworkers = 3\ngrace_seconds = 20\n', encoding="utf-8")
    monkeypatch.setenv("REGELMOTOR_CONFIG", str(config))
    monkeypatch.setenv("REGELMOTOR_PORT", "7000")
    monkeypatch.setenv("REGELMOTOR_ALLOW_DRAFTS", "true")
    monkeypatch.setenv("REGELMOTOR_ALLOW_SYNTHETIC_IDS", "true")
    settings = Settings()
    assert (settings.port, settings.workers, settings.grace_seconds, settings.allow_drafts) == (7000, 3, 20.0, True)
    assert settings.allow_synthetic_ids is True
    assert Settings(port=8000).port == 8000


def test_bad_settings_are_refused_with_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGELMOTOR_WORKERS", "-1")
    with pytest.raises(ValidationError, match=r"(?s)workers\n.*greater than or equal to 0"):
        Settings()
    monkeypatch.delenv("REGELMOTOR_WORKERS")
    config = tmp_path / "bad.toml"
    config.write_text('prot = 1\n', encoding="utf-8")
    monkeypatch.setenv("REGELMOTOR_CONFIG", str(config))
    with pytest.raises(ValidationError, match=r"(?s)prot\n.*Extra inputs are not permitted"):
        Settings()


def test_every_setting_is_documented_with_its_variable() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"| `{name}` | `REGELMOTOR_{name.upper()}` |" in documented, name


def test_retired_pseudonym_key_files_are_comma_separated_in_the_environment_an_array_in_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().pseudonym_previous_key_files == []
    config = tmp_path / "regelmotor.toml"
    config.write_text('pseudonym_previous_key_files = ["/keys/2024.key", "/keys/a, b.key"]\n', encoding="utf-8")
    monkeypatch.setenv("REGELMOTOR_CONFIG", str(config))
    assert Settings().pseudonym_previous_key_files == [Path("/keys/2024.key"), Path("/keys/a, b.key")]
    monkeypatch.setenv("REGELMOTOR_PSEUDONYM_PREVIOUS_KEY_FILES", " /keys/2024.key,/keys/2025.key , ")
    assert Settings().pseudonym_previous_key_files == [Path("/keys/2024.key"), Path("/keys/2025.key")]
