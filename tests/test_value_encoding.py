"""The exact-type shortcuts of `encode_for_engine` and `to_json_value` (and of `engine_values` and `json_values`,
which encode a whole mapping) give what the general way gives, for any value a fact, a derived value or an outcome
can hold (subclasses such as datetime, a date's, included)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from regelmotor.core import types

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.floats(allow_nan=False),
    st.dates(), st.datetimes(timezones=st.just(UTC)), st.decimals(allow_nan=False, allow_infinity=False, places=2),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.tuples(inner, inner)), max_leaves=12)


@given(VALUES)
def test_the_engine_encoding_takes_the_shortcut_to_the_same_value(value: Any) -> None:
    assert types.encode_for_engine(value) == types.general_engine_value(value)


@given(st.one_of(VALUES, st.dictionaries(st.text(max_size=4), VALUES, max_size=3)))
def test_the_json_form_takes_the_shortcut_to_the_same_value(value: Any) -> None:
    assert types.to_json_value(value) == types.general_json_value(value)


@given(st.dictionaries(st.text(max_size=4), VALUES, max_size=5))
def test_a_mapping_is_encoded_as_each_of_its_values(values: dict[str, Any]) -> None:
    assert types.engine_values(values) == {name: types.general_engine_value(v) for name, v in values.items()}
    assert types.json_values(values) == {name: types.general_json_value(v) for name, v in values.items()}


def test_the_shortcuts_keep_the_general_meaning_of_the_types_they_skip() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert types.encode_for_engine(date(2026, 1, 2)) == 20260102
    assert types.encode_for_engine(moment) == int(moment.timestamp())  # a datetime is a date, not taken as one
    assert types.encode_for_engine([]) is None  # an empty list is null to the engine
    assert types.encode_for_engine([Decimal("1.50"), date(2026, 1, 2)]) == [1.5, 20260102]
    assert types.to_json_value([moment, Decimal("1.50")]) == ["2026-01-02T03:04:05+00:00", "1.50"]
