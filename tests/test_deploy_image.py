"""deploy/Dockerfile: hadolint passes, the last stage carries no toolchain, and the image's install steps work.

No container runtime here can pull a base image, so no image is built. Instead the test does what the Dockerfile's
build stage does, with the same scripts: it copies what the Dockerfile COPYs, runs deploy/build-wheels.sh (the three
distributions and every dependency, durable_rules compiled) and deploy/install.sh (offline, binary wheels only, a
fresh venv), then starts `regelmotor serve` from that venv with the image's ENV (paths moved into a temporary
directory, the bundled rulesets found through REGELMOTOR_RULESETS), from another directory and without PYTHONPATH,
so nothing of the checkout is importable. The venv's own `regelmotor health` and `regelmotor-client` then ask it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
_ADDRESS = re.compile(r"serving gRPC on (\S+) ")
IMAGE_PATHS = {"/usr/share/regelmotor/rulesets": "rulesets", "/var/lib/regelmotor": "data"}


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]]  # (INSTRUCTION, its arguments), continuation lines joined

    def arguments(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def _stages() -> list[Stage]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: list[Stage] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, args = line.strip().partition(" ")
        if name.upper() == "FROM":
            stages.append(Stage(args.split()[0], []))
        elif stages:
            stages[-1].instructions.append((name.upper(), args.strip()))
    return stages


def _image_environment() -> dict[str, str]:
    """The last stage's ENV as KEY=VALUE pairs (one ENV instruction may set several)."""
    pairs: dict[str, str] = {}
    for args in _stages()[-1].arguments("ENV"):
        pairs.update(re.findall(r"(\w+)=(\S+)", args))
    return pairs


