"""Signed checkpoints of the decision log, kept by a witness outside the database.

The hash chains (regelmotor.store.chain, .access_chain) show edits that leave the chain broken. An insider
with write access to the database can still delete the newest records and move the chain head back, or
rewrite a record and recompute every later hash and the head: the chain is consistent again. A checkpoint
closes that gap. It is ``{"seq", "hash", "access_id", "access_hash", "at"}`` - the chain head, the
access-log head and the time - and, once the store holds ruleset lifecycle events, ``"lifecycle_id"`` and
``"lifecycle_hash"`` (the head of their chain, regelmotor.store.lifecycle), as canonical JSON, signed with an
Ed25519 key that the database does not hold, and appended as one JSON line (with ``"signature"``, base64) to a
witness: by default an append-only file apart from the database (`FileWitness`); anything with `append` and
`latest` will do.

`check` verifies the log against the latest witnessed checkpoint and names what it finds:

* **truncated**: the chain head is below the checkpoint's seq, or the record at that seq is gone;
* **rehashed**: the record at the checkpoint's seq has another hash (a record at or before it was rewritten
  and the later hashes recomputed);
* **access log altered**: the access-log chain is broken, or its row at the checkpoint's access_id is gone
  or has another hash;
* **lifecycle altered**: the chain of ruleset lifecycle events is broken (or a stored ruleset text no longer
  matches the event that stored it), or its event at the checkpoint's lifecycle_id is gone or has another
  hash. That chain is short (a few events per version), so it is walked whole at every check.

* **cut invalid**: a retention cut (regelmotor.store.retention) that no checkpoint key signed. A checkpoint at
  or below the newest valid cut is not truncation: the cut, signed by the same key, vouches for the records it
  removed (at the same seq, the two must carry the same hash). A prune that commits after the verification's
  snapshot, before the head and the checkpoint's record are read, is looked for before truncation is reported.

Problems the chain shows by itself (altered, removed, …) are reported first, as `DecisionLog.verify` does.
`check(full=False)` is the incremental check (the service's start): only the records and access-log rows
from the checkpoint on are walked, and the ones at the checkpoint must still carry the signed hashes. It
finds truncation, rehashing and any change to the checkpoint's rows or later ones; an edit of an older row
that leaves its stored hash as it was is found only by the full check (`full=True`, what VerifyLog runs),
which hashes every row again.

A new checkpoint is only signed after the log verified against the previous one, so a tampered state is
never blessed by a later signature. What happens after the latest checkpoint remains visible only to the
chains: cutting the newest records that no checkpoint covers yet is not detectable (checkpoint often).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .access_chain import ACCESS_ALTERED, NO_ACCESS, AccessHead, verify_access
from .base import DecisionLog
from .chain import GENESIS, ChainHead, Problem, VerifyResult, canonical_json, timestamp_text
from .lifecycle import NO_EVENTS, EventHead
from .retention import CutKeys, RetentionCut, cuts_problem

_TAIL = 64 * 1024  # a witness line is a few hundred bytes; the last one is within this much of the end


class CheckpointError(RuntimeError):
    """A key or witness that cannot be used, or a witnessed checkpoint whose signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    access_id: int
    access_hash: str
    at: str  # timestamp_text
    lifecycle_id: int = 0  # 0: no lifecycle event yet (then the two are not signed: older checkpoints verify)
    lifecycle_hash: str = GENESIS

    def signed_text(self) -> bytes:
        value: dict[str, object] = {"seq": self.seq, "hash": self.hash, "access_id": self.access_id,
                                    "access_hash": self.access_hash, "at": self.at}
        if self.lifecycle_id:
            value.update(lifecycle_id=self.lifecycle_id, lifecycle_hash=self.lifecycle_hash)
        return canonical_json(value).encode("utf-8")


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signature: bytes

    def line(self) -> str:
        value = json.loads(self.checkpoint.signed_text())
        return canonical_json({**value, "signature": base64.b64encode(self.signature).decode("ascii")})

    @staticmethod
    def parse(line: str) -> SignedCheckpoint:
        try:
            value = json.loads(line)
            checkpoint = Checkpoint(seq=int(value["seq"]), hash=str(value["hash"]),
                                    access_id=int(value["access_id"]), access_hash=str(value["access_hash"]),
                                    at=str(value["at"]), lifecycle_id=int(value.get("lifecycle_id", 0)),
                                    lifecycle_hash=str(value.get("lifecycle_hash", GENESIS)))
            return SignedCheckpoint(checkpoint, base64.b64decode(value["signature"], validate=True))
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"not a checkpoint line: {exc}") from None

    def verified(self, *public_keys: Ed25519PublicKey) -> Checkpoint:
        """The checkpoint, when one of the keys (the current one, earlier ones) signed it."""
        for public_key in public_keys:
            try:
                public_key.verify(self.signature, self.checkpoint.signed_text())
            except InvalidSignature:
                continue
            return self.checkpoint
        raise CheckpointError(f"the checkpoint at seq {self.checkpoint.seq} ({self.checkpoint.at}) "
                              "does not carry a valid signature: the witness was altered")


