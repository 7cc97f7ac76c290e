"""API keys recently authenticated, so that a busy client (the OpenAI-compatible API, the MCP
server, scripts) costs no database lookup per request.

An entry lives `ttl_s` seconds: a key revoked in this process is dropped at once (`clear`); one
revoked by another process (`python main.py apikey revoke`) stops working within `ttl_s`.
Only keys that authenticated are kept (a flood of wrong keys cannot fill it), at most `size`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

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
