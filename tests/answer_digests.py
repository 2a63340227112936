"""Digests of every answer the engine gives on a fixed set of facts: each bundled case of every ruleset version,
and random schema-valid facts kept beside the digests (generated once, so the same facts are asked again).

A digest covers the whole answer: the serialised Decision as the worker writes it (`wire.decision_bytes`, with
fixed ids) and the canonical JSON of the full `Decision` (`content_sha256`); or, for a refusal, the error's kind,
text and every violation. `tests/test_answer_digests.py` recomputes them and compares with
`tests/data/answer_digests.json`, which was written by this module from the code as it was before the
evaluation was made cheaper (issue 13): a cheaper path that gives a single different byte fails it.

Write the file again only when an answer is meant to change (and say why in the commit):

    python -m tests.answer_digests --write             # the same random facts as the file has (new versions: drawn)
    python -m tests.answer_digests --write --draw 15   # new random facts, 15 per version
"""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import load_cases
from regelmotor.core.errors import InvalidFacts, RegelmotorError
from regelmotor.core.model import Ruleset
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository
from regelmotor.server.wire import decision_bytes
from tests.conftest import BUNDLED_RULESETS

DIGESTS = Path(__file__).resolve().parent / "data" / "answer_digests.json"
SEED = 13


def answer_digest(motor: Regelmotor, ruleset: Ruleset, facts: Any, as_of: date) -> dict[str, str]:
    """The digests of the answer to `facts` on this version: {"wire", "decision"} or {"error"}."""
    try:
        evaluation = motor.run(ruleset.meta.name, facts, as_of=as_of, version=ruleset.meta.version)
    except RegelmotorError as refused:
        violations = [[v.field, v.reason] for v in refused.violations] if isinstance(refused, InvalidFacts) else []
        text = json.dumps([type(refused).__name__, str(refused), violations], ensure_ascii=False)
        return {"error": _sha256(text.encode())}
    wire = decision_bytes(evaluation, evaluation.head("d"), request_id="r", trace_id="t")
    return {"wire": _sha256(wire), "decision": evaluation.decision("d").content_sha256}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bundled_motor() -> Regelmotor:
    return Regelmotor(RulesetRepository.load(BUNDLED_RULESETS, include_drafts=True))


def versions(motor: Regelmotor) -> list[Ruleset]:
    return [ruleset for name in motor.repository.names() for ruleset in motor.repository.all_versions(name)]


def case_inputs(ruleset: Ruleset) -> list[tuple[str, dict[str, Any], date]]:
    """Every bundled case of the version, refusals too: (key, facts, as_of)."""
    path = Path(ruleset.source_path[: -len(".yaml")] + CASES_SUFFIX)
    cases = load_cases(path, ruleset) if path.exists() else []
    return [(f"case {index}: {case.name}", case.facts, case.as_of) for index, case in enumerate(cases)]


def random_inputs(ruleset: Ruleset, count: int) -> list[dict[str, Any]]:
    """`count` schema-valid facts with an as_of in the version's period, drawn once with a fixed seed: every
    fourth of the first 4 × `count` examples, since neighbouring ones are often small variations of each other."""
    from hypothesis import Phase, given, seed, settings

    from tests.strategies import period_dates, plausible_facts_for

    drawn: list[dict[str, Any]] = []
    overrides = {ruleset.meta.selected_by: period_dates(ruleset).map(date.isoformat)} if ruleset.meta.selected_by \
        else {}

    @seed(SEED)
    @settings(max_examples=4 * count, database=None, phases=[Phase.generate], deadline=None)
    @given(facts=plausible_facts_for(ruleset, overrides), as_of=period_dates(ruleset))
    def draw(facts: dict[str, Any], as_of: date) -> None:
        drawn.append({"facts": facts, "as_of": as_of.isoformat()})

    draw()
    return drawn[::4][:count]


def compute(motor: Regelmotor, random_facts: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Every version's digests: its cases' and its random facts'."""
    out: dict[str, Any] = {}
    for ruleset in versions(motor):
        cases = {key: answer_digest(motor, ruleset, facts, as_of) for key, facts, as_of in case_inputs(ruleset)}
        drawn = [{**item, **answer_digest(motor, ruleset, item["facts"], date.fromisoformat(item["as_of"]))}
                 for item in random_facts.get(ruleset.key, [])]
        out[ruleset.key] = {"cases": cases, "random": drawn}
    return out


def random_facts_of(recorded: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The random facts kept in a digest file, without their digests."""
    return {key: [{"facts": item["facts"], "as_of": item["as_of"]} for item in entry["random"]]
            for key, entry in recorded.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write {DIGESTS.name} (else print it)")
    parser.add_argument("--draw", type=int, metavar="N", help="draw N new random facts per version")
    args = parser.parse_args()
    motor = bundled_motor()
    if args.draw is None and DIGESTS.exists():
        random_facts = random_facts_of(json.loads(DIGESTS.read_text(encoding="utf-8")))
        for ruleset in versions(motor):  # a version the file does not have yet: random facts of its own
            random_facts.setdefault(ruleset.key, random_inputs(ruleset, 15))
    else:
        random_facts = {ruleset.key: random_inputs(ruleset, args.draw or 15) for ruleset in versions(motor)}
    text = json.dumps(compute(motor, random_facts), ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    if args.write:
        DIGESTS.parent.mkdir(exist_ok=True)
        DIGESTS.write_text(text, encoding="utf-8")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
