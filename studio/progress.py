"""A progress line that updates in place while a large file is read into a bot's knowledge (or
its knowledge is re-indexed), on the fronts that can edit a message (Slack, Telegram); elsewhere
only the final answer is said."""

from __future__ import annotations

import time

from runtime.messages import Address, OutgoingMessage
from runtime.runtime import Runtime

LARGE = 64  # passages: a file with more than one embedding batch gets a progress line
EVERY_S = 1.0  # at most one update a second (platforms rate-limit edits)


class ReadingProgress:
    def __init__(self, runtime: Runtime, address: Address, doing: str) -> None:
        self.runtime = runtime
        self.address = address
        self.doing = doing  # "Reading refunds.pdf"
        self._shown: str | None = None
        self._started = False
        self._last = 0.0

    async def update(self, done: int, total: int) -> None:
        """The ingest's progress callback: (passages embedded, passages in all)."""
        if total <= LARGE:
            return
        if not self._started:
            self._started = True
            self._shown = await self.runtime.show(self._line(f"{self.doing}: 0 of {total}"))
            self._last = time.monotonic()
        if self._shown is None or done >= total:
            return
        if time.monotonic() - self._last >= EVERY_S:
            self._last = time.monotonic()
            line = self._line(f"{self.doing}: {done} of {total} passages…")
            await self.runtime.revise(line, self._shown)

    async def finish(self, outcome: str) -> None:
        """The line's last state (the full answer follows as a reply)."""
        if self._shown is not None:
            await self.runtime.revise(self._line(outcome), self._shown)

    def _line(self, text: str) -> OutgoingMessage:
        return OutgoingMessage(address=self.address, text=text, reply_to=self.address.thread)
