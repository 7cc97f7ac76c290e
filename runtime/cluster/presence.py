"""Which workers are gone, so that the leader can fail the work they left `running`.

A test or evaluation run belongs to the worker that runs it (`Database.worker` is recorded on
the run); only the runs of a worker that is gone may be marked failed, never those another live
worker is still running. With SQLite this process is alone: every other worker is gone
(`LocalPresence`). With PostgreSQL every connection of a worker carries its name as
`application_name` (`storage.database`), and a worker is alive while the server lists one
(`PostgresPresence`): its leadership connection, asked every couple of seconds, is always open.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Protocol

from sqlalchemy import bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.database import Database

# How long a worker must be missing before it is taken as gone: longer than a live worker takes
# to open its leadership connection again after a network blip or a database restart.
GONE_AFTER_S = 15.0
FORGET_AFTER_S = 86_400.0  # a gone worker's last sighting is kept this long (then asked afresh)


class Presence(Protocol):
    """Which of some workers are gone for good."""

    async def gone(self, workers: Collection[str]) -> set[str]:
        """Those of `workers` that no longer run (their runs can be failed)."""
        ...


class LocalPresence:
    """One process on the data: any other worker named on a run was a process that stopped."""

    def __init__(self, worker: str) -> None:
        self.worker = worker

    async def gone(self, workers: Collection[str]) -> set[str]:
        return set(workers) - {self.worker}


class PostgresPresence:
    """A worker is alive while a connection named after it is open on the server. One missing
    is gone only once it has been missing for `after_s` (asked at least twice): a live worker
    whose connections a restart closed opens them again meanwhile. What each worker was last
    seen as is kept whoever asks (the test runs' sweep, the evaluations'), until it is seen
    again or for `FORGET_AFTER_S`."""

    def __init__(
        self,
        db: Database,
        *,
        after_s: float = GONE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.after_s = after_s
        self.clock = clock
        self._missing_since: dict[str, float] = {}

    async def gone(self, workers: Collection[str]) -> set[str]:
        asked = set(workers)
        if not asked:
            return set()
        query = text(
            "SELECT DISTINCT application_name FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name IN :names"
        ).bindparams(bindparam("names", expanding=True))
        async with self.db.read_conn() as conn:
            alive = set((await conn.execute(query, {"names": sorted(asked)})).scalars())
        now = self.clock()
        for worker in alive:
            self._missing_since.pop(worker, None)
        for worker, since in list(self._missing_since.items()):
            if now - since > FORGET_AFTER_S:
                del self._missing_since[worker]
        missing = asked - alive
        for worker in missing:
            self._missing_since.setdefault(worker, now)
        return {w for w in missing if now - self._missing_since[w] >= self.after_s}


class Runs(Protocol):
    """The runs (tests, evaluations) whose worker is recorded."""

    async def running_workers(self) -> set[str | None]: ...

    async def fail_unfinished(self, why: str, *, workers: Collection[str | None]) -> int: ...


async def fail_orphaned(
    db: Database, runs: Callable[[AsyncSession], Runs], presence: Presence, *, why: str
) -> int:
    """Mark failed (`why`) the runs left running by workers that are gone, or by none named (a
    version that did not record it); those of live workers go on. How many."""
    async with db.read() as session:
        workers = await runs(session).running_workers()
    named = {worker for worker in workers if worker is not None}
    gone: set[str | None] = {None, *await presence.gone(named)}
    if not workers & gone:
        return 0
    async with db.write() as session:
        return await runs(session).fail_unfinished(why, workers=gone)
