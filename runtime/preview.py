"""`Preview`: an answer shown on a platform while the model writes it (a channel's `TextSink`).

The pieces of text come as fast as the model writes them; the platform sees the text so far at
most every `every_s()` seconds, so a fast model costs a few calls an answer, not one per word.
Nothing is shown before `after_s`: a quicker answer is sent whole with nothing before it (a
preview would cost calls for nothing); a slower one first gets `waiting()` (a typing indicator)
while no text has come. It ends when the answer is sent (`stop`), when `show` says so, or after
`idle_s` without text. The answer itself is always sent whole, by the channel's `send`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Preview:
    # (the text so far, the part not shown yet) -> False: show no more
    show: Callable[[str, str], Awaitable[bool]]
    after_s: float
    every_s: Callable[[], float]
    waiting: Callable[[], Awaitable[object]] | None = None
    idle_s: float = 60.0
    text: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    def add(self, piece: str) -> None:
        """The next piece of the answer (the runtime's `TextSink`)."""
        self.text += piece
        self.changed.set()

    async def _run(self) -> None:
        await asyncio.sleep(self.after_s)
        if not self.text and self.waiting is not None:
            try:
                await self.waiting()
            except Exception:  # only a courtesy: the preview goes on without it
                logger.warning("showing that the answer is coming failed", exc_info=True)
        shown = ""
        while True:
            try:
                async with asyncio.timeout(self.idle_s):  # no task of its own, unlike wait_for
                    await self.changed.wait()
            except TimeoutError:
                return
            self.changed.clear()
            current = self.text
            if current != shown:
                try:
                    if not await self.show(current, current[len(shown) :]):
                        return
                except Exception:  # the network, a platform's surprise: the answer still goes
                    logger.warning("showing a partial answer failed", exc_info=True)
                    return
                shown = current
            await asyncio.sleep(self.every_s())

    async def stop(self) -> None:
        """Show no more (the answer is being sent); done when this returns."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
