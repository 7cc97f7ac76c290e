"""A schedule without a target: one message to each end user of the environment.

The audience is read in batches (keyset by conversation id, `BATCH` at a time), so memory stays
flat however many people there are; after each batch the run's `cursor`, `sent` and `failed` are
saved with its lease (`Lease`), so a fan-out interrupted (a restart, a new leader) goes on from
there. Each recipient's delivery row (`storage.schedules.deliver_once`) keeps the batch that was
under way from reaching anyone twice. Sends are paced per deployment to what its platform allows
(`Capabilities.broadcast_per_s`). A pause stops it between batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from runtime.channel import ChannelRegistry, UnknownChannelError
from runtime.messages import Address
from runtime.scheduler.proactive import address_of
from runtime.scheduler.types import LeftOutError, ProactiveError
from storage import schedules as store
from storage.batch import WriteBatcher

logger = logging.getLogger(__name__)

BATCH = 500
CONCURRENCY = 16  # sends under way at once in a batch (each paced by its deployment)
PAUSED = "paused"


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
    skipped: str | None = None  # why it stopped (or never went) on purpose: paused, say


class Lease:
    """This process's hold on a run `sending` (`storage.schedules.LEASE`): renewed with each
    batch's progress and, during a long batch (a slow platform), every quarter of the lease.
    `lost`: another process took the run over; this one stops sending it."""

    def __init__(
        self,
        *,
        run_id: int,
        owner: str,
        writes: WriteBatcher,
        clock: Callable[[], datetime],
        since: datetime,
    ) -> None:
        self.run_id = run_id
        self.owner = owner
        self.lost = False
        self._writes = writes
        self._clock = clock
        self._renewed = since
        self._renewing = False

    def _until(self) -> datetime:
        # Never earlier than the last renewal's (a clock set back, or tests' own instants).
        self._renewed = max(self._renewed, self._clock())
        return self._renewed + store.LEASE

    async def progress(self, *, cursor: int, sent: int, failed: int) -> bool:
        saved = await self._writes.run(
            partial(
                store.progress,
                run_id=self.run_id,
                owner=self.owner,
                cursor=cursor,
                sent=sent,
                failed=failed,
                lease_until=self._until(),
            )
        )
        self.lost = self.lost or not saved
        return saved

    async def keep(self) -> None:
        """Renew when a quarter of the lease has gone by since the last renewal."""
        if self._renewing or self._clock() - self._renewed < store.LEASE / 4:
            return
        self._renewing = True
        try:
            kept = await self._writes.run(
                partial(
                    store.renew, run_id=self.run_id, owner=self.owner, lease_until=self._until()
                )
            )
        finally:
            self._renewing = False
        self.lost = self.lost or not kept

    async def release(self) -> None:
        await self._writes.run(partial(store.release, run_id=self.run_id, owner=self.owner))

    async def finish(self, *, status: str, tally: Tally, error: str | None) -> bool:
        return await self._writes.run(
            partial(
                store.finish_run,
                run_id=self.run_id,
                owner=self.owner,
                status=status,
                sent=tally.sent,
                failed=tally.failed,
                error=error,
                now=self._clock(),
            )
        )


# Sends to one recipient; False: this run reached them before (a batch sent again after a
# take-over, a new conversation of someone who had it). Raises LeftOutError (people of the team
# have the conversation), ProactiveError (it cannot be reached).
Send = Callable[[store.Recipient, Address], Awaitable[bool]]


class FanOut:
    """Sends one run to the audience of a set of deployments, batch after batch."""

    def __init__(
        self,
        *,
        read: Callable[[int, int], Awaitable[list[store.Recipient]]],
        lease: Lease,
        paused: Callable[[], Awaitable[bool]],
        rate_of: Callable[[str], float | None],
        pacer: Pacer,
        halted: Callable[[], bool],
        batch: int = BATCH,
    ) -> None:
        self._halted = halted
        self._read = read
        self._lease = lease
        self._paused = paused
        self._rate_of = rate_of
        self._pacer = pacer
        self._batch = batch

    def _stopped(self) -> bool:
        return self._halted() or self._lease.lost

    async def run(self, run: store.RunRow, send: Send, *, resumed: bool) -> Tally | None:
        """From the run's cursor to the end (or a pause). `resumed`: taken over from another
        sender, whose last batch was not counted, so whom it reached count as sent here. None:
        halted (shutdown, another leader) or taken over before the end; sends under way
        finish, the batch is not saved, so the next sender goes on from the last saved one
        (delivery rows skip whom that batch reached)."""
        tally = Tally(sent=run.sent, failed=run.failed)
        cursor = run.cursor or 0
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(recipient: store.Recipient, again: bool) -> None:
            async with gate:
                await self._pacer.wait(recipient.deployment_id, self._rate_of(recipient.channel))
                if self._stopped():
                    return
                try:
                    went = await send(recipient, address_of(recipient)) or again
                except LeftOutError:
                    went = False
                except ProactiveError as exc:
                    tally.failed += 1
                    tally.error = tally.error or str(exc)
                    return
                except Exception as exc:  # one recipient's failure never stops the others
                    logger.exception("a scheduled message failed", extra={"run": run.id})
                    tally.failed += 1
                    tally.error = tally.error or f"internal: {type(exc).__name__}"
                    return
                await self._lease.keep()
            tally.sent += int(went)

        again = resumed
        while True:
            if await self._paused():
                tally.skipped = PAUSED
                return tally
            recipients = await self._read(cursor, self._batch)
            if not recipients:
                return tally
            await asyncio.gather(*(one(recipient, again) for recipient in recipients))
            if self._stopped():
                return None
            again = False
            cursor = recipients[-1].conversation_id
            if not await self._lease.progress(cursor=cursor, sent=tally.sent, failed=tally.failed):
                logger.warning("a fan-out was taken over by another process", extra={"run": run.id})
                return None
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
