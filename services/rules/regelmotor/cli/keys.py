"""`regelmotor pseudonym-key new FILE`: a new pseudonym key file, the first step of a key rotation
(docs/security.md, "Rotating the pseudonym key"). The key is written to the file only, never printed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from regelmotor.core.identity import write_new_key


def add_keys(sub: Any) -> None:
    keys = sub.add_parser("pseudonym-key", help="pseudonym key files (key rotation: docs/security.md)")
    actions = keys.add_subparsers(dest="action", required=True)
    p = actions.add_parser("new", help="write a new random pseudonym key to FILE (hex, mode 0600); an existing "
                                       "file is never overwritten")
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(func=cmd_new)


def cmd_new(args: argparse.Namespace) -> int:
    key_file: Path = args.file
    try:
        write_new_key(key_file)
    except FileExistsError:
        print(f"regelmotor: pseudonym-key new: {key_file} exists; a key file is never overwritten (the pseudonyms "
              "made with its key could no longer be found)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"regelmotor: pseudonym-key new: cannot write {key_file} ({exc.strerror or exc})", file=sys.stderr)
        return 2
    print(f"wrote a new pseudonym key to {key_file} (mode 0600). To rotate, in two phases on every instance "
          "(docs/security.md): first add this file to pseudonym_previous_key_files and restart them all; then make "
          "it pseudonym_key_file, move the key it replaces to pseudonym_previous_key_files, and restart them all.")
    return 0
