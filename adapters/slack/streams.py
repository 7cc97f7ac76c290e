"""Generated bots' answers shown in Slack while they are written (those that take longer than
`STREAM_AFTER_S`: a quicker one is posted whole, in one call).

Slack's streaming API first (`chat.startStream`, `chat.appendStream`, `chat.stopStream`: a
message in the thread that grows as the model writes). Where the workspace refuses it (an
older plan, a DM without a thread), the answer's placeholder is edited instead (`chat.update`
at most once a second). Either way the text goes out at most every `FLUSH_EVERY_S`, and the
answer itself is sent whole through the outbox, as every reply is: its send finishes the
stream (`finish`), then the message shows the final answer with its buttons. A crash
mid-answer leaves a partial preview at most; the restarted service sends the answer once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from runtime.preview import Preview

logger = logging.getLogger(__name__)

# An answer done sooner is posted whole, in one call, as before: streaming costs three at least.
STREAM_AFTER_S = 0.8
FLUSH_EVERY_S = 0.5  # the streaming API's appends
UPDATE_EVERY_S = 1.0  # chat.update, Slack's tier 3 limit for edits
IDLE_S = 60.0  # a stream no text reached for this long stops being fed
# Refusals that mean the streaming API is not for this workspace (or this conversation): the
# answers there are shown by editing their placeholder instead.
_NOT_HERE = frozenset(
    {
        "unknown_method",
        "not_allowed",
        "not_allowed_token_type",
        "method_deprecated",
        "missing_scope",
        "feature_not_enabled",
        "team_not_allowed",
        "invalid_arguments",
    }
)


@dataclass(slots=True)
class SlackStream:
    """One answer being written in one thread: its preview, whether it uses Slack's streaming
    API (else its message is edited), and the ts of its message once one started."""

    native: bool
    preview: Preview | None = None
    ts: str | None = None


class SlackStreams:
    """The streams open per (deployment, thread) of one Slack app."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.native = True  # False once the workspace refused the streaming API
        self._open: dict[tuple[str, str], SlackStream] = {}

    def open(
        self,
        key: tuple[str, str],
        *,
        channel: str,
        thread_ts: str | None,
        claim: Callable[[bool], Awaitable[str | None]],
        identity: Callable[[], Awaitable[dict[str, str]]],
    ) -> Callable[[str], None]:
        """A sink for the answer being written at `key`. `claim(post)` takes over the answer's
        "thinking…" message (its ts if it was posted; with `post`, one posted now if not). A
        posted one is edited, as is any answer where Slack's streaming API is not available (it
        also needs a thread); otherwise the answer streams in a message of its own, under the
        bot's name and icon (`identity`)."""

        async def show(text: str, new: str) -> bool:
            if stream.ts is None:
                stream.ts = await start(text)
                return stream.ts is not None
            if not stream.native:
                return await edit(stream.ts, text)
            try:
                await self.client.chat_appendStream(
                    channel=channel, ts=stream.ts, markdown_text=new
                )
            except SlackApiError as exc:
                logger.warning("Slack refused more of a stream: %s", exc.response.get("error"))
                return False
            return True

        async def start(text: str) -> str | None:
            ts = await claim(False)
            if ts is None and stream.native:
                assert thread_ts is not None
                try:
                    who = await identity()
                    started = await self.client.chat_startStream(
                        channel=channel,
                        thread_ts=thread_ts,
                        markdown_text=text,
                        username=who.get("username"),
                        icon_emoji=who.get("icon_emoji"),
                    )
                    return str(started["ts"])
                except SlackApiError as exc:
                    error = exc.response.get("error")
                    if error not in _NOT_HERE:
                        logger.warning("Slack refused a stream: %s", error)
                        return None
                    logger.warning(
                        "Slack's streaming API is not available here (%s): answers are shown "
                        "by editing their message instead",
                        error,
                    )
                    self.native = False
            stream.native = False
            ts = ts or await claim(True)
            if ts is not None and not await edit(ts, text):
                return None
            return ts

        async def edit(ts: str, text: str) -> bool:
            try:
                await self.client.chat_update(channel=channel, ts=ts, text=text)
            except SlackApiError as exc:
                logger.warning("could not show a partial answer: %s", exc.response.get("error"))
                return False
            return True

        stream = SlackStream(native=self.native and thread_ts is not None)
        stream.preview = Preview(
            show=show,
            after_s=STREAM_AFTER_S,
            every_s=lambda: FLUSH_EVERY_S if stream.native else UPDATE_EVERY_S,
            idle_s=IDLE_S,
        )
        self._open[key] = stream
        stream.preview.start()
        return stream.preview.add

    async def finish(self, key: tuple[str, str], channel: str) -> str | None:
        """The answer at `key` is being sent: its stream stops; the ts of the message to show
        the answer in (None: none started, post it)."""
        stream = self._open.pop(key, None)
        if stream is None or stream.preview is None:
            return None
        await stream.preview.stop()
        ts = stream.ts
        if ts is not None and stream.native:
            try:
                await self.client.chat_stopStream(channel=channel, ts=ts)
            except SlackApiError as exc:  # the answer still replaces the message's text
                logger.warning("Slack refused to stop a stream: %s", exc.response.get("error"))
        return ts

    async def close(self) -> None:
        """Shutdown: every stream stops feeding, and is gone before this returns."""
        streams = list(self._open.values())
        self._open.clear()
        await asyncio.gather(*(s.preview.stop() for s in streams if s.preview is not None))
