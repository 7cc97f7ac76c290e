"""`LeaderWork`: the work only the cluster's leader does, started and stopped as leadership moves.

Each job is a coroutine factory (a poller, a housekeeping loop, a catch-up). The supervisor asks
the process's `Leadership` every `every_s`; when this process becomes the leader it starts every
job, when it stops being the leader (its lock's connection died, the database restarted) or the
service stops, it cancels them. A job runs once per term of leadership: one that returns or
fails is not started again until the next term. With SQLite the first check makes this process
the leader for good, so the jobs start at once and run until shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from runtime.cluster.leader import Leadership

logger = logging.getLogger(__name__)

# How often leadership is asked: a new leader takes over within about this of the old one's
# death (the server drops its lock as soon as its connection closes).
CHECK_EVERY_S = 2.0

Job = Callable[[], Awaitable[None]]


class LeaderWork:
    """Runs `jobs` while this process is the leader (see the module)."""

    def __init__(self, leadership: Leadership, *, every_s: float = CHECK_EVERY_S) -> None:
        self.leadership = leadership
        self.every_s = every_s
        self.jobs: dict[str, Job] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._leading = False
        self._watch: asyncio.Task[None] | None = None

    def add(self, name: str, job: Job) -> None:
        """A leader-only job (before `start`)."""
        self.jobs[name] = job

    @property
    def leading(self) -> bool:
        """Whether the jobs run here (this process leads, as last asked)."""
        return self._leading

    async def start(self) -> None:
        """Ask now (a lone process leads at once), then every `every_s` in the background."""
        await self.tick()
        self._watch = asyncio.create_task(self._watching())

    async def tick(self) -> None:
        """One check: start the jobs on becoming the leader, cancel them on losing it."""
        leader = await self.leadership.check()
        if leader and not self._leading:
            self._leading = True
            for name, job in self.jobs.items():
                task = asyncio.create_task(_run(job), name=f"leader:{name}")
                task.add_done_callback(self._ended)
                self._running[name] = task
            logger.info("leading: started %s", ", ".join(self.jobs) or "nothing")
        elif not leader and self._leading:
            await self._cancel()
            logger.info("no longer leading: stopped the leader-only work")

    async def stop(self) -> None:
        """At shutdown: no more checks, the jobs cancelled (leadership is released apart)."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        await self._cancel()

    async def _watching(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.tick()
            except Exception:  # never stop watching: the next tick may succeed
                logger.exception("checking leadership failed")

    async def _cancel(self) -> None:
        self._leading = False
        tasks, self._running = list(self._running.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @staticmethod
    def _ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed", task.get_name(), exc_info=task.exception())


async def _run(job: Job) -> None:
    await job()
