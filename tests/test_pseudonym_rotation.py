"""Rotating the pseudonym key: decisions recorded under a retired key stay searchable by identity number.

A real server over loopback gRPC, on SQLite and on PostgreSQL: decisions for one person under key A; a restart with
B current and A retired (pseudonym_previous_key_files); a new decision under B (made in an engine worker); a search
by the number finds the old and the new, and so do the count and the export; a request_id recorded under A and
retried under B gets its first decision; with A taken off the list only the new one is found. Bad retired-key files
stop the start naming the setting."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, timestamp_pb2

from regelmotor.cli.main import main
from regelmotor.core.identity import Pseudonymiser, read_key_file, write_new_key
from regelmotor.server.app import RunningServer
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.grpc_support import request, server_in_process
from tests.identity_numbers import D_NUMRE, FODSELSNUMRE
from tests.postgres_support import postgres_schema
from tests.server_process import serve_once

PERSON = D_NUMRE[0]  # a D-nummer: the rotation holds for every kind of number
OTHER = FODSELSNUMRE[0]
PURPOSE = "tilsynssak 2025/7"
SETTING = "REGELMOTOR_PSEUDONYM_PREVIOUS_KEY_FILES"


def test_pseudonyms_come_under_the_current_key_first_then_each_retired_one() -> None:
    current, retired = b"c" * 32, b"r" * 32
    rotated = Pseudonymiser(current, previous_keys=[retired])
    assert rotated.pseudonym(PERSON) == Pseudonymiser(current).pseudonym(PERSON)  # new records: the current key
    assert rotated.pseudonyms(PERSON) == (Pseudonymiser(current).pseudonym(PERSON),
                                          Pseudonymiser(retired).pseudonym(PERSON))
    assert Pseudonymiser(current).pseudonyms(PERSON) == (Pseudonymiser(current).pseudonym(PERSON),)
    with pytest.raises(ValueError, match=r"^the pseudonym key must be at least 32 bytes$"):
        Pseudonymiser(current, previous_keys=[b"short"])


@contextmanager
def decision_log(backend: str) -> Iterator[str]:
    if backend == "postgres":
        with postgres_schema() as dsn:
            yield dsn
    else:
        yield "sqlite"  # in data_dir, which the starts share


def _evaluate(server: RunningServer, national_id: str, request_id: str) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        answer = pb_grpc.DecisionServiceStub(channel).Evaluate(
            request(None, national_id=national_id, request_id=request_id), metadata=[("regelmotor-caller", "dips")],
            timeout=30)
    return str(answer.decision_id)


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _searched(server: RunningServer, national_id: str) -> dict[str, Any]:
    """What ListDecisions, CountDecisions and ExportDecisions find for the number."""
    now = datetime.now(UTC)
    asked = apb.DecisionFilter(national_id=national_id, ruleset="rett-til-helsehjelp",  # CountDecisions needs both
                               recorded_from=_stamp(now - timedelta(hours=1)),
                               recorded_to=_stamp(now + timedelta(hours=1)))
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        audit = apb_grpc.AuditServiceStub(channel)
        listed = audit.ListDecisions(apb.ListDecisionsRequest(formaal=PURPOSE, filter=asked), timeout=10)
        counted = audit.CountDecisions(apb.CountDecisionsRequest(formaal=PURPOSE, filter=asked,
                                                                 outcome_field="utfall"), timeout=10)
        exported = [json.loads(part.json_line) for part in audit.ExportDecisions(
            apb.ExportDecisionsRequest(formaal=PURPOSE, filter=asked), timeout=10)]
        access = audit.ListAccessLog(apb.ListAccessLogRequest(formaal=PURPOSE, filter=apb.AccessLogFilter(
            method="ListDecisions"), page_size=1), timeout=10)
    return {"listed": {d.decision_id for d in listed.decisions}, "subjects": {d.subject for d in listed.decisions},
            "counted": counted.total, "exported": {line["decision_id"] for line in exported},
            "access": json_format.MessageToDict(access.entries[0].detail)}


def _replay_is_identical(server: RunningServer, decision_id: str) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        replayed = apb_grpc.AuditServiceStub(channel).ReplayDecision(
            apb.ReplayDecisionRequest(formaal=PURPOSE, decision_id=decision_id), timeout=30)
    return bool(replayed.identical)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_after_a_rotation_a_search_by_identity_number_finds_old_and_new_decisions(backend: str,
                                                                                   tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    key_a, key_b = keys / "a.key", keys / "b.key"
    for key_file in (key_a, key_b):
        assert main(["pseudonym-key", "new", str(key_file)]) == 0
    under_a, under_b = Pseudonymiser(read_key_file(key_a)), Pseudonymiser(read_key_file(key_b))
    with decision_log(backend) as location:
        shared = {"data_dir": tmp_path / "data", "decision_log": location}
        with server_in_process(workers=0, pseudonym_key_file=key_a, **shared) as (server, _, _):
            old = {_evaluate(server, PERSON, f"a-{n}") for n in range(2)}
            retried_later = _evaluate(server, PERSON, "a-retried")
            _evaluate(server, OTHER, "a-other")
        with server_in_process(workers=1, pseudonym_key_file=key_b, pseudonym_previous_key_files=[key_a],
                               **shared) as (server, _, _):
            new = _evaluate(server, PERSON, "b-1")  # in the engine worker: under the current key
            # A request recorded before the rotation, retried after it: the same request, answered as before.
            retry = _evaluate(server, PERSON, "a-retried")
            with pytest.raises(grpc.RpcError, match="was already used for a different request") as reused:
                _evaluate(server, OTHER, "a-retried")  # another patient under that request_id: still refused
            assert reused.value.code() is grpc.StatusCode.ALREADY_EXISTS
            assert server.log is not None
            stored = {decision_id: record.subject for decision_id in (*old, retried_later, new)
                      if (record := server.log.get(decision_id)) is not None}
            rotated = _searched(server, PERSON)
            replays = [_replay_is_identical(server, decision_id) for decision_id in old]
        with server_in_process(workers=0, pseudonym_key_file=key_b, **shared) as (server, _, _):
            forgotten = _searched(server, PERSON)
    assert retry == retried_later
    old.add(retried_later)
    assert stored == {**dict.fromkeys(old, under_a.pseudonym(PERSON)), new: under_b.pseudonym(PERSON)}
    assert rotated["listed"] == rotated["exported"] == {*old, new}
    assert rotated["counted"] == 4
    assert rotated["subjects"] == {under_a.pseudonym(PERSON), under_b.pseudonym(PERSON)}
    # The read is logged with the pseudonym under the current key, never the number.
    assert rotated["access"]["subject"] == under_b.pseudonym(PERSON) and PERSON not in json.dumps(rotated["access"])
    assert replays == [True, True]
    assert forgotten["listed"] == forgotten["exported"] == {new} and forgotten["counted"] == 1


def _retried_both_ways(first: RunningServer, second: RunningServer, tag: str) -> list[bool]:
    """A request recorded on each of two instances and retried with its request_id on the other: answered with the
    stored decision each time?"""
    recorded = _evaluate(first, PERSON, f"{tag}-1")
    answers = [_evaluate(second, PERSON, f"{tag}-1") == recorded]
    recorded = _evaluate(second, PERSON, f"{tag}-2")
    return [*answers, _evaluate(first, PERSON, f"{tag}-2") == recorded]


def test_a_rolling_rotation_in_two_phases_keeps_retries_across_instances_the_same_request(tmp_path: Path) -> None:
    """docs/security.md, "Rotating the pseudonym key": phase 1 gives every instance the new key B as a retired key
    (A stays current), phase 2 makes B current and A retired. In each phase's mixed state (some instances restarted,
    some not) a request retried on another instance is the same request, both ways. Skipping phase 1 leaves a mixed
    state in which an instance with A alone cannot tell a retry of a record made under B: refused."""
    key_a, key_b = tmp_path / "a.key", tmp_path / "b.key"
    for key_file in (key_a, key_b):
        assert main(["pseudonym-key", "new", str(key_file)]) == 0
    old = {"pseudonym_key_file": key_a}
    phase_1 = {"pseudonym_key_file": key_a, "pseudonym_previous_key_files": [key_b]}
    phase_2 = {"pseudonym_key_file": key_b, "pseudonym_previous_key_files": [key_a]}
    with postgres_schema() as dsn:
        def instance(name: str, keys: dict[str, Any]) -> Any:
            return server_in_process(workers=0, decision_log=dsn, data_dir=tmp_path / name, **keys)

        with instance("old", old) as (before, _, _), instance("one", phase_1) as (during_1, _, _):
            in_phase_1 = _retried_both_ways(before, during_1, "phase-1")
        with instance("one", phase_1) as (after_1, _, _), instance("two", phase_2) as (during_2, _, _):
            in_phase_2 = _retried_both_ways(after_1, during_2, "phase-2")
        with instance("old", old) as (before, _, _), instance("two", phase_2) as (rotated, _, _):
            recorded_under_b = _evaluate(rotated, PERSON, "one-phase")
            with pytest.raises(grpc.RpcError, match="was already used for a different request") as refused:
                _evaluate(before, PERSON, "one-phase")
    assert in_phase_1 == [True, True]
    assert in_phase_2 == [True, True]
    assert recorded_under_b and refused.value.code() is grpc.StatusCode.ALREADY_EXISTS


def _key_file(path: Path, text: str | None = None, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if text is None:
        write_new_key(path)
    else:
        path.write_text(text, encoding="ascii")
    path.chmod(mode)
    return path


@pytest.mark.parametrize(("case", "problem"), [
    ("world-readable", "the key file {retired} can be read by others (mode 644); chmod 600 {retired}"),
    ("missing", "cannot find {retired} (No such file or directory)"),
    ("not hex", "{retired} cannot be used as a pseudonym key: it does not hold hex digits only (64 or more)"),
    ("too short", "{retired} cannot be used as a pseudonym key: it holds 16 bytes, a pseudonym key needs 32"),
    ("the current key", "{retired} holds the current pseudonym key; list only retired keys here"),
    ("listed twice", "{retired} holds the same key as {first}; list each key once"),
])
def test_a_bad_retired_key_file_stops_the_start_naming_the_setting_and_the_file(case: str, problem: str,
                                                                               tmp_path: Path) -> None:
    current = _key_file(tmp_path / "keys" / "current.key")
    first = _key_file(tmp_path / "keys" / "first.key")
    retired = tmp_path / "keys" / "retired.key"
    if case == "world-readable":
        _key_file(retired, mode=0o644)
    elif case == "not hex":
        _key_file(retired, "zz" * 32)
    elif case == "too short":
        _key_file(retired, "ab" * 16)
    elif case == "the current key":
        _key_file(retired, current.read_text(encoding="ascii"))
    elif case == "listed twice":
        _key_file(retired, first.read_text(encoding="ascii"))
    # Separated by commas in the environment, blanks around them ignored.
    result = serve_once({"REGELMOTOR_PSEUDONYM_KEY_FILE": str(current), SETTING: f"{first} , {retired}"})
    message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "serving gRPC" not in result.stdout
    assert message.startswith(f"regelmotor: cannot start: {SETTING}: "), message
    assert problem.format(retired=retired, first=first) in message, message


def test_with_authentication_a_retired_key_inside_the_data_directory_is_refused(tmp_path: Path) -> None:
    from tests.auth_support import AUDIENCE, ISSUER, Issuer

    issuer = Issuer()
    issuer.add_rsa("k1")
    data = tmp_path / "data"
    retired = _key_file(data / "retired.key")
    env = {"REGELMOTOR_AUTH_JWKS_FILE": str(issuer.write_jwks(tmp_path / "jwks.json")),
           "REGELMOTOR_AUTH_ISSUER": ISSUER, "REGELMOTOR_AUTH_AUDIENCE": AUDIENCE, "REGELMOTOR_DATA_DIR": str(data),
           "REGELMOTOR_PSEUDONYM_KEY_FILE": str(_key_file(tmp_path / "keys" / "current.key")), SETTING: str(retired)}
    refused = serve_once(env)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        f"regelmotor: cannot start: {SETTING}: {retired} lies inside the data directory {data}, next to the decision "
        "log; keep the key apart (the retired key files on another volume), or set "
        "REGELMOTOR_ALLOW_KEY_IN_DATA_DIR=true")


def test_pseudonym_key_new_writes_a_0600_key_once_and_never_overwrites_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "new.key"
    assert main(["pseudonym-key", "new", str(key_file)]) == 0
    key = read_key_file(key_file)
    assert len(key) == 32 and key_file.stat().st_mode & 0o777 == 0o600
    said = capsys.readouterr()
    assert key.hex() not in said.out + said.err  # the key is in the file only
    assert "in two phases on every instance" in said.out  # a one-step rotation refuses retries across instances
    assert main(["pseudonym-key", "new", str(key_file)]) == 2
    assert f"{key_file} exists; a key file is never overwritten" in capsys.readouterr().err
    assert read_key_file(key_file) == key
