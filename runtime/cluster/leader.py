"""Which process runs the leader-only work (the scheduler's due work, pollers, housekeeping).

With SQLite one process serves the data folder, so it is always the leader (`LocalLeadership`).
With PostgreSQL several `serve` processes may share the database: the leader is the one holding
a session-level advisory lock on a connection of its own (`PostgresLeadership`). The lock lives
exactly as long as that connection, so when the leader dies (or its connection does), the
server lets it go and the next process to ask takes it. One `Leadership` per process, asked by
`leader_work.LeaderWork` on a short period. Exactly-once does not rest on this (the unique
`schedule_run` row, the inbox's dedupe key do); leadership keeps the others from doing the same
work for nothing and from racing each other.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

# pg_try_advisory_lock's key for the leader (any constant the project owns).
LEADER_LOCK = 0x5C4ED01E
# A connection that does not answer within this is taken as lost (a network that drops packets
# never closes it): the leader must stop acting as one before the server lets the lock go.
ASK_TIMEOUT_S = 5.0


class Leadership(Protocol):
    """Whether this process is the cluster's leader."""

    @property
    def leader(self) -> bool:
        """What the last `check` found."""
        ...

    async def check(self) -> bool:
        """Become (or stay) the leader if possible; whether this process is it now."""
        ...

    async def release(self) -> None:
        """Let go (shutdown): another process may lead."""
        ...


class LocalLeadership:
    """One process, always the leader (SQLite; tests)."""

    @property
    def leader(self) -> bool:
        return True

    async def check(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class PostgresLeadership:
    """The leader holds `pg_try_advisory_lock(LEADER_LOCK)` on a dedicated connection (not from
    the service's pool, which recycles connections). Each `check` asks that connection: a
    failure means the lock is gone with it, so this process is no longer the leader; it then
    tries again on a fresh connection. `worker` names that connection (`application_name`), so
    a follower's connection also says the worker is alive (`presence`)."""

    def __init__(self, url: str, *, worker: str | None = None, key: int = LEADER_LOCK) -> None:
        self.key = key
        args = {"server_settings": {"application_name": worker}} if worker else {}
        self._engine: AsyncEngine = create_async_engine(url, poolclass=NullPool, connect_args=args)
        self._conn: AsyncConnection | None = None
        self._leader = False
        self._asking = asyncio.Lock()  # one statement at a time on the connection

    @property
    def leader(self) -> bool:
        return self._leader

    async def check(self) -> bool:
        async with self._asking:
            return await self._check()

    async def _check(self) -> bool:
        was = self._leader
        if self._leader:
            try:
                await asyncio.wait_for(self._ping(), ASK_TIMEOUT_S)
            except Exception as exc:
                logger.warning("the leader lock was lost: %s", exc)
                await self._drop()
        if not self._leader:
            self._leader = await self._acquire()
        if self._leader != was:
            state = "is" if self._leader else "is no longer"
            logger.info("this process %s the leader", state)
        return self._leader

    async def _ping(self) -> None:
        assert self._conn is not None
        await self._conn.execute(text("SELECT 1"))
        await self._conn.commit()

    async def _acquire(self) -> bool:
        try:
            got = await asyncio.wait_for(self._try_lock(), ASK_TIMEOUT_S)
        except Exception as exc:
            logger.warning("could not ask for the leader lock: %s", exc)
            await self._drop()
            return False
        return got

    async def _try_lock(self) -> bool:
        if self._conn is None:
            self._conn = await self._engine.connect()
        got = (
            await self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
        ).scalar()
        await self._conn.commit()  # the lock is the session's: no transaction stays open
        return bool(got)

    async def _drop(self) -> None:
        self._leader = False
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()
                await conn.close()
            except Exception:  # the connection is gone already
                logger.debug("closing a lost leader connection failed", exc_info=True)

    async def release(self) -> None:
        async with self._asking:
            await self._release()

    async def _release(self) -> None:
        if self._conn is not None and self._leader:
            try:
                await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                await self._conn.commit()
            except Exception:
                logger.debug("unlocking failed (the connection closes anyway)", exc_info=True)
        self._leader = False
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        await self._engine.dispose()
