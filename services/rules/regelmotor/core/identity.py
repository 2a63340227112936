"""National identity numbers: fødselsnummer, D-nummer, H-nummer and synthetic test numbers.

A number is validated, then only ever kept as a keyed HMAC-SHA-256 pseudonym: it is never a rule
fact and never stored. The pseudonym key comes from configuration and is kept apart from the log.

The kinds, all 11 digits DDMMYY + individual number (3) + two mod-11 check digits:
- fødselsnummer: the birth date as written;
- D-nummer: 40 added to the day (Skatteetaten, for people without a fødselsnummer);
- H-nummer: 40 added to the month (a hospital's help number, HIS 1001; it follows every other rule
  of a fødselsnummer). A D-nummer with 40 added to the month is an H-nummer too;
- synthetic test number: 80 added to the month (Skatteetaten's Tenor test data, NAV's "T-nummer"),
  with or without 40 added to the day. Accepted only where `allow_synthetic` says so (tests and test
  environments): no real patient has one.

python-stdnum (`stdnum.no.fodselsnummer`) gives the check digits and the birth date with its century
(from the individual number; D- and H-numbers included). Its `validate()` is not used, because it
1. maps non-ASCII digits (fullwidth, mathematical) and separators to ASCII first, where we accept
   exactly 11 ASCII digits;
2. refuses synthetic numbers (month + 80 minus its H-number 40 is no month);
3. refuses birth dates after `date.today()`: validation here never reads the clock, so a number gets
   the same answer on every server and at every replay. A date after today is accepted when the
   allocation rules allow it (individual numbers 500-999 with years 00-39 mean 2000-2039).
A synthetic number is therefore handed to stdnum's date reading with its 80 taken off the month.
Not accepted (neither stdnum nor this module knows them): FH-numbers (first digit 8 or 9) and the
format Skatteetaten plans from 2032, whose first check digit can take four values.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path

from stdnum.exceptions import ValidationError
from stdnum.no import fodselsnummer

from .errors import RegelmotorError

_ELEVEN_ASCII_DIGITS = re.compile(r"[0-9]{11}")
D_NUMMER_DAY = 40
H_NUMMER_MONTH = 40
SYNTHETIC_MONTH = 80


class IdentityKind(StrEnum):
    FODSELSNUMMER = "fødselsnummer"
    D_NUMMER = "D-nummer"
    H_NUMMER = "H-nummer"
    SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class IdentityNumber:
    digits: str  # exactly 11 ASCII digits
    kind: IdentityKind

    def __repr__(self) -> str:  # never the number itself in logs or tracebacks
        return f"IdentityNumber(kind={self.kind.value!r})"


class InvalidIdentityNumber(RegelmotorError):
    """The reason a national identity number was refused (never includes the number itself)."""


def parse(number: str, *, allow_synthetic: bool = False) -> IdentityNumber:
    """The number and its kind if it is valid; else InvalidIdentityNumber with the reason."""
    text = number.strip()
    if not _ELEVEN_ASCII_DIGITS.fullmatch(text):
        raise InvalidIdentityNumber("must be 11 digits (0-9)")
    if text[9] != fodselsnummer.calc_check_digit1(text) or text[10] != fodselsnummer.calc_check_digit2(text):
        raise InvalidIdentityNumber("the check digits do not match (mod 11)")
    day, month = int(text[0:2]), int(text[2:4])
    kind, birth_day, birth_month = _kind(day, month)
    if kind is IdentityKind.SYNTHETIC and not allow_synthetic:
        raise InvalidIdentityNumber("synthetic test numbers (month + 80) are not accepted here "
                                    "(setting allow_synthetic_ids)")
    try:
        date(2000, birth_month, birth_day)  # 2000 is a leap year: only the century can still rule out 29 February
    except ValueError:
        raise InvalidIdentityNumber("the date part is not a real date") from None
    # stdnum reads D- and H-numbers itself; a synthetic number it gets with the 80 taken off its month.
    known_to_stdnum = text if kind is not IdentityKind.SYNTHETIC else f"{text[:2]}{birth_month:02d}{text[4:]}"
    try:
        fodselsnummer.get_birth_date(known_to_stdnum)
    except ValidationError:
        raise InvalidIdentityNumber("the individual number (digits 7-9) gives no century in which the birth date "
                                    "exists") from None
    return IdentityNumber(text, kind)


def _kind(day: int, month: int) -> tuple[IdentityKind, int, int]:
    """The kind, and the birth day and month with the kind's additions taken off."""
    d_number = D_NUMMER_DAY < day <= D_NUMMER_DAY + 31
    if day >= 80:
        raise InvalidIdentityNumber("FH-numbers (first digit 8 or 9) are not accepted")
    if not (1 <= day <= 31 or d_number):
        raise InvalidIdentityNumber("the day part is not a day (01-31, or 41-71 in a D-nummer)")
    birth_day = day - D_NUMMER_DAY if d_number else day
    if SYNTHETIC_MONTH < month <= SYNTHETIC_MONTH + 12:
        return IdentityKind.SYNTHETIC, birth_day, month - SYNTHETIC_MONTH
    if H_NUMMER_MONTH < month <= H_NUMMER_MONTH + 12:
        return IdentityKind.H_NUMMER, birth_day, month - H_NUMMER_MONTH
    if 1 <= month <= 12:
        return (IdentityKind.D_NUMMER if d_number else IdentityKind.FODSELSNUMMER), birth_day, month
    raise InvalidIdentityNumber("the month part is not a month (01-12, 41-52 in an H-nummer, 81-92 in a synthetic "
                                "test number)")


