"""Per-chat pacing for Telegram: about one message a second in a chat and twenty a minute in a
group, Telegram's own limits, so that a burst (a long answer split in pieces, a busy group)
queues here instead of failing there with 429s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

PRIVATE_INTERVAL_S = 1.0
GROUP_INTERVAL_S = 3.0  # 20 a minute
_FORGET_AFTER_S = 60.0


class ChatPacer:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._next: dict[tuple[str, int], float] = {}  # (bot, chat) -> its next free slot

    async def wait(self, chat: tuple[str, int]) -> None:
        """Return when a bot (its deployment) may send to a chat, and book that slot."""
        now = self._clock()
        interval = GROUP_INTERVAL_S if chat[1] < 0 else PRIVATE_INTERVAL_S  # groups are negative
        slot = max(now, self._next.get(chat, now))
        self._next[chat] = slot + interval
        if len(self._next) > 10_000:
            self._forget(now)
        if slot > now:
            await self._sleep(slot - now)

    def _forget(self, now: float) -> None:
        for key, at in list(self._next.items()):
            if at < now - _FORGET_AFTER_S:
                del self._next[key]
