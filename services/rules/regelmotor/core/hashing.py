"""Canonical content and its sha256: the identity of a ruleset version.

The hash is taken over the parsed document as canonical JSON (sorted keys, ISO dates), so comments
and formatting do not change it but any change of meaning does.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(_canonical(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical_sha256(document: Any) -> tuple[str, Any]:
    canonical = _canonical(document)
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), canonical
