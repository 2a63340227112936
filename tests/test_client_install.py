"""The client installs and works without the server's distribution.

A fresh virtual environment gets only the two projects a caller needs, regelmotor-api
(protos/python) and regelmotor-client (clients/python), as `pip install` builds them from the
checkout; their dependencies come from the package index or pip's cache. Nothing of the server
(durable_rules, psycopg, the `regelmotor` package) may be importable there, and that environment's
`regelmotor-client evaluate` must get decisions from a running server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES, ROOT
from tests.server_process import running_server

PROJECTS = (ROOT / "protos" / "python", ROOT / "clients" / "python")
SERVER_ONLY = ("durable_rules_engine", "durable", "psycopg", "regelmotor", "pydantic")
CALLER = ("regelmotor_api.v1.decision_pb2_grpc", "regelmotor_api.v1.audit_pb2", "regelmotor_api.facts",
          "regelmotor_client", "grpc_status", "yaml")
PROBE = """\
import importlib, importlib.metadata, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        found[name] = "imported"
    except ImportError as error:
        found[name] = type(error).__name__
names = sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions())
print(json.dumps({"modules": found, "distributions": names}))
"""


def _isolated_environment() -> dict[str, str]:
    """This process's environment without what points Python at the checkout or at another venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")} | {
        "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def _copy_projects(into: Path) -> list[str]:
    # Build from copies: pip writes build/ and *.egg-info beside a project it builds.
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    return [str(shutil.copytree(project, into / project.parent.name / project.name, ignore=ignore))
            for project in PROJECTS]


def test_the_client_installs_alone_and_evaluates_against_a_running_server(tmp_path: Path) -> None:
    environment = _isolated_environment()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=environment)
    python = venv / "bin" / "python"
    install = subprocess.Popen([str(python), "-m", "pip", "install", "--quiet", *_copy_projects(tmp_path / "src")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment,
                               cwd=tmp_path)
    # The server starts while pip works.
    with running_server(workers=1) as server:
        output, _ = install.communicate(timeout=600)
        assert install.returncode == 0, output

        probe = subprocess.run([str(python), "-c", PROBE, *SERVER_ONLY, *CALLER], capture_output=True, text=True,
                               check=True, timeout=120, env=environment, cwd=tmp_path)
        found = json.loads(probe.stdout)
        assert {name: found["modules"][name] for name in SERVER_ONLY} == dict.fromkeys(
            SERVER_ONLY, "ModuleNotFoundError")
        assert {name: found["modules"][name] for name in CALLER} == dict.fromkeys(CALLER, "imported")
        assert {"regelmotor-api", "regelmotor-client"} <= set(found["distributions"])
        assert not {"regelmotor", "durable-rules", "psycopg", "psycopg-binary"} & set(found["distributions"])

        client = str(venv / "bin" / "regelmotor-client")
        evaluate = [client, "--address", server.address, "evaluate"]
        referral = subprocess.run([*evaluate, "--ruleset", "rett-til-helsehjelp", "--facts",
                                   str(ROOT / "docs" / "examples" / "henvisning.json"), "--as-of", "2026-04-20",
                                   "--request-id", "install-1"],
                                  capture_output=True, text=True, timeout=120, env=environment, cwd=tmp_path)
        assert referral.returncode == 0, referral.stderr
        decision = json.loads(referral.stdout)
        assert decision["request_id"] == "install-1" and decision["version"] == "2024.07.1"
        assert decision["outcome"]["utfall"] == "rett" and decision["outcome"]["veiledende_frist_uker"] == 2
        assert decision["outcome"]["fristbrudd"] is True

        # YAML on standard input, with a datetime written with a space: read by the installed reader.
        facts = (FIXTURES / "facts" / "utskrivningsklar.yaml").read_text(encoding="utf-8")
        discharge = subprocess.run([*evaluate, "--ruleset", "utskrivningsklar", "--facts", "-", "--as-of",
                                    "2024-04-01", "--outcome-only"], input=facts,
                                   capture_output=True, text=True, timeout=120, env=environment, cwd=tmp_path)
        assert discharge.returncode == 0, discharge.stderr
        outcome = json.loads(discharge.stdout)
        assert outcome["utfall"] == "betalingsplikt" and outcome["belop"] == 22980
