"""Pruning the decision log: the records recorded before a cutoff leave it under a signed retention cut
(regelmotor.store.retention; docs/retention.md), and the log still verifies from the cut on.

`prune` goes in three steps:

1. The whole log is verified against the latest witnessed checkpoint (`Checkpointer.check(full=True)`: every
   record hashed again, the cuts' signatures, the access log and the lifecycle events). A log that does not verify
   is never cut: a signed cut must not bless a tampered state, nor delete the evidence of it.
2. One transaction (`RetentionStore.cut`): the newest cut is still the one verified, the record the cut ends at
   still has the hash it had and the chain still goes on from it; the cut, signed with the checkpoint key over
   {seq, hash, cutoff, at}, is stored, and the records up to its seq are deleted. Appends go on beside it on
   PostgreSQL; on SQLite they wait for it (it holds the writer), as long as the deletion takes - so `step` can
   split the work into several cuts of at most `step` records, each its own transaction, each a state that
   verifies (an interrupted prune leaves the cuts made so far, and the next run goes on from them).
3. A fresh checkpoint is signed into the witness (`Checkpointer.checkpoint`: incremental, from the previous one).

Step 1 reads a snapshot outside step 2's transaction, so that appends are not held up while the whole log is
hashed again. The cut's end and hash are read after that snapshot and checked in step 2's transaction (the record
still has that hash, the chain goes on from it), not compared with what step 1 walked: a rewrite of the chain in
between would be signed, and is found by a witnessed checkpoint beyond the cut (rehashed) or at it (the cut's hash
must match), as docs/retention.md says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .chain import ChainHead
from .checkpoint import Checkpointer, CheckResult
from .retention import RetentionCut, RetentionError, signed_cut


class PruneRefused(ValueError):
    """A cutoff that cannot be used: not timezone-aware, in the future, or before the newest cut's."""


class PruneInterrupted(RuntimeError):
    """A prune that failed after it had cut: the cuts made (and the records deleted under them) stand, and the log
    verifies from the newest of them; `__cause__` is what failed (a later cut, the checkpoint after)."""

    def __init__(self, cut: RetentionCut, cuts: int, removed: int, cause: BaseException) -> None:
        self.cut, self.cuts, self.removed = cut, cuts, removed
        super().__init__(f"{type(cause).__name__}: {cause}")


@dataclass(frozen=True)
class PruneResult:
    """What a prune found and did. Nothing was deleted when `check` is not ok, when `through` is None (nothing
    recorded before the cutoff is left) or on a dry run (`cut` None: `through` and `removed` are what would go)."""

    check: CheckResult  # the verification before anything was cut
    previous: RetentionCut | None  # the newest cut before this one
    through: ChainHead | None = None  # the last record removed (or that would be)
    removed: int = 0
    cut: RetentionCut | None = None  # the (newest) cut made
    cuts: int = 0  # how many cuts were made (more than one with `step`)
    after: CheckResult | None = None  # the check and checkpoint after it (its checkpoint: the one signed now)


def prune(checkpointer: Checkpointer, before: datetime, *, now: Callable[[], datetime], dry_run: bool = False,
          step: int | None = None) -> PruneResult:
    """Remove the records recorded before `before` under a new signed cut (see the module docstring); with `step`,
    under as many cuts as it takes to remove at most `step` records in each transaction (SQLite's appends wait for
    one transaction at a time, not for all of them). Raises PruneRefused for a cutoff that cannot be used,
    RetentionError when the log changed under the first cut (nothing was cut), PruneInterrupted when a step failed
    after a cut was made (a later cut, the checkpoint after: the cuts made stand, and it says what they removed)."""
    if before.tzinfo is None or before.utcoffset() is None:
        raise PruneRefused("before: a timezone-aware time is required")
    if step is not None and step < 1:
        raise PruneRefused(f"step: {step} is not a positive number of records")
    moment = now()
    if before > moment:
        raise PruneRefused(f"before: {before.isoformat()} is in the future (now {moment.isoformat()}): "
                           "records not yet recorded cannot be past their retention")
    log = checkpointer.log
    limit = log.heads()[0].seq  # read before the check, so the check's snapshot covers every record cut
    checked = checkpointer.check(full=True)
    previous = checked.result.cut
    if not checked.result.ok:
        return PruneResult(checked, previous)
    if previous is not None and before < datetime.fromisoformat(previous.cutoff):
        raise PruneRefused(f"before: {before.isoformat()} is earlier than the cutoff of the newest cut "
                           f"({previous.cutoff}): a cut never moves back")
    first = 0 if previous is None else previous.seq
    store = log.retention()
    through = store.prunable(before, first, limit)
    if through is None:
        return PruneResult(checked, previous)
    if dry_run:
        return PruneResult(checked, previous, through, through.seq - first)
    cut, removed, cuts = previous, 0, 0
    try:
        while (done := 0 if cut is None else cut.seq) < through.seq:
            # Every record up to through.seq was recorded before `before`: a step ends where it may.
            part = through if step is None else store.prunable(before, done, min(through.seq, done + step))
            if part is None:
                raise RetentionError(f"the records after seq {done} changed since they were verified: verify the log")
            cut, gone = store.cut(part, cut, lambda head: signed_cut(checkpointer.key, head, before, now()))
            removed, cuts = removed + gone, cuts + 1
        after = checkpointer.checkpoint()
    except Exception as exc:
        if cuts == 0 or cut is None:
            raise  # nothing was cut
        raise PruneInterrupted(cut, cuts, removed, exc) from exc
    return PruneResult(checked, previous, through, removed, cut, cuts, after)