class Witness(Protocol):
    """Where checkpoints are kept, outside the database."""

    def append(self, signed: SignedCheckpoint) -> None: ...

    def latest(self) -> SignedCheckpoint | None: ...


class FileWitness:
    """An append-only file of checkpoint lines (opened O_APPEND, fsynced per line, mode 0600)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def append(self, signed: SignedCheckpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (signed.line() + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def latest(self) -> SignedCheckpoint | None:
        try:
            with open(self.path, "rb") as file:
                size = file.seek(0, os.SEEK_END)
                file.seek(max(0, size - _TAIL))
                tail = file.read()
        except FileNotFoundError:
            return None
        lines = [line for line in tail.decode("utf-8", "replace").splitlines() if line.strip()]
        return SignedCheckpoint.parse(lines[-1]) if lines else None


def load_or_create_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The signing key in `path` (PEM, PKCS#8), made on first use with mode 0600. A key file that others
    can read or write is refused: whoever holds the key can sign a forged checkpoint."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return load_or_create_key(path)  # made by a process starting at the same time
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        return key
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CheckpointError(f"checkpoint key file {path}: mode {mode:04o} lets others read or write it; "
                              "chmod 600 it")
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint key file {path}: not a PEM private key ({exc})") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise CheckpointError(f"checkpoint key file {path}: not an Ed25519 key")
    return loaded


def load_public_keys(path: str | os.PathLike[str]) -> list[Ed25519PublicKey]:
    """The Ed25519 public keys in a PEM file (one or more PUBLIC KEY blocks): earlier checkpoint keys, whose
    checkpoints and retention cuts still verify after the key was changed (docs/retention.md)."""
    text = Path(path).read_text(encoding="ascii", errors="replace")
    end = "-----END PUBLIC KEY-----"
    blocks = [block + end for block in text.split(end) if "-----BEGIN PUBLIC KEY-----" in block]
    if not blocks:
        raise CheckpointError(f"previous checkpoint keys file {path}: no PUBLIC KEY block")
    keys = []
    for number, block in enumerate(blocks, 1):
        try:
            loaded = serialization.load_pem_public_key(block.strip().encode("ascii"))
        except ValueError as exc:
            raise CheckpointError(f"previous checkpoint keys file {path}: key {number} is not PEM ({exc})") from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise CheckpointError(f"previous checkpoint keys file {path}: key {number} is not an Ed25519 key")
        keys.append(loaded)
    return keys


@dataclass(frozen=True)
class CheckResult:
    """The log's verification and the checkpoint it was checked against (None when there is none yet)."""

    result: VerifyResult
    checkpoint: Checkpoint | None