def test_hadolint_passes_without_a_warning() -> None:
    linted = subprocess.run([str(HADOLINT), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_last_stage_has_no_toolchain_runs_as_a_numeric_user_and_serves_with_a_health_check() -> None:
    build, last = _stages()
    assert build.base == last.base == "${PYTHON_IMAGE}"
    pinned = re.search(r"ARG PYTHON_IMAGE=python:(3\.12\.\d+)-slim-bookworm@sha256:[0-9a-f]{64}\n",
                       DOCKERFILE.read_text(encoding="utf-8"))
    assert pinned, "the base must be a slim Python 3.12 patch release pinned by digest"
    assert any("apt-get install" in run and "gcc" in run for run in build.arguments("RUN"))
    assert not [run for run in last.arguments("RUN") if re.search(r"apt|gcc|pip|build-wheels", run)]
    assert last.arguments("COPY")[0] == "--from=build /opt/regelmotor /opt/regelmotor"
    assert last.arguments("USER") == ["10001:10001"]
    assert last.arguments("ENTRYPOINT") == ['["regelmotor", "serve"]']
    assert last.arguments("HEALTHCHECK")[0].endswith('CMD ["regelmotor", "health"]')
    labels = " ".join(last.arguments("LABEL"))
    for key in ("title", "description", "version", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels


def _isolated(**extra: str) -> dict[str, str]:
    """This process's environment without what points Python at the checkout or at another venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
            and not k.startswith("REGELMOTOR_")} | {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1",
                                                    **extra}


def _copy_as_the_image_does(stage: Stage, into: Path) -> None:
    """Each `COPY source... destination` of a stage (without --from), the destination taken under `into`."""
    for args in stage.arguments("COPY"):
        if args.startswith("--from"):
            continue
        *sources, destination = args.split()
        target = into / destination.lstrip("/")
        for source in sources:  # Docker's rule: a directory's contents go into the destination directory
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's /opt/regelmotor, made here by its own steps; built once per test session."""
    build, last = _stages()
    root = tmp_path_factory.mktemp("image")
    source = root / "src"
    _copy_as_the_image_does(build, source)
    assert " ".join(build.arguments("RUN")[-1].split()) == ("deploy/build-wheels.sh /src /wheels python3 && "
                                          "deploy/install.sh /wheels /opt/regelmotor python3")
    environment = _isolated()
    steps = (("build-wheels.sh", (source, root / "wheels")), ("install.sh", (root / "wheels", root / "venv")))
    for script, args in steps:
        done = subprocess.run(["sh", str(source / "deploy" / script), *map(str, args), sys.executable],
                              capture_output=True, text=True, timeout=600, env=environment, cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
    _copy_as_the_image_does(Stage(last.base, [i for i in last.instructions if i[0] == "COPY"]), root / "image")
    return root


def _image_env(root: Path, **overrides: str) -> dict[str, str]:
    """The last stage's ENV with its paths moved under `root`, and the venv first on PATH."""
    values = {}
    for key, value in _image_environment().items():
        for image_path, local in IMAGE_PATHS.items():
            value = value.replace(image_path, str(root / "image" / image_path.lstrip("/")) if local == "rulesets"
                                  else str(root / local))
        values[key] = value
    values["PATH"] = f"{root / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"
    return _isolated(**(values | overrides))


@pytest.fixture(scope="module")
def served(installed: Path) -> Iterator[str]:
    """`regelmotor serve` of the installed venv on a free loopback port, as the image's ENTRYPOINT starts it."""
    (installed / "data").mkdir(exist_ok=True)
    out = installed / "serve.out"
    with out.open("w") as stdout, (installed / "serve.err").open("w") as stderr:
        server = subprocess.Popen(["regelmotor", "serve", "--workers", "1"], stdout=stdout, stderr=stderr,
                                  env=_image_env(installed, REGELMOTOR_HOST="127.0.0.1", REGELMOTOR_PORT="0"),
                                  cwd=installed / "data")
        try:
            deadline = time.monotonic() + 120
            while not (found := _ADDRESS.search(out.read_text())) and server.poll() is None:
                assert time.monotonic() < deadline, "the installed server did not start in time"
                time.sleep(0.2)
            assert found, (installed / "serve.err").read_text()
            yield found.group(1)
        finally:
            server.send_signal(signal.SIGINT)  # SIGINT: no drain delay
            server.wait(timeout=60)


def test_the_installed_service_imports_nothing_from_the_checkout(installed: Path) -> None:
    probe = subprocess.run([str(installed / "venv" / "bin" / "python"), "-c",
                            "import regelmotor, regelmotor_api, regelmotor_client, durable_rules_engine as d;"
                            "print(regelmotor.__file__, regelmotor_api.__file__, regelmotor_client.__file__,"
                            " d.__file__)"], capture_output=True, text=True, check=True, timeout=60,
                           env=_isolated(), cwd=installed)
    assert all(Path(path).is_relative_to(installed / "venv") for path in probe.stdout.split()), probe.stdout


def test_the_image_environment_refuses_an_open_port_without_tls_and_tokens(installed: Path) -> None:
    (installed / "data").mkdir(exist_ok=True)
    refused = subprocess.run(["regelmotor", "serve", "--workers", "0"], capture_output=True, text=True, timeout=120,
                             env=_image_env(installed), cwd=installed / "data")
    assert refused.returncode == 2
    assert refused.stderr.startswith("regelmotor: cannot start: REGELMOTOR_HOST: 0.0.0.0 is reachable from other "
                                     "machines, but TLS and authentication are off"), refused.stderr


def test_the_installed_service_is_healthy_and_decides_with_the_bundled_rulesets(installed: Path, served: str) -> None:
    environment = _image_env(installed)
    health = subprocess.run(["regelmotor", "health", "--address", served], capture_output=True, text=True,
                            timeout=60, env=environment, cwd=installed)
    assert (health.returncode, health.stdout) == (0, f"{served}: SERVING\n"), health.stderr
    facts = shutil.copy(ROOT / "docs" / "examples" / "henvisning.json", installed / "henvisning.json")
    evaluated = subprocess.run(["regelmotor-client", "--address", served, "evaluate", "--ruleset",
                                "rett-til-helsehjelp", "--facts", str(facts), "--as-of", "2026-04-20",
                                "--request-id", "image-1"], capture_output=True, text=True, timeout=60,
                               env=environment, cwd=installed)
    assert evaluated.returncode == 0, evaluated.stderr
    decision = json.loads(evaluated.stdout)
    assert (decision["request_id"], decision["version"]) == ("image-1", "2024.07.1")
    assert decision["outcome"]["utfall"] == "rett" and decision["outcome"]["veiledende_frist_uker"] == 2
