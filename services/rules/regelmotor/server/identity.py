"""National identity numbers (fødselsnummer, D-nummer): validated, then pseudonymised.

The number is never a rule fact and never stored: the decision log keeps only a keyed HMAC-SHA-256
pseudonym, whose key comes from configuration and is kept apart from the log. Nothing here reads
age or sex from the digits (the number format changes from 2032; only the check digits are used).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import date
from pathlib import Path

_K1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


class InvalidIdentityNumber(ValueError):
    """The reason a national identity number was refused (never includes the number itself)."""


def _check_digit(digits: list[int], weights: tuple[int, ...]) -> int | None:
    remainder = sum(d * w for d, w in zip(digits, weights, strict=False)) % 11
    check = (11 - remainder) % 11
    return None if check == 10 else check


def validate(number: str) -> str:
    """The number as 11 digits if it is a valid fødselsnummer or D-nummer; else InvalidIdentityNumber."""
    text = number.strip()
    if len(text) != 11 or not text.isdigit():
        raise InvalidIdentityNumber("must be 11 digits")
    digits = [int(c) for c in text]
    k1 = _check_digit(digits[:9], _K1)
    k2 = _check_digit(digits[:10], _K2)
    if k1 is None or k2 is None or digits[9] != k1 or digits[10] != k2:
        raise InvalidIdentityNumber("the check digits do not match (mod 11)")
    day, month = int(text[0:2]), int(text[2:4])
    if day > 40:  # a D-nummer adds 4 to the first digit of the day
        day -= 40
    try:
        # The century is not needed to know whether day and month exist; 2000 is a leap year.
        date(2000, month, day)
    except ValueError:
        raise InvalidIdentityNumber("the date part is not a real date") from None
    return text


class Pseudonymiser:
    """Keyed HMAC-SHA-256 of validated identity numbers. The same key always gives the same pseudonym,
    so auditors can search by a number; without the key the pseudonym cannot be reversed or checked."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the pseudonym key must be at least 32 bytes")
        self._key = key

    def pseudonym(self, number: str) -> str:
        return hmac.new(self._key, validate(number).encode("ascii"), hashlib.sha256).hexdigest()


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
        return bytes.fromhex(key_file.read_text(encoding="ascii").strip())
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(key.hex())
    return key
