"""Fødselsnummer and D-nummer: mod-11 validation and keyed pseudonyms."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regelmotor.server.identity import InvalidIdentityNumber, Pseudonymiser, load_key, validate

_K1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def make_number(birth: str, individual: int, d_number: bool = False) -> str | None:
    """A synthetic number for tests (birth as DDMMYY), or None if no check digit exists."""
    day = int(birth[:2]) + (40 if d_number else 0)
    digits = [int(c) for c in f"{day:02d}{birth[2:]}{individual:03d}"]
    for weights in (_K1, _K2):
        check = (11 - sum(d * w for d, w in zip(digits, weights, strict=False)) % 11) % 11
        if check == 10:
            return None
        digits.append(check)
    return "".join(map(str, digits))


def test_valid_fodselsnummer_and_d_nummer() -> None:
    number = next(n for i in range(1000) if (n := make_number("010190", i)))
    assert validate(number) == number
    d_number = next(n for i in range(1000) if (n := make_number("150384", i, d_number=True)))
    assert d_number.startswith("55") and validate(d_number) == d_number


@pytest.mark.parametrize(("number", "reason"), [
    ("123", "11 digits"), ("0101901234x", "11 digits"), ("", "11 digits"),
    ("32019012345", "check digits"),
])
def test_invalid_numbers_are_refused_with_a_reason(number: str, reason: str) -> None:
    with pytest.raises(InvalidIdentityNumber) as caught:
        validate(number)
    assert reason in str(caught.value) and (not number or number not in str(caught.value))


@given(birth=st.dates().map(lambda d: d.strftime("%d%m%y")), individual=st.integers(0, 999))
def test_every_changed_digit_is_caught(birth: str, individual: int) -> None:
    number = make_number(birth, individual)
    if number is None:
        return
    assert validate(number) == number
    for position in range(11):
        changed = number[:position] + str((int(number[position]) + 1) % 10) + number[position + 1:]
        with pytest.raises(InvalidIdentityNumber):
            validate(changed)


def test_impossible_date_part_is_refused() -> None:
    number = next(n for i in range(1000) if (n := make_number("310290", i)))  # 31 February
    with pytest.raises(InvalidIdentityNumber, match="date"):
        validate(number)


def test_pseudonyms_are_keyed_stable_and_not_the_number(tmp_path: Path) -> None:
    number = next(n for i in range(1000) if (n := make_number("240599", i)))
    key = load_key(None, tmp_path / "keys" / "pseudonym.key")
    assert load_key(None, tmp_path / "keys" / "pseudonym.key") == key  # created once, then reused
    assert (tmp_path / "keys" / "pseudonym.key").stat().st_mode & 0o777 == 0o600
    first = Pseudonymiser(key).pseudonym(number)
    assert first == Pseudonymiser(key).pseudonym(number) and len(first) == 64 and number not in first
    assert Pseudonymiser(b"x" * 32).pseudonym(number) != first
    assert load_key("ab" * 32, tmp_path / "unused.key") == bytes.fromhex("ab" * 32)
    with pytest.raises(ValueError):
        Pseudonymiser(b"short")
