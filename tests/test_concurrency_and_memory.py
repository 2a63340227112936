"""durable_rules is not thread-safe: evaluation serialises engine access inside the process. Engine
state is deleted after every evaluation, so memory stays flat."""

from __future__ import annotations

import gc
import os
import threading
from datetime import date
from typing import Any

import psutil
import pytest

from regelmotor.core.api import Regelmotor
from tests.conftest import FIXTURES

AS_OF = date(2021, 6, 1)


def facts(i: int) -> dict[str, Any]:
    return {
        "ansiennitetsdato": date(2018, 1, 1).fromordinal(date(2018, 1, 1).toordinal() + i % 900).isoformat(),
        "fodselsdato": f"{1990 + i % 20}-0{1 + i % 9}-1{i % 9}",
        "fagomrade": ["somatikk", "tsb", "psykisk_helsevern_voksne", "psykisk_helsevern_barn_unge"][i % 4],
        "forventet_nytte": i % 3 != 0,
        "kostnad_rimelig": i % 5 != 0,
        **({"klinisk_frist_uker": i % 60} if i % 7 else {}),
        **({"vurdert_dato": "2019-01-10"} if i % 2 else {}),
    }


@pytest.fixture(scope="module")
def motor() -> Regelmotor:
    return Regelmotor.from_directory(FIXTURES / "rulesets")


def test_many_threads_get_the_same_answers_as_one(motor: Regelmotor) -> None:
    inputs = [facts(i) for i in range(400)]
    expected = [motor.evaluate("vurderingsfrist", f, as_of=AS_OF).content_sha256 for f in inputs]
    results: dict[tuple[int, int], str] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(thread: int) -> None:
        try:
            barrier.wait()
            for round_ in range(3):
                for index in range(thread, len(inputs), 8):
                    decision = motor.evaluate("vurderingsfrist", inputs[index], as_of=AS_OF)
                    results[(index, round_)] = decision.content_sha256
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 3 * len(inputs)
    for (index, _), digest in results.items():
        assert digest == expected[index]


def _rss() -> int:
    gc.collect()
    return int(psutil.Process(os.getpid()).memory_info().rss)


@pytest.mark.slow
def test_memory_does_not_grow_over_100_000_evaluations(motor: Regelmotor) -> None:
    inputs = [facts(i) for i in range(1000)]
    for f in inputs * 5:  # warm caches (working days, holidays) before measuring
        motor.evaluate("vurderingsfrist", f, as_of=AS_OF)
    before = _rss()
    for i in range(100_000):
        motor.evaluate("vurderingsfrist", inputs[i % 1000], as_of=AS_OF)
    growth = _rss() - before
    # A leak of engine sessions would cost hundreds of bytes per evaluation (tens of MB here) and the
    # engine would refuse the 1025th live session long before that.
    assert growth < 8 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB over 100 000 evaluations"
