"""`regelmotor audit`, run as a person runs it (a child process) against the real service over loopback, with
decisions made through the API in the test: searches find exactly those decisions (the API's own answer is the
reference), an identity number given by file or standard input finds the patient's and never shows, a decision
is shown as its tree, replayed and exported, the chain check finds a record changed in the database, and every
failure is one line with its documented exit status."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from regelmotor.store import pack_response, unpack_response
from regelmotor_api.v1 import audit_pb2 as apb
from regelmotor_api.v1 import audit_pb2_grpc as apb_grpc
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.auth_support import AUDIENCE, ISSUER, Issuer
from tests.conftest import ROOT
from tests.grpc_support import request, server_in_process
from tests.identity_numbers import FODSELSNUMRE
from tests.server_process import ServerProcess, running_server

PURPOSE = "tilsynssak 2024/118"
PATIENT = FODSELSNUMRE[0]
OTHER_PATIENT = FODSELSNUMRE[1]
SOURCE = os.pathsep.join(str(ROOT / p) for p in ("services/rules", "protos/python", "clients/python", "."))


@dataclass
class Made:
    server: ServerProcess
    caller: str
    ids: list[str]  # every decision the test made, oldest first
    patient_ids: list[str]  # those made for PATIENT


def _evaluate(server: ServerProcess, caller: str, **fields: str) -> str:
    with grpc.insecure_channel(server.address) as channel:
        answer = pb_grpc.DecisionServiceStub(channel).Evaluate(
            request(None, **fields), metadata=[("regelmotor-caller", caller)], timeout=30)
    return str(answer.decision_id)


@pytest.fixture(scope="module")
def made() -> Iterator[Made]:
    # REGELMOTOR_PURPOSE, which the commands read, set in the shell that starts the server too: it is no setting
    # of the server's, which refuses unknown REGELMOTOR_* variables, but a known variable of other commands.
    with running_server(workers=1, env={"REGELMOTOR_PURPOSE": PURPOSE}) as server:
        caller = f"cli-audit-{time.time_ns()}"
        fields = [{"national_id": PATIENT}, {}, {"national_id": OTHER_PATIENT}, {"national_id": PATIENT}, {}]
        ids = [_evaluate(server, caller, request_id=f"{caller}-{i}", **extra) for i, extra in enumerate(fields)]
        yield Made(server, caller, ids, [ids[0], ids[3]])


def audit(made: Made | None, *args: str, stdin: str | None = None, purpose: str | None = PURPOSE,
          address: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "regelmotor.cli.main", "audit", *args,
               "--address", address or (made.server.address if made else "")]
    if purpose is not None:
        command += ["--purpose", purpose]
    inherited = {k: v for k, v in os.environ.items() if k not in ("REGELMOTOR_PURPOSE", "REGELMOTOR_ADDRESS")}
    return subprocess.run(command, input=stdin if stdin is not None else "", capture_output=True, text=True,
                          env={**inherited, **(env or {}), "PYTHONPATH": SOURCE}, cwd=ROOT, timeout=120,
                          check=False)


def audit_each(made: Made | None, commands: list[list[str]], **options: Any) -> list[subprocess.CompletedProcess[str]]:
    """Each command run as `audit` runs it, four at a time (a command mostly waits for its interpreter to start)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda command: audit(made, *command, **options), commands))


def _api_list(made: Made, **fields: Any) -> list[dict[str, Any]]:
    """The API's own answer, every page: what the command must show."""
    found: list[dict[str, Any]] = []
    query = apb.ListDecisionsRequest(formaal=PURPOSE, page_size=2,
                                     filter=json_format.ParseDict(fields, apb.DecisionFilter()))
    with grpc.insecure_channel(made.server.address) as channel:
        stub = apb_grpc.AuditServiceStub(channel)
        while True:
            page = stub.ListDecisions(query, timeout=30)
            found += [json_format.MessageToDict(d, preserving_proto_field_name=True) for d in page.decisions]
            if not page.next_page_token:
                return found
            query.page_token = page.next_page_token


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert result.returncode == code, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr
    assert result.stdout == ""
    return result.stderr


