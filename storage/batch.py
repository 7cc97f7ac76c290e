"""Group commit: concurrent small writes share one transaction.

Each write is a job: a plain function of a Core `Connection` (see `Database.run_write`). While
one batch commits, new jobs queue and go in the next one, so a lone write commits at once and a
busy service pays one commit for many turns. If a batch fails, its jobs are re-run one by one,
each in its own transaction, so one bad job never takes the others down and every job still ends
committed or failed on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from storage.database import Database

T = TypeVar("T")
Job = Callable[[Connection], Any]


class WriteBatcher:
    def __init__(self, db: Database, *, max_batch: int = 64) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[tuple[Job, asyncio.Future[Any]]] = []
        self._busy = False
        self._worker: asyncio.Task[None] | None = None

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Run `job` in a write transaction (possibly shared); returns once it is committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((job, future))
        if not self._busy:
            # Nobody is writing: commit this batch here (no task switch for a lone write),
            # then leave whatever queued meanwhile to a worker.
            self._busy = True
            try:
                while not future.done():
                    await self._batch()
            finally:
                self._hand_over()
        return await future

    async def flush(self) -> None:
        """Wait until every queued write is committed (shutdown)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    def _hand_over(self) -> None:
        if self._queue:
            self._worker = asyncio.create_task(self._drain())
        else:
            self._busy = False

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._batch()
        finally:
            self._busy = False
            if self._queue:  # arrived while the last batch was being resolved
                self._busy = True
                self._hand_over()

    async def _batch(self) -> None:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        jobs = [job for job, _ in batch]
        try:
            results = await self.db.run_write(lambda conn: [job(conn) for job in jobs])
        except Exception:
            for job, future in batch:
                await self._alone(job, future)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _alone(self, job: Job, future: asyncio.Future[Any]) -> None:
        try:
            result = await self.db.run_write(job)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)
