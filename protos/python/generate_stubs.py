"""Generate the Python stubs of the API into the `regelmotor_api.v1` package (`make protos`).

protoc names a Python module after its .proto file's path, so `regelmotor/v1/decision.proto` becomes
the module `regelmotor.v1.decision_pb2`, and the other stubs import it under that name. The .proto
paths and the proto package `regelmotor.v1` are the wire contract (they are in the descriptors the
server registers and reflects), so they stay; only the Python module names move under
`regelmotor_api`. This rewrites exactly the lines protoc writes for that (imports of sibling stubs
and the module name given to the message builder) and refuses to finish if any other reference to
the module `regelmotor.v1` is left. It does what protoletariat does, which cannot be used here: it
pins protobuf below 6, and the stubs need the protobuf 7 runtime.

    python protos/python/generate_stubs.py [--out DIR]   # default: protos/python (this folder)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTOS = HERE.parent
PROTO_PACKAGE_DIR = Path("regelmotor") / "v1"
PYTHON_PACKAGE_DIR = Path("regelmotor_api") / "v1"
INIT = '"""Generated from protos/regelmotor/v1 by protos/python/generate_stubs.py (`make protos`); do not edit."""\n'

# `from regelmotor.v1 import decision_pb2 as …` in *_pb2.py, *_pb2.pyi and *_pb2_grpc.py.
_SIBLING_IMPORT = re.compile(r"^from regelmotor\.v1 import (\w+_pb2) as ", re.MULTILINE)
# `_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, 'regelmotor.v1.decision_pb2', _globals)`.
_BUILDER_MODULE = re.compile(r"^(_builder\.BuildTopDescriptorsAndMessages\(DESCRIPTOR, )'regelmotor\.v1\.(\w+_pb2)'",
                             re.MULTILINE)
# Anything that would still import the old module path (a new protoc might write imports differently).
_LEFT_OVER = re.compile(r"^\s*(from|import)\s+regelmotor\.v1\b|'regelmotor\.v1\.\w+_pb2'", re.MULTILINE)


def rewrite(text: str, name: str) -> str:
    """`text` of the generated file `name` with the stubs' own module path `regelmotor_api.v1`."""
    text = _SIBLING_IMPORT.sub(r"from regelmotor_api.v1 import \1 as ", text)
    text = _BUILDER_MODULE.sub(r"\1'regelmotor_api.v1.\2'", text)
    left = _LEFT_OVER.search(text)
    if left:
        raise SystemExit(f"{name}: protoc wrote a reference to regelmotor.v1 this generator does not rewrite: "
                         f"{left.group(0)!r}")
    return text


def generate(out: Path) -> list[Path]:
    """Write `regelmotor_api/v1/*` under `out` from protos/regelmotor/v1/*.proto; the files written."""
    protos = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / PROTO_PACKAGE_DIR).glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files in {PROTOS / PROTO_PACKAGE_DIR}")
    with tempfile.TemporaryDirectory(prefix="regelmotor-stubs-") as raw:
        result = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", str(PROTOS), f"--python_out={raw}",
                                 f"--pyi_out={raw}", f"--grpc_python_out={raw}", *protos],
                                cwd=PROTOS, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"protoc failed:\n{result.stderr}")
        target = out / PYTHON_PACKAGE_DIR
        target.mkdir(parents=True, exist_ok=True)
        written = [target / "__init__.py"]
        written[0].write_text(INIT, encoding="utf-8")
        for generated in sorted((Path(raw) / PROTO_PACKAGE_DIR).iterdir()):
            destination = target / generated.name
            destination.write_text(rewrite(generated.read_text(encoding="utf-8"), generated.name), encoding="utf-8")
            written.append(destination)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE, help="folder that receives regelmotor_api/v1/")
    args = parser.parse_args(argv)
    target = args.out / PYTHON_PACKAGE_DIR
    keep = {path.name for path in generate(args.out)}
    # A stub of a removed .proto must not linger in the package.
    for stale in target.glob("*_pb2*"):
        if stale.name not in keep:
            stale.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
