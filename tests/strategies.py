"""Hypothesis strategies that produce facts satisfying a ruleset version's declared schema."""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from regelmotor.core.model import FactSpec, Ruleset
from regelmotor.core.types import Kind, ValueType

_OFFSETS = [timezone(timedelta(hours=h)) for h in (0, 1, 2)] + [UTC]


def _scalar(vtype: ValueType, spec: FactSpec) -> st.SearchStrategy[Any]:
    kind = vtype.kind
    if kind is Kind.BOOL:
        return st.booleans()
    if kind is Kind.INT:
        low = spec.minimum if spec.minimum is not None else -1000
        high = spec.maximum if spec.maximum is not None else 1000
        return st.integers(low, high)
    if kind is Kind.DECIMAL:
        low = float(spec.minimum) if spec.minimum is not None else -1e6
        high = float(spec.maximum) if spec.maximum is not None else 1e6
        # Rounded: the engine refuses a decimal of more than 24 places (a tiny double such as 1e-300).
        return st.floats(low, high, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 6))
    if kind is Kind.ENUM:
        return st.sampled_from(vtype.values)
    if kind is Kind.STRING:
        longest = spec.length_limit or 20
        if spec.pattern:
            return st.from_regex(spec.pattern, fullmatch=True).filter(lambda text: len(text) <= longest)
        return st.text(max_size=min(20, longest))
    if kind is Kind.DATE:
        low = spec.minimum if isinstance(spec.minimum, date) else date(1900, 1, 1)
        high = spec.maximum if isinstance(spec.maximum, date) else date(2100, 12, 31)
        return st.dates(low, high).map(date.isoformat)
    if kind is Kind.DATETIME:
        return st.builds(
            lambda moment, zone: moment.replace(tzinfo=zone).isoformat(),
            st.datetimes(datetime(1990, 1, 1), datetime(2060, 1, 1)).map(lambda d: d.replace(microsecond=0)),
            st.sampled_from(_OFFSETS),
        )
    raise AssertionError(f"no strategy for {vtype}")


def _value(spec: FactSpec) -> st.SearchStrategy[Any]:
    if spec.type.kind is Kind.LIST:
        assert spec.type.item is not None
        return st.lists(_scalar(spec.type.item, spec), max_size=min(5, spec.items_limit or 5))
    return _scalar(spec.type, spec)


def facts_for(ruleset: Ruleset, overrides: dict[str, st.SearchStrategy[Any]] | None = None,
              always: frozenset[str] = frozenset()) -> st.SearchStrategy[dict[str, Any]]:
    """Facts of the declared types; optional facts are sometimes left out, except those in `always`."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, spec in ruleset.facts.items():
        chosen = overrides or {}
        strategy = chosen[name] if name in chosen else _value(spec)
        (required if spec.required or name in always else optional)[name] = strategy
    return st.fixed_dictionaries(required, optional=optional)


@functools.cache
def non_ascii_digit_classes() -> tuple[str, ...]:
    """The ten digits of every Unicode decimal digit class but ASCII's (Arabic-Indic, Devanagari, fullwidth,
    mathematical bold, ...), each as the string '0123456789' written in that class."""
    zeros = sorted({code - unicodedata.decimal(chr(code)) for code in range(0x110000)
                    if unicodedata.category(chr(code)) == "Nd"})
    return tuple("".join(chr(zero + d) for d in range(10)) for zero in zeros if zero != ord("0"))


def in_digits(text: str, digits: str) -> str:
    """`text` with its ASCII digits written in another digit class."""
    return "".join(digits[int(c)] if c.isascii() and c.isdigit() else c for c in text)


BIRTH_DATES = frozenset({"fodselsdato"})

# A bool fact and the date fact saying when it became true: a ruleset that has both takes the date exactly when the
# bool is true, and not before the anchor date (rett-til-helsehjelp's corrections refuse anything else).
DATED_FLAGS: dict[str, tuple[str, str]] = {
    "kan_ikke_gi_helsehjelp_innen_frist": ("kan_ikke_gi_helsehjelp_dato", "ansiennitetsdato")}
DATED_FLAG_DAYS = 200  # how far after the anchor the date may lie: about a frist and some

# An ICD-10 code or range as a ruleset quotes it in icd10_in(...) ('F20', 'F32.2', 'F60-F69') or keys a table row.
_ICD10_SPEC = re.compile(r"^([A-Z])([0-9]{2})(\.[0-9A-Z]{1,2})?(?:-([A-Z])([0-9]{2}))?$")
_QUOTED_SPEC = re.compile(r"'([A-Z][0-9]{2}(?:\.[0-9A-Z]{1,2})?(?:-[A-Z][0-9]{2})?)'")


def _category(letter: str, number: int) -> list[str]:
    return [f"{letter}{number:02d}"] if 0 <= number <= 99 else []


def _near(spec: str) -> list[str]:
    """Codes on both sides of the edges of one code or range: inside it (a subcode too) and just outside."""
    match = _ICD10_SPEC.match(spec)
    if match is None:
        return []
    letter, number, sub, last_letter, last = match.groups()
    low = int(number)
    if last is not None:  # a range of categories: its first and last, one in the middle, the neighbours outside
        high = int(last)
        return [f"{letter}{low:02d}", f"{last_letter}{high:02d}.9", f"{letter}{(low + high) // 2:02d}.0",
                *_category(letter, low - 1), *_category(last_letter, high + 1)]
    if sub is None:  # a category: itself, a subcode, its neighbours
        return [spec, f"{spec}.0", *_category(letter, low - 1), *_category(letter, low + 1)]
    digit = sub[1]  # a subcode: itself, a Norwegian extension, its category alone, its siblings
    siblings = [f"{letter}{number}.{int(digit) + step}" for step in (-1, 1)
                if digit.isdigit() and 0 <= int(digit) + step <= 9]
    return [spec, f"{spec}0" if len(sub) == 2 else spec, f"{letter}{number}", *siblings]


def icd10_codes_near(ruleset: Ruleset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The codes at the edges of every ICD-10 code and range the ruleset names: those its derived values quote
    (icd10_in), and those its tables are keyed by - two groups, so that the few codes a condition names are not
    drowned by a long table. Random text from the pattern alone almost never lands on either side of an edge
    (one letter in 26, then one code in hundreds)."""
    quoted = {spec for derived in ruleset.derived.values() for spec in _QUOTED_SPEC.findall(derived.text)}
    keys = {key for table in ruleset.tables.values() for key in table.rows if _ICD10_SPEC.match(key)}
    return (tuple(sorted({code for spec in quoted for code in _near(spec)})),
            tuple(sorted({code for spec in keys for code in _near(spec)})))


