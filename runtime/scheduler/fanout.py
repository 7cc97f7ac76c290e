"""A schedule without a target: one message to each end user of the environment.

The audience is read in batches (keyset by conversation id, `BATCH` at a time), so memory stays
flat however many people there are; after each batch the run's `cursor`, `sent` and `failed` are
saved, so a fan-out interrupted (a restart, a new leader) goes on from there. The batch that was
under way is sent with `once`: a conversation that has this run's message already is skipped.
Sends are paced per deployment to what its platform allows (`Capabilities.broadcast_per_s`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Connection

from runtime.channel import ChannelRegistry, UnknownChannelError
from runtime.messages import Address
from runtime.scheduler.proactive import address_of
from runtime.scheduler.types import ProactiveError
from storage import schedules as store

logger = logging.getLogger(__name__)

BATCH = 500
CONCURRENCY = 16  # sends under way at once in a batch (each paced by its deployment)


class Pacer:
    """At most `rate` sends a second per key (a deployment), spaced evenly."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._next: dict[str, float] = {}

    async def wait(self, key: str, rate: float | None) -> None:
        if not rate:
            return
        now = self._clock()
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + 1.0 / rate
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass(slots=True)
class Tally:
    sent: int = 0
    failed: int = 0
    error: str | None = None  # the first failure's reason


# Sends to one recipient (`once`: not again where the run's message is kept already); False:
# left out on purpose (people of the team have the conversation, say). Raises ProactiveError.
Send = Callable[[store.Recipient, Address, bool], Awaitable[bool]]


class FanOut:
    """Sends one run to the audience of a set of deployments, batch after batch."""

    def __init__(
        self,
        *,
        read: Callable[[int, int], Awaitable[list[store.Recipient]]],
        save: Callable[[Callable[[Connection], object]], Awaitable[object]],
        rate_of: Callable[[str], float | None],
        pacer: Pacer,
        halted: Callable[[], bool],
        batch: int = BATCH,
    ) -> None:
        self._halted = halted
        self._read = read
        self._save = save
        self._rate_of = rate_of
        self._pacer = pacer
        self._batch = batch

    async def run(self, run: store.RunRow, send: Send, *, resumed: bool) -> Tally | None:
        """From the run's cursor to the end; `send(recipient, address, once)` raises
        ProactiveError when one cannot be reached. `resumed`: the run was under way before
        (its first batch here may have been sent in part). None: halted (shutdown, another
        leader) before the end; sends under way finish, the batch is not saved, so the next
        leader goes on from the last saved one, with `once`."""
        tally = Tally(sent=run.sent, failed=run.failed)
        cursor = run.cursor or 0
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(recipient: store.Recipient, once: bool) -> None:
            address = address_of(recipient)
            async with gate:
                await self._pacer.wait(recipient.deployment_id, self._rate_of(recipient.channel))
                if self._halted():
                    return
                try:
                    went = await send(recipient, address, once)
                except ProactiveError as exc:
                    tally.failed += 1
                    tally.error = tally.error or str(exc)
                    return
            tally.sent += int(went)

        first = True
        while True:
            recipients = await self._read(cursor, self._batch)
            if not recipients:
                return tally
            once = first and resumed
            await asyncio.gather(*(one(recipient, once) for recipient in recipients))
            if self._halted():
                return None
            first = False
            cursor = recipients[-1].conversation_id
            await self._save(
                partial(
                    store.progress,
                    run_id=run.id,
                    cursor=cursor,
                    sent=tally.sent,
                    failed=tally.failed,
                )
            )
            if len(recipients) < self._batch:
                return tally


def rate_of(channels: ChannelRegistry) -> Callable[[str], float | None]:
    """The broadcast rate of each channel kind in a registry (None where it sets none)."""

    def rate(kind: str) -> float | None:
        try:
            return channels.get(kind).capabilities.broadcast_per_s
        except UnknownChannelError:
            return None

    return rate
