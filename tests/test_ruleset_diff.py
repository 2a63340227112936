"""`ruleset diff` shows every difference between two versions' canonical documents: a change that
changes the sha256 is never "no differences in meaning"."""

from __future__ import annotations

import pytest

from regelmotor.core.diff import RulesetDiff, diff_rulesets
from regelmotor.core.loader import load_ruleset_text
from tests.ruleset_texts import ALL_SECTIONS

SECTIONS = ("metadata", "rules_added", "rules_removed", "parameters", "facts", "derived", "outcomes", "tables",
            "hjemler", "constraints")


def diff_after(*changes: tuple[str, str]) -> RulesetDiff:
    text = ALL_SECTIONS
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    before, after = load_ruleset_text(ALL_SECTIONS, "a.yaml"), load_ruleset_text(text, "b.yaml")
    assert before.sha256 != after.sha256
    result = diff_rulesets(before, after)
    assert not result.empty and "no differences in meaning" not in "\n".join(result.lines())
    return result


def only_line(result: RulesetDiff) -> tuple[str, str]:
    """The one section with a change, and its one line."""
    found = [(name, line) for name in SECTIONS for line in getattr(result, name)]
    found += [("rules_changed", f"{rule}: {line}") for rule, lines in result.rules_changed.items() for line in lines]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(("change", "expected"), [
    (("    internal: false\n", "    internal: true\n"), ("outcomes", "~ outcomes.voksen.internal: false → true")),
    (("    hjemmel: h1\n    values:", "    hjemmel: [h1]\n    values:"),
     ("parameters", '~ parameters.sats.hjemmel: "h1" → ["h1"]')),
    (("  kode: {type: enum, values_from: koder}", "  kode: {type: enum, values: [a1]}"),
     ("facts", "~ fact kode: enum (the keys of table koder) → enum (a1)")),
    (("status: draft\n", "status: draft\nallow_gap_before: true\n"),
     ("metadata", "allow_gap_before: (not set) → true")),
    (("title: Alle seksjoner\n", "title: Alle seksjoner\ndescription: Ny\n"),
     ("metadata", "description: (not set) → Ny")),
    (("    type: int\n    min: 0\n", "    type: int\n    min: 0\n    description: år\n"),
     ("facts", '+ facts.alder.description: "år"')),
    (("    combine: unique\n", "    combine: unique\n    description: voksen?\n"),
     ("outcomes", '+ outcomes.voksen.description: "voksen?"')),
    (("    key: kode\n", "    key: kode\n    description: koder\n"), ("tables", '+ tables.koder.description: "koder"')),
    (("    expr: parameter('sats', mottatt)\n", "    expr: parameter('sats', mottatt)\n    description: kroner\n"),
     ("derived", '+ derived.belop.description: "kroner"')),
    (("    verified: true\n", "    verified: true\n    merknad: sjekket\n"),
     ("hjemler", '+ hjemler.h1.merknad: "sjekket"')),
    (("    when: alder >= 18\n", "    when: alder  >=  18\n"),
     ("rules_changed", 'r1: when: "alder >= 18" → "alder  >=  18"')),
    (("    title: Voksen\n", "    title: Voksen\n    begrunnelse: myndig\n"),
     ("rules_changed", 'r1: begrunnelse: (not set) → "myndig"')),
    (("{gyldig_fra: 2020-01-01, value: 100}", "{gyldig_fra: 2020-01-01, value: 100, note: usikker}"),
     ("parameters", "~ parameter sats: 2020-01-01: 100 NOK → 2020-01-01: 100 (usikker) NOK")),
    (("    expr: parameter('sats', mottatt)\n", "    expr: parameter('sats',  mottatt)\n"),
     ("derived", '~ derived.belop.expr: "parameter(\'sats\', mottatt)" → "parameter(\'sats\',  mottatt)"')),
    (("      gruppe: {type: string}\n", "      gruppe: {type: string, description: g}\n"),
     ("tables", '+ tables.koder.columns.gruppe.description: "g"')),
    (("  - {kode: a1, gruppe: a}", "  - {kode: a1, gruppe: b}"),
     ("tables", '~ koder row a1: {"gruppe":"a","kode":"a1"} → {"gruppe":"b","kode":"a1"}')),
    (("    message: negativ alder\n", "    message: negativ  alder\n"),
     ("constraints",
      "~ constraint c1: when alder < 0 → alder: negativ alder → when alder < 0 → alder: negativ  alder")),
])
def test_each_change_shows_as_a_line(change: tuple[str, str], expected: tuple[str, str]) -> None:
    assert only_line(diff_after(change)) == expected


def test_a_derived_value_written_as_text_or_as_expr_differs_in_form() -> None:
    result = diff_after(("  belop:\n    expr: parameter('sats', mottatt)\n", "  belop: parameter('sats', mottatt)\n"))
    assert only_line(result) == ("derived", '~ derived.belop: {"expr":"parameter(\'sats\', mottatt)"} → '
                                            '"parameter(\'sats\', mottatt)"')


def test_a_rule_added_in_front_changes_the_rule_order() -> None:
    added = "  - {id: r0, title: Først, hjemmel: h1, when: alder > 5, then: {voksen: true}}\n"
    result = diff_after(("rules:\n", "rules:\n" + added))
    assert result.rules_added == ["r0"] and result.metadata == ["rule order: r1, r2 → r0, r1, r2"]


def test_a_rule_added_at_the_end_is_only_an_addition() -> None:
    added = "  - {id: r3, title: Tre, hjemmel: h1, when: alder > 5, then: {voksen: true}}\n"
    result = diff_after(("outcomes:\n", added + "outcomes:\n"))
    assert only_line(result) == ("rules_added", "r3")


def test_table_row_order_is_a_change() -> None:
    row_a, row_b = "      - {kode: a1, gruppe: a}\n", "      - {kode: b1, gruppe: b}\n"
    result = diff_after((row_a, row_b + row_a))
    assert result.tables == ["~ koder row order: a1 → b1, a1", '+ koder row b1: {"gruppe":"b","kode":"b1"}']


def test_an_empty_section_against_none_is_shown() -> None:
    result = diff_after(("constraints:\n", "notes: []\nconstraints:\n"))
    assert only_line(result) == ("metadata", "notes: (not set) → []")


def test_comments_and_layout_make_no_difference() -> None:
    relaid = "# en kommentar\n" + ALL_SECTIONS.replace("    min: 0\n", "    min: 0   # ikke negativ\n").replace(
        "  mottatt: {type: date, required: true}", "  mottatt:\n    type: date\n    required: true")
    before, after = load_ruleset_text(ALL_SECTIONS, "a.yaml"), load_ruleset_text(relaid, "b.yaml")
    assert before.sha256 == after.sha256
    result = diff_rulesets(before, after)
    assert result.empty and result.lines()[-1].startswith("no differences in meaning")


def test_long_values_are_cut_around_where_they_differ() -> None:
    def described(ending: str) -> str:
        title = "title: Alle seksjoner\n"
        return ALL_SECTIONS.replace(title, f"{title}description: {'x' * 400}{ending}\n")

    added = diff_after(("title: Alle seksjoner\n", f"title: Alle seksjoner\ndescription: {'x' * 400}a\n"))
    assert len(added.metadata[0]) < 500
    (line,) = diff_rulesets(load_ruleset_text(described("a")), load_ruleset_text(described("b"))).metadata
    assert line.startswith("description: …") and 'xa"' in line and 'xb"' in line
