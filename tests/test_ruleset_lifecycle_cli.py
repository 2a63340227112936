"""`regelmotor ruleset propose | approve | reject | retire | history` against a real server (tokens in files, as a
policy author keeps them), with the documented exit codes; `regelmotor ruleset export | import` between a store
and a directory."""

from __future__ import annotations

import filecmp
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from regelmotor.cli.main import main
from regelmotor.core.errors import NoVersionInForce, VersionRetired
from regelmotor.core.repository import RulesetRepository
from regelmotor.server.app import RunningServer
from regelmotor.store import open_log
from tests.auth_support import Issuer
from tests.lifecycle_support import cases, lifecycle_server, seed_directory, sha256, source


@pytest.fixture
def server(idp: Issuer, tmp_path: Path) -> Iterator[RunningServer]:
    jwks = idp.write_jwks(tmp_path / "jwks.json")
    with lifecycle_server(idp, jwks, seed_directory(tmp_path / "rulesets"), "sqlite",
                          data_dir=tmp_path / "data") as running:
        yield running


def _token(idp: Issuer, path: Path, sub: str, *roles: str) -> list[str]:
    path.write_text(idp.token(scope=list(roles), sub=sub, client_id="regelmotor-cli"), encoding="utf-8")
    return ["--token-file", str(path)]


