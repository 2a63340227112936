"""The cache of verified tokens: it saves the front PyJWT's work on a token it has seen, and never accepts a token
the full check would refuse (after exp, against a withdrawn key, a changed token)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from regelmotor.server.auth import AuthFailure, Identity, KeySet, Policy, Verifier, read_jwks_file
from regelmotor.server.token_cache import VerifiedTokens
from tests.auth_support import AUDIENCE, ISSUER, Issuer

IDENTITY = Identity(subject="sub-123", client_id="dips-arena", org_number=None, scopes=frozenset({"evaluate"}))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_entry_answers_before_exp_and_never_at_or_after_it() -> None:
    clock = Clock(1000.0)
    cache = VerifiedTokens(clock=clock)
    cache.put("t", IDENTITY, 1010, generation=1)
    clock.now = 1009.999
    assert cache.get("t", 1) == IDENTITY
    clock.now = 1010.0
    assert cache.get("t", 1) is None
    assert len(cache) == 0  # dropped, so it cannot answer later either
    clock.now = 1000.0  # not even if the clock is set back
    assert cache.get("t", 1) is None


def test_an_entry_of_another_key_set_or_without_a_usable_exp_does_not_answer() -> None:
    clock = Clock(1000.0)
    cache = VerifiedTokens(clock=clock)
    cache.put("t", IDENTITY, 1010, generation=1)
    assert cache.get("t", 2) is None
    for expires in (None, "1010", True, 999, 1000):
        cache.put("u", IDENTITY, expires, generation=1)
        assert cache.get("u", 1) is None, expires


def test_the_cache_keeps_at_most_its_bound_and_drops_the_least_recently_used() -> None:
    cache = VerifiedTokens(max_entries=2, clock=Clock(0.0))
    cache.put("a", IDENTITY, 10, 1)
    cache.put("b", IDENTITY, 10, 1)
    assert cache.get("a", 1) == IDENTITY  # "b" is now the least recently used
    cache.put("c", IDENTITY, 10, 1)
    assert len(cache) == 2
    assert cache.get("b", 1) is None
    assert cache.get("a", 1) == IDENTITY and cache.get("c", 1) == IDENTITY


def _verifier(issuer: Issuer, jwks: Path, *, skew: float = 0.0, keys_clock: Clock | None = None) -> Verifier:
    issuer.write_jwks(jwks)
    keys = KeySet(read_jwks_file(jwks), 300.0, **({"clock": keys_clock} if keys_clock else {}))
    return Verifier(keys, Policy(ISSUER, AUDIENCE, ("RS256", "ES256"), skew))


def test_a_verified_token_is_answered_from_the_cache_until_its_exp_then_refused(tmp_path: Path) -> None:
    issuer = Issuer()
    issuer.add_ec("k1")
    verifier = _verifier(issuer, tmp_path / "jwks.json")
    expires = int(time.time()) + 2
    token = issuer.token("k1", exp=expires)
    assert verifier.verify(token).caller == "dips-arena"
    assert verifier.cached(token) == verifier.verify(token)
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    assert verifier.cached(token) is None
    with pytest.raises(AuthFailure, match="expired"):
        verifier.verify(token)


def test_a_key_withdrawn_from_the_jwks_stops_its_cached_tokens_at_the_reload(tmp_path: Path) -> None:
    issuer = Issuer()
    issuer.add_ec("k1")
    jwks = tmp_path / "jwks.json"
    verifier = _verifier(issuer, jwks)
    token = issuer.token("k1")
    verifier.verify(token)
    assert verifier.cached(token) is not None
    rotated = Issuer()
    rotated.add_ec("k2")
    rotated.write_jwks(jwks)
    verifier.keys.refresh()
    assert verifier.cached(token) is None
    with pytest.raises(AuthFailure, match="kid names no key"):
        verifier.verify(token)


def test_no_cached_answer_once_the_key_set_is_due_to_be_loaded_again(tmp_path: Path) -> None:
    issuer = Issuer()
    issuer.add_ec("k1")
    clock = Clock(0.0)
    verifier = _verifier(issuer, tmp_path / "jwks.json", keys_clock=clock)
    token = issuer.token("k1")
    verifier.verify(token)
    assert verifier.cached(token) is not None
    clock.now = 300.0
    assert verifier.cached(token) is None


def test_a_refused_or_altered_token_is_not_cached(tmp_path: Path) -> None:
    issuer = Issuer()
    issuer.add_ec("k1")
    verifier = _verifier(issuer, tmp_path / "jwks.json")
    wrong_audience = issuer.token("k1", aud="someone-else")
    for _ in range(2):
        with pytest.raises(AuthFailure, match=r"[Aa]udience"):
            verifier.verify(wrong_audience)
    assert verifier.cached(wrong_audience) is None
    token = issuer.token("k1")
    verifier.verify(token)
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[::-1]}"
    assert verifier.cached(forged) is None
    with pytest.raises(AuthFailure, match="not accepted"):
        verifier.verify(forged)
