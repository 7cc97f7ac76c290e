"""Per-conversation locks: turns of one conversation run one at a time, others concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol


class ConversationLocks(Protocol):
    """Behind an interface so that a database advisory lock can replace it when workers multiply."""

    def hold(self, key: str) -> AbstractLock: ...


class AbstractLock(Protocol):
    async def __aenter__(self) -> None: ...
    async def __aexit__(self, *exc: object) -> None: ...


class LocalConversationLocks:
    """asyncio locks in one process; a lock lives only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def _held(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def hold(self, key: str) -> AbstractLock:
        return self._held(key)  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._locks)
