"""Retention cuts: how records past their retention period leave the decision log without breaking its chain.

A *cut* says: every record up to ``seq`` is gone, the record at ``seq`` had ``hash``, and every one of them was
recorded before ``cutoff``. It is a row of the table ``retention_cuts`` (schema 5), signed with the checkpoint key
(Ed25519, the key of regelmotor.store.checkpoint) over its canonical JSON (`RetentionCut.signed_text`). The schema
lets a DELETE of decisions through only for rows at or below the newest cut's seq, and a cut only forward
(regelmotor.store.migrations); `regelmotor.store.pruning` writes the cut and deletes the rows in one transaction.

Verification after a cut (`verify_after_cut`, used by both backends' `verify` and `verify_since`) walks the
records from ``seq + 1`` on, the first linking to the cut's hash: the cut takes the place of the genesis. A record
left at or below the newest cut is reported as inserted. The signature is checked where the keys are, against a
checkpoint (regelmotor.store.checkpoint, `cuts_problem`): a cut whose signature no key of ours verifies - a row
written by hand to cover a deletion - is the kind **cut invalid**. Removing the newest cut row itself leaves a
gap after the cut before it (kind **removed**).

Cuts signed with an earlier checkpoint key verify with its public key (`CutKeys`, the setting
checkpoint_previous_keys_file); ``key_id`` names the key that signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .chain import ChainHead, Problem, VerifyResult, canonical_json, timestamp_text

CUT_INVALID: Final = "cut invalid"
_PURPOSE = "regelmotor retention cut"  # in the signed text: a checkpoint's signature never passes for a cut

# Both backends read the same columns; the timestamps come back as text (SQLite) or timestamptz (PostgreSQL).
CUT_COLUMNS = "id, seq, hash, cutoff, at, key_id, signature"
NEWEST_CUT = f"SELECT {CUT_COLUMNS} FROM retention_cuts ORDER BY id DESC LIMIT 1"
ALL_CUTS = f"SELECT {CUT_COLUMNS} FROM retention_cuts ORDER BY id"


@dataclass(frozen=True)
class RetentionCut:
    seq: int  # the last record removed; the chain goes on from it
    hash: str  # its hash, which the record at seq + 1 links to
    cutoff: str  # timestamp_text: every removed record was recorded before it
    at: str  # timestamp_text: when the cut was made
    key_id: str  # which checkpoint key signed it (`key_id`)
    signature: bytes
    id: int = 0  # the row's id (0 before it is stored)

    def signed_text(self) -> bytes:
        return canonical_json({"purpose": _PURPOSE, "seq": self.seq, "hash": self.hash, "cutoff": self.cutoff,
                               "at": self.at}).encode("utf-8")

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.seq, self.hash)

    def describe(self) -> str:
        return f"the retention cut at seq {self.seq} (records recorded before {self.cutoff}, cut at {self.at})"


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_cut(key: Ed25519PrivateKey, head: ChainHead, cutoff: datetime, at: datetime) -> RetentionCut:
    """The cut through `head` for records recorded before `cutoff`, made `at`, signed with `key`."""
    unsigned = RetentionCut(head.seq, head.hash, timestamp_text(cutoff), timestamp_text(at),
                            key_id(key.public_key()), b"")
    return RetentionCut(**{**unsigned.__dict__, "signature": key.sign(unsigned.signed_text())})


def cut_from_row(row: Sequence[Any]) -> RetentionCut:
    """A cut from a row of CUT_COLUMNS. A signature that is not base64 becomes empty bytes (it then fails to verify,
    which is reported, rather than making the log unreadable)."""
    id_, seq, digest, cutoff, at, key, signature = row
    try:
        raw = base64.b64decode(str(signature), validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    return RetentionCut(int(seq), str(digest), _text(cutoff), _text(at), str(key), raw, int(id_))


def _text(value: Any) -> str:
    return timestamp_text(value) if isinstance(value, datetime) else str(value)


class CutKeys:
    """The public keys a cut may be signed with: the current checkpoint key's and earlier ones'."""

    def __init__(self, current: Ed25519PublicKey, previous: Iterable[Ed25519PublicKey] = ()) -> None:
        self.keys = {key_id(key): key for key in (*previous, current)}

    def verifies(self, cut: RetentionCut) -> bool:
        key = self.keys.get(cut.key_id)
        if key is None:
            return False
        try:
            key.verify(cut.signature, cut.signed_text())
        except InvalidSignature:
            return False
        return True


def cuts_problem(cuts: Sequence[RetentionCut], keys: CutKeys) -> Problem | None:
    """The first cut that no key of ours signed, or that does not move forward from the one before."""
    previous = 0
    for cut in cuts:
        if not keys.verifies(cut):
            known = "" if cut.key_id in keys.keys else f"; key {cut.key_id} is not among the checkpoint keys"
            return Problem(cut.seq, None, CUT_INVALID,
                           f"{cut.describe()} does not carry a valid signature{known}: records were deleted "
                           "without a cut made by the service")
        if cut.seq <= previous:
            return Problem(cut.seq, None, CUT_INVALID,
                           f"{cut.describe()} does not move forward from the cut at seq {previous}")
        previous = cut.seq
    return None


def read_cuts(rows: Iterable[Sequence[Any]]) -> list[RetentionCut]:
    return [cut_from_row(row) for row in rows]


Walk = Callable[[int, ChainHead | None], VerifyResult]


def verify_after_cut(fetch_one: Callable[[str], Sequence[Any] | None], walk: Walk, head: ChainHead,
                     start: ChainHead | None) -> VerifyResult:
    """A backend's verification from one snapshot: `fetch_one(sql)` reads a row in it, `walk(after, start)` walks the
    records with seq > after against `head`, the chain head. The walk begins at the later of `start` (a trusted
    checkpoint) and the newest cut."""
    row = fetch_one(NEWEST_CUT)
    cut = None if row is None else cut_from_row(row)
    if cut is not None:
        problem = _cut_place_problem(fetch_one, cut, head)
        if problem is not None:
            return VerifyResult(ok=False, checked=0, first_problem=problem, cut=cut)
        if start is None or start.seq <= cut.seq:
            start = cut.head
    result = walk(0 if start is None else start.seq, start)
    return VerifyResult(ok=result.ok, checked=result.checked, first_problem=result.first_problem, cut=cut)


def _cut_place_problem(fetch_one: Callable[[str], Sequence[Any] | None], cut: RetentionCut,
                       head: ChainHead) -> Problem | None:
    """A record left at or below the cut, or a chain head that is not after it (or at it, with its hash)."""
    stray = fetch_one(f"SELECT seq, decision_id FROM decisions WHERE seq <= {int(cut.seq)} ORDER BY seq LIMIT 1")
    if stray is not None:
        return Problem(int(stray[0]), str(stray[1]), "inserted",
                       f"seq {stray[0]} (decision {stray[1]}) is at or below {cut.describe()}: it was put back or "
                       "added outside the log")
    if head.seq < cut.seq:
        return Problem(head.seq + 1, None, "removed", f"the chain head is at seq {head.seq}, below {cut.describe()}: "
                       "it was moved back")
    if head.seq == cut.seq and head.hash != cut.hash:
        return Problem(head.seq, None, "altered", f"the chain head at seq {head.seq} has another hash than "
                       f"{cut.describe()}")
    return None


class RetentionError(RuntimeError):
    """A cut that could not be made as planned: the log changed under it (another prune, a record that no longer
    links). Nothing was cut or deleted; run it again."""


class Tx(Protocol):
    """One open transaction of the backend (SQL with ``?`` placeholders); regelmotor.store.version_tables."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def changed(self, sql: str, params: Sequence[Any] = ()) -> int: ...


