"""The answered Decision as the decision log keeps it: zstd-compressed now, zlib in records written
before; both read back byte for byte."""

from __future__ import annotations

import os
import threading
import zlib

import pytest
import zstandard

from regelmotor.store import pack_response, unpack_response


def test_new_records_are_zstd_frames_that_round_trip() -> None:
    decision = os.urandom(3000) + b"hjemmel " * 3000
    packed = pack_response(decision)
    assert packed.startswith(b"\x28\xb5\x2f\xfd")
    assert len(packed) < len(decision) // 3
    assert unpack_response(packed) == decision


def test_records_written_with_zlib_before_still_unpack() -> None:
    decision = b"rett til nodvendig helsehjelp " * 500
    assert unpack_response(zlib.compress(decision, 1)) == decision


def test_an_empty_decision_round_trips() -> None:
    assert unpack_response(pack_response(b"")) == b""


def test_damaged_bytes_are_refused_not_returned() -> None:
    packed = bytearray(pack_response(b"utskrivningsklar " * 400))
    del packed[len(packed) // 2 :]
    with pytest.raises(zstandard.ZstdError, match="did not decompress full frame"):
        unpack_response(bytes(packed))
    with pytest.raises(zlib.error, match="incorrect header check"):
        unpack_response(b"not a compressed decision")


def test_threads_compress_concurrently_without_mixing_results() -> None:
    inputs = [bytes([n]) * 20_000 + os.urandom(64) for n in range(16)]
    results: dict[int, bytes] = {}

    def work(n: int) -> None:
        for _ in range(50):
            results[n] = unpack_response(pack_response(inputs[n]))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == dict(enumerate(inputs))
