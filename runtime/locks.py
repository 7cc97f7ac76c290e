"""Per-conversation locks: turns of one conversation run one at a time, others concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, runtime_checkable


def conversation_key(deployment_id: str, conversation: str) -> str:
    """The lock's key of a deployment's conversation (every holder of it names it so)."""
    return f"{deployment_id}\x00{conversation}"


class ConversationLocks(Protocol):
    """Behind an interface: one process's asyncio locks (`LocalConversationLocks`), or those
    and a PostgreSQL advisory lock when several workers share a database
    (`runtime.cluster.conversation_locks`)."""

    @property
    def shared(self) -> bool:
        """Whether other processes may hold a conversation: then the order of its messages is
        not the order its waiting turns are let in, and the runtime answers a conversation's
        pending messages oldest first under the lock (`Runtime.process`)."""
        ...

    def hold(self, key: str) -> AbstractLock:
        """Wait for the conversation, hold it while the block runs."""
        ...

    def attempt(self, key: str) -> AbstractAsyncContextManager[bool]:
        """Hold the conversation while the block runs if nobody else has it or waits for it;
        the block is told whether it does (a sweep skips what someone is answering)."""
        ...

    async def close(self) -> None:
        """Let go of what holds the locks (shutdown)."""
        ...


@runtime_checkable
class SharedConversationLocks(ConversationLocks, Protocol):
    """Locks other processes share, on connections of their own."""

    async def fetch(self, key: str, query: str, *args: object) -> list[tuple[Any, ...]]:
        """Rows of `query` (the driver's own SQL, `$1`...) read on the connection that holds
        `key`'s lock, by its holder: a statement with no pool around it, which a turn can
        afford on its hot path."""
        ...


class AbstractLock(Protocol):
    async def __aenter__(self) -> None: ...
    async def __aexit__(self, *exc: object) -> None: ...


class LocalConversationLocks:
    """asyncio locks in one process; a lock lives only while someone holds or waits for it.
    Waiting turns are let in first come, first served: the order their messages arrived."""

    shared = False

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

    @asynccontextmanager
    async def attempt(self, key: str) -> AsyncIterator[bool]:
        if key in self._locks:
            yield False
            return
        async with self._held(key):
            yield True

    async def close(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._locks)