def test_list_with_filters_finds_exactly_the_decisions_made(made: Made) -> None:
    every = audit(made, "list", "--caller", made.caller, "--json", "--limit", "0")
    assert every.returncode == 0, every.stderr
    listed = _json_lines(every.stdout)
    assert {d["decision_id"] for d in listed} == set(made.ids) and len(listed) == len(made.ids)
    assert [d["decision_id"] for d in listed] == [d["decision_id"] for d in _api_list(made, caller=made.caller)]
    today = date.today().isoformat()
    narrowed = audit(made, "list", "--caller", made.caller, "--ruleset", "rett-til-helsehjelp", "--version",
                     "2024.07.1", "--outcome", "utfall=rett", "--from", today, "--to", today, "--json")
    assert narrowed.returncode == 0, narrowed.stderr
    assert {d["decision_id"] for d in _json_lines(narrowed.stdout)} == set(made.ids)
    none = audit(made, "list", "--caller", made.caller, "--outcome", "utfall=ikke_rett", "--json")
    assert none.returncode == 0 and none.stdout == ""
    paged = audit(made, "list", "--caller", made.caller, "--limit", "2")  # the table, two rows and a note
    assert paged.returncode == 0, paged.stderr
    rows = paged.stdout.splitlines()
    assert rows[0].split()[:2] == ["registrert", "beslutning"]
    assert [row.split()[2] for row in rows[1:3]] == list(reversed(made.ids))[:2]  # newest first
    assert "utfall=rett" in rows[1] and made.caller in rows[1] and "flere finnes" in paged.stdout


def test_the_identity_number_from_a_file_or_stdin_finds_the_patient_and_never_shows(made: Made,
                                                                                     tmp_path: Path) -> None:
    number_file = tmp_path / "fnr.txt"
    number_file.write_text(PATIENT + "\n", encoding="utf-8")
    by_file = audit(made, "list", "--caller", made.caller, "--national-id-file", str(number_file), "--json")
    by_stdin = audit(made, "list", "--caller", made.caller, "--national-id-file", "-", "--json", stdin=PATIENT)
    table = audit(made, "list", "--caller", made.caller, "--national-id-file", "-", stdin=PATIENT)
    for result in (by_file, by_stdin, table):
        assert result.returncode == 0, result.stderr
        assert PATIENT not in result.stdout and PATIENT not in result.stderr
    assert {d["decision_id"] for d in _json_lines(by_file.stdout)} == set(made.patient_ids)
    assert {d["decision_id"] for d in _json_lines(by_stdin.stdout)} == set(made.patient_ids)
    wrong = audit(made, "list", "--national-id-file", "-", stdin="1234")
    assert "filter.national_id" in _one_line_error(wrong, 3) and "1234" not in wrong.stderr


def test_an_identity_number_on_the_command_line_is_refused_without_repeating_it() -> None:
    as_option = audit(None, "list", "--national-id", PATIENT, address="127.0.0.1:9")
    assert "--national-id-file" in _one_line_error(as_option, 2, "ps", "shell history")
    for misplaced in (["list", PATIENT], ["list", "--json", PATIENT], ["show", "some-id", PATIENT]):
        stray = audit(None, *misplaced, address="127.0.0.1:9")
        assert PATIENT not in _one_line_error(stray, 2, "unrecognized arguments")
    assert "(ps)" in audit(None, "list", "--help", address="x").stdout  # the help says why


def test_show_prints_provenance_facts_and_the_tree(made: Made) -> None:
    decision_id = made.patient_ids[0]
    shown = audit(made, "show", decision_id)
    assert shown.returncode == 0, shown.stderr
    for expected in ("Opphav", f"spurt av     {made.caller}", "pseudonym", "Fakta", "fagomrade = tsb",
                     f"Beslutning {decision_id}", "Utfall", "utfall = \"rett\"", "Regler", "✓"):
        assert expected in shown.stdout
    assert PATIENT not in shown.stdout
    document = json.loads(audit(made, "show", decision_id, "--json").stdout)
    assert document["decision"]["decision_id"] == decision_id and document["summary"]["caller"] == made.caller


def test_show_of_a_decision_answered_without_explanation_points_to_replay(made: Made) -> None:
    asked = request(None, request_id=f"{made.caller}-none")
    asked.explanation = pb.EXPLANATION_LEVEL_NONE
    with grpc.insecure_channel(made.server.address) as channel:
        decision_id = pb_grpc.DecisionServiceStub(channel).Evaluate(
            asked, metadata=[("regelmotor-caller", "uten-forklaring")], timeout=30).decision_id
    shown = audit(made, "show", decision_id)
    assert shown.returncode == 0, shown.stderr
    assert "utfall = \"rett\"" in shown.stdout and "✓" not in shown.stdout  # the outcome, and no rule it was not given
    assert f"EXPLANATION_LEVEL_NONE: se hele treet med `regelmotor audit replay {decision_id}`" in shown.stdout


