"""A typing indicator on Messenger while an answer is written, through one
`runtime.preview.Preview` per (deployment, person).

Messenger cannot show an answer while it is written (a sent message is never edited), so the
preview shows only that one is coming: nothing before `TYPING_AFTER_S` (a quicker answer is
sent with nothing before it, at no cost), then `typing_on`, again at most every
`TYPING_EVERY_S` while the model still writes (Messenger drops the indicator after about 20 s,
or when the Page sends a message). The answer's send first `finish`es the preview: it stops, and
a `typing_on` still in flight lands before the answer does (one landing after it would show the
Page typing for 20 s more). A call Messenger does not take only stops the indicator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from runtime.llm import TextSink
from runtime.preview import Preview

TYPING_AFTER_S = 0.8  # an answer quicker than this is sent with nothing before it
TYPING_EVERY_S = 15.0  # Messenger shows "typing" for about 20 s
IDLE_S = 60.0  # a preview no word reached for as long ends (a turn that failed)

# (deployment, psid) -> whether Messenger took the `typing_on`
ShowTyping = Callable[[str, str], Awaitable[bool]]


@dataclass(slots=True, eq=False)
class _Indicator:
    preview: Preview | None = None
    typed_at: float = float("-inf")
    call: asyncio.Future[bool] | None = None  # the `typing_on` in flight, if any


class Typing:
    """The typing indicators open per (deployment, PSID)."""

    def __init__(self, show: ShowTyping) -> None:
        self._show = show
        self._open: dict[tuple[str, str], _Indicator] = {}

    def open(self, deployment: str, psid: str) -> TextSink:
        """A sink for the answer being written to `psid` (its words only keep it showing)."""
        key = (deployment, psid)
        self._drop(key)
        indicator = _Indicator()

        async def show(text: str, new: str) -> bool:
            return await self._typing(key, indicator)

        indicator.preview = Preview(
            show=show,
            after_s=TYPING_AFTER_S,
            every_s=lambda: TYPING_EVERY_S,
            waiting=lambda: self._typing(key, indicator),
            idle_s=IDLE_S,
        )
        self._open[key] = indicator
        indicator.preview.start()
        assert indicator.preview.task is not None
        indicator.preview.task.add_done_callback(lambda _: self._ended(key, indicator))
        return indicator.preview.add

    async def finish(self, deployment: str, psid: str) -> None:
        """A message is being sent to `psid`: the indicator stops, and a call of it in flight
        has landed."""
        indicator = self._open.pop((deployment, psid), None)
        if indicator is not None:
            await _stop(indicator)

    async def close_all(self) -> None:
        """Shutdown: every indicator stops, its calls too, before this returns."""
        indicators = list(self._open.values())
        self._open.clear()
        for indicator in indicators:
            await _stop(indicator)

    async def _typing(self, key: tuple[str, str], indicator: _Indicator) -> bool:
        now = time.monotonic()
        if now - indicator.typed_at < TYPING_EVERY_S:
            return True  # still showing
        indicator.typed_at = now
        # Not cut short when the preview stops (a call cancelled mid-flight could still land
        # after the answer): `finish` waits for it instead.
        indicator.call = asyncio.ensure_future(self._show(*key))
        return await asyncio.shield(indicator.call)

    def _ended(self, key: tuple[str, str], indicator: _Indicator) -> None:
        if self._open.get(key) is indicator:
            del self._open[key]

    def _drop(self, key: tuple[str, str]) -> None:
        """A new answer is being written: the last one's indicator, if still open, goes."""
        indicator = self._open.pop(key, None)
        preview = indicator.preview if indicator is not None else None
        if preview is not None and preview.task is not None:
            preview.task.cancel()


async def _stop(indicator: _Indicator) -> None:
    if indicator.preview is not None:
        await indicator.preview.stop()
    if indicator.call is not None:
        await asyncio.gather(indicator.call, return_exceptions=True)
