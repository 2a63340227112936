"""Parameters named in a rule's title or begrunnelse (`{vurderingsfrist_virkedager}`), and titles that state a
number a parameter holds.

A title that says "innen {vurderingsfrist_virkedager} virkedager" stays true when the parameter gets a new value:
the explanation shows the value in force on the decision's selection date (the date that selected the version:
the `selected_by` fact, or as_of). A title that says "innen 10 virkedager" while a parameter holds 10 goes stale
when the parameter changes; the loader warns about it (`stated_numbers`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ParameterValueMissing
from .model import Parameter, Rule
from .types import to_json_value

# Anything in braces names a parameter, so a misspelt name is an error rather than text shown as it is.
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# A number as a title writes it: 10, 4 885 (grouped by spaces), 1,5 or 1.5; not part of a word (F20) or of a
# date (1.1.2019), which have their own letters or dots around them.
_NUMBER = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:[ \u00a0]\d{3})+|\d+)(?:[.,]\d+)*(?![\w])")
WORDED_FIELDS = ("title", "begrunnelse")


def placeholders(text: str | None) -> list[str]:
    """The names in braces in `text`, as written (stripped of spaces), in order."""
    return [match.group(1).strip() for match in _PLACEHOLDER.finditer(text or "")]


def _shown(value: Any) -> str:
    value = to_json_value(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_shown(item) for item in value)
    return str(value)


def render(text: str, parameters: Mapping[str, Parameter], day: date) -> str:
    """`text` with each `{parameter}` replaced by its value in force on `day`; a parameter with no value on that
    day (a declared gap) is left as written, braces and all, rather than failing the decision over a title."""
    def value(match: re.Match[str]) -> str:
        try:
            return _shown(parameters[match.group(1).strip()].value_on(day).value)
        except ParameterValueMissing:
            return match.group(0)

    return _PLACEHOLDER.sub(value, text)


@dataclass(frozen=True, slots=True)
class Wording:
    """A rule's title and begrunnelse when either names a parameter: rendered for each decision's date."""

    title: str
    begrunnelse: str | None
    parameters: Mapping[str, Parameter]

    def on(self, day: date) -> tuple[str, str | None]:
        begrunnelse = None if self.begrunnelse is None else render(self.begrunnelse, self.parameters, day)
        return render(self.title, self.parameters, day), begrunnelse


def wording(rule: Rule, parameters: Mapping[str, Parameter]) -> Wording | None:
    """The rule's wording when its title or begrunnelse names a parameter; None when both are fixed text."""
    if not (placeholders(rule.title) or placeholders(rule.begrunnelse)):
        return None
    return Wording(rule.title, rule.begrunnelse, parameters)


def _number(text: str) -> Decimal | None:
    plain = text.replace(" ", "").replace("\u00a0", "")
    if plain.count(".") + plain.count(",") > 1:
        return None  # a date or a section number (1.1.2019, 2.3.1), not an amount
    try:
        return Decimal(plain.replace(",", "."))
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class StatedNumber:
    """A number a text states that a parameter holds."""

    text: str  # as written
    parameter: str
    gyldig_fra: date  # the first date the parameter holds it


def stated_numbers(text: str | None, parameters: Mapping[str, Parameter]) -> Iterator[StatedNumber]:
    """Each number in `text` (outside placeholders) that a numeric parameter holds in some period."""
    bare = _PLACEHOLDER.sub(" ", text or "")
    for match in _NUMBER.finditer(bare):
        number = _number(match.group(0))
        if number is None:
            continue
        for parameter in parameters.values():
            if not parameter.type.is_numeric:
                continue
            held = next((v for v in parameter.values if v.value is not None and Decimal(str(v.value)) == number),
                        None)
            if held is not None:
                yield StatedNumber(match.group(0), parameter.name, held.gyldig_fra)
                break
