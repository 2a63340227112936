"""A version lists the hjemler it marks not verified, for the approval that must acknowledge them."""

from __future__ import annotations

import yaml

from regelmotor.core.loader import load_ruleset_file
from tests.conftest import BUNDLED_RULESETS


def test_a_version_lists_its_unverified_hjemler_in_file_order() -> None:
    path = BUNDLED_RULESETS / "utskrivningsklar" / "2019.1.yaml"
    declared = yaml.safe_load(path.read_text(encoding="utf-8"))["hjemler"]
    expected = [hid for hid, spec in declared.items() if spec["verified"] is False]
    assert expected and len(expected) < len(declared)
    assert [h.id for h in load_ruleset_file(path).unverified_hjemler()] == expected