def _takes_icd10_codes(spec: FactSpec) -> bool:
    """A list of strings whose pattern takes ICD-10 codes (E11, F32.20) and refuses lower case."""
    item = spec.type.item
    if spec.type.kind is not Kind.LIST or item is None or item.kind is not Kind.STRING or not spec.pattern:
        return False
    accepts = re.compile(spec.pattern)
    return all(accepts.fullmatch(code) for code in ("E11", "F32.20")) and not accepts.fullmatch("e11")


def plausible_facts_for(ruleset: Ruleset, overrides: dict[str, st.SearchStrategy[Any]] | None = None, *,
                        every_fact: bool = False, most_codes: int = 5) -> st.SearchStrategy[dict[str, Any]]:
    """facts_for, shaped so that most examples also pass the checks a schema cannot express (property
    tests discard the refused ones with assume(), and should see mostly evaluated ones):
    - a birth date lies before the version's period, so no age is asked of someone not yet born;
    - an optional fact that a constraint requires (``not present(fact)`` in its condition) is always given;
    - a list of ICD-10 codes draws two codes in three from the edges of the codes and ranges the ruleset names;
    - a dated flag (DATED_FLAGS) has its date exactly when it is true, a few months at most after the anchor.
    `every_fact`: optional facts are always given (each value of an enum, a default too, is drawn as often);
    `most_codes`: the most codes in such a list (within its declared limit).
    """
    chosen = dict(overrides or {})
    near = [st.sampled_from(codes) for codes in icd10_codes_near(ruleset) if codes]
    for name, spec in ruleset.facts.items():
        if name in BIRTH_DATES and name not in chosen and spec.type.kind is Kind.DATE:
            chosen[name] = st.dates(date(1900, 1, 1), ruleset.meta.gyldig_fra).map(date.isoformat)
        if name not in chosen and near and _takes_icd10_codes(spec):
            assert spec.type.item is not None
            code = st.one_of(_scalar(spec.type.item, spec), *near)
            chosen[name] = st.lists(code, max_size=min(most_codes, spec.items_limit or most_codes))
    always = frozenset(ruleset.facts) if every_fact else frozenset(
        c.field for c in ruleset.constraints if f"not present({c.field})" in c.condition_text)
    facts = facts_for(ruleset, chosen, always)
    for flag, (dated, anchor) in DATED_FLAGS.items():
        if {flag, dated, anchor} <= ruleset.facts.keys():
            facts = facts.flatmap(functools.partial(_dated, flag=flag, dated=dated, anchor=anchor))
    return facts


def _dated(facts: dict[str, Any], *, flag: str, dated: str, anchor: str) -> st.SearchStrategy[dict[str, Any]]:
    """`facts` with the flag's date given exactly when the flag is true, on or after the anchor date."""
    without = {name: value for name, value in facts.items() if name != dated}
    if facts.get(flag) is not True or not isinstance(facts.get(anchor), str):
        return st.just(without)
    start = date.fromisoformat(facts[anchor])
    return st.integers(0, DATED_FLAG_DAYS).map(
        lambda days: {**without, dated: (start + timedelta(days=days)).isoformat()})


def period_dates(ruleset: Ruleset) -> st.SearchStrategy[date]:
    """Dates in the version's period (four years from its start when it has no end)."""
    end = ruleset.meta.gyldig_til or ruleset.meta.gyldig_fra + timedelta(days=4 * 365)
    return st.dates(ruleset.meta.gyldig_fra, end)


def facts_in_period(ruleset: Ruleset) -> st.SearchStrategy[dict[str, Any]]:
    """plausible_facts_for, with the fact that selects the version (if any) dated in its period."""
    overrides: dict[str, st.SearchStrategy[Any]] = {}
    if ruleset.meta.selected_by:
        overrides[ruleset.meta.selected_by] = period_dates(ruleset).map(date.isoformat)
    return plausible_facts_for(ruleset, overrides)