class Tables(Protocol):
    def writing(self) -> AbstractContextManager[Tx]:
        """A write transaction holding the retention lock (SQLite: the log's writer; appends wait)."""

    def reading(self) -> AbstractContextManager[Tx]:
        """A read-only transaction (one snapshot)."""


class RetentionStore:
    """The retention cuts of a log, and the one transaction that makes a cut and deletes the records under it."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def cuts(self) -> list[RetentionCut]:
        """Every cut, oldest first."""
        with self.tables.reading() as tx:
            return read_cuts(tx.rows(ALL_CUTS))

    def prunable(self, before: datetime, after: int, limit: int) -> ChainHead | None:
        """The last record of the run after seq `after` (the newest cut's) and up to seq `limit` whose records were
        all recorded before `before`; None when there is none. A record recorded before `before` but after a later
        one stays, with those after it, until the next cut: nothing recorded from `before` on is ever removed."""
        with self.tables.reading() as tx:
            first_kept = tx.rows("SELECT seq FROM decisions WHERE seq > ? AND seq <= ? AND recorded_at >= ? "
                                 "ORDER BY seq LIMIT 1", (after, limit, timestamp_text(before)))
            last = int(first_kept[0][0]) - 1 if first_kept else limit
            if last <= after:
                return None
            found = tx.rows("SELECT hash FROM decisions WHERE seq = ?", (last,))
        if not found:
            raise RetentionError(f"seq {last} is missing: verify the log")
        return ChainHead(last, str(found[0][0]))

    def cut(self, through: ChainHead, newest: RetentionCut | None,
            seal: Callable[[ChainHead], RetentionCut]) -> tuple[RetentionCut, int]:
        """In one transaction: check that `newest` is still the newest cut and that the chain still goes on from
        `through`, store the cut `seal(through)` and delete the records up to through.seq. Returns the stored cut and
        how many records were deleted; RetentionError (nothing done) when the log changed meanwhile."""
        after = 0 if newest is None else newest.seq
        with self.tables.writing() as tx:
            now_newest = tx.rows(NEWEST_CUT)
            if (int(now_newest[0][0]) if now_newest else 0) != (0 if newest is None else newest.id):
                raise RetentionError("another cut was made meanwhile")
            _check_link(tx, through)
            cut = seal(through)
            stored = tx.rows("INSERT INTO retention_cuts (seq, hash, cutoff, at, key_id, signature) "
                             "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                             (cut.seq, cut.hash, cut.cutoff, cut.at, cut.key_id,
                              base64.b64encode(cut.signature).decode("ascii")))
            removed = tx.changed("DELETE FROM decisions WHERE seq <= ?", (through.seq,))
            if removed != through.seq - after:
                raise RetentionError(f"{removed} records were under the cut at seq {through.seq}, not "
                                     f"{through.seq - after}: verify the log")
        return RetentionCut(**{**cut.__dict__, "id": int(stored[0][0])}), removed


def _check_link(tx: Tx, through: ChainHead) -> None:
    """The record at through.seq still has through.hash, and the chain goes on from it (the next record links to
    it, or it is the chain head)."""
    found = tx.rows("SELECT hash FROM decisions WHERE seq = ?", (through.seq,))
    following = tx.rows("SELECT prev_hash FROM decisions WHERE seq = ?", (through.seq + 1,))
    if following:
        goes_on = str(following[0][0]) == through.hash
    else:
        head = tx.rows("SELECT seq, hash FROM chain_head WHERE id = 1")
        goes_on = ChainHead(int(head[0][0]), str(head[0][1])) == through
    if not found or str(found[0][0]) != through.hash or not goes_on:
        raise RetentionError(f"the record at seq {through.seq} changed since it was verified, or the chain no longer "
                             "goes on from it: verify the log")
