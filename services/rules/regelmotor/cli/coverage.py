"""The coverage of a version's cases (`regelmotor ruleset test --coverage`) as lines for its author."""

from __future__ import annotations

from regelmotor.core.coverage import Coverage
from regelmotor.core.model import Ruleset


def render_coverage(ruleset: Ruleset, found: Coverage) -> list[str]:
    """What no case tests, each rule with its line and title so the author can find it."""
    head = f"coverage {ruleset.key} ({found.cases} case(s) with a decision)"
    if found.complete:
        return [f"{head}: every rule and exception fires in some case, and every outcome value is expected"]
    lines = [f"{head}:"]
    for label, ids in (("rules no case fires", found.rules_not_fired),
                       ("exceptions no case fires", found.exceptions_not_fired)):
        if ids:
            lines.append(f"  {label} ({len(ids)}):")
            for rule_id in ids:
                rule = ruleset.rule(rule_id)
                exception = f", exception to {rule.unntak_fra}" if rule.unntak_fra else ""
                lines.append(f"    {rule_id} (line {rule.line}{exception}): {rule.title}")
    if found.values_not_expected:
        lines.append("  outcome values no case expects:")
        for outcome, values in found.values_not_expected.items():
            lines.append(f"    {outcome}: {', '.join(values)}")
    return lines