class Checkpointer:
    """Signs checkpoints of `log` into `witness` and checks the log against the latest one. Thread-safe.

    `previous` are the public keys of earlier checkpoint keys: checkpoints and retention cuts they signed verify."""

    def __init__(self, log: DecisionLog, key: Ed25519PrivateKey, witness: Witness,
                 previous: Sequence[Ed25519PublicKey] = ()) -> None:
        self.log = log
        self.key = key
        self.public_keys = (key.public_key(), *previous)
        self.cut_keys = CutKeys(key.public_key(), previous)
        self.witness = witness
        self._lock = threading.Lock()

    def latest(self) -> Checkpoint | None:
        signed = self.witness.latest()
        return None if signed is None else signed.verified(*self.public_keys)

    def check(self, *, full: bool = True) -> CheckResult:
        """Verify the log, then against the latest checkpoint (see the module docstring)."""
        checkpoint = self.latest()
        return CheckResult(check_against(self.log, checkpoint, full=full, keys=self.cut_keys), checkpoint)

    def checkpoint(self) -> CheckResult:
        """Sign and witness the current heads, unless they are the latest checkpoint's already. Nothing is
        signed when the log does not verify against the previous checkpoint (the result says why)."""
        with self._lock:
            checked = self.check(full=False)
            if not checked.result.ok:
                return checked
            head, access = self.log.heads()
            events = lifecycle_head(self.log)
            previous = checked.checkpoint
            if previous is not None and (previous.seq, previous.hash, previous.access_id, previous.lifecycle_id) == (
                    head.seq, head.hash, access.id, events.id):
                return checked
            new = Checkpoint(head.seq, head.hash, access.id, access.hash, timestamp_text(datetime.now(UTC)),
                             events.id, events.hash)
            self.witness.append(SignedCheckpoint(new, self.key.sign(new.signed_text())))
            return CheckResult(checked.result, new)


def lifecycle_head(log: DecisionLog) -> EventHead:
    """The head of the log's chain of ruleset lifecycle events (none for a log that keeps no rulesets)."""
    try:
        return log.rulesets().head()
    except NotImplementedError:
        return NO_EVENTS


def check_against(log: DecisionLog, checkpoint: Checkpoint | None, *, keys: CutKeys,
                  full: bool = True) -> VerifyResult:
    """`log.verify()` (or, with full=False and a checkpoint, the records after it), then the retention cuts'
    signatures (`keys`), then the checkpoint."""
    if checkpoint is None or full:
        result = log.verify()
    else:
        result = log.verify_since(ChainHead(checkpoint.seq, checkpoint.hash))
    if result.ok:
        problem = _cut_problem(log, result.cut, keys, full=full)
        if problem is None and checkpoint is not None:
            problem = _decisions_problem(log, checkpoint, log.heads()[0], result.cut)
            if problem is not None and problem.kind == "truncated":
                problem = _after_newer_cuts(log, checkpoint, result.cut, keys, problem)
        if problem is not None:
            return VerifyResult(ok=False, checked=0, first_problem=problem, cut=result.cut)
    return _with_access(log, result, checkpoint, full=full)


def _cut_problem(log: DecisionLog, walked: RetentionCut | None, keys: CutKeys, *, full: bool) -> Problem | None:
    """A retention cut that no checkpoint key signed: every stored cut and the one the walk began at (the newest);
    incremental (full=False), the newest alone, which is all the chain rests on."""
    if not full:
        return None if walked is None else cuts_problem([walked], keys)
    try:
        cuts = {cut.id: cut for cut in log.retention().cuts()}
    except NotImplementedError:
        return None
    if walked is not None:
        cuts.setdefault(walked.id, walked)
    return cuts_problem([cuts[id_] for id_ in sorted(cuts)], keys)


def _after_newer_cuts(log: DecisionLog, checkpoint: Checkpoint, verified: RetentionCut | None, keys: CutKeys,
                      problem: Problem, attempts: int = 3) -> Problem | None:
    """`problem` (truncation), unless a prune committed after the verified snapshot: the head and the checkpoint's
    record are read after it, and records a valid newer cut removed are not truncation. The newest cut is read
    before the records, so whatever they lack was removed under it or is truly gone."""
    seen, found = verified, problem
    for _ in range(attempts):
        try:
            cuts = log.retention().cuts()
        except NotImplementedError:
            return problem
        newest = cuts[-1] if cuts else None
        if newest is None or (seen is not None and newest.id == seen.id) or cuts_problem([newest], keys) is not None:
            return found  # no newer cut (or one no key of ours signed, which the next check reports)
        seen = newest
        again = _decisions_problem(log, checkpoint, log.heads()[0], newest)
        if again is None or again.kind != "truncated":
            return again
        found = again
    return found


