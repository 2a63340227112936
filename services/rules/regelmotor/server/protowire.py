"""Protobuf wire format, written by hand: varints, tags, length-delimited fields, and JSON values as
google.protobuf.Value and Struct, for the answer writer (regelmotor.server.wire) and the decision stream.

A message is the concatenation of its fields, in any order, and an embedded message is its bytes behind a
tag and a length; that is all the writer needs. `tests/test_wire.py` checks `value_bytes` and
`struct_bytes` against the protobuf library on random JSON values.
"""

from __future__ import annotations

import struct
from typing import Any

from google.protobuf import struct_pb2

VARINT = 0
FIXED64 = 1
LENGTH = 2
_pack_double = struct.Struct("<d").pack


def tag(descriptor: Any, name: str, wire_type: int) -> bytes:
    """The encoded tag of the field `name` of a message type.
    (Any: the stubs type message descriptors as a union of the upb and the pure-Python classes.)"""
    return varint((descriptor.fields_by_name[name].number << 3) | wire_type)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if not value:
            out.append(bits)
            return bytes(out)
        out.append(bits | 0x80)


# Lengths below this are looked up rather than encoded: nearly every field of a decision is shorter.
SHORT = 1 << 14
SHORT_VARINTS = tuple(varint(n) for n in range(SHORT))


def field(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: tag, length, body."""
    size = len(body)
    return tag + (SHORT_VARINTS[size] if size < SHORT else varint(size)) + body


length_delimited = field


def text(tag: bytes, value: str | None) -> bytes:
    """A string field; proto3 leaves an empty string out, and so does the reference encoder."""
    return field(tag, value.encode("utf-8")) if value else b""


_S = struct_pb2.Struct.DESCRIPTOR
_E = _S.fields_by_name["fields"].message_type  # the map entry (key, value)
_V = struct_pb2.Value.DESCRIPTOR
_L = struct_pb2.ListValue.DESCRIPTOR
_STRUCT_FIELDS = tag(_S, "fields", LENGTH)
_ENTRY_KEY = tag(_E, "key", LENGTH)
_ENTRY_VALUE = tag(_E, "value", LENGTH)
_NULL = tag(_V, "null_value", VARINT) + b"\x00"
_TRUE = tag(_V, "bool_value", VARINT) + b"\x01"
_FALSE = tag(_V, "bool_value", VARINT) + b"\x00"
_NUMBER = tag(_V, "number_value", FIXED64)
_STRING = tag(_V, "string_value", LENGTH)
_STRUCT = tag(_V, "struct_value", LENGTH)
_LIST = tag(_V, "list_value", LENGTH)
_LIST_VALUES = tag(_L, "values", LENGTH)

# Caches of encoded parts hold at most this many entries and are emptied when full, so unusual values
# cannot grow them without end.
CACHE_LIMIT = 50_000


def remember(cache: dict[Any, bytes], key: Any, encoded: bytes) -> bytes:
    """`encoded`, kept in `cache` under `key` (a cache that is full is emptied first)."""
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = encoded
    return encoded


# Encoded scalar map entries and values, by (key, type, value) and (type, value): the same few names and
# values recur in every decision (booleans, dates, codes). Floats are left out: 0.0 and -0.0 are equal keys
# but different bytes. The type is in the key because 1, True and 1.0 are equal keys too.
_ENTRY_CACHE: dict[tuple[str, type, Any], bytes] = {}
_VALUE_CACHE: dict[tuple[type, Any], bytes] = {}


def clear_caches() -> None:
    """Empty the caches of encoded entries and values (what is written does not depend on them)."""
    _ENTRY_CACHE.clear()
    _VALUE_CACHE.clear()


def cached_entries() -> int:
    """How many encoded map entries are cached now (at most CACHE_LIMIT)."""
    return len(_ENTRY_CACHE)


def value_bytes(value: Any) -> bytes:
    """A google.protobuf.Value holding a JSON value, as `Struct.update` would set it."""
    if value is None:
        return _NULL
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    if isinstance(value, str):
        return field(_STRING, value.encode("utf-8"))
    if isinstance(value, (int, float)):
        return _NUMBER + _pack_double(float(value))
    if isinstance(value, dict):
        return field(_STRUCT, struct_bytes(value))
    if isinstance(value, (list, tuple)):
        return field(_LIST, b"".join([field(_LIST_VALUES, value_bytes(item)) for item in value]))
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def scalar_value_bytes(value: Any) -> bytes:
    """`value_bytes(value)`, from the cache for a text, whole number, boolean or null."""
    if value is None or isinstance(value, (str, int)):  # bool is an int
        key = (type(value), value)
        found = _VALUE_CACHE.get(key)
        return found if found is not None else remember(_VALUE_CACHE, key, value_bytes(value))
    return value_bytes(value)


def entry(key: str, value: Any) -> bytes:
    """One map entry of a Struct, {key: value}, with its tag: a Struct is the concatenation of its entries."""
    scalar = value is None or isinstance(value, (str, int))  # bool is an int
    if scalar:
        cache_key = (key, type(value), value)
        found = _ENTRY_CACHE.get(cache_key)
        if found is not None:
            return found
    body = field(_ENTRY_KEY, key.encode("utf-8")) + field(_ENTRY_VALUE, value_bytes(value))
    encoded = field(_STRUCT_FIELDS, body)
    return remember(_ENTRY_CACHE, cache_key, encoded) if scalar else encoded


def struct_bytes(values: dict[str, Any]) -> bytes:
    """A google.protobuf.Struct holding a dict of JSON values."""
    return b"".join([entry(key, value) for key, value in values.items()])
