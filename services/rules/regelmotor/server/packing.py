"""How an answered Decision is kept in the decision log: zlib-compressed protobuf bytes.

The explanation makes a Decision about 30 kB of protobuf that compresses to about 6 kB; compressing it in
the engine workers (in parallel) keeps the single writer's work and the log's size small. The hash
chain covers the stored (compressed) bytes, so any change to them is detected.
"""

from __future__ import annotations

import zlib


def pack_response(decision: bytes) -> bytes:
    return zlib.compress(decision, 1)


def unpack_response(stored: bytes) -> bytes:
    return zlib.decompress(stored)
