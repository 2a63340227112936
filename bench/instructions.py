"""Instructions per decision, counted by valgrind (callgrind): a figure other processes on a shared machine do not
disturb, unlike time. Not a test: it prints figures. Slow: each count runs Python under valgrind (about a minute).

For each version, it runs a child under valgrind twice: once evaluating every case of the version once (which
also loads the rulesets and warms the caches), once more with `--passes` more rounds over the cases; the
difference, divided by the decisions of those rounds, is the instructions of one decision, C (durable_rules,
pydantic-core) and Python alike. The string hashes are fixed (PYTHONHASHSEED=0) and the cyclic garbage collector
is off during the extra rounds: with random hashes the same code counted 0.33, 0.41 and 0.60 M instructions per
decision in three runs, with fixed ones 0.416 and 0.418 (a collection over all the loaded rulesets falling into
the rounds or not is one thing that moves it). Modes: `run` (Regelmotor.run: validation, derived values, the
engine rounds) and `decision` (Regelmotor.evaluate: the same and the Decision with its explanation).

It uses only what every version of the core since 2026-12-02 offers, so it can count two trees:

    PYTHONPATH=$T/services/rules:$T/protos/python:$T python bench/instructions.py --root $T
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = ["prioriterte-pasientgrupper@2024.1", "rett-til-helsehjelp@2024.07", "utskrivningsklar@2019.1"]


def child(root: Path, key: str, mode: str, passes: int) -> None:
    from regelmotor.core.api import Regelmotor
    from regelmotor.core.cases import load_cases
    from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository

    motor = Regelmotor(RulesetRepository.load(root / "rulesets", include_drafts=True))
    name, version = key.split("@")
    ruleset = motor.repository.get(name, version)
    cases = [case for case in load_cases(root / "rulesets" / name / f"{version}{CASES_SUFFIX}", ruleset)
             if case.expect_error is None]
    decide = motor.run if mode == "run" else motor.evaluate
    for case in cases:
        decide(name, case.facts, as_of=case.as_of, version=version)
    gc.collect()
    gc.disable()
    for _ in range(passes):
        for case in cases:
            decide(name, case.facts, as_of=case.as_of, version=version)
    print(len(cases))


def counted(root: Path, key: str, mode: str, passes: int) -> tuple[int, int]:
    """(instructions, cases) of a child run under callgrind."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, "--child",
         "--root", str(root), "--ruleset", key, "--mode", mode, "--passes", str(passes)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1)), int(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree whose rulesets/ to use")
    parser.add_argument("--ruleset", action="append", help="name@version (repeatable); default: three versions")
    parser.add_argument("--mode", choices=["run", "decision"], action="append")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.root, args.ruleset[0], args.mode[0], args.passes)
        return
    for key in args.ruleset or VERSIONS:
        for mode in args.mode or ["run", "decision"]:
            base, _ = counted(args.root, key, mode, 0)
            more, cases = counted(args.root, key, mode, args.passes)
            print(f"{key} {mode}: {(more - base) / (args.passes * cases) / 1e6:.3f} M instructions per decision",
                  flush=True)


if __name__ == "__main__":
    main()
