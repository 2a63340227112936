"""Programs from Debian packages that some tests drive (chromium, pg_dump): installed by the test set-up with apt-get
when missing (never a download of another kind). When they cannot be had the test fails in CI (CI=true), where
nothing may be skipped, and is skipped elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def debian_programs(package: str, programs: tuple[str, ...], needed_for: str) -> dict[str, str]:
    """The paths of `programs`, installing Debian's `package` first when one of them is missing."""
    if not all(shutil.which(program) for program in programs):
        command = ["apt-get", "install", "-y", "--no-install-recommends", package]
        if os.geteuid() != 0:
            command = ["sudo", "-n", *command]
        installed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
        if not all(shutil.which(program) for program in programs):
            why = (f"{' and '.join(programs)} (Debian's {package}) {'is' if len(programs) == 1 else 'are'} needed "
                   f"for {needed_for} and could not be installed ({' '.join(command)}: "
                   f"{installed.stderr.strip()[-500:]})")
            if os.environ.get("CI") == "true":
                pytest.fail(why)
            pytest.skip(why)
    return {program: str(shutil.which(program)) for program in programs}
