"""The service's checkpoints of its decision log (regelmotor.store.checkpoint): checked at start, written
every `checkpoint_seconds` and at shutdown.

At start the log is verified incrementally from the latest witnessed checkpoint. A log that does not verify
- truncated, rehashed, access log altered, a retention cut no key of ours signed, or broken in its own chain -
or a witness whose latest line is not signed by our key (or an earlier key listed in
checkpoint_previous_keys_file) refuses the start: an audit log that has been tampered with must be looked at before
more is added to it, and a service that keeps running would sign the tampered state at its next checkpoint.
The StartupError says what was found and how to go on (see docs/security.md). While running, a check that
fails is logged as an error at every interval and nothing is signed.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from regelmotor.store import (
    Checkpointer,
    CheckpointError,
    CheckResult,
    DecisionLog,
    FileWitness,
    load_or_create_key,
    load_public_keys,
)

from .startup import StartupError

log = logging.getLogger("regelmotor.server")


def open_checkpointer(decision_log: DecisionLog, key_file: Path, witness_file: Path,
                      previous_keys_file: Path | None = None) -> Checkpointer:
    """The checkpointer of the log, once the log verified against the latest checkpoint; a first checkpoint
    of the current state is written. StartupError when the key, the witness or the log is not in order."""
    try:
        key = load_or_create_key(key_file)
    except (CheckpointError, OSError) as exc:
        raise StartupError("checkpoint_key_file", f"the checkpoint key cannot be used: {exc}",
                           f"check or remove {key_file} (a new key cannot vouch for the old checkpoints; list the "
                           "old key's public key in checkpoint_previous_keys_file)") from None
    try:
        previous = load_public_keys(previous_keys_file) if previous_keys_file is not None else []
    except (CheckpointError, OSError) as exc:
        raise StartupError("checkpoint_previous_keys_file", f"the earlier checkpoint keys cannot be read: {exc}",
                           "give a PEM file of Ed25519 public keys (openssl pkey -pubout)") from None
    checkpointer = Checkpointer(decision_log, key, FileWitness(witness_file), previous)
    try:
        checked = checkpointer.checkpoint()
    except (CheckpointError, OSError) as exc:
        raise StartupError("witness_file", f"the checkpoint witness cannot be used: {exc}", _GO_ON) from None
    if not checked.result.ok:
        problem = checked.result.first_problem
        if problem is not None and problem.kind == "truncated":  # what a restore from an older backup looks like
            raise StartupError("witness_file", "the decision log ends before its latest checkpoint (restored from "
                               f"an older backup, or records removed): {describe(checked)}", _RESTORED)
        raise StartupError("witness_file", f"the decision log was tampered with: {describe(checked)}", _GO_ON)
    return checkpointer


_GO_ON = ("the log is left as it is for investigation; to serve on regardless, move the witness file aside "
          "(keep it as evidence): the next start signs the current state")
_RESTORED = ("if it was restored from a backup, the decisions named were recorded after that backup and are not in "
             "it: restore a newer backup if there is one, else start with the witness copied with the backup and "
             "keep this one as evidence (docs/operations.md, \"Backup and restore\")")


def describe(checked: CheckResult) -> str:
    problem = checked.result.first_problem
    found = "not ok" if problem is None else f"{problem.kind} at {problem.seq}: {problem.message}"
    against = checked.checkpoint
    return found + ("" if against is None else f" (checked against the checkpoint of {against.at}, seq {against.seq})")


async def keep_checkpointing(checkpointer: Checkpointer, interval: float) -> None:
    """Write a checkpoint every `interval` seconds until cancelled; a log that no longer verifies is logged."""
    while True:
        await asyncio.sleep(interval)
        await checkpoint_now(checkpointer)


async def checkpoint_now(checkpointer: Checkpointer) -> None:
    try:
        checked = await asyncio.to_thread(checkpointer.checkpoint)
    except Exception as exc:  # a database or witness failure must not end the loop
        log.error("checkpoint failed", extra={"error": f"{type(exc).__name__}: {exc}"[:400]})
        return
    if not checked.result.ok:
        log.error("decision log tampered with: no checkpoint signed", extra={"found": describe(checked)[:1000]})
