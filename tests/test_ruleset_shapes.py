"""Every section of a ruleset refuses unknown keys and values of the wrong type, with the line;
booleans must be YAML booleans; exceptions may not form a cycle."""

from __future__ import annotations

import dataclasses

import pytest

from regelmotor.core.errors import Diagnostic, RulesetInvalid
from regelmotor.core.loader import load_ruleset_text
from regelmotor.core.model import Ruleset
from tests.ruleset_texts import ALL_SECTIONS as BASE
from tests.source_mutations import time_bound


def load(text: str) -> Ruleset:
    return load_ruleset_text(text, "regler.yaml")


def refused(text: str) -> list[Diagnostic]:
    with pytest.raises(RulesetInvalid, match=r"regler\.yaml:\d+:\d+: ") as caught:
        load(text)
    return caught.value.diagnostics


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_the_base_ruleset_loads() -> None:
    ruleset = load(BASE)
    assert ruleset.outcomes["voksen"].internal is False and ruleset.parameters["sats"].hjemmel == ("h1",)


# (section, text in BASE, the same with a misspelt or foreign key added)
UNKNOWN_KEYS = [
    ("top level", "title: Alle seksjoner\n", "title: Alle seksjoner\ntitel: x\n"),
    ("hjemmel", "    verified: true\n", "    verified: true\n    paragraff: '2'\n"),
    ("fact", "    min: 0\n", "    min: 0\n    maks: 9\n"),
    ("list items", "    items: {type: string}\n", "    items: {type: string, patern: x}\n"),
    ("parameter", "    unit: NOK\n", "    unit: NOK\n    units: NOK\n"),
    ("parameter value", "{gyldig_fra: 2020-01-01, value: 100}", "{gyldig_fra: 2020-01-01, value: 100, notes: x}"),
    ("table", "    key: kode\n", "    key: kode\n    kilde: x\n"),
    ("column", "      gruppe: {type: string}\n", "      gruppe: {type: string, required: true}\n"),
    ("derived", "    expr: parameter('sats', mottatt)\n", "    expr: parameter('sats', mottatt)\n    kind: int\n"),
    ("rule", "    title: Voksen\n", "    title: Voksen\n    unntak: r2\n"),
    ("outcome", "    combine: unique\n", "    combin: max\n"),
    ("constraint", "    message: negativ alder\n", "    message: negativ alder\n    level: warning\n"),
]


@pytest.mark.parametrize(("section", "original", "changed"), UNKNOWN_KEYS, ids=[u[0] for u in UNKNOWN_KEYS])
def test_an_unknown_key_is_refused_in_every_section(section: str, original: str, changed: str) -> None:
    assert original in BASE
    text = BASE.replace(original, changed, 1)
    (diagnostic,) = refused(text)
    unknown = next(word for word in ("titel", "paragraff", "maks", "patern", "units", "notes", "kilde", "required",
                                     "kind", "unntak", "combin", "level") if word in changed)
    assert f"unknown {'section' if section == 'top level' else 'key'} {unknown!r}" in diagnostic.message
    assert "allowed: " in diagnostic.message
    assert diagnostic.line == line_of(text, changed.splitlines()[-1].strip())


def test_a_misspelt_combine_does_not_fall_back_to_the_default() -> None:
    (diagnostic,) = refused(BASE.replace("    combine: unique\n", "    combin: any\n"))
    assert "unknown key 'combin' in outcome 'voksen'" in diagnostic.message
    assert "combine" in diagnostic.message.split("allowed: ")[1]


@pytest.mark.parametrize(("original", "changed", "key"), [
    ("    internal: false\n", "    internal: 'no'\n", "internal"),
    ("    verified: true\n", "    verified: 'true'\n", "verified"),
    ("status: draft\n", "status: draft\nallow_gap_before: \"yes\"\n", "allow_gap_before"),
    ("  mottatt: {type: date, required: true}", "  mottatt: {type: date, required: 'ja'}", "required"),
])
def test_a_boolean_must_be_a_yaml_boolean_not_text(original: str, changed: str, key: str) -> None:
    text = BASE.replace(original, changed, 1)
    (diagnostic,) = refused(text)
    assert f"`{key}`" in diagnostic.message and "must be true or false, not the text" in diagnostic.message
    assert "without quotes" in diagnostic.message
    assert diagnostic.line == line_of(text, changed.splitlines()[-1].strip())


def test_an_internal_outcome_written_no_is_not_taken_as_true() -> None:
    # Before: bool('no') made the outcome internal; now only a YAML boolean is read as one.
    assert load(BASE.replace("    internal: false\n", "    internal: no\n")).outcomes["voksen"].internal is False
    with pytest.raises(RulesetInvalid, match=r"`internal` of outcome 'voksen' must be true or false"):
        load(BASE.replace("    internal: false\n", "    internal: 'no'\n"))


