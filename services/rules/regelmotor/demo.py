"""Until the gRPC service lands, `regelmotor serve` loads the bundled rulesets and evaluates the first
test case of each version, printing the explained decision. It proves the embedded defaults work."""

from __future__ import annotations

from pathlib import Path

from regelmotor.cli.render import render_decision
from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import load_cases
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository


def run_demo(root: Path) -> int:
    repository = RulesetRepository.load(root, include_drafts=True)
    motor = Regelmotor(repository)
    motor.warm_up()
    count = sum(len(v) for v in repository.versions.values())
    print(f"Regelmotor: {count} ruleset version(s) loaded from {root}")
    for name in repository.names():
        for ruleset in repository.all_versions(name):
            cases_path = Path(ruleset.source_path[: -len(".yaml")] + CASES_SUFFIX)
            cases = load_cases(cases_path, ruleset) if cases_path.exists() else []
            example = next((c for c in cases if c.expect_error is None), None)
            if example is None:
                print(f"\n{ruleset.key}: no example case")
                continue
            decision = motor.evaluate(name, example.facts, as_of=example.as_of, version=ruleset.meta.version)
            print(f"\n=== {ruleset.key} — {example.name}\n")
            print(render_decision(decision))
    print("\nThe gRPC API is not served yet; this demo evaluated one case per ruleset version.")
    return 0
