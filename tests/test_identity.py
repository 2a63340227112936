"""Identity numbers: validation of every kind, the synthetic-number setting, and keyed pseudonyms.

Every number here is published elsewhere (tests/identity_numbers.py names the sources); no test
computes check digits, so a wrong weight in the implementation cannot hide behind the same weight here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regelmotor.core.errors import RegelmotorError
from regelmotor.core.identity import (
    IdentityKind,
    InvalidIdentityNumber,
    Pseudonymiser,
    load_key,
    parse,
    validate,
)
from tests.identity_numbers import (
    BORN_AFTER_TODAY,
    D_NUMRE,
    FH_NUMBER,
    FODSELSNUMRE,
    FORMAT_2032,
    H_NUMRE,
    NO_CENTURY,
    NO_MONTH,
    SYNTHETIC,
    VALID,
)

KINDS = ([(n, IdentityKind.FODSELSNUMMER) for n in (*FODSELSNUMRE, BORN_AFTER_TODAY)]
         + [(n, IdentityKind.D_NUMMER) for n in D_NUMRE] + [(n, IdentityKind.H_NUMMER) for n in H_NUMRE])


@pytest.mark.parametrize(("number", "kind"), KINDS)
def test_published_numbers_of_every_kind_are_accepted_with_their_kind(number: str, kind: IdentityKind) -> None:
    assert parse(number) == parse(number, allow_synthetic=True)
    assert parse(number).kind is kind and validate(number) == number
    assert validate(f"  {number}\n") == number  # surrounding white space is not part of the number


@pytest.mark.parametrize("number", SYNTHETIC)
def test_synthetic_numbers_are_accepted_only_where_the_setting_allows_them(number: str) -> None:
    with pytest.raises(InvalidIdentityNumber, match=r"^synthetic test numbers \(month \+ 80\) are not accepted here "
                                                    r"\(setting allow_synthetic_ids\)$"):
        parse(number)
    assert parse(number, allow_synthetic=True).kind is IdentityKind.SYNTHETIC


def test_a_birth_date_after_today_is_not_refused_so_the_answer_never_depends_on_the_clock() -> None:
    # stdnum's validate() refuses this number today ("not been born yet") and accepts it from 18.10.2039.
    assert parse(BORN_AFTER_TODAY).kind is IdentityKind.FODSELSNUMMER


ELEVEN_DIGITS = r"^must be 11 digits \(0-9\)$"


@pytest.mark.parametrize(("number", "reason"), [
    ("123", ELEVEN_DIGITS), ("", ELEVEN_DIGITS), ("0101901234x", ELEVEN_DIGITS), ("130972480221", ELEVEN_DIGITS),
    ("130972 48022", ELEVEN_DIGITS),  # separators are not taken out (stdnum's compact() would)
    ("١٣٠٩٧٢٤٨٠٢٢", ELEVEN_DIGITS),  # 13097248022 in Arabic-Indic digits: str.isdigit() says yes
    ("１３０９７２４８０２２", ELEVEN_DIGITS),  # fullwidth digits, which stdnum's compact() maps to ASCII
    ("13097248032", r"^the check digits do not match \(mod 11\)$"),  # NAV: first check digit wrong
    ("13097248023", r"^the check digits do not match \(mod 11\)$"),  # NAV: second check digit wrong
    (FORMAT_2032, r"^the check digits do not match \(mod 11\)$"),
    (NO_MONTH[0], r"^the month part is not a month \(01-12, 41-52 in an H-nummer, 81-92 in a synthetic"),
    (NO_MONTH[1], r"^the month part is not a month"),
    (NO_CENTURY, r"^the individual number \(digits 7-9\) gives no century in which the birth date exists$"),
    (FH_NUMBER, r"^FH-numbers \(first digit 8 or 9\) are not accepted$"),
])
def test_invalid_numbers_are_refused_with_a_reason_that_does_not_repeat_them(number: str, reason: str) -> None:
    for allow_synthetic in (False, True):
        with pytest.raises(InvalidIdentityNumber, match=reason) as caught:
            parse(number, allow_synthetic=allow_synthetic)
        assert len(number) < 4 or number.strip() not in str(caught.value)
        assert isinstance(caught.value, RegelmotorError)


@given(number=st.sampled_from(VALID + SYNTHETIC), position=st.integers(0, 10), change=st.integers(1, 9))
def test_every_changed_digit_of_a_valid_number_is_caught(number: str, position: int, change: int) -> None:
    changed = number[:position] + str((int(number[position]) + change) % 10) + number[position + 1:]
    with pytest.raises(InvalidIdentityNumber, match=r"^the check digits do not match \(mod 11\)$"):
        parse(changed, allow_synthetic=True)


NON_ASCII_DIGITS = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())


@given(number=st.sampled_from(VALID), position=st.integers(0, 10), digit=NON_ASCII_DIGITS)
def test_a_non_ascii_digit_anywhere_is_refused_as_not_a_digit(number: str, position: int, digit: str) -> None:
    with pytest.raises(InvalidIdentityNumber, match=ELEVEN_DIGITS):
        parse(number[:position] + digit + number[position + 1:], allow_synthetic=True)


@given(text=st.one_of(st.text(max_size=20), st.text(alphabet="0123456789", min_size=11, max_size=11)))
def test_any_text_is_either_accepted_as_eleven_ascii_digits_or_refused_with_a_reason(text: str) -> None:
    try:
        number = parse(text, allow_synthetic=True)
    except InvalidIdentityNumber as refused:
        assert str(refused) and (len(text.strip()) < 4 or text.strip() not in str(refused))
    else:
        assert re.fullmatch(r"[0-9]{11}", number.digits) and number.digits == text.strip()


def test_pseudonyms_are_keyed_stable_and_not_the_number(tmp_path: Path) -> None:
    number = FODSELSNUMRE[0]
    key = load_key(None, tmp_path / "keys" / "pseudonym.key")
    assert load_key(None, tmp_path / "keys" / "pseudonym.key") == key  # created once, then reused
    assert (tmp_path / "keys" / "pseudonym.key").stat().st_mode & 0o777 == 0o600
    first = Pseudonymiser(key).pseudonym(number)
    assert first == Pseudonymiser(key).pseudonym(f" {number} ") and len(first) == 64 and number not in first
    assert Pseudonymiser(b"x" * 32).pseudonym(number) != first
    assert Pseudonymiser(key).pseudonym(FODSELSNUMRE[1]) != first
    assert load_key("ab" * 32, tmp_path / "unused.key") == bytes.fromhex("ab" * 32)
    with pytest.raises(ValueError, match=r"^the pseudonym key must be at least 32 bytes$"):
        Pseudonymiser(b"short")
    with pytest.raises(ValueError, match=r"^REGELMOTOR_PSEUDONYM_KEY must be hex"):
        load_key("not hex", tmp_path / "unused.key")


def test_the_pseudonymiser_validates_under_its_synthetic_number_setting() -> None:
    with pytest.raises(InvalidIdentityNumber, match=r"^synthetic test numbers"):
        Pseudonymiser(b"k" * 32).pseudonym(SYNTHETIC[0])
    with pytest.raises(InvalidIdentityNumber, match=r"^the check digits do not match \(mod 11\)$"):
        Pseudonymiser(b"k" * 32, allow_synthetic=True).pseudonym("13097248032")
    assert len(Pseudonymiser(b"k" * 32, allow_synthetic=True).pseudonym(SYNTHETIC[0])) == 64
