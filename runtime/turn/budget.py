"""The budget step: a bot's monthly cost budget and its per-user rate limit, for live turns only
(`/try` and tests are never limited), as the spec's `budget` says. A bot asked by another bot
(`depth` > 0) is not limited: its answer is part of the asking bot's turn, and cost.

The month's spend (calendar month, UTC) is read from the messages table once per bot, then kept
in memory: each turn's cost is added as it finishes, and the total is read again every
`refresh_s` (so other workers' turns count too) and when the month changes. The hot path makes
no query. Turns running at the same moment may each pass just below the budget, so a bot can
overshoot it by the cost of its concurrent turns.

The rate limit is a sliding window of one minute per bot and end user (channel and user id), in
memory (per process).
Refused messages do not count towards it.

The bot's owners are told when the spend reaches 80% and 100% of the budget, once each per
month: a `budget_notice` row is claimed first (a unique constraint), so a restart or another
worker never tells twice. The telling itself is the `BudgetNotifier`'s (the Studio's).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from runtime.pipeline import TurnContext, TurnOutput
from runtime.turn.chain import Handler
from runtime.turn.guardrails import refusal
from storage import budget as budget_store
from storage.database import Database
from storage.tables import utcnow

logger = logging.getLogger(__name__)

OVER_BUDGET_REPLY = (
    "This assistant has reached its limit for this month. Please try again next month, or "
    "contact the people who run it."
)
TOO_FAST_REPLY = "You're sending messages too fast; please wait a moment."
LEVELS = (80, 100)  # percent of the monthly budget at which the owners are told
REFRESH_S = 300.0
WINDOW_S = 60.0


class BudgetNotifier(Protocol):
    """Tells a bot's owners that its spend reached `percent` of its monthly budget (USD)."""

    async def budget_reached(
        self, *, bot_id: int, percent: int, spent: float, budget: float
    ) -> None: ...


def month_of(at: datetime) -> str:
    """The calendar month (UTC) of `at`, as `YYYY-MM`."""
    return at.astimezone(UTC).strftime("%Y-%m")


def month_start(at: datetime) -> datetime:
    utc = at.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


@dataclass(slots=True)
class _Tally:
    month: str
    spent: float
    read_at: float  # monotonic seconds


class MonthlySpend:
    """This month's live spend per bot: read once, kept as a running total, read again every
    `refresh_s` seconds and at the turn of the month."""

    def __init__(
        self,
        *,
        db: Database,
        refresh_s: float = REFRESH_S,
        now: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.refresh_s = refresh_s
        self._now = now
        self._monotonic = monotonic
        self._tallies: dict[int, _Tally] = {}
        self._reading: dict[int, asyncio.Lock] = {}

    async def spent(self, bot_id: int) -> tuple[str, float]:
        """(the month, what the bot spent in it so far)."""
        month = month_of(self._now())
        tally = self._tallies.get(bot_id)
        if tally is None or self._stale(tally, month):
            tally = await self._read(bot_id, month)
        return tally.month, tally.spent

    def add(self, bot_id: int, cost: float) -> None:
        """A finished turn's cost (before it is stored: the next read includes it)."""
        tally = self._tallies.get(bot_id)
        if tally is not None:
            tally.spent += cost

    def _stale(self, tally: _Tally, month: str) -> bool:
        return tally.month != month or self._monotonic() - tally.read_at >= self.refresh_s

    async def _read(self, bot_id: int, month: str) -> _Tally:
        lock = self._reading.setdefault(bot_id, asyncio.Lock())
        async with lock:  # concurrent turns of one bot wait for one read
            tally = self._tallies.get(bot_id)
            if tally is not None and not self._stale(tally, month):
                return tally
            since = month_start(self._now())
            async with self.db.read_conn() as conn:
                spent = await budget_store.spent_since(conn, bot_id, since)
            tally = _Tally(month=month, spent=spent, read_at=self._monotonic())
            self._tallies[bot_id] = tally
            return tally


class UserRate:
    """Messages per end user in a sliding window of a minute, in memory; idle users are
    forgotten once a minute."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._hits: dict[tuple[int, str, str], deque[float]] = {}
        self._swept = monotonic()

    def allow(self, key: tuple[int, str, str], limit: int) -> bool:
        """True (and counted) when `key` sent fewer than `limit` messages in the window."""
        now = self._monotonic()
        if now - self._swept >= WINDOW_S:
            self._sweep(now)
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        while hits and now - hits[0] >= WINDOW_S:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        return True

    def _sweep(self, now: float) -> None:
        self._swept = now
        idle = [key for key, hits in self._hits.items() if not hits or now - hits[-1] >= WINDOW_S]
        for key in idle:
            del self._hits[key]


class BudgetStep:
    """Refuses live turns over the bot's monthly budget or its per-user rate, and tells the
    owners at 80% and 100% of the budget (through `notifier`, once each per month)."""

    def __init__(
        self,
        *,
        db: Database,
        notifier: BudgetNotifier,
        refresh_s: float = REFRESH_S,
        now: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.notifier = notifier
        self.spend = MonthlySpend(db=db, refresh_s=refresh_s, now=now, monotonic=monotonic)
        self.rate = UserRate(monotonic=monotonic)
        self._told: set[tuple[int, str, int]] = set()  # (bot, month, level) claimed already

    async def __call__(self, ctx: TurnContext, call_next: Handler) -> TurnOutput:
        limits = ctx.spec.budget
        bot_id = ctx.bot_id
        if ctx.mode != "live" or bot_id is None or ctx.depth:  # an asked bot: the asker pays
            return await call_next(ctx)
        per_minute, monthly = limits.per_user_per_minute, limits.monthly_usd
        if per_minute is None and monthly is None:
            return await call_next(ctx)
        person = (bot_id, ctx.channel, ctx.user)
        if per_minute is not None and not self.rate.allow(person, per_minute):
            return refusal(TOO_FAST_REPLY, "rate_limit")
        if monthly is None:
            return await call_next(ctx)
        month, spent = await self.spend.spent(bot_id)
        if spent >= monthly:
            await self._tell(bot_id, month, spent, monthly)
            return refusal(OVER_BUDGET_REPLY, "budget")
        output = await call_next(ctx)
        cost = output.usage.cost_usd
        if cost:
            self.spend.add(bot_id, cost)
            await self._tell(bot_id, month, spent + cost, monthly)
        return output

    async def _tell(self, bot_id: int, month: str, spent: float, budget: float) -> None:
        """Tell the owners of the highest level reached, unless they were told already; a lower
        level passed at the same time is claimed too (never told after a higher one). A failure
        here is logged: it never fails the end user's turn."""
        reached = [level for level in LEVELS if spent >= budget * level / 100]
        fresh = [level for level in reached if (bot_id, month, level) not in self._told]
        if not fresh:
            return
        try:
            claimed = []
            for level in fresh:
                self._told.add((bot_id, month, level))
                if await self._claim(bot_id, month, level):
                    claimed.append(level)
            if claimed and max(claimed) == max(reached):
                await self.notifier.budget_reached(
                    bot_id=bot_id, percent=max(claimed), spent=spent, budget=budget
                )
        except Exception:
            logger.exception("telling the owners about the budget failed", extra={"bot": bot_id})

    async def _claim(self, bot_id: int, month: str, level: int) -> bool:
        return await self.db.run_write(
            lambda conn: budget_store.claim_notice(conn, bot_id=bot_id, month=month, level=level)
        )
