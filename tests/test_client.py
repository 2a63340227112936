"""The Python client and the README's example call, against a real server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from regelmotor.server.app import RunningServer
from regelmotor_client import DecisionError, RegelmotorClient
from regelmotor_client.__main__ import main
from tests.conftest import ROOT
from tests.grpc_support import VALID_FACTS, server_in_process


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with server_in_process(workers=0, known_at_settle_seconds=0) as (running, _, _):
        yield running


def _readme_outcome() -> dict[str, object]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r'"outcome": (\{.*?\n  \})', readme, re.S)
    assert block, "the README shows the example's outcome"
    return dict(json.loads(block.group(1)))


def test_readme_example_call_returns_the_decision_shown(server: RunningServer,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--address", f"127.0.0.1:{server.port}", "evaluate", "--ruleset", "rett-til-helsehjelp",
                 "--facts", str(ROOT / "docs" / "examples" / "henvisning.json"), "--as-of", "2026-04-20",
                 "--request-id", "eksempel-1"])
    decision = json.loads(capsys.readouterr().out)
    assert code == 0
    assert decision["outcome"] == _readme_outcome()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f'"ruleset_sha256": "{decision["ruleset_sha256"]}"' in readme
    assert decision["request_id"] == "eksempel-1" and decision["version"] == "2024.07.1"
    assert decision["correction"]["supersedes"] == "2024.07"


def test_client_raises_with_field_violations(server: RunningServer) -> None:
    with RegelmotorClient(f"127.0.0.1:{server.port}") as client:
        with pytest.raises(DecisionError, match=r"^INVALID_ARGUMENT: invalid request: klinisk_frist_uker: "
                                                r"Input should be less than or equal to 104") as caught:
            client.evaluate("rett-til-helsehjelp", {**VALID_FACTS, "klinisk_frist_uker": 105}, as_of="2026-04-20")
        assert caught.value.code == "INVALID_ARGUMENT"
        assert "klinisk_frist_uker" in caught.value.field_violations
        results = list(client.evaluate_many([
            {"ruleset": "rett-til-helsehjelp", "facts": VALID_FACTS, "as_of": "2026-04-20"},
            {"ruleset": "nope", "facts": {}},
        ]))
    assert results[0]["decision"]["outcome"]["veiledende_frist_uker"] == 4
    assert results[1]["error"]["code"] == 5


def test_readme_python_client_example_runs(server: RunningServer, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## The Python client\n.*?```python\n(.*?)```", readme, re.S)
    assert block, "the README shows the Python client in use"
    assert "127.0.0.1:50051" in block.group(1)
    monkeypatch.chdir(ROOT)  # the example reads docs/examples/henvisning.json
    exec(block.group(1).replace("127.0.0.1:50051", f"127.0.0.1:{server.port}"), {})
    assert capsys.readouterr().out.split() == ["rett", "2026-04-16"]


@pytest.mark.parametrize(("explanation", "level"), [("fired", "EXPLANATION_LEVEL_FIRED"),
                                                    ("none", "EXPLANATION_LEVEL_NONE")])
def test_the_command_asks_for_less_explanation_and_the_decision_says_so(
        server: RunningServer, capsys: pytest.CaptureFixture[str], explanation: str, level: str) -> None:
    common = ["--address", f"127.0.0.1:{server.port}", "evaluate", "--ruleset", "rett-til-helsehjelp",
              "--facts", str(ROOT / "docs" / "examples" / "henvisning.json"), "--as-of", "2026-04-20"]
    assert main([*common, "--request-id", f"full-{explanation}"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert main([*common, "--request-id", f"less-{explanation}", "--explanation", explanation]) == 0
    less = json.loads(capsys.readouterr().out)
    assert "explanation_level" not in full and less["explanation_level"] == level
    assert less["outcome"] == full["outcome"] == _readme_outcome()
    fired = [rule["id"] for rule in full["explanation"]["rules"] if rule.get("fired")]
    if explanation == "fired":
        assert [rule["id"] for rule in less["explanation"]["rules"]] == fired
    else:
        assert "explanation" not in less


def test_the_client_refuses_an_unknown_explanation_before_sending(server: RunningServer) -> None:
    with RegelmotorClient(f"127.0.0.1:{server.port}") as client, \
            pytest.raises(ValueError, match="explanation must be one of full, fired, none"):
        client.evaluate("rett-til-helsehjelp", VALID_FACTS, explanation="some")
    items = [{"ruleset": "rett-til-helsehjelp", "facts": VALID_FACTS, "as_of": "2026-04-20", "explanation": level}
             for level in ("none", "full")]
    with RegelmotorClient(f"127.0.0.1:{server.port}") as client:
        answers = list(client.evaluate_many(items))
    assert [a["decision"].get("explanation_level") for a in answers] == ["EXPLANATION_LEVEL_NONE", None]


def test_the_client_asks_as_known_at_a_moment_and_the_decision_says_so(server: RunningServer) -> None:
    moment = datetime.now(UTC)  # after the service stored its versions (at its start)
    with RegelmotorClient(f"127.0.0.1:{server.port}") as client:
        decision = client.evaluate("rett-til-helsehjelp", VALID_FACTS, as_of="2026-04-20", known_at=moment.isoformat())
        assert datetime.fromisoformat(decision["known_at"]) == moment
        (streamed,) = client.evaluate_many([{"ruleset": "rett-til-helsehjelp", "facts": VALID_FACTS,
                                             "as_of": "2026-04-20", "known_at": moment.isoformat()}])
        assert streamed["decision"]["known_at"] == decision["known_at"]
        with pytest.raises(DecisionError, match=r"^INVALID_ARGUMENT") as caught:
            client.evaluate("rett-til-helsehjelp", VALID_FACTS, known_at="2026-04-20")
    assert "known_at" in caught.value.field_violations
