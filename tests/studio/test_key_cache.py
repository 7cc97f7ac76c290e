"""`KeyCache`: authenticated keys kept for a moment, dropped when one is revoked."""

from __future__ import annotations

from studio.key_cache import KeyCache
from studio.roles import Caller, Role

ALICE = Caller(team_id=1, team="local", identity="api:alice", role=Role.EDITOR, key_id=2)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_known_for_its_time_to_live() -> None:
    clock = Clock()
    keys = KeyCache(ttl_s=2.0, clock=clock)
    assert keys.get("cs_a") is None
    keys.put("cs_a", ALICE, generation=keys.generation)
    assert keys.get("cs_a") is ALICE and keys.get("cs_b") is None
    clock.now += 1.9
    assert keys.get("cs_a") is ALICE
    clock.now += 0.2
    assert keys.get("cs_a") is None


def test_a_revocation_forgets_every_key_and_what_lookups_begun_before_it_found() -> None:
    keys = KeyCache()
    keys.put("cs_a", ALICE, generation=keys.generation)
    begun = keys.generation  # a lookup reads the key, then the key is revoked
    keys.clear()
    assert keys.get("cs_a") is None
    keys.put("cs_a", ALICE, generation=begun)
    assert keys.get("cs_a") is None
    keys.put("cs_a", ALICE, generation=keys.generation)
    assert keys.get("cs_a") is ALICE


def test_at_most_size_keys_the_oldest_go_first() -> None:
    keys = KeyCache(size=2)
    for key in ("cs_a", "cs_b", "cs_c"):
        keys.put(key, ALICE, generation=keys.generation)
    assert [keys.get(k) for k in ("cs_a", "cs_b", "cs_c")] == [None, ALICE, ALICE]
