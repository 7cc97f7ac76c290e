"""Follow-ups after inactivity: a conversation's armed follow-ups (`storage.schedules.arm`,
in the turn's transaction) are sent when due, `times` times, `after_minutes` apart.

The end user's next message cancels them as it is recorded (`Runtime.accept`). Each sending is
claimed by a conditional update of its row under the conversation's lock, so a reply that
re-armed the row meanwhile, or another process, wins; an open handoff, a deployment gone, or a
version that no longer has the follow-up drops the row instead. So does a follow-up that fell
due before this process started sending them and is later than its own `after_minutes` (the
service was down: a nudge days late would come out of nowhere), and one that failed
unexpectedly (it would come back every pass and hold up the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from runtime.messages import Address
from runtime.metrics import SCHEDULE_FIRES
from runtime.runtime import NotLiveError, Runtime, UnknownDeploymentError
from runtime.scheduler.proactive import Place, Proactive
from runtime.scheduler.types import ProactiveError
from storage import schedules as store

logger = logging.getLogger(__name__)

BATCH = 500
CONCURRENCY = 16
# How a due follow-up went: sent, dropped on purpose, or not sent (None: not this one's to send).
Outcome = Literal["sent", "skipped", "failed"] | None


class FollowUps:
    def __init__(
        self,
        runtime: Runtime,
        proactive: Proactive,
        *,
        halted: Callable[[], bool],
        batch: int = BATCH,
    ) -> None:
        self.runtime = runtime
        self.proactive = proactive
        self.halted = halted  # stopping, or no longer the leader: no new sends
        self.batch = batch
        self._up_since: datetime | None = None  # this process's first pass

    async def run_due(self, now: datetime) -> int:
        """Send every follow-up due at `now`; how many went out."""
        if self._up_since is None:
            self._up_since = now
        gate = asyncio.Semaphore(CONCURRENCY)
        seen: set[tuple[int, int]] = set()
        sent = 0

        async def one(row: store.FollowUpRow) -> bool:
            async with gate:
                if self.halted():
                    return False
                try:
                    outcome = await self._fire(row, now)
                except Exception:
                    logger.exception("a follow-up failed; dropped", extra={"bot": row.bot_id})
                    outcome = "failed"
                    with contextlib.suppress(Exception):  # the database is down: the next pass
                        await self._drop(row)
                if outcome is not None:
                    SCHEDULE_FIRES.labels("followup", outcome).inc()
                return outcome == "sent"

        while True:
            async with self.runtime.db.read_conn() as conn:
                rows = await store.due_followups(conn, now=now, limit=self.batch)
            fresh = [row for row in rows if (row.id, row.sent) not in seen]
            if not fresh:  # nothing due, or only rows that could not be handled just now
                return sent
            seen.update((row.id, row.sent) for row in fresh)
            sent += sum(await asyncio.gather(*(one(row) for row in fresh)))

    async def _fire(self, row: store.FollowUpRow, now: datetime) -> Outcome:
        runtime = self.runtime
        missed = self._up_since is not None and row.due_at < self._up_since
        if missed and now - row.due_at > timedelta(minutes=row.after_minutes):
            logger.info(
                "a follow-up %s was due at %s: too late now, dropped",
                row.followup_id,
                row.due_at.isoformat(timespec="minutes"),
                extra={"bot": row.bot_id},
            )
            await self._drop(row)
            return "skipped"
        try:
            target = await runtime.target(row.deployment_id)
            live = await runtime.live_version(target.bot_id, target.env)
        except (UnknownDeploymentError, NotLiveError):
            await self._drop(row)
            return "skipped"
        if not any(item.id == row.followup_id for item in live.spec.followups):
            await self._drop(row)  # the version running now has no such follow-up
            return "skipped"
        place = Place(target, Address.model_validate(row.address))
        async with runtime.locks.hold(place.lock_key):
            if runtime.handoffs.is_open(row.deployment_id, row.conversation_key):
                await self._drop(row)  # people of the team have the conversation
                return "skipped"
            if not await runtime.writes.run(lambda conn: store.claim_followup(conn, row, now=now)):
                return None  # the end user spoke meanwhile, or another process sent it
            try:
                await self.proactive.send_locked(
                    place, row.message, live=live, origin="followup", ident=row.followup_id
                )
            except ProactiveError as exc:
                logger.warning("a follow-up was not sent: %s", exc, extra={"bot": row.bot_id})
                return "failed"
        return "sent"

    async def _drop(self, row: store.FollowUpRow) -> None:
        await self.runtime.writes.run(lambda conn: store.drop_followup(conn, row.id))
