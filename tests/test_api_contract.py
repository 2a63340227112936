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
    result = _run(sys.executable, str(ROOT / "protos" / "python" / "generate_stubs.py"), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    fresh = tmp_path / "regelmotor_api" / "v1"
    committed = ROOT / "protos" / "python" / "regelmotor_api" / "v1"
    generated = {p.name: p.read_text(encoding="utf-8") for p in fresh.iterdir()}
    assert "decision_pb2.py" in generated and "decision_pb2_grpc.py" in generated and "decision_pb2.pyi" in generated
    assert sorted(p.name for p in committed.iterdir() if p.is_file()) == sorted(generated), \
        "the committed stubs are not the generated set: run `make protos`"
    for name, text in generated.items():
        assert (committed / name).read_text(encoding="utf-8") == text, f"{name} is stale: run `make protos`"


def test_stubs_import_as_their_own_package_with_the_wire_names_unchanged() -> None:
    # The Python modules live under regelmotor_api; the .proto file names and the proto package
    # (what the server registers, reflects and serves under) stay regelmotor/v1 and regelmotor.v1.
    from regelmotor_api.v1 import audit_pb2, decision_pb2, decision_pb2_grpc

    assert decision_pb2.DESCRIPTOR.name == "regelmotor/v1/decision.proto"
    assert decision_pb2.DESCRIPTOR.package == "regelmotor.v1"
    assert decision_pb2.Decision.__module__ == "regelmotor_api.v1.decision_pb2"
    referenced = audit_pb2.GetDecisionResponse.DESCRIPTOR.fields_by_name["decision"].message_type
    assert referenced is not None and referenced.full_name == "regelmotor.v1.Decision"
    assert decision_pb2_grpc.DecisionServiceStub.__module__ == "regelmotor_api.v1.decision_pb2_grpc"
    generated = (ROOT / "protos" / "python" / "regelmotor_api" / "v1").glob("*_pb2*")
    assert not [p.name for p in generated if "from regelmotor.v1 import" in p.read_text(encoding="utf-8")]
