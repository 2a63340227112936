"""The authors' tools: validate, test, diff, evaluate — through the real console entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from regelmotor.cli.main import main
from tests.conftest import FIXTURES, ROOT

EXAMPLE = FIXTURES / "rulesets" / "vurderingsfrist" / "2015.11.yaml"


def test_validate_reports_ok_and_sha(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ruleset", "validate", str(EXAMPLE)]) == 0
    assert "ok: vurderingsfrist@2015.11 sha256 " in capsys.readouterr().out


def test_validate_reports_file_line_and_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "2015.11.yaml"
    broken.write_text(EXAMPLE.read_text(encoding="utf-8").replace("alder < 23", "aldr < 23"), encoding="utf-8")
    assert main(["ruleset", "validate", str(broken)]) == 1
    err = capsys.readouterr().err
    assert f"{broken}:" in err and "unknown fact or value 'aldr'" in err


def test_ruleset_test_passes_and_fails_with_expected_vs_actual(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "rulesets"
    shutil.copytree(FIXTURES / "rulesets", root)
    assert main(["ruleset", "test", str(root)]) == 0
    assert " passed, 0 failed" in capsys.readouterr().out
    cases = root / "vurderingsfrist" / "2015.11.cases.yaml"
    cases.write_text(cases.read_text(encoding="utf-8").replace("vurderingsfrist: 2026-04-16",
                                                               "vurderingsfrist: 2026-04-15"), encoding="utf-8")
    assert main(["ruleset", "test", str(root)]) == 1
    out = capsys.readouterr().out
    assert "FAIL vurderingsfrist@2015.11" in out
    assert "vurderingsfrist: expected '2026-04-15', actual '2026-04-16'" in out
    assert "fired: " in out and "1 failed" in out


def test_right_answer_for_the_wrong_reason_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "rulesets"
    shutil.copytree(FIXTURES / "rulesets", root)
    cases = root / "vurderingsfrist" / "2015.11.cases.yaml"
    text = cases.read_text(encoding="utf-8")
    assert "fired: [vurderingsfrist, rett, frist-klinisk, frist-unge-maks]" in text
    cases.write_text(text.replace("fired: [vurderingsfrist, rett, frist-klinisk, frist-unge-maks]",
                                  "fired: [vurderingsfrist, rett, frist-klinisk]"), encoding="utf-8")
    assert main(["ruleset", "test", str(root)]) == 1
    assert "fired but not expected ['frist-unge-maks']" in capsys.readouterr().out


def test_diff_lists_rule_parameter_and_schema_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    changed = tmp_path / "2015.12.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('version: "2015.11"', 'version: "2015.12"')
    text = text.replace("value: 65}", "value: 60}")
    text = text.replace("  vurdert_dato: {type: date}\n", "  vurdert_dato: {type: date}\n  ny: {type: bool}\n")
    text = text.replace("maks_frist_dato < klinisk_frist_dato", "maks_frist_dato <= klinisk_frist_dato")
    changed.write_text(text, encoding="utf-8")
    assert main(["ruleset", "diff", str(EXAMPLE), str(changed)]) == 0
    out = capsys.readouterr().out
    assert "~ parameter maks_virkedager_unge: 2015-11-01: 65 virkedager → 2015-11-01: 60 virkedager" in out
    assert "+ fact ny: bool" in out
    assert "~ frist-unge-maks" in out and "maks_frist_dato <= klinisk_frist_dato" in out
    assert "version: 2015.11 → 2015.12" in out


def test_evaluate_prints_tree_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"ansiennitetsdato": "2020-03-02", "fodselsdato": "2000-01-01",
                                 "fagomrade": "tsb", "forventet_nytte": True, "kostnad_rimelig": True,
                                 "klinisk_frist_uker": 20}), encoding="utf-8")
    args = ["evaluate", "--rulesets", str(FIXTURES / "rulesets"), "--ruleset", "vurderingsfrist",
            "--facts", str(facts), "--as-of", "2020-04-01"]
    assert main(args) == 0
    tree = capsys.readouterr().out
    assert "frist = \"2020-06-09\"" in tree and "↷ frist-klinisk" in tree and "overstyrt av frist-unge-maks" in tree
    assert "hjemmel: prioriteringsforskriften § 4a (ikke verifisert)" in tree
    assert main([*args, "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["outcome"]["frist_kilde"] == "maks_65_virkedager"
    assert decision["selected_by"] == "ansiennitetsdato" and decision["as_of"] == "2020-04-01"


def test_evaluate_bad_input_exits_non_zero_with_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"ansiennitetsdato": "2020-03-02", "fodselsdato": "2000-01-01",
                                 "fagomrade": "tsbb", "forventet_nytte": "ja", "kostnad_rimelig": True}))
    code = main(["evaluate", "--rulesets", str(FIXTURES / "rulesets"), "--ruleset", "vurderingsfrist",
                 "--facts", str(facts), "--as-of", "2020-04-01"])
    err = capsys.readouterr().err
    assert code == 2 and "fagomrade: 'tsbb' is not a known value" in err and "forventet_nytte" in err


def test_console_script_is_installed_and_runs() -> None:
    script = Path(sys.executable).parent / "regelmotor"
    if not script.exists() and not os.environ.get("CI"):
        pytest.skip("the regelmotor console script is installed by `make test` (pip install -e .)")
    result = subprocess.run([str(script), "ruleset", "validate", str(EXAMPLE)], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    assert result.returncode == 0 and "ok: vurderingsfrist@2015.11" in result.stdout


def test_documentation_example_is_the_tested_fixture() -> None:
    doc = (ROOT / "docs" / "ruleset-format.md").read_text(encoding="utf-8")
    assert EXAMPLE.read_text(encoding="utf-8").rstrip() in doc


def test_diff_reports_rule_order_patterns_and_hjemler(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    blocks = text.split("  - id: ")
    # Swap the first two rules: order decides `collect` outcomes, so it is a change of meaning.
    swapped = "  - id: ".join([blocks[0], blocks[2], blocks[1], *blocks[3:]])
    swapped = swapped.replace("verified: true\n  prioritering-2:", "verified: false\n  prioritering-2:")
    new_fact = "  kode: {type: string, pattern: '^[A-Z]$'}\n"
    swapped = swapped.replace("  vurdert_dato: {type: date}\n", "  vurdert_dato: {type: date}\n" + new_fact)
    changed = tmp_path / "b.yaml"
    changed.write_text(swapped, encoding="utf-8")
    assert main(["ruleset", "diff", str(EXAMPLE), str(changed)]) == 0
    out = capsys.readouterr().out
    assert "rule order: vurderingsfrist, vurderingsfrist-brutt" in out
    assert "~ hjemmel pbrl-2-2" in out and "(ikke verifisert)" in out
    assert "+ fact kode: string pattern ^[A-Z]$" in out
    assert "no differences in meaning" not in out


def test_evaluate_reports_an_impossible_date_in_a_yaml_facts_file(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text("ansiennitetsdato: 2020-03-02\nfodselsdato: 2025-02-30\n", encoding="utf-8")
    code = main(["evaluate", "--rulesets", str(FIXTURES / "rulesets"), "--ruleset", "vurderingsfrist",
                 "--facts", str(facts), "--as-of", "2020-04-01"])
    assert code == 1 and "impossible date '2025-02-30'" in capsys.readouterr().err


@pytest.mark.parametrize(("as_of", "reason"), [
    ("٢٠٢٠-٠٤-٠١", "expected a date as text YYYY-MM-DD (ASCII digits)"),
    ("9999-12-31", "9999-12-31 is outside the dates the engine accepts"),
    ("i morgen", "expected a date as text YYYY-MM-DD"),
])
def test_evaluate_bad_as_of_exits_non_zero_naming_as_of(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        as_of: str, reason: str) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"ansiennitetsdato": "2020-03-02", "fodselsdato": "2000-01-01",
                                 "fagomrade": "tsb", "forventet_nytte": True, "kostnad_rimelig": True}))
    code = main(["evaluate", "--rulesets", str(FIXTURES / "rulesets"), "--ruleset", "vurderingsfrist",
                 "--facts", str(facts), "--as-of", as_of])
    assert code == 2 and f"as_of: {reason}" in capsys.readouterr().err
