"""API keys recently authenticated, so that a busy client (the OpenAI-compatible API, the MCP
server, scripts) costs no database lookup per request.

An entry lives `ttl_s` seconds: a key revoked in this process is dropped at once (`clear`); one
revoked by another process (`python main.py apikey revoke`) stops working within `ttl_s`.
Only keys that authenticated are kept (a flood of wrong keys cannot fill it), at most `size`.

Requests with a key that is not kept share one lookup (`caller`): when an entry expires under
load, every request in flight would otherwise look the key up itself (a busy API client's 16 at
once, each lookup ~1.6 ms of CPU).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from storage.teams import hash_key
from studio.roles import Caller

TTL_S = 2.0
SIZE = 1_000


class KeyCache:
    def __init__(
        self,
        *,
        ttl_s: float = TTL_S,
        size: int = SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self.clock = clock
        self._callers: OrderedDict[str, tuple[float, Caller]] = OrderedDict()
        self.generation = 0  # moves on each `clear`
        # Lookups under way, by key digest and the generation they began in: one begun before
        # a revocation is never shared with a request that came after it.
        self._lookups: dict[tuple[str, int], asyncio.Future[Caller]] = {}

    async def caller(self, key: str, look_up: Callable[[], Awaitable[Caller]]) -> Caller:
        """The caller behind `key`: kept, or found by `look_up` (which raises for a key that
        does not authenticate), one lookup for all the requests that ask meanwhile."""
        known = self.get(key)
        if known is not None:
            return known
        where = (hash_key(key), self.generation)
        lookup = self._lookups.get(where)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(key, where[1], look_up))
            self._lookups[where] = lookup
            # However it ends (cancelled before it began, too), the next request asks anew.
            lookup.add_done_callback(lambda _: self._lookups.pop(where, None))
        # A request that goes away does not cancel the others' lookup.
        return await asyncio.shield(lookup)

    async def _look_up(
        self, key: str, generation: int, look_up: Callable[[], Awaitable[Caller]]
    ) -> Caller:
        found = await look_up()
        self.put(key, found, generation=generation)
        return found

    def get(self, key: str) -> Caller | None:
        """The caller behind `key`, if it authenticated less than `ttl_s` ago."""
        digest = hash_key(key)
        found = self._callers.get(digest)
        if found is None:
            return None
        if found[0] <= self.clock():
            del self._callers[digest]
            return None
        return found[1]

    def put(self, key: str, caller: Caller, *, generation: int) -> None:
        """Keep what a lookup begun at `generation` found, unless a key was revoked since
        (the lookup may have read the key before its revocation was committed)."""
        if generation != self.generation:
            return
        digest = hash_key(key)
        self._callers[digest] = (self.clock() + self.ttl_s, caller)
        self._callers.move_to_end(digest)
        while len(self._callers) > self.size:
            self._callers.popitem(last=False)

    def clear(self) -> None:
        """A key was revoked: every caller is looked up anew."""
        self._callers.clear()
        self.generation += 1
