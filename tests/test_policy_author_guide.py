"""docs/guides/policy-author.md works as written: its commands run in order against a real `regelmotor serve`.

The guide marks what the test does with HTML comments a reader does not see: `<!-- steg: NAME -->` before each
```sh block (a command block, run with bash as written), `<!-- endring: FILE -->` before a «Før» and an «Etter»
yaml block (the «Før» lines must stand once in FILE, as whole lines, and become the «Etter» lines), and
`<!-- slett: FILE, N steder -->` (or `1 sted`) before a yaml block whose lines stand N times in FILE and are
deleted.

Where it runs: a temporary folder standing for the reader's checkout, with copies of `rulesets/` and
`docs/examples/`, `regelmotor` and `regelmotor-client` on PATH (this checkout's code), and a `.venv/bin/activate`
so the guide's first command runs too. Each block runs in a fresh shell as the author, USER=kari; the approver's
block names `USER=ola` itself, as the guide tells a reader alone at one machine. The service is started as the
guide says (`regelmotor serve`, in its own "terminal": the background), with what a reader's machine has by
default taken from the environment: REGELMOTOR_PORT=0 (a free port, read from its ready line), one engine worker,
and REGELMOTOR_RULESETS naming the copy; the other blocks reach it through REGELMOTOR_ADDRESS. Its decision log
holds last year's decisions: 12 decisions of 2025 stays, evaluated by a real server first and stored again with
the moment they were made in 2025 (the guide's impact window is 2025).

Step 9 (the running service serves the published version within five seconds, no restart) is its own test,
`test_the_running_service_serves_the_new_version`, run after all other steps.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from regelmotor.core.errors import RulesetInvalid
from regelmotor.core.loader import load_ruleset_file
from regelmotor.core.repository import RulesetRepository
from regelmotor.store import ListFilter, open_log
from regelmotor_api.v1 import decision_pb2 as pb
from regelmotor_api.v1 import decision_pb2_grpc as pb_grpc
from tests.conftest import ROOT
from tests.grpc_support import server_in_process, struct

GUIDE = ROOT / "docs" / "guides" / "policy-author.md"
STEPS = ["aktiver", "start", "for", "kopier", "valider", "test", "konsekvens", "foreslaa", "diff", "godkjenn", "i-bruk",
         "historikk", "registrer", "rette"]
LATER = "i-bruk"  # needs hot reload: run by its own test, after the others
SHA256 = "638bdb0770d1cebdb4185afede167d95113f3f9ece66a405ab01422ee74f367a"  # the guide's 2026.1.yaml
LAST_YEAR = 12  # decisions of 2025 in the log (the guide's impact example says 12)
SERVE_SECONDS = 5.0  # the guide: "innen fem sekunder"
COMMAND_SECONDS = 180
MARKER = re.compile(r"<!--\s*(steg|endring|slett):\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Command:
    step: str
    text: str


@dataclass(frozen=True)
class Edit:
    path: str
    before: str
    after: str
    times: int = 1


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def guide_actions(text: str) -> list[Command | Edit]:
    """The guide's marked blocks in order; a ```sh block without a step marker is an error (it would go untested)."""
    blocks = [(m.start(), m.group(1), m.group(2)) for m in FENCE.finditer(text)]
    markers = [(m.start(), m.group(1), m.group(2)) for m in MARKER.finditer(text)]
    actions: list[Command | Edit] = []
    for at, kind, argument in markers:
        following = [(lang, body) for start, lang, body in blocks if start > at]
        if kind == "steg":
            assert following[0][0] == "sh", f"<!-- steg: {argument} --> is not followed by a ```sh block"
            actions.append(Command(argument, following[0][1]))
        elif kind == "endring":
            actions.append(Edit(argument, following[0][1], following[1][1]))
        else:
            path, times = re.fullmatch(r"(.*?),\s*(\d+) sted(?:er)?", argument).groups()  # type: ignore[union-attr]
            actions.append(Edit(path, following[0][1], "", int(times)))
    commands = [body for start, lang, body in blocks if lang == "sh"]
    assert len(commands) == sum(isinstance(a, Command) for a in actions), "a ```sh block without <!-- steg: … -->"
    return actions


def apply(edit: Edit, root: Path) -> None:
    path = root / edit.path
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    before = edit.before.splitlines(keepends=True)
    found = [i for i in range(len(lines)) if lines[i:i + len(before)] == before]
    assert len(found) == edit.times, f"{edit.path}: the guide's «Før» text stands {len(found)} time(s), " \
                                     f"not {edit.times}:\n{edit.before}"
    for i in reversed(found):
        lines[i:i + len(before)] = edit.after.splitlines(keepends=True)
    path.write_text("".join(lines), encoding="utf-8")


