"""The backlog a restart finds (replies stored but not sent, messages accepted but not answered),
worked off in the background so that the service serves at once.

One queue per conversation, in the order its rows were written; conversations run concurrently,
at most `concurrency` jobs at a time. A message that arrives for a conversation whose backlog is
not finished joins the end of its queue: it never overtakes the backlog. Stopping (shutdown)
starts no further job; what is left stays pending in the database for the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from runtime.messages import Address

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]
_Key = tuple[str, str]


def _key(address: Address) -> _Key:
    return address.deployment_id, address.conversation


class Backlog:
    def __init__(self, *, concurrency: int) -> None:
        self._queues: dict[_Key, deque[Job]] = {}
        self._gate = asyncio.Semaphore(concurrency)
        self._workers: set[asyncio.Task[None]] = set()
        self._stopping = False

    def start(self, jobs: Iterable[tuple[Address, Job]]) -> None:
        """Queue `jobs` per conversation, in order, and start working each conversation off."""
        for address, job in jobs:
            key = _key(address)
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
                worker = asyncio.create_task(self._work(key, queue))
                self._workers.add(worker)
                worker.add_done_callback(self._workers.discard)
            queue.append(job)

    def join(self, address: Address, job: Job) -> bool:
        """Queue `job` behind its conversation's backlog; False when there is none (run it)."""
        queue = self._queues.get(_key(address))
        if queue is None:
            return False
        queue.append(job)
        return True

    def __len__(self) -> int:
        """Conversations with a backlog (0 but for a while after a restart)."""
        return len(self._queues)

    async def wait(self) -> None:
        """Until the backlog is worked off (or stopped)."""
        while self._workers:
            await asyncio.gather(*list(self._workers), return_exceptions=True)

    async def stop(self) -> None:
        """Start no further job and wait for the running ones (shutdown)."""
        self._stopping = True
        await self.wait()

    async def _work(self, key: _Key, queue: deque[Job]) -> None:
        # Between the last job's end and forgetting the queue nothing awaits, so a message that
        # joins meanwhile is either run here or spawned by the caller, never lost.
        while queue and not self._stopping:
            async with self._gate:
                if self._stopping:
                    break
                job = queue.popleft()
                try:
                    await job()
                except Exception:  # the row stays pending: the next start tries it again
                    logger.exception("a backlog job failed", extra={"conversation": key[1]})
        if self._stopping:
            return  # the queue stays: later messages of this conversation wait for the next start
        del self._queues[key]
        if not self._queues:
            logger.info("the backlog is worked off")
