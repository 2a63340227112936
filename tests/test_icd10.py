"""ICD-10 codes and ranges as rulesets write them (regelmotor.core.icd10): what a code or range covers, and
which texts are refused as ranges, with the reason an author reads."""

from __future__ import annotations

import re

import pytest

from regelmotor.core.icd10 import in_range, range_problem


@pytest.mark.parametrize(("code", "spec", "covered"), [
    pytest.param("F25.1", "F20-F31", True, id="a category range covers a subcode inside it"),
    pytest.param("F32", "F20-F31", False, id="a category range ends at its last category"),
    pytest.param("F32.20", "F32.2", True, id="a subcode covers its own subcodes"),
    pytest.param("F32.1", "F32.2", False, id="a subcode does not cover a sibling"),
    pytest.param("E11.65", "E11", True, id="a category covers its subcodes"),
])
def test_what_a_code_or_range_covers(code: str, spec: str, covered: bool) -> None:
    assert in_range(code, spec) is covered


@pytest.mark.parametrize("spec", ["f20", "F20-", "F2", "", "F20 - F31", "F32."])
def test_a_malformed_spec_is_refused_when_used(spec: str) -> None:
    with pytest.raises(ValueError, match=f"^not an ICD-10 code or range: {re.escape(repr(spec))}$"):
        in_range("F25.1", spec)


@pytest.mark.parametrize("spec", ["E11", "F32.2", "F20-F31", "O00-O99", "F10.24", "C00-D48", "F10-F10"])
def test_codes_and_ranges_of_categories_are_usable(spec: str) -> None:
    assert range_problem(spec) is None


@pytest.mark.parametrize(("spec", "problem"), [
    pytest.param("f20", "'f20' is not an ICD-10 code or range like 'E11', 'F32.2' or 'F20-F31'", id="lower case"),
    pytest.param("F20-F10", "range 'F20-F10' runs backwards", id="a backwards range"),
    *[pytest.param(spec, f"range {spec!r}: a range must be between three-character categories; list subcodes one by "
                   "one", id=f"a range of subcodes {spec}") for spec in ["F10.2-F19.2", "F10.2-F19", "F10-F19.2"]],
    *[pytest.param(spec, f"{spec!r} is not an ICD-10 code or range like 'E11', 'F32.2' or 'F20-F31'",
                   id=f"malformed {spec!r}") for spec in ["", "F2", "F20-", "F20 - F31", "20F", "F20-F31-F40"]],
])
def test_a_text_that_is_no_usable_range_is_refused_with_the_reason(spec: str, problem: str) -> None:
    assert range_problem(spec) == problem
