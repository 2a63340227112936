"""The API contract: buf lint clean, no breaking change against the released API image, and the
committed Python stubs generated from the committed .proto files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

RELEASED = ROOT / "protos" / "released-api.binpb"


def _buf() -> str:
    found = Path(sys.executable).parent / "buf"
    if found.exists():
        return str(found)
    on_path = shutil.which("buf")
    if on_path is None:
        if os.environ.get("CI"):
            pytest.fail("buf (PyPI package buf-bin) is missing; `make test` installs it")
        pytest.skip("buf is not installed (pip install buf-bin)")
    return on_path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)


def test_buf_lint_is_clean() -> None:
    result = _run(_buf(), "lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_against_the_released_api() -> None:
    result = _run(_buf(), "breaking", "--against", str(RELEASED))
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_breaking_catches_a_renamed_field(tmp_path: Path) -> None:
    protos = tmp_path / "protos"
    shutil.copytree(ROOT / "protos", protos)
    proto = protos / "regelmotor" / "v1" / "decision.proto"
    proto.write_text(proto.read_text(encoding="utf-8").replace("string request_id = 5;", "string caller_ref = 5;"),
                     encoding="utf-8")
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    result = subprocess.run([_buf(), "breaking", "--against", str(RELEASED)], cwd=tmp_path, capture_output=True,
                            text=True, check=False, timeout=120)
    assert result.returncode != 0 and "request_id" in result.stdout + result.stderr


def test_committed_stubs_match_the_protos(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto"))
    result = _run(sys.executable, "-m", "grpc_tools.protoc", "-I", "protos", f"--python_out={tmp_path}",
                  f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", *protos)
    assert result.returncode == 0, result.stderr
    generated = {p.relative_to(tmp_path): p.read_text(encoding="utf-8") for p in tmp_path.rglob("*.py*")}
    assert generated
    for relative, text in generated.items():
        committed = ROOT / "services" / "rules" / relative
        assert committed.read_text(encoding="utf-8") == text, f"{relative} is stale: run `make protos`"
