"""One facts-file reader (regelmotor_api.facts) for `regelmotor-client` and `regelmotor evaluate`.

The same JSON or YAML file must reach the engine as the same facts whichever way it goes: evaluated
locally by `regelmotor evaluate`, or sent over gRPC by the client. A YAML datetime in particular
must arrive as the ISO 8601 text with 'T' and offset the server accepts (yaml.safe_load + str()
made it "2024-02-26 14:00:00+01:00", which the server refused).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from regelmotor.cli.main import main as regelmotor_main
from regelmotor.server.app import RunningServer
from regelmotor.server.config import Settings
from regelmotor_api.facts import MAX_DEPTH, MAX_FACTS_BYTES, FactsFileError, parse_facts, read_facts
from regelmotor_client import RegelmotorClient
from regelmotor_client.__main__ import main as client_main
from tests.conftest import FIXTURES
from tests.grpc_support import server_in_process

# A discharge (utskrivningsklar) as a person writes YAML: unquoted dates and datetimes.
UTSKRIVNINGSKLAR_YAML = (FIXTURES / "facts" / "utskrivningsklar.yaml").read_text(encoding="utf-8")
UTSKRIVNINGSKLAR_API = {
    "utskrivningsklar_dato": "2024-03-04", "sektor": "somatikk", "innlagt": "2024-02-26T14:00:00+01:00",
    "forventet_behov_kommunale_tjenester": True, "varsel_innlagt": "2024-02-27T08:00:00+00:00",
    "problemstillinger_innleggelse_avklart": True, "ovrige_problemstillinger_avklart": True,
    "uavklarte_problemstillinger_begrunnet": True, "funksjonsniva_vurdert": True,
    "lege_vurdert_utskrivningsklar": True, "melding_utskrivningsklar": "2024-03-04T11:00:00.250000+01:00",
    "kommune_svar": "kan_ikke_ta_imot", "kommune_klar_dato": "2024-03-08", "bostedskommune": "0301",
    "oppholdskommune": "4601",
}
# A referral with a list fact.
HENVISNING_YAML = """\
ansiennitetsdato: 2026-03-30
fodselsdato: 2004-05-02
fagomrade: tsb
tilstand: tsb_alkohol
individuelle_forhold:
  - over_20_alkoholenheter_per_dogn
