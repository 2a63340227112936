"""The JSON Schema of the ruleset and cases file formats, generated from the format's shapes, shipped in the
package and in docs/, and the same as what an editor checks a file against."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from regelmotor.cli.main import main
from regelmotor.core.errors import RulesetInvalid
from regelmotor.core.format_schema import SCHEMA_FILES, cases_schema, ruleset_schema, schema_text
from regelmotor.core.literals import SCALAR_TYPES
from regelmotor.core.loader import load_ruleset_text
from tests.conftest import BUNDLED_RULESETS, FIXTURES, ROOT

RULESET_FILES = sorted(p for p in [*BUNDLED_RULESETS.glob("*/*.yaml"), *FIXTURES.glob("rulesets/*/*.yaml")]
                       if not p.name.endswith(".cases.yaml"))
CASES_FILES = sorted([*BUNDLED_RULESETS.glob("*/*.cases.yaml"), *FIXTURES.glob("rulesets/*/*.cases.yaml")])
EXAMPLE = FIXTURES / "rulesets" / "vurderingsfrist" / "2015.11.yaml"
REGENERATE = ("regenerate with `regelmotor ruleset schema --write-to docs` and "
              "`regelmotor ruleset schema --write-to services/rules/regelmotor/schemas`")


def as_editor_sees_it(text: str) -> Any:
    """A YAML file as an editor's YAML extension gives it to its schema: dates and datetimes are text."""
    return json.loads(json.dumps(yaml.safe_load(text), default=str))


def problems(schema: dict[str, Any], text: str) -> list[jsonschema.ValidationError]:
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return sorted(validator.iter_errors(as_editor_sees_it(text)), key=lambda error: list(error.absolute_path))


@pytest.mark.parametrize("file_name", SCHEMA_FILES)
def test_the_shipped_schema_files_are_the_generated_ones(file_name: str) -> None:
    generated = schema_text(file_name)
    assert (ROOT / "docs" / file_name).read_text(encoding="utf-8") == generated, REGENERATE
    shipped = resources.files("regelmotor").joinpath("schemas", file_name).read_text(encoding="utf-8")
    assert shipped == generated, REGENERATE


def test_the_schemas_are_valid_draft_07() -> None:
    jsonschema.Draft7Validator.check_schema(ruleset_schema())
    jsonschema.Draft7Validator.check_schema(cases_schema())


@pytest.mark.parametrize("path", RULESET_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_ruleset_validates(path: Path) -> None:
    assert problems(ruleset_schema(), path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", CASES_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_cases_file_validates(path: Path) -> None:
    assert problems(cases_schema(), path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(("right", "wrong", "where"), [
    ("    combine: priority\n", "    combin: priority\n", ["outcomes", "utfall"]),
    ("\nrules:\n", "\nrule:\n", []),
    ("    required: true\n", "    requird: true\n", ["facts", "ansiennitetsdato"]),
    ("    unntak_fra: frist-klinisk\n", "    untak_fra: frist-klinisk\n", ["rules", 5]),
])
def test_a_misspelt_key_is_reported_by_the_schema_and_the_loader(right: str, wrong: str, where: list[Any]) -> None:
    source = EXAMPLE.read_text(encoding="utf-8")
    assert right in source
    misspelt = source.replace(right, wrong, 1)
    (error,) = problems(ruleset_schema(), misspelt)
    assert list(error.absolute_path) == where
    key = wrong.strip().split(":")[0]
    assert error.validator == "additionalProperties" and f"'{key}' was unexpected" in error.message
    with pytest.raises(RulesetInvalid, match=f"unknown (key|section) '{key}'"):
        load_ruleset_text(misspelt)


def test_a_value_of_the_wrong_kind_and_an_unknown_choice_are_reported() -> None:
    source = EXAMPLE.read_text(encoding="utf-8").replace("    combine: priority\n", "    combine: prioritet\n", 1)
    source = source.replace("status: published", "status: utkast").replace("verified: true", "verified: 'ja'", 1)
    assert sorted(error.message for error in problems(ruleset_schema(), source)) == [
        "'ja' is not of type 'boolean'", "'prioritet' is not one of ['unique', 'priority', 'any', 'all', 'min', 'max', "
        "'collect']", "'utkast' is not one of ['draft', 'published']"]


def test_the_type_names_are_those_the_loader_reads() -> None:
    listed = ruleset_schema()["definitions"]["fact"]["properties"]["type"]["enum"]
    assert set(listed) == {*SCALAR_TYPES, "enum", "list"}


def test_cli_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ruleset", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == ruleset_schema()
    assert main(["ruleset", "schema", "--cases"]) == 0
    assert json.loads(capsys.readouterr().out) == cases_schema()