def _decisions_problem(log: DecisionLog, checkpoint: Checkpoint, head: ChainHead,
                       cut: RetentionCut | None) -> Problem | None:
    when = f"the checkpoint of {checkpoint.at}"
    if head.seq < checkpoint.seq:
        return Problem(head.seq + 1, None, "truncated",
                       f"the chain head is at seq {head.seq}, below {when} at seq {checkpoint.seq}: "
                       f"seq {head.seq + 1}–{checkpoint.seq} were removed")
    if cut is not None and checkpoint.seq <= cut.seq:  # its record was removed under a cut our key signed
        if checkpoint.seq == cut.seq and checkpoint.hash != cut.hash:
            return Problem(checkpoint.seq, None, "rehashed",
                           f"{cut.describe()} signed hash {cut.hash} for seq {cut.seq}, not {checkpoint.hash} as "
                           f"{when} did")
        return None
    found = log.hash_at(checkpoint.seq) if checkpoint.seq else None
    if checkpoint.seq and found is None:
        return Problem(checkpoint.seq, None, "truncated", f"seq {checkpoint.seq}, signed by {when}, is gone")
    if checkpoint.seq and found != checkpoint.hash:
        return Problem(checkpoint.seq, None, "rehashed",
                       f"the record at seq {checkpoint.seq} has hash {found}, not {checkpoint.hash} as signed by "
                       f"{when}: a record at or before it was rewritten and the later hashes recomputed")
    return None


def _with_access(log: DecisionLog, result: VerifyResult, checkpoint: Checkpoint | None, *,
                 full: bool) -> VerifyResult:
    """`result`, unless the access log is altered (reported after the decisions' own problems). Incremental
    (full=False): only the rows from the checkpoint's access-log row on are read."""
    if not result.ok:
        return result
    lifecycle = _lifecycle_problem(log, checkpoint)
    if lifecycle is not None:
        return replace(result, ok=False, first_problem=lifecycle)
    anchor = AccessHead(checkpoint.access_id, checkpoint.access_hash) if checkpoint is not None else NO_ACCESS
    try:
        rows = log.access_log(0 if full else anchor.id)
    except (ValueError, TypeError) as exc:
        problem: Problem | None = Problem(0, None, ACCESS_ALTERED, f"an access log row cannot be read: {exc}")
    else:
        problem = _access_problem(rows, anchor, full=full)
    if problem is not None:
        return replace(result, ok=False, first_problem=problem)
    return result


def _access_problem(rows: list[dict[str, Any]], anchor: AccessHead, *, full: bool) -> Problem | None:
    """The first problem of the access-log chain, and whether it still holds the checkpoint's row."""
    if not full and anchor.id:
        if not rows or rows[0]["id"] != anchor.id or rows[0].get("hash") != anchor.hash:
            return _anchor_problem(anchor)
        # The signed row's content is hashed again too; the rows before it only by a full check.
        return verify_access(rows, AccessHead(anchor.id - 1, str(rows[0].get("prev_hash"))))[1]
    head, problem = verify_access(rows)
    if problem is not None or not anchor.id:
        return problem
    signed = next((row for row in rows if row["id"] == anchor.id), None)
    if signed is None or head.id < anchor.id or signed.get("hash") != anchor.hash:
        return _anchor_problem(anchor)
    return None


def _lifecycle_problem(log: DecisionLog, checkpoint: Checkpoint | None) -> Problem | None:
    """The first problem of the lifecycle events' chain, and whether it still holds the checkpoint's event."""
    try:
        store = log.rulesets()
    except NotImplementedError:
        return None
    head, problem = store.verify()
    if problem is not None or checkpoint is None or not checkpoint.lifecycle_id:
        return problem
    signed = next((e for e in store.events(checkpoint.lifecycle_id) if e.id == checkpoint.lifecycle_id), None)
    if signed is None or head.id < checkpoint.lifecycle_id or signed.hash != checkpoint.lifecycle_hash:
        return Problem(checkpoint.lifecycle_id, None, "lifecycle altered",
                       f"ruleset lifecycle event {checkpoint.lifecycle_id} is gone or has another hash than the "
                       "checkpoint signed: it or an event before it was changed or removed")
    return None


def _anchor_problem(anchor: AccessHead) -> Problem:
    return Problem(anchor.id, None, ACCESS_ALTERED,
                   f"access log row {anchor.id} is gone or has another hash than the checkpoint signed: it or a "
                   "row before it was changed or removed")