def one_line(command: str) -> str:
    """A command as one line: continuation lines joined, spaces collapsed."""
    return " ".join(command.replace("\\\n", " ").split())


# -- the reader's machine ---------------------------------------------------------------------------------------


def install(work: Path) -> Path:
    """`regelmotor` and `regelmotor-client` running this checkout's code, and the activate script the guide sources."""
    bin_dir = work / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, module in (("regelmotor", "regelmotor.cli.main"), ("regelmotor-client", "regelmotor_client.__main__")):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import sys; from {module} import main; "
                          f"sys.argv[0] = \"{name}\"; sys.exit(main())' \"$@\"\n", encoding="utf-8")
        script.chmod(0o755)
    (bin_dir / "activate").write_text(f'PATH="{bin_dir}:$PATH"\nexport PATH\n', encoding="utf-8")
    return bin_dir


def environment(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGELMOTOR_")}
    code = [ROOT / "services" / "rules", ROOT / "protos" / "python", ROOT / "clients" / "python", ROOT]
    return {**env, "PATH": f"{bin_dir}:{env['PATH']}", "PYTHONPATH": os.pathsep.join(map(str, code)),
            "USER": "kari", "LC_ALL": "C.UTF-8", "PYTHONUNBUFFERED": "1"}


def stay_facts(start: date, days: int) -> dict[str, Any]:
    """A somatic patient waiting `days` days from `start` for the municipality (notice in time)."""
    return {"utskrivningsklar_dato": start.isoformat(), "sektor": "somatikk", "innlagt": f"{start}T08:00:00+01:00",
            "forventet_behov_kommunale_tjenester": True, "varsel_innlagt": f"{start}T09:00:00+01:00",
            "problemstillinger_innleggelse_avklart": True, "ovrige_problemstillinger_avklart": True,
            "uavklarte_problemstillinger_begrunnet": True, "funksjonsniva_vurdert": True,
            "lege_vurdert_utskrivningsklar": True, "melding_utskrivningsklar": f"{start}T10:00:00+01:00",
            "kommune_svar": "kan_ikke_ta_imot", "kommune_klar_dato": (start + timedelta(days=days)).isoformat(),
            "oppholdskommune": "4601"}


def fill_last_year(rulesets: Path, log_file: Path) -> None:
    """LAST_YEAR decisions of 2025 stays, made by a real server and stored in `log_file` as made in 2025."""
    starts = [date(2025, 1, 6) + timedelta(days=30 * i) for i in range(LAST_YEAR)]
    requests = [pb.EvaluateRequest(ruleset="utskrivningsklar", as_of=(s + timedelta(days=10)).isoformat(),
                                   facts=struct(stay_facts(s, 1 + i % 5)), request_id=f"fjor-{i}")
                for i, s in enumerate(starts)]
    with server_in_process(workers=1, rulesets=rulesets) as (server, _, _):
        with grpc.insecure_channel(server.address) as channel:
            answers = list(pb_grpc.DecisionServiceStub(channel).EvaluateStream(
                iter(requests), metadata=[("regelmotor-caller", "sykehus-a")], timeout=120))
        assert all(a.HasField("decision") for a in answers), [a.error.message for a in answers]
        assert server.log is not None
        made = [r.record for r in server.log.iterate(ListFilter(ruleset="utskrivningsklar"))]
    log_file.parent.mkdir(parents=True)
    with open_log(log_file) as log:
        log.append([dataclasses.replace(r, recorded_at=datetime.combine(date.fromisoformat(r.as_of),
                                                                        datetime.min.time(), UTC))
                    for r in made])


@dataclass
class Service:
    """The guide's `regelmotor serve`, in the background (its own "terminal window")."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("Regelmotor is serving gRPC on "):
                self.ready.set()
        self.ready.set()  # it ended

    def address(self) -> str:
        assert self.ready.wait(COMMAND_SECONDS), "regelmotor serve did not say it was serving"
        found = [m.group(1) for line in self.lines if (m := re.match(r"Regelmotor is serving gRPC on (\S+)", line))]
        assert found, "".join(self.lines)
        return found[0]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@dataclass
class Walkthrough:
    work: Path
    env: dict[str, str]
    actions: list[Command | Edit]
    service: Service | None = None
    ran: dict[str, Ran] = field(default_factory=dict)
    approved_at: float = 0.0

    def run(self, text: str) -> Ran:
        done = subprocess.run(["bash", "-c", text], cwd=self.work, env=self.env, capture_output=True, text=True,
                              timeout=COMMAND_SECONDS, check=False)
        return Ran(done.returncode, done.stdout, done.stderr)

    def start(self, text: str) -> None:
        env = {k: v for k, v in self.env.items() if k != "REGELMOTOR_ADDRESS"}
        env.update(REGELMOTOR_PORT="0", REGELMOTOR_WORKERS="1", REGELMOTOR_RULESETS=str(self.work / "rulesets"))
        log = (self.work.parent / "serve.log").open("w", encoding="utf-8")
        process = subprocess.Popen(["bash", "-c", text], cwd=self.work, env=env, stdout=subprocess.PIPE, stderr=log,
                                   text=True, start_new_session=True)
        self.service = Service(process)
        threading.Thread(target=self.service.read, daemon=True).start()
        self.env["REGELMOTOR_ADDRESS"] = self.service.address()
        self.ran["start"] = Ran(0 if process.poll() is None else process.returncode, "".join(self.service.lines), "")

    def command(self, step: str) -> Command:
        return next(a for a in self.actions if isinstance(a, Command) and a.step == step)


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walkthrough]:
    work = tmp_path_factory.mktemp("guide") / "regelmotor"
    shutil.copytree(ROOT / "rulesets", work / "rulesets")
    shutil.copytree(ROOT / "docs" / "examples", work / "docs" / "examples")
    fill_last_year(work / "rulesets", work / "var" / "decisions.db")
    walk = Walkthrough(work, environment(install(work)), guide_actions(GUIDE.read_text(encoding="utf-8")))
    try:
        for action in walk.actions:
            if isinstance(action, Edit):
                apply(action, work)
            elif action.step == "start":
                walk.start(action.text)
            elif action.step != LATER:
                if action.step == "godkjenn":  # first as the proposer herself: the guide quotes the refusal
                    walk.ran["godkjenn-selv"] = walk.run(action.text.replace("USER=ola ", ""))
                walk.ran[action.step] = walk.run(action.text)
                walk.approved_at = time.monotonic() if action.step == "godkjenn" else walk.approved_at
        yield walk
    finally:
        if walk.service is not None:
            walk.service.stop()


def ran(walk: Walkthrough, step: str, code: int = 0) -> Ran:
    result = walk.ran.get(step)
    assert result is not None, f"step {step!r} did not run (an earlier step failed?)"
    assert result.code == code, f"step {step!r}: exit status {result.code}\n{result.out}\n{result.err}"
    return result


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


# -- the steps --------------------------------------------------------------------------------------------------


def test_every_command_block_is_a_marked_step_in_order() -> None:
    assert [a.step for a in guide_actions(guide()) if isinstance(a, Command)] == STEPS


def test_the_service_starts_as_the_guide_says(walkthrough: Walkthrough) -> None:
    assert ran(walkthrough, "aktiver").err == ""
    ran(walkthrough, "start")
    assert walkthrough.service is not None
    started = "".join(walkthrough.service.lines)
    assert "Security: listening on 127.0.0.1 only (this machine), no TLS, authentication off\n" in started
    assert "Security: listening on 127.0.0.1 only (this machine), no TLS, authentication off\n" in guide()


def test_before_the_new_version_the_2026_stay_is_refused_naming_the_rate(walkthrough: Walkthrough) -> None:
    refused = json.loads(ran(walkthrough, "for", code=1).err)
    assert (refused["code"], refused["reason"]) == ("FAILED_PRECONDITION", "PARAMETER_VALUE_MISSING")
    for key in ("code", "message", "reason"):
        assert f'  "{key}": {json.dumps(refused[key], ensure_ascii=False)}' in guide()


def test_the_copied_and_edited_version_is_the_guides_text(walkthrough: Walkthrough) -> None:
    ran(walkthrough, "kopier")
    ruleset = load_ruleset_file(walkthrough.work / "rulesets" / "utskrivningsklar" / "2026.1.yaml")
    assert (ruleset.key, ruleset.sha256) == ("utskrivningsklar@2026.1", SHA256)
    text = Path(ruleset.source_path).read_text(encoding="utf-8")
    assert "      - {gyldig_fra: 2026-01-01, value: 6250}\n" in text
    # A copy of the version in force, the correction 2019.1.1 (its 2025 mark and verified 2012 hjemler kept), made a
    # new version: not a correction of anything.
    assert "        sekundaerkilde: >-\n" in text and "  forskrift-2012-vilkar:\n" in text
    assert ruleset.meta.supersedes is None and "correction_reason" not in text


def test_validate_prints_the_sha256_the_guide_shows(walkthrough: Walkthrough) -> None:
    said = ran(walkthrough, "valider").out
    assert said == f"ok: utskrivningsklar@2026.1 sha256 {SHA256}\n"
    assert said in guide()


def test_the_cases_pass_with_full_coverage_as_shown(walkthrough: Walkthrough) -> None:
    said = ran(walkthrough, "test").out
    assert "49 passed, 0 failed" in said
    assert said in guide()


def test_a_wrong_amount_fails_as_the_guide_shows(walkthrough: Walkthrough, tmp_path: Path) -> None:
    ran(walkthrough, "test")
    folder = tmp_path / "rulesets" / "utskrivningsklar"
    folder.mkdir(parents=True)
    for name in ("2026.1.yaml", "2026.1.cases.yaml"):
        shutil.copy(walkthrough.work / "rulesets" / "utskrivningsklar" / name, folder / name)
    cases = folder / "2026.1.cases.yaml"
    cases.write_text(cases.read_text(encoding="utf-8").replace("belop: 42943", "belop: 42944"), encoding="utf-8")
    done = subprocess.run(["regelmotor", "ruleset", "test", "rulesets/utskrivningsklar/2026.1.yaml"], cwd=tmp_path,
                          env=walkthrough.env, capture_output=True, text=True, timeout=COMMAND_SECONDS, check=False)
    assert done.returncode == 1
    failure = [line for line in done.stdout.splitlines(keepends=True) if not line.startswith("    fired:")][1:3]
    assert "".join(failure) in guide(), done.stdout


def test_the_impact_on_last_years_decisions_is_nil(walkthrough: Walkthrough) -> None:
    said = ran(walkthrough, "konsekvens").out
    shown = re.sub(r"tid: \d+\.\d s", "tid: 0.4 s", said)
    assert f"for {LAST_YEAR} loggførte beslutninger\n  endret: 0   avvist av kandidaten: 0   tid: 0.4 s\n" in shown
    assert shown in guide()


def test_the_proposal_prints_the_approval_the_guide_gives(walkthrough: Walkthrough) -> None:
    first, second = ran(walkthrough, "foreslaa").out.splitlines()
    assert first == f"foreslått: utskrivningsklar@2026.1  proposed  2025-01-01 – …  sha256 {SHA256}"
    assert first in guide()
    approval = one_line(walkthrough.command("godkjenn").text).removeprefix("USER=ola ")
    assert second == f"en annen godkjenner med: {approval}"


def test_the_approver_sees_that_only_the_rate_and_the_period_changed(walkthrough: Walkthrough) -> None:
    said = ran(walkthrough, "diff").out
    sections = [line for line in said.splitlines() if re.fullmatch(r"\w+:", line)]
    assert sections == ["metadata:", "parameters:"]
    assert "  gyldig_fra: 2019-01-01 → 2025-01-01\n" in said and "  version: 2019.1.1 → 2026.1\n" in said
    assert "  supersedes: 2019.1 → (not set)\n" in said and re.search(r"^  correction_reason: .* → \(not set\)$", said,
                                                                      re.MULTILINE)
    kept_mark = "2025-01-01: 5981 [sekundærkilde: Sykepleien 01/2026: "
    assert said.count(kept_mark) == 2 and said.endswith(", 2026-01-01: 6250 NOK\n")


def test_the_proposer_cannot_approve_her_own_version(walkthrough: Walkthrough) -> None:
    said = ran(walkthrough, "godkjenn-selv", code=3).err
    assert said == ("regelmotor: FOUR_EYES: FAILED_PRECONDITION: utskrivningsklar@2026.1 was proposed by kari: "
                    "another person must approve it\n")
    assert said in guide()


def test_another_person_approves(walkthrough: Walkthrough) -> None:
    said = ran(walkthrough, "godkjenn").out
    assert said == f"publisert: utskrivningsklar@2026.1  published  2025-01-01 – …  sha256 {SHA256}\n"
    assert said in guide()


def test_the_history_shows_who_proposed_and_who_approved(walkthrough: Walkthrough) -> None:
    lines = ran(walkthrough, "historikk").out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("utskrivningsklar@2019.1  "))
    assert lines[at + 1] == "    rettet av 2019.1.1"  # how step 2 tells which version to copy
    assert "viser `rettet av` under en versjon som er rettet" in guide()
    assert f"utskrivningsklar@2026.1  published  2025-01-01 – …  sha256 {SHA256}" in lines
    events = [line.split("  ", 1)[1] for line in lines if re.match(r"\d{4}-\d\d-\d\dT", line)]
    assert events[-2:] == [f"kari  proposed  2026.1  sha256 {SHA256[:16]}…", f"ola  approved  2026.1  "
                                                                              f"sha256 {SHA256[:16]}…"]
    assert all(f"  {event}\n" in guide() for event in events[-2:])


def test_the_directory_records_the_published_version(walkthrough: Walkthrough) -> None:
    assert ran(walkthrough, "registrer").out == f"published utskrivningsklar@2026.1 sha256 {SHA256}\n"
    published = (walkthrough.work / "rulesets" / "published.txt").read_text(encoding="utf-8")
    assert f"utskrivningsklar 2026.1 {SHA256}\n" in published


def test_a_copy_that_keeps_the_correction_lines_is_refused_as_the_guide_says(walkthrough: Walkthrough,
                                                                             tmp_path: Path) -> None:
    """Step 3d: the guide's 2026.1 with `supersedes` and `correction_reason` left in would be a second correction of
    2019.1 covering 2025 beside 2019.1.1: refused, in the words the guide quotes."""
    ran(walkthrough, "registrer")
    [deleted] = [a for a in walkthrough.actions
                 if isinstance(a, Edit) and a.path.endswith("/2026.1.yaml") and not a.after]
    rulesets = tmp_path / "rulesets"
    shutil.copytree(walkthrough.work / "rulesets", rulesets)
    path = rulesets / "utskrivningsklar" / "2026.1.yaml"
    anchor = "selected_by: utskrivningsklar_dato\n"
    path.write_text(path.read_text(encoding="utf-8").replace(anchor, anchor + deleted.before), encoding="utf-8")
    published = rulesets / "published.txt"
    published.write_text(published.read_text(encoding="utf-8").replace(SHA256, load_ruleset_file(path).sha256),
                         encoding="utf-8")
    refusal = "corrections 2019.1.1 and 2026.1 of 2019.1 both cover 2025-01-01"
    with pytest.raises(RulesetInvalid, match=re.escape(refusal)):
        RulesetRepository.load(rulesets)
    assert f"`TIMELINE: … {refusal}: …`" in guide()


def test_a_corrections_cases_pass_beside_the_new_version(walkthrough: Walkthrough) -> None:
    """The guide's section on corrections tests 2019.1.1's cases, with 2026.1 (from 2025) published beside it."""
    said = ran(walkthrough, "rette").out
    assert said.endswith(" passed, 0 failed\n")
    assert said in guide()


# -- step 9: needs hot reload -----------------------------------------------------------------------------------


def test_the_running_service_serves_the_new_version(walkthrough: Walkthrough) -> None:
    """The service started in step 0, never restarted, answers the 2026 stay with version 2026.1 and the new rate
    within SERVE_SECONDS of the approval (a command start-up of margin on top)."""
    command = walkthrough.command(LATER).text
    deadline = walkthrough.approved_at + SERVE_SECONDS + 2.0
    while True:
        result = walkthrough.run(command)
        if result.code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result.code == 0, f"still refused after {SERVE_SECONDS} s: {result.err}"
    decision = json.loads(result.out)
    outcome = decision["outcome"]
    assert (decision["version"], decision["ruleset_sha256"]) == ("2026.1", SHA256)
    assert (outcome["utfall"], outcome["betalingsplikt_fra"], outcome["betalingsplikt_til"], outcome["betalingsdogn"],
            outcome["belop"]) == ("betalingsplikt", "2026-01-12", "2026-01-15", 3, 18750)
    for key in ("version", "ruleset_sha256"):
        assert f'  "{key}": "{decision[key]}",' in guide()
    for key in ("utfall", "betalingsplikt_fra", "betalingsplikt_til", "betalingsdogn", "belop"):
        assert f'    "{key}": {json.dumps(outcome[key])},' in guide()
    full = walkthrough.run(command.replace("--explanation none", "--explanation full"))  # the guide's tip
    assert [(p["name"], p["value"]) for p in json.loads(full.out)["explanation"]["parameters"]] == [("dognpris", 6250)]
    assert '`"explanation"` → `"parameters"` står `dognpris` med\n`"value": 6250`' in guide()