def test_replay_of_an_untouched_decision_is_identical(made: Made) -> None:
    replayed = audit(made, "replay", made.ids[1])
    assert replayed.returncode == 0, replayed.stderr
    assert "identisk" in replayed.stdout
    document = json.loads(audit(made, "replay", made.ids[1], "--json").stdout)
    assert document["identical"] is True and document["differences"] == []


def test_export_lines_are_the_listed_decisions_oldest_first(made: Made, tmp_path: Path) -> None:
    listed = _api_list(made, caller=made.caller)
    target = tmp_path / "export.jsonl"
    to_file = audit(made, "export", "--caller", made.caller, "--output", str(target), "--json")
    assert to_file.returncode == 0, to_file.stderr
    assert json.loads(to_file.stdout) == {"exported": len(made.ids), "output": str(target)}
    assert target.stat().st_mode & 0o077 == 0  # health data: the owner's alone
    lines = _json_lines(target.read_text(encoding="utf-8"))
    assert [line["decision_id"] for line in lines] == [d["decision_id"] for d in reversed(listed)]
    for line, summary in zip(lines, reversed(listed), strict=True):
        assert (line["seq"], line["hash"], line["caller"]) == (int(summary["seq"]), summary["hash"],
                                                               summary["caller"])
        assert line["decision"]["outcome"] == summary["outcome"]
    to_stdout = audit(made, "export", "--caller", made.caller)  # stdout a pipe: JSON lines and nothing else
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert _json_lines(to_stdout.stdout) == lines and to_stdout.stderr == ""


def _read_all(descriptor: int) -> bytes:
    """Everything a terminal shows until the process on its other side has closed it."""
    shown = b""
    while True:
        try:
            chunk = os.read(descriptor, 4096)
        except OSError:  # EIO: the other side closed
            return shown
        if not chunk:
            return shown
        shown += chunk


def _stderr_on_a_terminal(made: Made, stdout: Path, *args: str) -> bytes:
    """Run the command with standard error on a terminal (a pty, which has not told its size) and standard output
    into a file; what the terminal showed."""
    controller, terminal = pty.openpty()
    with stdout.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "regelmotor.cli.main", "audit", *args, "--purpose", PURPOSE, "--address",
             made.server.address], stdin=subprocess.DEVNULL, stdout=out, stderr=terminal,
            env={**os.environ, "PYTHONPATH": SOURCE}, cwd=ROOT)
        os.close(terminal)
        shown = _read_all(controller)
        assert process.wait(60) == 0, shown.decode(errors="replace")
    os.close(controller)
    return shown


def test_the_export_bar_is_on_a_terminal_only_and_never_among_the_lines(made: Made, tmp_path: Path) -> None:
    target = tmp_path / "stdout.jsonl"
    shown = _stderr_on_a_terminal(made, target, "export", "--caller", made.caller)
    assert b"eksporterer" in shown and f"{len(made.ids)} beslutninger".encode() in shown
    assert [line["decision_id"] for line in _json_lines(target.read_text(encoding="utf-8"))] == made.ids


def test_verify_says_what_it_does_on_a_terminal_and_clears_it(made: Made, tmp_path: Path) -> None:
    target = tmp_path / "verify.txt"
    shown = _stderr_on_a_terminal(made, target, "verify")
    assert shown.startswith("kontrollerer hele kjeden …".encode()) and shown.endswith(b"\r\x1b[K")
    assert target.read_text(encoding="utf-8").startswith("Kjeden er hel")


def _at_a_terminal(*args: str) -> tuple[int, int]:
    """The command run at a terminal (a pty that is its controlling terminal, as a person's is): its pid, and the
    terminal's other side."""
    pid, controller = pty.fork()
    if pid == 0:  # the child becomes the command
        os.execve(sys.executable, [sys.executable, "-m", "regelmotor.cli.main", "audit", *args, "--purpose",
                                   PURPOSE], {**os.environ, "PYTHONPATH": SOURCE})
    return pid, controller


