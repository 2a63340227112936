"""The service's JSON log lines: the fast formatter gives the objects python-json-logger gives, and lines logged on
the event loop are written together at the end of the loop's turn, in order, a warning at once after them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

from regelmotor.server.telemetry import JsonLines, LinesPerLoopTurn

_REFERENCE = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})


def _record(message: object, *, extra: dict[str, object] | None = None, exc: bool = False) -> logging.LogRecord:
    logger = logging.getLogger("regelmotor.server")
    exc_info = None
    if exc:
        try:
            raise ValueError("broken")
        except ValueError as error:
            exc_info = (type(error), error, error.__traceback__)
    return logger.makeRecord(logger.name, logging.INFO, __file__, 1, message, (), exc_info, extra=extra)


def test_the_fast_json_lines_are_the_objects_python_json_logger_makes() -> None:
    records = [
        _record("evaluate", extra={"code": "OK", "ruleset": "rett-til-helsehjelp", "decision_id": "d-1", "ms": 1.25}),
        _record("worker lost", extra={"pool": "engine", "worker": 3, "path": Path("/var/x"), "_private": 1}),
        _record("sammensatt %s", extra={"ø": "æøå"}),
        _record("feil", exc=True),
        _record({"as": "dict"}),
    ]
    formatter = JsonLines()
    for record in records:
        assert json.loads(formatter.format(record)) == json.loads(_REFERENCE.format(record))


def test_lines_logged_on_the_loop_are_written_at_the_end_of_its_turn_in_order() -> None:
    stream = io.StringIO()
    handler = LinesPerLoopTurn(stream)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("regelmotor.test_lines")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)

    async def turn() -> tuple[str, str, str]:
        logger.info("first")
        logger.info("second")
        during = stream.getvalue()
        logger.warning("third")  # written at once, after the two waiting
        after_warning = stream.getvalue()
        logger.info("fourth")
        await asyncio.sleep(0)  # the loop's next turn
        return during, after_warning, stream.getvalue()

    try:
        during, after_warning, after_turn = asyncio.run(turn())
        logger.info("off the loop")  # no loop: written at once
        off_loop = stream.getvalue()
    finally:
        logger.removeHandler(handler)
    assert during == ""
    assert [json.loads(line)["message"] for line in after_warning.splitlines()] == ["first", "second", "third"]
    assert [json.loads(line)["message"] for line in after_turn.splitlines()] == ["first", "second", "third", "fourth"]
    assert json.loads(off_loop.splitlines()[-1])["message"] == "off the loop"