def test_propose_approve_and_history_from_the_command_line(server: RunningServer, idp: Issuer, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    address = ["--address", server.address]
    anna = _token(idp, tmp_path / "anna.jwt", "anna", "ruleset:author", "ruleset:approve", "ruleset:read")
    bjorn = _token(idp, tmp_path / "bjorn.jwt", "bjorn", "ruleset:approve", "ruleset:read")
    work = tmp_path / "arbeid"
    work.mkdir()
    text = source("2025.1", "2025-01-01", verified=False)
    (work / "2025.1.yaml").write_text(text, encoding="utf-8")
    (work / "2025.1.cases.yaml").write_text(cases("2025-01-01", voksen=False), encoding="utf-8")
    assert main(["ruleset", "propose", str(work / "2025.1.yaml"), *address, *anna]) == 1
    assert "FAIL" in capsys.readouterr().err
    (work / "2025.1.cases.yaml").write_text(cases("2025-01-01"), encoding="utf-8")
    assert main(["ruleset", "propose", str(work / "2025.1.yaml"), *address, *anna]) == 0
    said = capsys.readouterr().out
    assert f"regelmotor ruleset approve sats 2025.1 --sha256 {sha256(text)} --acknowledge h1" in said
    assert main(["ruleset", "approve", "sats", "2025.1", "--sha256", sha256(text), "--acknowledge", "h1",
                 *address, *anna]) == 3
    assert "FOUR_EYES: FAILED_PRECONDITION: sats@2025.1 was proposed by anna" in capsys.readouterr().err
    assert main(["ruleset", "approve", "sats", "2025.1", "--sha256", "abc", *address, *bjorn]) == 2
    assert "sha256: required" in capsys.readouterr().err
    assert main(["ruleset", "approve", "sats", "2025.1", "--sha256", sha256(text), "--acknowledge", "h1",
                 *address, *bjorn]) == 0
    assert "publisert: sats@2025.1  published  2025-01-01" in capsys.readouterr().out
    assert main(["ruleset", "history", "sats", *address, *bjorn]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[1:4] for line in lines[-3:]] == [
        ["regelmotor (first start)", "imported", "2024.1"], ["anna", "proposed", "2025.1"],
        ["bjorn", "approved", "2025.1"]]
    assert main(["ruleset", "retire", "sats", "2025.1", "--from", "2026-01-01", *address, *anna]) == 3
    assert "TIMELINE: FAILED_PRECONDITION: retiring sats@2025.1 would make version 2024.1 govern" in (
        capsys.readouterr().err)
    assert main(["ruleset", "retire", "sats", "2024.1", "--from", "2024-02-01", *address, *anna]) == 0
    assert "tilbaketrukket: sats@2024.1  retired  2024-01-01 – …, tilbaketrukket fra 2024-02-01" in (
        capsys.readouterr().out)


def test_export_writes_the_store_as_a_directory_and_import_stores_it_again(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    seeded = seed_directory(tmp_path / "rulesets")
    first = tmp_path / "first.db"
    assert main(["ruleset", "import", str(seeded), "--store", str(first)]) == 0
    assert "importert: 1 versjon(er): sats@2024.1" in capsys.readouterr().out
    assert main(["ruleset", "import", str(seeded), "--store", str(first)]) == 0  # again: nothing new
    assert "importert: 0 versjon(er)" in capsys.readouterr().out
    exported = tmp_path / "exported"
    assert main(["ruleset", "export", str(exported), "--store", str(first)]) == 0
    for name in ("published.txt", "sats/2024.1.yaml", "sats/2024.1.cases.yaml"):
        assert filecmp.cmp(seeded / name, exported / name, shallow=False), name
    changed = (exported / "sats" / "2024.1.yaml").read_text(encoding="utf-8").replace("Sats 2024.1", "Sats endret")
    (exported / "sats" / "2024.1.yaml").write_text(changed, encoding="utf-8")
    (exported / "published.txt").write_text(f"sats 2024.1 {sha256(changed)}\n", encoding="utf-8")
    assert main(["ruleset", "import", str(exported), "--store", str(first)]) == 3
    assert "sats@2024.1 already exists (published)" in capsys.readouterr().err
    with open_log(first) as log:
        assert [(s.key, s.state.value) for s in log.rulesets().states()] == [("sats@2024.1", "published")]


def _directory_with(root: Path, version: str, fra: str) -> Path:
    """The seeded directory plus `version` (published in its published.txt), as a team's git checkout holds it."""
    seed_directory(root)
    text = source(version, fra, verified=False)
    (root / "sats" / f"{version}.yaml").write_text(text, encoding="utf-8")
    (root / "sats" / f"{version}.cases.yaml").write_text(cases(fra), encoding="utf-8")
    with (root / "published.txt").open("a", encoding="utf-8") as record:
        record.write(f"sats {version} {sha256(text)}\n")
    return root


def test_import_into_a_store_holding_versions_only_proposes_them_for_another_person_to_approve(
        server: RunningServer, idp: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    address = ["--address", server.address]
    anna = _token(idp, tmp_path / "anna.jwt", "anna", "ruleset:approve", "ruleset:read")
    bjorn = _token(idp, tmp_path / "bjorn.jwt", "bjorn", "ruleset:approve", "ruleset:read")
    directory = _directory_with(tmp_path / "git", "2025.1", "2025-01-01")
    text = (directory / "sats" / "2025.1.yaml").read_text(encoding="utf-8")
    monkeypatch.setenv("USER", "anna")  # the importer, as the command line names its user
    assert main(["ruleset", "import", str(directory), "--store", str(tmp_path / "data" / "decisions.db")]) == 0
    said = capsys.readouterr().out
    assert "importert: 1 versjon(er): sats@2025.1" in said
    assert (f"proposed: sats@2025.1 (by anna, not published) — ask an approver: regelmotor ruleset approve sats "
            f"2025.1 --sha256 {sha256(text)} --acknowledge h1") in said
    assert main(["ruleset", "history", "sats", *address, *bjorn]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("sats@2025.1  proposed  2025-01-01")  # stored, not served
    assert lines[-1].split("  ")[1:4] == ["anna", "proposed", "2025.1"]
    approve = ["ruleset", "approve", "sats", "2025.1", "--sha256", sha256(text), "--acknowledge", "h1", *address]
    assert main([*approve, *anna]) == 3
    assert "FOUR_EYES: FAILED_PRECONDITION: sats@2025.1 was proposed by anna" in capsys.readouterr().err
    assert main(["ruleset", "approve", "sats", "2025.1", "--sha256", sha256(text), *address, *bjorn]) == 3
    assert "HJEMMEL_NOT_VERIFIED" in capsys.readouterr().err
    assert main([*approve, *bjorn]) == 0
    assert "publisert: sats@2025.1  published  2025-01-01" in capsys.readouterr().out


def test_export_keeps_retirements_and_importing_it_into_an_empty_store_gives_the_same_states(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "anna")
    first = tmp_path / "first.db"
    assert main(["ruleset", "import", str(seed_directory(tmp_path / "rulesets")), "--store", str(first)]) == 0
    directory = _directory_with(tmp_path / "git", "2025.1", "2025-01-01")
    assert main(["ruleset", "import", str(directory), "--store", str(first)]) == 0
    with open_log(first) as log:
        store = log.rulesets()
        store.approve("sats", "2025.1", sha256((directory / "sats" / "2025.1.yaml").read_text(encoding="utf-8")),
                      "bjorn", ("h1",))
        store.retire("sats", "2024.1", "bjorn", date(2024, 6, 1), "erstattet")
        before = [(s.key, s.state.value, s.retired_from) for s in store.states()]
    assert before == [("sats@2024.1", "retired", date(2024, 6, 1)), ("sats@2025.1", "published", None)]
    exported = tmp_path / "exported"
    assert main(["ruleset", "export", str(exported), "--store", str(first)]) == 0
    assert (exported / "retired.txt").read_text(encoding="utf-8") == "sats@2024.1 from 2024-06-01\n"
    fresh = tmp_path / "fresh.db"
    capsys.readouterr()
    assert main(["ruleset", "import", str(exported), "--store", str(fresh)]) == 0
    assert "proposed:" not in capsys.readouterr().out  # an empty store takes the export as it is
    with open_log(fresh) as log:
        store = log.rulesets()
        assert [(s.key, s.state.value, s.retired_from) for s in store.states()] == before
        repository = RulesetRepository.from_snapshot(store.snapshot())
    with pytest.raises(NoVersionInForce, match="sats"):
        repository.select("sats", date(2024, 7, 1))
    assert repository.select("sats", date(2025, 2, 1)).meta.version == "2025.1"
    with pytest.raises(VersionRetired, match="retired from 2024-06-01"):
        repository.check_pinned(repository.get("sats", "2024.1"), date(2024, 6, 1))


def test_history_shows_a_correction_with_the_version_it_corrects_and_why(
        server: RunningServer, idp: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    address = ["--address", server.address]
    anna = _token(idp, tmp_path / "anna.jwt", "anna", "ruleset:author", "ruleset:read")
    bjorn = _token(idp, tmp_path / "bjorn.jwt", "bjorn", "ruleset:approve", "ruleset:read")
    reason = "Aldersgrensen var lest feil; loven er uendret."
    text = source("2024.1.1", "2024-06-01", extra=f'supersedes: "2024.1"\ncorrection_reason: "{reason}"')
    (tmp_path / "2024.1.1.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "2024.1.1.cases.yaml").write_text(cases("2024-06-01"), encoding="utf-8")
    assert main(["ruleset", "propose", str(tmp_path / "2024.1.1.yaml"), *address, *anna]) == 0
    assert main(["ruleset", "approve", "sats", "2024.1.1", "--sha256", sha256(text), *address, *bjorn]) == 0
    capsys.readouterr()
    assert main(["ruleset", "history", "sats", *address, *bjorn]) == 0
    shown = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(shown) if line.startswith("sats@2024.1.1  published  2024-06-01"))
    assert shown[at + 1] == f"    retter 2024.1: «{reason}»"
    corrected = next(i for i, line in enumerate(shown) if line.startswith("sats@2024.1  "))
    assert shown[corrected + 1] == "    rettet av 2024.1.1"
    assert not any(line.startswith("    retter") for line in shown[:at])  # 2024.1 itself corrects nothing