def _exit_status(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_standard_input_at_a_terminal_is_refused_for_the_number() -> None:
    pid, controller = _at_a_terminal("list", "--national-id-file", "-", "--address", "127.0.0.1:9")
    os.write(controller, b"\x04")  # Ctrl-D: a command that did read the terminal ends rather than waits
    shown = _read_all(controller)
    os.close(controller)
    assert _exit_status(pid) == 2 and b"use --national-id-prompt" in shown


def test_the_prompt_does_not_show_the_number_as_it_is_typed(made: Made) -> None:
    pid, controller = _at_a_terminal("list", "--json", "--national-id-prompt", "--caller", made.caller,
                                     "--address", made.server.address)
    shown = b""
    while b"vises ikke" not in shown:
        chunk = os.read(controller, 1024)
        assert chunk, shown
        shown += chunk
    os.write(controller, PATIENT.encode() + b"\n")
    shown += _read_all(controller)
    os.close(controller)
    assert _exit_status(pid) == 0, shown.decode(errors="replace")
    assert PATIENT.encode() not in shown  # not echoed, and not in the answer
    found = {json.loads(line)["decision_id"] for line in shown.decode().splitlines() if line.startswith("{")}
    assert found == set(made.patient_ids)


def test_verify_of_an_intact_log(made: Made) -> None:
    verified = audit(made, "verify", purpose=None, env={"REGELMOTOR_PURPOSE": PURPOSE})
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("Kjeden er hel") and verified.stderr == ""  # no "checking" line off a TTY
    document = json.loads(audit(made, "verify", "--json").stdout)
    assert document["ok"] is True and int(document["checked"]) >= len(made.ids)


def test_a_missing_purpose_is_the_services_refusal_naming_formaal(made: Made) -> None:
    commands = [["list"], ["show", made.ids[0]], ["replay", made.ids[0]], ["verify"], ["export"], ["access"]]
    for result in audit_each(made, commands, purpose=None):
        _one_line_error(result, 3, "INVALID_ARGUMENT", "formaal: required", "--purpose TEXT or REGELMOTOR_PURPOSE")


def test_an_unknown_decision_is_the_services_refusal(made: Made) -> None:
    _one_line_error(audit(made, "show", "no-such-decision"), 3, "NOT_FOUND")


def test_an_unreachable_service_is_exit_4_in_one_line() -> None:
    result = audit(None, "verify", address="127.0.0.1:9")  # the discard port: nothing listens there
    assert "cannot reach the service at 127.0.0.1:9" in _one_line_error(result, 4)


UNUSABLE = [("--from", ["list", "--from", "i går"]), ("--to", ["access", "--to", "2026-04-20T10:00"]),
            ("--to", ["list", "--to", "9999-12-31"]), ("--from", ["access", "--from", "0001-01-01T00:00:00+01:00"]),
            ("--outcome", ["list", "--outcome", "utfall"]), ("--limit", ["list", "--limit", "-1"]),
            ("--national-id-file", ["list", "--national-id-file", "/no/such/file"]),
            ("--output", ["export", "--output", "/no/such/dir/x.jsonl"]),
            ("--token-file", ["verify", "--token-file", "/no/such/token"])]


def test_an_unusable_option_is_exit_2_naming_it() -> None:
    results = audit_each(None, [command for _, command in UNUSABLE], address="127.0.0.1:9")
    for (named, _), result in zip(UNUSABLE, results, strict=True):
        assert f"regelmotor: {named}: " in _one_line_error(result, 2)


def test_a_record_changed_in_the_database_breaks_the_chain_and_the_replay() -> None:
    # A server of its own: its log is altered as an intruder with write access to the SQLite file can, past the
    # append-only trigger, while it runs (as tests/test_decision_log_service.py does); the service keeps answering.
    with running_server(workers=1) as server:
        caller = "tamper"
        ids = [_evaluate(server, caller, request_id=f"t-{i}") for i in range(3)]
        own = Made(server, caller, ids, [])
        assert audit(own, "verify").returncode == 0
        with sqlite3.connect(server.data_dir / "decisions.db") as db:
            [(packed,)] = db.execute("SELECT response FROM decisions WHERE decision_id = ?", (ids[1],)).fetchall()
            forged = pb.Decision.FromString(unpack_response(packed))
            forged.outcome.fields["frist_start_helsehjelp"].string_value = "2099-01-01"
            db.execute("DROP TRIGGER decisions_no_update")
            db.execute("UPDATE decisions SET response = ? WHERE decision_id = ?",
                       (pack_response(forged.SerializeToString()), ids[1]))
        verified = audit(own, "verify")
        replayed = audit(own, "replay", ids[1])
        document = json.loads(audit(own, "verify", "--json").stdout)
    assert verified.returncode == 1, verified.stderr
    assert verified.stdout.startswith(f"Kjeden er BRUTT ved plass 2 (beslutning {ids[1]}): altered")
    assert document["ok"] is False and document["first_problem"]["decision_id"] == ids[1]
    assert replayed.returncode == 1, replayed.stderr
    assert "AVVIKER" in replayed.stdout
    assert "outcome.frist_start_helsehjelp: registrert \"2099-01-01\" → nå \"2026-04-27\"" in replayed.stdout


def _api_access(made: Made, formaal_contains: str) -> list[dict[str, Any]]:
    query = apb.ListAccessLogRequest(formaal=PURPOSE, page_size=500,
                                     filter=apb.AccessLogFilter(formaal_contains=formaal_contains))
    with grpc.insecure_channel(made.server.address) as channel:
        page = apb_grpc.AuditServiceStub(channel).ListAccessLog(query, timeout=30)
    return [json_format.MessageToDict(entry, preserving_proto_field_name=True) for entry in page.entries]


def test_access_lists_who_read_what_and_why(made: Made) -> None:
    reader = f"revisor-{time.time_ns()}"  # without authentication the service knows the command's user by USER
    case = f"sak {reader}"
    assert audit(made, "show", made.ids[2], purpose=f"{case} les", env={"USER": reader}).returncode == 0
    assert audit(made, "replay", made.ids[2], purpose=f"{case} gjenkjør", env={"USER": reader}).returncode == 0
    by_purpose = audit(made, "access", "--purpose-contains", case.upper(), "--json")
    assert by_purpose.returncode == 0, by_purpose.stderr
    entries = _json_lines(by_purpose.stdout)
    assert [(e["method"], e["reader"], e["decision_id"], e["formaal"]) for e in entries] == [
        ("ReplayDecision", reader, made.ids[2], f"{case} gjenkjør"),
        ("GetDecision", reader, made.ids[2], f"{case} les")]
    assert [e["id"] for e in entries] == [e["id"] for e in _api_access(made, formaal_contains=case)]
    narrowed = audit(made, "access", "--reader", reader, "--decision", made.ids[2], "--method", "GetDecision",
                     "--from", date.today().isoformat(), "--json")
    assert [e["formaal"] for e in _json_lines(narrowed.stdout)] == [f"{case} les"]
    yesterday = date.fromordinal(date.today().toordinal() - 1).isoformat()
    assert audit(made, "access", "--reader", reader, "--to", yesterday, "--json").stdout == ""
    shown = audit(made, "access", "--reader", reader)
    assert shown.returncode == 0, shown.stderr
    rows = shown.stdout.splitlines()
    assert rows[0].split()[:4] == ["lest", "leser", "metode", "beslutning"]
    assert rows[1].split()[2:5] == [reader, "ReplayDecision", made.ids[2]] and f"{case} gjenkjør" in rows[1]
    assert "2 oppslag" in shown.stdout


def test_the_access_log_records_an_identity_search_by_pseudonym_only(made: Made) -> None:
    reader = f"revisor-{time.time_ns()}"
    assert audit(made, "list", "--national-id-file", "-", stdin=PATIENT, env={"USER": reader}).returncode == 0
    shown = audit(made, "access", "--reader", reader)
    assert shown.returncode == 0 and "ListDecisions" in shown.stdout and "subject=" in shown.stdout
    assert PATIENT not in shown.stdout


def test_with_tokens_the_reader_is_the_token_and_a_missing_role_is_refused(idp: Issuer, tmp_path: Path) -> None:
    # A service that requires bearer tokens (in this process, for speed); the command sends the token from a file.
    jwks = idp.write_jwks(tmp_path / "jwks.json")
    with server_in_process(workers=0, auth_jwks_file=jwks, auth_issuer=ISSUER, auth_audience=AUDIENCE) as (
            running, _, _):
        with grpc.insecure_channel(running.address) as channel:
            decided = pb_grpc.DecisionServiceStub(channel).Evaluate(
                request(None, request_id="med-token"), timeout=30,
                metadata=[("authorization", f"Bearer {idp.token(scope='evaluate', sub='dips')}")])
        auditor, hospital = tmp_path / "revisor.jwt", tmp_path / "sykehus.jwt"
        auditor.write_text(idp.token(scope="audit", sub="kari", client_id="revisjonsverktoy"), encoding="utf-8")
        hospital.write_text(idp.token(scope="evaluate", sub="dips"), encoding="utf-8")
        address = running.address
        refused = audit(None, "list", "--token-file", str(hospital), address=address)
        listed = audit(None, "list", "--token-file", str(auditor), address=address)
        read = audit(None, "access", "--method", "ListDecisions", "--token-file", str(auditor), "--json",
                     address=address)
    assert "PERMISSION_DENIED" in _one_line_error(refused, 3)
    assert listed.returncode == 0, listed.stderr
    [row] = listed.stdout.splitlines()[1:2]
    # The audit role may not read rulesets, so the ruleset's headline is unknown: every outcome field, shortened.
    assert decided.decision_id in row and "…" in row
    assert [e["reader"] for e in _json_lines(read.stdout)] == ["revisjonsverktoy"]  # the token's, not USER
