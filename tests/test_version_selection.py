"""Selecting the single version in force, at the exact boundary dates; timelines; publication."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from regelmotor.cli.main import main
from regelmotor.core.api import Regelmotor
from regelmotor.core.errors import (
    InvalidFacts,
    NoVersionInForce,
    RulesetInvalid,
    RulesetNotFound,
    VersionNotFound,
)
from regelmotor.core.loader import load_ruleset_file
from regelmotor.core.repository import PUBLISHED_FILE, RulesetRepository

VERSION = """\
name: frist
version: "{version}"
title: Frist {version}
status: {status}
gyldig_fra: {fra}
{til}
{extra}
selected_by: mottatt
hjemler:
  h1: {{kilde: LOV-1999-07-02-63, paragraf: "2-2", verified: true}}
facts:
  mottatt: {{type: date, required: true}}
rules:
  - id: regime
    title: Regime
    hjemmel: h1
    when: "true"
    then: {{regime: "{version}"}}
outcomes:
  regime: {{type: string}}
"""


def write_version(root: Path, version: str, fra: str, til: str | None = None, *, status: str = "published",
                  extra: str = "", name: str = "frist") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}.yaml"
    text = VERSION.format(version=version, fra=fra, til=f"gyldig_til: {til}" if til else "", status=status,
                          extra=extra).replace("name: frist", f"name: {name}")
    path.write_text(text, encoding="utf-8")
    return path


def publish(root: Path, *paths: Path) -> None:
    lines = []
    for path in paths:
        ruleset = load_ruleset_file(path)
        lines.append(f"{ruleset.meta.name} {ruleset.meta.version} {ruleset.sha256}\n")
    (root / PUBLISHED_FILE).write_text("".join(lines), encoding="utf-8")


@pytest.fixture
def two_regimes(tmp_path: Path) -> Path:
    old = write_version(tmp_path, "2015.11", "2015-11-01", "2024-06-30")
    new = write_version(tmp_path, "2024.07", "2024-07-01")
    publish(tmp_path, old, new)
    return tmp_path


@pytest.mark.parametrize(
    ("mottatt", "expected"),
    [("2015-11-01", "2015.11"), ("2024-06-30", "2015.11"), ("2024-07-01", "2024.07"), ("2030-01-01", "2024.07")],
)
def test_version_selected_by_fact_at_boundaries(two_regimes: Path, mottatt: str, expected: str) -> None:
    motor = Regelmotor.from_directory(two_regimes)
    decision = motor.evaluate("frist", {"mottatt": mottatt}, as_of=date(2026, 1, 1))
    assert decision.version == expected
    assert decision.outcome["regime"] == expected
    assert decision.selected_by == "mottatt" and decision.selection_date == mottatt


def test_no_version_in_force_before_the_first(two_regimes: Path) -> None:
    motor = Regelmotor.from_directory(two_regimes)
    with pytest.raises(NoVersionInForce, match=r"^no version of 'frist' is in force on 2015-10-31 \(selected by "
                                               r"mottatt\); versions cover: 2015\.11: 2015-11-01") as caught:
        motor.evaluate("frist", {"mottatt": "2015-10-31"}, as_of=date(2026, 1, 1))
    assert "2015-10-31" in str(caught.value) and "selected by mottatt" in str(caught.value)


def test_pinned_version_wins_over_selection(two_regimes: Path) -> None:
    motor = Regelmotor.from_directory(two_regimes)
    decision = motor.evaluate("frist", {"mottatt": "2025-01-01"}, as_of=date(2026, 1, 1), version="2015.11")
    assert decision.version == "2015.11"


def test_pin_that_does_not_exist_and_unknown_ruleset(two_regimes: Path) -> None:
    motor = Regelmotor.from_directory(two_regimes)
    with pytest.raises(VersionNotFound, match=r"^ruleset 'frist' has no version '2099\.1'; versions: "
                                              r"2015\.11, 2024\.07$") as caught:
        motor.evaluate("frist", {"mottatt": "2025-01-01"}, as_of=date(2026, 1, 1), version="2099.1")
    assert "2015.11, 2024.07" in str(caught.value)
    with pytest.raises(RulesetNotFound, match=r"^no ruleset named 'fristt'; known rulesets: frist$"):
        motor.evaluate("fristt", {"mottatt": "2025-01-01"}, as_of=date(2026, 1, 1))


def test_selecting_fact_missing_or_impossible_is_an_input_error(two_regimes: Path) -> None:
    motor = Regelmotor.from_directory(two_regimes)
    with pytest.raises(InvalidFacts, match=r"^invalid facts: mottatt: required fact is missing \(it selects the "
                                           r"version\)$") as caught:
        motor.evaluate("frist", {}, as_of=date(2026, 1, 1))
    assert caught.value.violations[0].field == "mottatt"
    with pytest.raises(InvalidFacts, match=r"^invalid facts: mottatt: impossible date '2024-02-30'$") as caught:
        motor.evaluate("frist", {"mottatt": "2024-02-30"}, as_of=date(2026, 1, 1))
    assert "impossible date" in caught.value.violations[0].reason


def test_open_ended_version_ends_the_day_before_its_successor(tmp_path: Path) -> None:
    a = write_version(tmp_path, "1", "2020-01-01")
    b = write_version(tmp_path, "2", "2021-01-01")
    publish(tmp_path, a, b)
    repo = RulesetRepository.load(tmp_path)
    assert repo.select("frist", date(2020, 12, 31)).meta.version == "1"
    assert repo.select("frist", date(2021, 1, 1)).meta.version == "2"


def test_overlapping_versions_are_refused(tmp_path: Path) -> None:
    a = write_version(tmp_path, "1", "2020-01-01", "2021-01-01")
    b = write_version(tmp_path, "2", "2021-01-01")
    publish(tmp_path, a, b)
    with pytest.raises(RulesetInvalid, match=r"1\.yaml:6:1: version 1 runs to 2021-01-01, overlapping version 2 "
                                             r"from 2021-01-01$") as caught:
        RulesetRepository.load(tmp_path)
    (d,) = caught.value.diagnostics
    assert "overlapping version 2" in d.message and d.file.endswith("1.yaml") and d.line == 6


def test_gap_between_versions_is_refused_unless_declared(tmp_path: Path) -> None:
    a = write_version(tmp_path, "1", "2020-01-01", "2020-06-30")
    b = write_version(tmp_path, "2", "2021-01-01")
    publish(tmp_path, a, b)
    with pytest.raises(RulesetInvalid, match="2\\.yaml:5:1: gap: no version of 'frist' governs 2020-07-01 – "
                                             "2020-12-31; declare `allow_gap_before: true`") as caught:
        RulesetRepository.load(tmp_path)
    (d,) = caught.value.diagnostics
    assert "gap" in d.message and "2020-07-01 – 2020-12-31" in d.message and d.file.endswith("2.yaml")
    b = write_version(tmp_path, "2", "2021-01-01", extra="allow_gap_before: true")
    publish(tmp_path, a, b)
    repo = RulesetRepository.load(tmp_path)
    with pytest.raises(NoVersionInForce, match=r"^no version of 'frist' is in force on 2020-09-01 \(selected by "
                                               r"mottatt\); versions cover: 1: 2020-01-01 – 2020-06-30; 2: "
                                               r"2021-01-01 – …$"):
        repo.select("frist", date(2020, 9, 1))


def test_drafts_are_not_selected_unless_asked(tmp_path: Path) -> None:
    a = write_version(tmp_path, "1", "2020-01-01")
    write_version(tmp_path, "2", "2021-01-01", status="draft")
    publish(tmp_path, a)
    assert RulesetRepository.load(tmp_path).select("frist", date(2022, 1, 1)).meta.version == "1"
    assert RulesetRepository.load(tmp_path, include_drafts=True).select("frist", date(2022, 1, 1)).meta.version == "2"


def test_changed_published_version_is_refused(two_regimes: Path) -> None:
    path = two_regimes / "frist" / "2024.07.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("title: Frist 2024.07", "title: Endret"),
                    encoding="utf-8")
    with pytest.raises(RulesetInvalid, match=r"2024\.07\.yaml:2:1: frist@2024\.07 was published with sha256 "
                                             r"[0-9a-f]{16}…, but this file's content has sha256 [0-9a-f]{16}…: "
                                             r"a published version never changes; make a new version$"):
        RulesetRepository.load(two_regimes)


def test_comments_and_layout_do_not_change_the_hash(two_regimes: Path) -> None:
    path = two_regimes / "frist" / "2024.07.yaml"
    path.write_text("# a comment\n\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    assert RulesetRepository.load(two_regimes).get("frist", "2024.07")


def test_published_status_without_record_is_refused(tmp_path: Path) -> None:
    write_version(tmp_path, "1", "2020-01-01")
    with pytest.raises(RulesetInvalid, match=r"1\.yaml:2:1: frist@1 says status: published but is not in "
                                             r"published\.txt; record it with `regelmotor ruleset publish`$"):
        RulesetRepository.load(tmp_path)


def test_publish_command_records_hash_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_version(tmp_path, "1", "2020-01-01")
    assert main(["ruleset", "publish", str(path)]) == 0
    assert main(["ruleset", "publish", str(path)]) == 0
    record = (tmp_path / PUBLISHED_FILE).read_text(encoding="utf-8").splitlines()
    assert record == [f"frist 1 {load_ruleset_file(path).sha256}"]
    path.write_text(path.read_text(encoding="utf-8").replace("Frist 1", "Endret"), encoding="utf-8")
    assert main(["ruleset", "publish", str(path)]) == 1


def test_file_must_sit_at_name_and_version(tmp_path: Path) -> None:
    path = write_version(tmp_path, "1", "2020-01-01", status="draft")
    path.rename(tmp_path / "frist" / "2.yaml")
    with pytest.raises(RulesetInvalid, match=r"2\.yaml:2:1: file must be at <rulesets>/frist/1\.yaml for ruleset "
                                             r"'frist' version '1'$"):
        RulesetRepository.load(tmp_path)


def test_cases_may_share_facts_with_yaml_merge_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_version(tmp_path, "1", "2020-01-01", status="draft")
    (tmp_path / "frist" / "1.cases.yaml").write_text(
        "base: &base {mottatt: 2020-02-01}\n"
        "cases:\n"
        "  - {name: a, as_of: 2021-01-01, facts: {<<: *base}, expect: {regime: '1'}}\n"
        "  - {name: b, as_of: 2021-01-01, facts: {<<: *base, mottatt: 2019-01-01},\n"
        "     expect_error: {type: NoVersionInForce, contains: 2019-01-01}, expect_version: '1'}\n",
        encoding="utf-8")
    assert main(["ruleset", "test", str(path)]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out
