"""Online evaluation: a sample of each bot's live answers is graded by the judge in the
background, and low grades are flagged for `/review`.

The evaluator is a `Runtime.turn_listeners` listener, so it is told of every answered live turn
and must return at once: a bot without online evaluation costs one dict lookup (and a clock read);
a sampled answer is queued for a few workers. When the queue is full the answer is dropped and
counted (`studio_online_dropped_total`), never waited for. Settings (`online_eval`) are read for
all bots at once on first use and again when 60 s old, so another process's change is seen; this
process's own changes apply at once (`changed`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from runtime.evaluation.judge import judge
from runtime.llm import LlmGateway
from runtime.metrics import ONLINE_DROPPED, ONLINE_JUDGED
from storage import feedback as feedback_store
from storage.database import Database
from storage.feedback import OnlineSetting

if TYPE_CHECKING:
    from runtime.runtime import LiveTurn

logger = logging.getLogger(__name__)

CONCURRENCY = 4  # answers judged at once
QUEUE_LIMIT = 500  # sampled answers waiting for a worker; more are dropped (and counted)
REFRESH_S = 60.0  # settings older than this are read again
FLAGGED_AT = 0.25  # a grade of 1 or 2 out of 5


@dataclass(frozen=True, slots=True)
class _Sampled:
    turn: LiveTurn
    rubric: str


class OnlineEvaluator:
    """Samples live answers (`heard`) and has the judge grade them in the background; `drain`
    waits for them (or, at shutdown, gives up after a grace period)."""

    def __init__(
        self,
        *,
        db: Database,
        llm: LlmGateway,
        judge_model: str | None,
        concurrency: int = CONCURRENCY,
        queue_limit: int = QUEUE_LIMIT,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.llm = llm
        self.judge_model = judge_model
        self.concurrency = concurrency
        self.queue_limit = queue_limit
        self.refresh_s = refresh_s
        self._clock = clock
        self._draw = draw
        self._settings: dict[int, OnlineSetting] = {}
        self._read_at: float | None = None  # None: never read yet
        self._reading: asyncio.Task[None] | None = None
        self._changes = 0  # this process's own changes: a read begun before one is stale
        self._unread: list[LiveTurn] = []  # heard before the first read: decided after it
        self._queue: deque[_Sampled] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- the hot path -----------------------------------------------------------------------

    def heard(self, turn: LiveTurn) -> None:
        """A live answer was kept (`Runtime.turn_listeners`): sample it, at once. Never raises:
        the turn it is told of is done and must not fail for it."""
        if self._closed or self.judge_model is None:
            return
        try:
            read_at = self._read_at
            if read_at is None or self._clock() - read_at > self.refresh_s:
                self._read_soon()
                if read_at is None:
                    if len(self._unread) < self.queue_limit:
                        self._unread.append(turn)
                    else:
                        ONLINE_DROPPED.inc()
                    return
            setting = self._settings.get(turn.bot_id)
            if setting is not None:
                self._offer(turn, setting)
        except Exception:
            logger.exception("online evaluation could not take a turn", extra={"bot": turn.bot_id})

    def _offer(self, turn: LiveTurn, setting: OnlineSetting) -> None:
        if self._draw() * 100 >= setting.percent:
            return
        if len(self._queue) >= self.queue_limit:
            ONLINE_DROPPED.inc()
            return
        self._queue.append(_Sampled(turn, setting.rubric))
        if len(self._workers) < self.concurrency:
            worker = asyncio.ensure_future(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    # -- settings ---------------------------------------------------------------------------

    def changed(self, bot_id: int, setting: OnlineSetting | None) -> None:
        """This process set (or, with None, removed) the bot's setting: it applies now."""
        self._changes += 1
        if setting is None:
            self._settings.pop(bot_id, None)
        else:
            self._settings[bot_id] = setting

    def setting(self, bot_id: int) -> OnlineSetting | None:
        """The bot's setting as this process applies it."""
        return self._settings.get(bot_id)

    def _read_soon(self) -> None:
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        began = self._changes
        try:
            async with self.db.read_conn() as conn:
                settings = await feedback_store.online_settings(conn)
        except Exception:
            logger.exception("online evaluation could not read its settings; trying again later")
        else:
            if began == self._changes:
                self._settings = settings
        self._read_at = self._clock()
        unread, self._unread = self._unread, []
        for turn in unread:
            setting = self._settings.get(turn.bot_id)
            if setting is not None:
                self._offer(turn, setting)

    # -- judging ----------------------------------------------------------------------------

    async def _work(self) -> None:
        while self._queue:
            sampled = self._queue.popleft()
            try:
                await self._judge(sampled)
            except Exception:
                logger.exception(
                    "online evaluation failed",
                    extra={"bot": sampled.turn.bot_id, "message": sampled.turn.message_id},
                )
        # Leave the set before yielding: a turn heard from now on starts a worker of its own.
        current = asyncio.current_task()
        if current is not None:
            self._workers.discard(current)

    async def _judge(self, sampled: _Sampled) -> None:
        assert self.judge_model is not None
        turn = sampled.turn
        verdict = await judge(
            self.llm,
            self.judge_model,
            rubric=sampled.rubric,
            question=turn.text,
            answer=turn.answer,
            graded=True,
        )
        flagged = verdict.score is not None and verdict.score <= FLAGGED_AT
        keep = partial(
            feedback_store.keep_score,
            message_id=turn.message_id,
            score=verdict.score,
            flagged=flagged,
            reason=verdict.reason,
            cost_usd=verdict.cost_usd,
        )
        await self.db.run_write(keep)
        outcome = "failed" if verdict.score is None else "flagged" if flagged else "scored"
        ONLINE_JUDGED.labels(outcome).inc()

    async def drain(self, *, grace_s: float | None = None) -> None:
        """Wait until every sampled answer is judged (tests). With `grace_s` (shutdown): take no
        more, and give up on those still waiting or being judged after it (a sample lost)."""
        if grace_s is not None:
            self._closed = True
        if self._reading is not None:
            await asyncio.gather(self._reading, return_exceptions=True)
        if grace_s is not None and self._workers:
            _, running = await asyncio.wait(self._workers, timeout=grace_s)
            self._queue.clear()
            for worker in running:
                worker.cancel()
        while self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)
