"""Random tampering with a real decision log is always detected, and named as regelmotor.store.chain says.

Each example stores a few records in a fresh log (SQLite, and PostgreSQL when REGELMOTOR_TEST_POSTGRES_DSN
reaches a server), lifts the append-only guard as an intruder with DDL rights can, changes the stored rows
with SQL at a random place - alters a column, rewrites a record with a recomputed hash, deletes a row (and
renumbers the rest), inserts a forged row, swaps two rows or their contents, moves a row - and checks that
verify() is not ok and reports the first problem (kind, seq, decision, records checked) the rules in the
chain module's docstring give for that change.

Not detectable by verify() alone, and tested as such: deleting the newest records and moving the chain head
back (the log is consistent again); only a head published earlier shows it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regelmotor.store import ListFilter, StoredRecord
from regelmotor.store.chain import GENESIS, ChainHead, canonical_json, link, record_hash, timestamp_text, verify
from tests.postgres_support import postgres_schema
from tests.test_decision_log import T0, Backend, make_record

Expected = tuple[str, int, str | None, int]  # kind, seq, decision_id, checked


@contextmanager
def fresh_store(kind: str) -> Iterator[Backend]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="regelmotor-chain-") as directory:
            path = Path(directory) / "decisions.db"
            yield Backend("sqlite", f"sqlite://{path}", path)
    else:
        with postgres_schema() as dsn:
            yield Backend("postgres", dsn)


def _other_value(backend: Backend, column: str, current: Any) -> Any:
    """A value for `column` that differs from `current` and that the column accepts."""
    if column == "recorded_at":
        later = T0 + timedelta(days=400)
        return timestamp_text(later) if backend.kind == "sqlite" else later
    replacements: dict[str, Any] = {
        "decision_id": f"{current}-forged", "request_id": f"{current}-forged", "caller": "forger",
        "ruleset": "annet-regelsett", "version": "9999.1", "ruleset_sha256": "0" * 64, "engine_version": "9.9.9",
        "as_of": "2099-01-01", "subject": "f" * 64, "facts": '{"alder":999}', "outcome": '{"utfall":"ikke_rett"}',
        "decision": '{"forged":true}', "response": b"forged", "trace_id": "f" * 32,
        "prev_hash": "e" * 64, "hash": "d" * 64}
    return replacements[column]


ALTERABLE = ("decision_id", "recorded_at", "caller", "request_id", "ruleset", "version", "ruleset_sha256",
             "engine_version", "as_of", "subject", "facts", "outcome", "decision", "response", "trace_id",
             "prev_hash", "hash")


def _move(backend: Backend, source: int, target: int) -> None:
    """Move the row at `source` to `target`; the rows between shift by one place (seq is unique, so via -1)."""
    backend.sql("UPDATE decisions SET seq = -1 WHERE seq = ?", (source,))
    if source < target:
        for seq in range(source + 1, target + 1):
            backend.sql("UPDATE decisions SET seq = ? WHERE seq = ?", (seq - 1, seq))
    else:
        for seq in range(source - 1, target - 1, -1):
            backend.sql("UPDATE decisions SET seq = ? WHERE seq = ?", (seq + 1, seq))
    backend.sql("UPDATE decisions SET seq = ? WHERE seq = -1", (target,))


def tamper(backend: Backend, stored: list[StoredRecord], data: st.DataObject) -> Expected:
    """Change the stored rows at a random place; the first problem verify() must report."""
    n = len(stored)
    how = data.draw(st.sampled_from(("alter", "alter and rehash", "delete", "delete and renumber", "insert at end",
                                     "insert linked", "insert unlinked", "swap rows", "swap contents", "move")),
                    label="tampering")
    k = data.draw(st.integers(1, n), label="seq")
    ident = [r.decision_id for r in stored]  # ident[k - 1] is the decision at seq k
    forged_record = make_record(77, caller="forger")
    if how == "alter":  # rule 5d (content no longer matches its hash)
        column = data.draw(st.sampled_from(ALTERABLE), label="column")
        value = _other_value(backend, column, backend.row(k).get(column))
        if column in ("prev_hash", "hash"):
            backend.sql(f"UPDATE decisions SET {column} = ? WHERE seq = ?", (value, k))
        else:
            backend.write_row(k, {column: value})
        return "altered", k, value if column == "decision_id" else ident[k - 1], k - 1
    if how == "alter and rehash":  # rule 6a (the next record's link shows it), or 7 at the newest record
        forged = replace(stored[k - 1], outcome={"utfall": "ikke_rett"})
        backend.write_row(k, {"outcome": canonical_json(forged.outcome)})
        backend.sql("UPDATE decisions SET hash = ? WHERE seq = ?", (record_hash(forged.prev_hash, forged, k), k))
        return "altered", k, ident[k - 1], k - 1
    if how == "delete":  # rule 4 (a gap), or 7 at the newest record
        backend.sql("DELETE FROM decisions WHERE seq = ?", (k,))
        return "removed", k, None, k - 1
    if how == "delete and renumber":  # rule 5c
        k = min(k, n - 1)
        backend.sql("DELETE FROM decisions WHERE seq = ?", (k,))
        backend.renumber(k + 1, -1)
        return "removed", k, None, k - 1
    if how == "insert at end":  # rule 1: a perfectly linked forgery beyond the chain head
        forged_row, _ = link(forged_record, n + 1, stored[-1].hash)
        backend.insert(forged_row)
        return "inserted", n + 1, forged_row.decision_id, n
    if how == "insert linked":  # a perfectly linked forgery at k, the later records renumbered up
        forged_row, _ = link(forged_record, k, stored[k - 2].hash if k > 1 else GENESIS)
        backend.renumber(k, +1)
        backend.insert(forged_row)
        if k == n:
            # Rule 1 comes first: the genuine newest record, now at n + 1, is beyond the chain head.
            return "inserted", n + 1, ident[n - 1], n
        return "inserted", k, forged_row.decision_id, k - 1  # rule 5b
    if how == "insert unlinked":  # rule 6b: its prev_hash matches no predecessor
        forged_row, _ = link(forged_record, k, "e" * 64)
        backend.renumber(k, +1)
        backend.insert(forged_row)
        return "inserted", k, forged_row.decision_id, k - 1
    a, b = sorted(data.draw(st.lists(st.integers(1, n), min_size=2, max_size=2, unique=True), label="two seqs"))
    if how == "swap rows":  # rule 5a: whole rows trade places, seq kept
        backend.sql("UPDATE decisions SET seq = -1 WHERE seq = ?", (a,))
        backend.sql("UPDATE decisions SET seq = ? WHERE seq = ?", (a, b))
        backend.sql("UPDATE decisions SET seq = ? WHERE seq = -1", (b,))
        return "reordered", a, ident[b - 1], a - 1
    if how == "swap contents":  # rule 5a: contents trade places, chain columns kept
        first, second = backend.row(a), backend.row(b)
        unique = {"decision_id": "placeholder", "request_id": "placeholder"}
        backend.write_row(a, {**second, **unique})
        backend.write_row(b, first)
        backend.write_row(a, {name: second[name] for name in unique})
        return "reordered", a, ident[b - 1], a - 1
    # A move by more than one place is no swap (rule 5a needs each to match the other's position).
    forward = data.draw(st.booleans(), label="forward")
    if b - a == 1:
        _move(backend, a, b)  # an adjacent move is a swap
        return "reordered", a, ident[b - 1], a - 1
    if forward:  # a goes to b: the record now at a is a + 1, which matches seq a + 1 (rule 5c)
        _move(backend, a, b)
        return "removed", a, None, a - 1
    _move(backend, b, a)  # b goes to a: it matches no rule but 5d
    return "altered", a, ident[b - 1], a - 1


@pytest.mark.parametrize(("kind", "examples"), [("sqlite", 200), ("postgres", 60)])
def test_random_tampering_is_always_detected_and_named(kind: str, examples: int) -> None:
    @settings(max_examples=examples, deadline=None)
    @given(count=st.integers(3, 9), data=st.data())
    def check(count: int, data: st.DataObject) -> None:
        with fresh_store(kind) as backend:
            log = backend.open()
            try:
                stored = log.append([make_record(i) for i in range(count)])
                assert log.verify().ok
                backend.unguard()
                expected = tamper(backend, stored, data)
                result = log.verify()
            finally:
                log.close()
        assert not result.ok and result.first_problem is not None and result.first_problem.message
        problem = result.first_problem
        assert (problem.kind, problem.seq, problem.decision_id, result.checked) == expected, problem.message

    check()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_cutting_the_newest_records_and_the_head_is_seen_only_against_a_published_head(kind: str) -> None:
    with fresh_store(kind) as backend:
        log = backend.open()
        try:
            stored = log.append([make_record(i) for i in range(6)])
            published = ChainHead(stored[-1].seq, stored[-1].hash)  # e.g. printed by VerifyLog, kept elsewhere
            backend.unguard()
            backend.sql("DELETE FROM decisions WHERE seq > 4")
            backend.sql("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (4, stored[3].hash))
            alone = log.verify()
            records = log.iterate(ListFilter())
            against_published = verify(records, published)
        finally:
            log.close()
    assert alone.ok and alone.checked == 4  # consistent: the log cannot know what it no longer has
    assert not against_published.ok and against_published.first_problem is not None
    assert (against_published.first_problem.kind, against_published.first_problem.seq) == ("removed", 5)
