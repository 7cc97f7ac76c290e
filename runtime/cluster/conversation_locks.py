"""Per-conversation locks across workers: this process's asyncio lock, then a PostgreSQL
session-level advisory lock keyed by the conversation.

The advisory locks live on a few connections of their own (raw asyncpg, not the service's pool,
which recycles connections), each holding many conversations' locks at once; a conversation
always maps to the same connection, so its unlock runs where its lock was taken. A session lock
is held exactly as long as its connection: a worker killed mid-turn (`kill -9`) lets its
conversations go at once, and the next worker to ask takes them. Waiting is polling with
`pg_try_advisory_lock` (a blocking `pg_advisory_lock` would stall every other conversation on
the shared connection): only two workers answering the same conversation at the same moment
ever wait. The asyncio lock in front keeps a process's own turns of a conversation in order
and off the database (advisory locks are re-entrant within a session).

Chosen over a claimed-row queue (`FOR UPDATE SKIP LOCKED` on the inbox): a row lock lasts as
long as its transaction, which would stay open through the turn and, with a slow model, pin a
pooled connection per conversation in flight; here a turn costs two short statements on a shared
connection and holds no transaction open.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import asyncpg

from runtime.locks import AbstractLock, LocalConversationLocks
from storage.database import Database

logger = logging.getLogger(__name__)

# The first key of `pg_try_advisory_lock(int, int)` for conversations: apart from the single-key
# locks (the scheduler's leader) by construction, and from other users of the two-key form by value.
NAMESPACE = 0x5C0C
CONNECTIONS = 2  # lock connections per worker (a few short statements a turn: two suffice)
# A statement on a lock connection that takes longer has lost its server (a half-open
# connection): the connection is dropped, its locks with it, rather than stall every turn.
STATEMENT_TIMEOUT_S = 5.0
_FIRST_WAIT_S = 0.005
_LONGEST_WAIT_S = 0.1


def lock_id(key: str) -> int:
    """The conversation's 32-bit key (two conversations sharing one only wait for each other)."""
    digest = hashlib.blake2b(key.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class _LockSession:
    """One connection holding advisory locks; statements on it run one at a time."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._conn: Any = None
        self._busy = asyncio.Lock()
        self.epoch = 0  # grows with each new connection: locks of an older one are gone

    async def _fetch(self, query: str, key: int) -> tuple[bool, int]:
        async with self._busy:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(**self._options, timeout=STATEMENT_TIMEOUT_S)
                self.epoch += 1
            try:
                got = await self._conn.fetchval(query, NAMESPACE, key, timeout=STATEMENT_TIMEOUT_S)
                return bool(got), self.epoch
            except Exception:
                # The server ended the session (a restart, a terminated backend): asyncpg may
                # only find out now, in whatever state. Its locks are gone with it.
                logger.warning("a conversation lock connection was lost: its locks are gone")
                self._drop()
                raise

    async def fetch(self, query: str, *args: object) -> list[tuple[Any, ...]]:
        async with self._busy:
            if self._conn is None or self._conn.is_closed():
                raise ConnectionError("the lock's connection is gone: so is the lock")
            try:
                rows = await self._conn.fetch(query, *args, timeout=STATEMENT_TIMEOUT_S)
                return [tuple(row) for row in rows]
            except Exception as exc:
                if isinstance(exc, TimeoutError) or self._conn.is_closed():
                    logger.warning("a conversation lock connection was lost: its locks are gone")
                    self._drop()
                raise

    async def try_lock(self, key: int) -> int | None:
        """The epoch the lock was taken in, or None when another session holds it. A lost
        connection is replaced once; a database that does not answer raises."""
        try:
            got, epoch = await self._fetch("SELECT pg_try_advisory_lock($1, $2)", key)
        except Exception:
            got, epoch = await self._fetch("SELECT pg_try_advisory_lock($1, $2)", key)
        return epoch if got else None

    async def unlock(self, key: int, epoch: int) -> None:
        if epoch != self.epoch or self._conn is None:
            return  # taken on a connection that is gone, and the lock with it
        with contextlib.suppress(Exception):  # else it went with its connection
            await self._fetch("SELECT pg_advisory_unlock($1, $2)", key)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        async with self._busy:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()


class PostgresConversationLocks:
    """Conversation locks shared by every worker on one PostgreSQL database."""

    shared = True

    def __init__(self, db: Database, *, connections: int = CONNECTIONS) -> None:
        self._local = LocalConversationLocks()
        self._sessions = [_LockSession(db.asyncpg_options()) for _ in range(connections)]
        self._unlocking: set[asyncio.Future[None]] = set()

    def _session(self, key: int) -> _LockSession:
        return self._sessions[key % len(self._sessions)]

    async def _take(self, session: _LockSession, key: int) -> int | None:
        """`try_lock`, run whole even when the caller is cancelled (a statement cut short
        leaves its connection unusable, and every lock on it lost); a lock taken for a caller
        that has gone is let go."""
        taking = asyncio.ensure_future(session.try_lock(key))
        try:
            return await asyncio.shield(taking)
        except asyncio.CancelledError:
            taking.add_done_callback(partial(self._let_go, session, key))
            raise

    def _let_go(self, session: _LockSession, key: int, taking: asyncio.Future[int | None]) -> None:
        if taking.cancelled() or taking.exception() is not None:
            return
        epoch = taking.result()
        if epoch is not None:
            unlocking = asyncio.ensure_future(session.unlock(key, epoch))
            self._unlocking.add(unlocking)
            unlocking.add_done_callback(self._unlocking.discard)

    async def _give_back(self, session: _LockSession, key: int, epoch: int) -> None:
        await asyncio.shield(session.unlock(key, epoch))

    @asynccontextmanager
    async def _held(self, key: str) -> AsyncIterator[None]:
        async with self._local.hold(key):
            pg_key = lock_id(key)
            session = self._session(pg_key)
            wait = _FIRST_WAIT_S
            while (epoch := await self._take(session, pg_key)) is None:
                await asyncio.sleep(wait)  # another worker answers it: its turn is short
                wait = min(wait * 2, _LONGEST_WAIT_S)
            try:
                yield
            finally:
                await self._give_back(session, pg_key, epoch)

    def hold(self, key: str) -> AbstractLock:
        return self._held(key)  # type: ignore[return-value]

    @asynccontextmanager
    async def attempt(self, key: str) -> AsyncIterator[bool]:
        async with self._local.attempt(key) as mine:
            if not mine:
                yield False
                return
            pg_key = lock_id(key)
            session = self._session(pg_key)
            epoch = await self._take(session, pg_key)
            if epoch is None:
                yield False
                return
            try:
                yield True
            finally:
                await self._give_back(session, pg_key, epoch)

    async def fetch(self, key: str, query: str, *args: object) -> list[tuple[Any, ...]]:
        return await asyncio.shield(self._session(lock_id(key)).fetch(query, *args))

    async def close(self) -> None:
        """Let every lock go (shutdown; the connections' end would do it too)."""
        await asyncio.gather(*self._unlocking, return_exceptions=True)
        await asyncio.gather(*(session.close() for session in self._sessions))