def validate(number: str, *, allow_synthetic: bool = False) -> str:
    """The number as 11 digits if it is valid (see `parse`); else InvalidIdentityNumber."""
    return parse(number, allow_synthetic=allow_synthetic).digits


MIN_KEY_BYTES = 32


class Pseudonymiser:
    """Keyed HMAC-SHA-256 of validated identity numbers. The same key always gives the same pseudonym,
    so auditors can search by a number; without the key the pseudonym cannot be reversed or checked.
    `allow_synthetic` is the service's setting allow_synthetic_ids: whether test numbers are accepted.
    `previous_keys` are retired keys: never used for new pseudonyms, only to find what was recorded under them."""

    def __init__(self, key: bytes, *, allow_synthetic: bool = False, previous_keys: Sequence[bytes] = ()) -> None:
        for each in (key, *previous_keys):
            check_key(each)
        self._key = key
        self._previous = tuple(previous_keys)
        self.allow_synthetic = allow_synthetic

    def pseudonym(self, number: str) -> str:
        """The number's pseudonym under the current key: the one new records get."""
        return _hmac(self._key, validate(number, allow_synthetic=self.allow_synthetic))

    def pseudonyms(self, number: str) -> tuple[str, ...]:
        """The number's pseudonym under the current key, then under each previous key: every subject its records
        can have been stored under since the oldest key still kept."""
        digits = validate(number, allow_synthetic=self.allow_synthetic)
        return tuple(_hmac(key, digits) for key in (self._key, *self._previous))

    def previous_pseudonyms(self, number: str) -> tuple[str, ...]:
        """The number's pseudonyms under the previous keys only (none without previous keys, at no cost)."""
        return self.pseudonyms(number)[1:] if self._previous else ()


def _hmac(key: bytes, digits: str) -> str:
    return hmac.new(key, digits.encode("ascii"), hashlib.sha256).hexdigest()


def check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes")


def read_key_file(key_file: Path) -> bytes:
    """The key a key file holds (hex, surrounding whitespace ignored); ValueError when it holds no usable key,
    OSError when it cannot be read."""
    text = key_file.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"it does not hold hex digits only ({2 * MIN_KEY_BYTES} or more)") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"it holds {len(key)} bytes, a pseudonym key needs {MIN_KEY_BYTES} or more "
                         f"({2 * MIN_KEY_BYTES} hex digits)")
    return key


def write_new_key(key_file: Path) -> bytes:
    """A new random key written to `key_file` (hex, mode 0600); FileExistsError when the file exists: a key file
    is never overwritten (the pseudonyms made with it would be lost)."""
    key = secrets.token_bytes(MIN_KEY_BYTES)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(key.hex())
    return key


def load_key(configured: str | None, key_file: Path) -> bytes:
    """The key from configuration (hex), else from `key_file`, created with a random key on first use.

    The key file lives with the service's settings, never inside the decision log store."""
    if configured:
        try:
            key = bytes.fromhex(configured)
        except ValueError:
            raise ValueError("REGELMOTOR_PSEUDONYM_KEY must be hex (64 hex digits or more)") from None
        return key
    if key_file.exists():
        return read_key_file(key_file)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    return write_new_key(key_file)