forventet_nytte: true
kostnad_rimelig: true
vurdert_dato: 2026-04-08
"""
HENVISNING_API = {
    "ansiennitetsdato": "2026-03-30", "fodselsdato": "2004-05-02", "fagomrade": "tsb", "tilstand": "tsb_alkohol",
    "individuelle_forhold": ["over_20_alkoholenheter_per_dogn"], "forventet_nytte": True, "kostnad_rimelig": True,
    "vurdert_dato": "2026-04-08",
}
CASES = {
    "utskrivningsklar": (UTSKRIVNINGSKLAR_YAML, UTSKRIVNINGSKLAR_API, "2024-04-01"),
    "rett-til-helsehjelp": (HENVISNING_YAML, HENVISNING_API, "2026-04-20"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with server_in_process(workers=0) as (running, _, _):
        yield running


def _printed_decision(code: int, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out, err = capsys.readouterr()
    assert code == 0, err
    return dict(json.loads(out))


@pytest.mark.parametrize("ruleset", sorted(CASES))
def test_the_client_and_regelmotor_evaluate_read_a_facts_file_alike(
        ruleset: str, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, api_facts, as_of = CASES[ruleset]
    (tmp_path / "facts.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "facts.json").write_text(json.dumps(api_facts, indent=2), encoding="utf-8")
    decisions = {}
    for name in ("facts.yaml", "facts.json"):
        path = str(tmp_path / name)
        decisions["client", name] = _printed_decision(client_main(
            ["--address", f"127.0.0.1:{server.port}", "evaluate", "--ruleset", ruleset, "--facts", path,
             "--as-of", as_of]), capsys)
        decisions["cli", name] = _printed_decision(regelmotor_main(
            ["evaluate", "--ruleset", ruleset, "--facts", path, "--as-of", as_of, "--drafts", "--json"]), capsys)
    first = decisions["cli", "facts.json"]
    for way, decision in decisions.items():
        assert decision["facts"] == first["facts"], way
        assert decision["outcome"] == first["outcome"], way
        assert (decision["version"], decision["ruleset_sha256"]) == (first["version"], first["ruleset_sha256"])
    # The validated facts are the file's facts in the API's form (plus the optional facts left out).
    assert {key: first["facts"][key] for key in api_facts} == api_facts


def test_a_yaml_datetime_on_standard_input_reaches_the_server_as_iso_8601_with_its_offset(
        server: RunningServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(UTSKRIVNINGSKLAR_YAML))
    decision = _printed_decision(client_main(["--address", f"127.0.0.1:{server.port}", "evaluate", "--ruleset",
                                              "utskrivningsklar", "--facts", "-", "--as-of", "2024-04-01"]), capsys)
    assert decision["facts"]["innlagt"] == "2024-02-26T14:00:00+01:00"
    assert decision["outcome"]["belop"] == 22980 and decision["outcome"]["utfall"] == "betalingsplikt"
    with RegelmotorClient(f"127.0.0.1:{server.port}") as client:
        library = client.evaluate("utskrivningsklar", parse_facts(UTSKRIVNINGSKLAR_YAML), as_of="2024-04-01")
    assert library["facts"] == decision["facts"]


@pytest.mark.parametrize(("text", "source", "place", "reason"), [
    ("a: 1\ninnlagt: 2024-02-26 14:00:00\n", "f.yaml", "f.yaml:2:10: innlagt", "needs a UTC offset"),
    ("innlagt: 2024-02-26T14:00:00\n", "f.yaml", "f.yaml:1:10: innlagt", "needs a UTC offset"),
    ("liste:\n  - 2025-02-30\n", "f.yaml", "f.yaml:2:5: liste[0]", "impossible date '2025-02-30'"),
    ("a: &x 1\nb: *x\n", "f.yaml", "f.yaml:2:4", "YAML aliases (*name) are not allowed"),
    ("a:\n  <<: {b: 1}\n", "f.yaml", "f.yaml:2:3: a", "merge keys (<<) are not allowed"),
    ("a: !!binary aGVp\n", "f.yaml", "f.yaml:1:4: a", "tag !!binary is not allowed"),
    ("a: !!python/name:os.system x\n", "f.yaml", "f.yaml:1:4: a", "is not allowed"),
    ("on: 1\n", "f.yaml", "f.yaml:1:1", "the key 'on' is not read as text by YAML"),
    ("a: 1\na: 2\n", "f.yaml", "f.yaml:2:1", "duplicate key 'a'"),
    ('{"a": 1, "a": 2}', "f.json", "f.json", "duplicate key 'a'"),
    ("a: .nan\n", "f.yaml", "f.yaml:1:4: a", "not a number the API can carry"),
    ('{"a": [1, NaN]}', "-", "-", "NaN is not a number the API can carry"),
    ('{"a": [1, 1e999]}', "f.json", "f.json: a[1]", "not a number the API can carry"),
    ("a: 9007199254740993\n", "f.yaml", "f.yaml:1:4: a", "larger than the API's numbers hold exactly"),
    ("- 1\n", "f.yaml", "f.yaml", "the facts file is a list; expected a mapping"),
    ("", "f.yaml", "f.yaml", "the facts file is empty"),
    ("a: [1,\n", "f.yaml", "f.yaml:2:1", "not valid YAML"),
    ('{"a": 1', "f.json", "f.json:1:8", "not valid JSON"),
    ("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "f.yaml", "f.yaml:1:", "nested deeper than"),
    ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "f.json", "f.json", "nested deeper than"),
])
def test_facts_the_api_cannot_carry_are_refused_with_their_place(text: str, source: str, place: str,
                                                                 reason: str) -> None:
    with pytest.raises(FactsFileError, match=re.escape(reason)) as caught:
        parse_facts(text, source)
    assert str(caught.value).startswith(place), str(caught.value)


def test_a_facts_file_is_read_to_a_bound(tmp_path: Path) -> None:
    # The default is the largest request the server takes by default.
    assert Settings.model_fields["max_message_bytes"].default == MAX_FACTS_BYTES
    path = tmp_path / "facts.yaml"
    path.write_text("a: " + "x" * 61 + "\n", encoding="utf-8")  # 65 bytes
    assert read_facts(path, max_bytes=65) == {"a": "x" * 61}
    with pytest.raises(FactsFileError, match=r"facts\.yaml: the facts file is larger than 64 bytes"):
        read_facts(path, max_bytes=64)
    with pytest.raises(FactsFileError, match="<stdin>: the facts file is larger than 64 bytes"):
        read_facts("-", stdin=io.BytesIO(path.read_bytes()), max_bytes=64)
    with pytest.raises(FactsFileError, match=r"nofile\.yaml: cannot read the facts file"):
        read_facts(tmp_path / "nofile.yaml")


def test_the_client_command_refuses_a_bad_facts_file_before_calling(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text("sektor: somatikk\ninnlagt: 2024-02-26 14:00:00\n", encoding="utf-8")
    # Port 9 (discard) on loopback: nothing listens, and nothing is sent.
    code = client_main(["--address", "127.0.0.1:9", "evaluate", "--ruleset", "utskrivningsklar",
                        "--facts", str(facts)])
    err = capsys.readouterr().err
    assert code == 2 and f"{facts}:2:10: innlagt: the datetime '2024-02-26 14:00:00' needs a UTC offset" in err


def test_regelmotor_evaluate_refuses_a_datetime_without_offset_with_its_place(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text(UTSKRIVNINGSKLAR_YAML.replace("2024-02-26 14:00:00+01:00", "2024-02-26 14:00:00"),
                     encoding="utf-8")
    code = regelmotor_main(["evaluate", "--ruleset", "utskrivningsklar", "--facts", str(facts),
                            "--as-of", "2024-04-01"])
    assert code == 1 and f"{facts}:5:10: innlagt: the datetime" in capsys.readouterr().err


# Nested facts of every kind YAML writes unquoted; safe_dump writes datetimes with a space, not 'T'.
# (No control or line-separator characters in text: PyYAML itself does not round-trip U+0085.)
_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=12)
_OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), _TEXT,
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(date(1900, 1, 1), date(2100, 12, 31)),
    st.builds(lambda moment, zone: moment.replace(tzinfo=zone),
              st.datetimes(datetime(1900, 1, 2), datetime(2100, 12, 30)), _OFFSETS),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4), max_leaves=12)
_FACTS = st.dictionaries(_TEXT.filter(bool), _VALUES, max_size=6)


def _api_form(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return [_api_form(item) for item in value]
    return value


@settings(max_examples=80, deadline=None)
@given(_FACTS)
def test_yaml_and_json_of_the_same_facts_read_the_same(facts: dict[str, Any]) -> None:
    expected = {key: _api_form(value) for key, value in facts.items()}
    assert parse_facts(yaml.safe_dump(facts, allow_unicode=True), "facts.yaml") == expected
    assert parse_facts(json.dumps(expected), "facts.json") == expected
    assert parse_facts(json.dumps(expected, indent="\t"), "-") == expected