@pytest.mark.parametrize(("original", "changed", "message"), [
    ('version: "1"\n', "version: 1.10\n",
     "`version` of the ruleset must be text, not the number 1.1 (put it in quotes"),
    ("    title: Voksen\n", "    title: [Voksen]\n", "`title` of rule must be text, not a list"),
    ("    when: alder >= 18\n", "    when: true\n", "`when` of rule must be text, not true (put it in quotes"),
    ("    then: {voksen: true}\n  - id: r2", "    then: [voksen]\n  - id: r2", "`then` of rule must be a mapping"),
    ("    unit: NOK\n", "    unit: {navn: NOK}\n", "`unit` of parameter 'sats' must be text, not a mapping"),
    ("    hjemmel: h1\n    values:", "    hjemmel: 5\n    values:",
     "`hjemmel` of parameter 'sats' must be text or a list"),
    ("    key: kode\n", "    key: [kode]\n", "`key` of table 'koder' must be text"),
    ("    combine: unique\n", "    combine: [unique]\n", "`combine` of outcome 'voksen' must be text"),
    ("    unntak_fra: r1\n", "    unntak_fra: {r1: true}\n", "`unntak_fra` of rule must be text"),
    ("    title: Unntak\n", "    title: Unntak\n    prioritet: høy\n", "`prioritet` of rule must be a whole number"),
    ("  - {kode: a1, gruppe: a}", "  - {kode: [a1], gruppe: a}", "the key of a row must be text or a whole number"),
    ("hjemler:\n", "notes: [1, 2]\nhjemler:\n", "`notes` of the ruleset must be a list of texts"),
    ("  kode: {type: enum, values_from: koder}", "  kode: {type: enum, values_from: koder, values: [a1]}",
     "an enum takes `values` or `values_from`, not both"),
    ("    min: 0\n", "    min: 0\n    values: [a]\n", "`values` belongs to type enum, not to type int"),
])
def test_a_value_of_the_wrong_type_is_refused_with_its_key(original: str, changed: str, message: str) -> None:
    assert original in BASE
    found = refused(BASE.replace(original, changed, 1))
    assert any(message in d.message for d in found), found


def test_a_cycle_of_exceptions_is_refused_naming_the_cycle() -> None:
    text = BASE.replace("    title: Voksen\n", "    title: Voksen\n    unntak_fra: r2\n")
    with time_bound(10):
        (diagnostic,) = refused(text)
    assert diagnostic.message == "exceptions form a cycle (each is an exception to the next): r1 → r2 → r1"
    assert diagnostic.line == line_of(text, "unntak_fra: r2")


def test_a_longer_cycle_of_exceptions_is_refused_too() -> None:
    rules = "".join(f"  - {{id: e{i}, title: t, hjemmel: h1, unntak_fra: e{(i + 1) % 3}, when: alder > {i}, "
                    f"then: {{voksen: true}}}}\n" for i in range(3))
    text = BASE.replace("rules:\n", "rules:\n" + rules)
    with time_bound(10):
        (diagnostic,) = refused(text)
    assert "exceptions form a cycle" in diagnostic.message and "e0 → e1 → e2 → e0" in diagnostic.message


def test_the_compiler_cannot_loop_on_a_cycle_of_exceptions() -> None:
    from regelmotor.core.compiler import CompileError, compile_ruleset

    ruleset = load(BASE)
    r1, r2 = ruleset.rules
    cyclic = dataclasses.replace(ruleset, rules=(dataclasses.replace(r1, unntak_fra="r2"), r2))
    with time_bound(10), pytest.raises(CompileError, match="exceptions of rule 'r1' do not lead to a base rule"):
        compile_ruleset(cyclic)


def test_null_means_not_given() -> None:
    ruleset = load(BASE.replace("    internal: false\n", "    internal:\n").replace("  - {gyldig_fra: 2020-01-01, "
                                                                                   "value: 100}",
                                                                                   "  - {gyldig_fra: 2020-01-01, "
                                                                                   "value: 100, note: null}"))
    assert ruleset.outcomes["voksen"].internal is False and ruleset.parameters["sats"].values[0].note is None


def test_duplicate_constraint_ids_are_refused() -> None:
    text = BASE + "  - {id: c1, when: alder > 200, field: alder, message: for gammel}\n"
    (diagnostic,) = refused(text)
    assert diagnostic.message == "duplicate constraint id 'c1'" and diagnostic.line == line_of(text, "for gammel")
