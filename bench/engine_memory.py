"""Memory of one process over many in-process decisions: the RSS after every quarter of `--decisions`
decisions on the bundled cases of the current versions, against the RSS after a warm-up.

Not a test (tests/test_concurrency_and_memory.py keeps a bound on 100 000 evaluations); it prints figures.
Each engine ruleset keeps one durable_rules session whose facts are retracted after their firings are read
(core/engine.py); a leak there, or in any per-version cache, shows here as growth.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import psutil

from regelmotor.core.api import Regelmotor
from regelmotor.core.cases import Case, load_cases
from regelmotor.core.errors import RegelmotorError

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = (("rett-til-helsehjelp", "2024.07"), ("prioriterte-pasientgrupper", "2024.1"),
            ("utskrivningsklar", "2019.1"))


def _rss_mb() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=200_000, help="decisions measured (default 200 000)")
    args = parser.parse_args()
    motor = Regelmotor.from_directory(ROOT / "rulesets")
    work: list[tuple[str, str, Case]] = [
        (name, version, case) for name, version in VERSIONS
        for case in load_cases(ROOT / "rulesets" / name / f"{version}.cases.yaml")]
    refused = 0

    def decide(number: int) -> None:
        nonlocal refused
        name, version, case = work[number % len(work)]
        try:
            motor.run(name, case.facts, as_of=case.as_of, version=version).decision("d")
        except RegelmotorError:
            refused += 1  # the cases that expect a refusal

    for number in range(5000):
        decide(number)
    start, began, refused = _rss_mb(), time.perf_counter(), 0
    print(f"{len(work)} cases; RSS after warm-up {start:.1f} MB")
    quarter = max(1, args.decisions // 4)
    for number in range(args.decisions):
        decide(number)
        if (number + 1) % quarter == 0:
            print(f"{number + 1} decisions ({refused} refused as their cases expect): RSS {_rss_mb():.1f} MB "
                  f"({_rss_mb() - start:+.1f} MB), {time.perf_counter() - began:.0f} s", flush=True)


if __name__ == "__main__":
    main()
