"""ICD-10 codes and ranges as rulesets write them (regelmotor.core.icd10): what a code or range covers, and
which texts are refused as ranges, with the reason an author reads."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regelmotor.core.icd10 import RangeIndex, in_range, range_problem


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


_LETTERS = "ABCEFZ"
_categories = st.builds(lambda letter, number: f"{letter}{number:02d}", st.sampled_from(_LETTERS), st.integers(0, 99))
_subcodes = st.builds(lambda category, tail: f"{category}.{tail}", _categories,
                      st.text(alphabet="0129AXZ", min_size=1, max_size=2))
# What `_spec` reads, refused ranges (backwards, of subcodes) too: the index must agree with in_range on them.
_specs = st.one_of(_categories, _subcodes,
                   st.builds(lambda low, high: f"{low}-{high}", st.one_of(_categories, _subcodes),
                             st.one_of(_categories, _subcodes)))
# Codes as a fact may hold them: well formed, near misses (short, lower case, odd characters) and any text.
_codes = st.one_of(_categories, _subcodes, st.text(alphabet="ABEFZ0129.X -\"!aæ", max_size=7), st.text(max_size=6))


@settings(max_examples=400, deadline=None)
@given(specs=st.lists(_specs, max_size=30), codes=st.lists(_codes, max_size=20))
def test_the_index_finds_exactly_the_specs_that_cover_a_code(specs: list[str], codes: list[str]) -> None:
    index = RangeIndex(specs)
    for code in codes:
        assert list(index.positions(code)) == [i for i, spec in enumerate(specs) if in_range(code, spec)]


def test_the_index_of_a_table_finds_rows_by_category_and_by_range() -> None:
    index = RangeIndex(["B18", "C00-C97", "F10.2", "F20-F29", "F20-F31", "F25"])
    assert list(index.positions("F25.1")) == [3, 4, 5]
    assert list(index.positions("F30")) == [4]
    assert list(index.positions("F10.24")) == [2]
    assert list(index.positions("F10.3")) == []
    assert list(index.positions("C97.9")) == [1]
    assert list(index.positions("B1")) == []
