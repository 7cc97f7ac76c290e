"""`KeyCache`: authenticated keys kept for a moment, dropped when one is revoked; one lookup
for the requests that ask for a key not kept."""

from __future__ import annotations

import asyncio

import pytest

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


class Lookups:
    """A key lookup that waits until released: how many began, and what they answer."""

    def __init__(self, answer: Caller | Exception = ALICE) -> None:
        self.answer = answer
        self.begun = 0
        self.release = asyncio.Event()

    async def __call__(self) -> Caller:
        self.begun += 1
        await self.release.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_requests_with_a_key_not_kept_share_one_lookup() -> None:
    keys = KeyCache()
    lookups = Lookups()
    waiting = [asyncio.ensure_future(keys.caller("cs_a", lookups)) for _ in range(8)]
    await asyncio.sleep(0)
    lookups.release.set()
    assert await asyncio.gather(*waiting) == [ALICE] * 8
    assert lookups.begun == 1
    assert await keys.caller("cs_a", lookups) is ALICE and lookups.begun == 1  # kept


async def test_a_failed_lookup_fails_every_request_sharing_it_and_is_not_kept() -> None:
    keys = KeyCache()
    lookups = Lookups(PermissionError("invalid API key"))
    waiting = [asyncio.ensure_future(keys.caller("cs_a", lookups)) for _ in range(3)]
    await asyncio.sleep(0)
    lookups.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert [str(result) for result in results] == ["invalid API key"] * 3
    with pytest.raises(PermissionError):
        await keys.caller("cs_a", lookups)
    assert lookups.begun == 2


async def test_a_request_after_a_revocation_does_not_share_a_lookup_begun_before_it() -> None:
    keys = KeyCache()
    before, after = Lookups(), Lookups()
    first = asyncio.ensure_future(keys.caller("cs_a", before))
    await asyncio.sleep(0)
    keys.clear()
    second = asyncio.ensure_future(keys.caller("cs_a", after))
    await asyncio.sleep(0)
    before.release.set()
    after.release.set()
    assert await first is ALICE and await second is ALICE
    assert (before.begun, after.begun) == (1, 1)
    assert keys.get("cs_a") is ALICE  # what the lookup begun after the revocation found


async def test_a_request_that_goes_away_leaves_the_others_their_lookup() -> None:
    keys = KeyCache()
    lookups = Lookups()
    leaving = asyncio.ensure_future(keys.caller("cs_a", lookups))
    staying = asyncio.ensure_future(keys.caller("cs_a", lookups))
    await asyncio.sleep(0)
    leaving.cancel()
    lookups.release.set()
    assert await staying is ALICE and lookups.begun == 1
