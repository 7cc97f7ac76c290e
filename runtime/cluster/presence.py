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

from storage.database import Database

# How long a worker must be missing before it is taken as gone: longer than a live worker takes
# to open its leadership connection again after a network blip or a database restart.
GONE_AFTER_S = 15.0


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
    whose connections a restart closed opens them again meanwhile."""

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
            self._missing_since.clear()
            return set()
        query = text(
            "SELECT DISTINCT application_name FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name IN :names"
        ).bindparams(bindparam("names", expanding=True))
        async with self.db.read_conn() as conn:
            alive = set((await conn.execute(query, {"names": sorted(asked)})).scalars())
        now = self.clock()
        missing = asked - alive
        self._missing_since = {w: self._missing_since.get(w, now) for w in missing}
        return {w for w, since in self._missing_since.items() if now - since >= self.after_s}
