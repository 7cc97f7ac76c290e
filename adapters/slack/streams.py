"""Generated bots' answers shown in Slack while they are written (those that take longer than
`STREAM_AFTER_S`: a quicker one is posted whole, in one call).

Slack's streaming API first (`chat.startStream`, `chat.appendStream`, `chat.stopStream`: a
message in the thread that grows as the model writes). Where the workspace refuses it (an
older plan, a DM without a thread), the answer's placeholder is edited instead (`chat.update`
at most once a second). Either way the text goes out at most every `FLUSH_EVERY_S`, and the
answer itself is sent whole through the outbox, as every reply is: its send finishes the
stream (`finish`), then the message shows the final answer with its buttons. A crash
mid-answer leaves a partial preview at most; the restarted service sends the answer once.

While an answer that streams natively has no text yet (after `STREAM_AFTER_S`), the thread's
status says the bot "is thinking…" (`assistant.threads.setStatus`, under the bot's name), and
no "thinking…" message is posted for it (`quiet`). Slack clears the status itself when the app
posts in the thread: the streamed message, or the answer posted whole. Where the workspace
refuses the status, that is remembered and the "thinking…" message comes back; a status that
fails, or takes over `STATUS_WAIT_S`, never holds up the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from runtime.preview import Preview

logger = logging.getLogger(__name__)

# An answer done sooner is posted whole, in one call, as before: streaming costs three at least.
STREAM_AFTER_S = 0.8
FLUSH_EVERY_S = 0.5  # the streaming API's appends
UPDATE_EVERY_S = 1.0  # chat.update, Slack's tier 3 limit for edits
IDLE_S = 60.0  # a stream no text reached for this long stops being fed
STATUS = "is thinking…"  # shown as "<bot name> is thinking…"
STATUS_WAIT_S = 2.0  # the longest the status may hold up the preview (else: the placeholder)
# Refusals that mean the streaming API (or the thread status) is not for this workspace (or
# this conversation): the answers there are shown by editing their placeholder instead.
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


StatusState = Literal["unset", "setting", "shown", "failed"]


@dataclass(slots=True)
class SlackStream:
    """One answer being written in one thread: its preview, whether it uses Slack's streaming
    API (else its message is edited), its message (`starting` while it is made, then its `ts`),
    and its thread status ("is thinking…"; `known` once Slack answered the attempt to show it)."""

    native: bool
    preview: Preview | None = None
    starting: asyncio.Future[bool] | None = None
    ts: str | None = None
    status: StatusState = "unset"
    known: asyncio.Event = field(default_factory=asyncio.Event)


class SlackStreams:
    """The streams open per (deployment, thread) of one Slack app."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.native = True  # False once the workspace refused the streaming API
        self.status = True  # False once the workspace refused assistant.threads.setStatus
        self._open: dict[tuple[str, str], SlackStream] = {}
        self._workspace: str | None = None  # the app's team id (`auth.test`), once asked

    async def _team(self) -> str:
        """The app's workspace, which a stream's reader belongs to (Slack requires the reader
        outside direct messages)."""
        if self._workspace is None:
            self._workspace = str((await self.client.auth_test())["team_id"])
        return self._workspace

    def open(
        self,
        key: tuple[str, str],
        *,
        channel: str,
        thread_ts: str | None,
        claim: Callable[[bool], Awaitable[str | None]],
        identity: Callable[[], Awaitable[dict[str, str]]],
        thinking: Callable[[], bool],
        user: str,
    ) -> Callable[[str], None]:
        """A sink for the answer being written at `key`. `claim(post)` takes over the answer's
        "thinking…" message (its ts if it was posted; with `post`, one posted now if not). A
        posted one is edited, as is any answer where Slack's streaming API is not available (it
        also needs a thread); otherwise the answer streams in a message of its own, under the
        bot's name and icon (`identity`), for the Slack `user` who asked, and the thread's
        status says the bot is thinking until its first text, unless `thinking()` (its
        "thinking…" message is up already)."""

        async def waiting() -> None:
            """No text yet: the thread's status, where the answer will stream natively."""
            if not (self.status and self.native and stream.native) or thinking():
                return
            assert thread_ts is not None
            stream.status = "setting"
            shown = False
            try:
                who = await identity()  # the stream's own name, fetched once for both
                async with asyncio.timeout(STATUS_WAIT_S):
                    shown = await self._show_status(channel, thread_ts, who)
            except asyncio.CancelledError:  # the answer is being sent: no placeholder now
                shown = True
                raise
            except TimeoutError:
                logger.warning("Slack took too long to show the thread's status")
            finally:
                stream.status = "shown" if shown else "failed"
                stream.known.set()

        async def show(text: str, new: str) -> bool:
            if stream.starting is None:
                # Shielded: an answer sent meanwhile waits for its message (`finish`) rather
                # than cut it short, lose its ts and post a second one.
                stream.starting = asyncio.ensure_future(start(text))
                return await asyncio.shield(stream.starting)
            assert stream.ts is not None  # a start that failed stopped the preview
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

        async def start(text: str) -> bool:
            """The answer's message, with `text` in it: a stream of its own, or its "thinking…"
            message edited; its ts is kept as soon as there is one, even if the edit fails."""
            stream.ts = await claim(False)
            if stream.ts is None and stream.native:
                assert thread_ts is not None
                try:
                    who = await identity()
                    started = await self.client.chat_startStream(
                        channel=channel,
                        thread_ts=thread_ts,
                        markdown_text=text,
                        username=who.get("username"),
                        icon_emoji=who.get("icon_emoji"),
                        recipient_team_id=await self._team(),
                        recipient_user_id=user,
                    )
                    stream.ts = str(started["ts"])
                    return True
                except SlackApiError as exc:
                    error = exc.response.get("error")
                    if error not in _NOT_HERE:
                        logger.warning("Slack refused a stream: %s", error)
                        return False
                    logger.warning(
                        "Slack's streaming API is not available here (%s): answers are shown "
                        "by editing their message instead",
                        error,
                    )
                    self.native = False
            stream.native = False
            stream.ts = stream.ts or await claim(True)
            return stream.ts is not None and await edit(stream.ts, text)

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
            waiting=waiting,
            idle_s=IDLE_S,
        )
        self._open[key] = stream
        stream.preview.start()
        return stream.preview.add

    async def _show_status(self, channel: str, thread_ts: str, who: dict[str, str]) -> bool:
        """`assistant.threads.setStatus`: whether Slack shows it (a refusal that means the
        workspace has no such status is remembered)."""
        try:
            await self.client.assistant_threads_setStatus(
                channel_id=channel,
                thread_ts=thread_ts,
                status=STATUS,
                username=who.get("username"),
                icon_emoji=who.get("icon_emoji"),
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in _NOT_HERE:
                logger.warning(
                    "Slack's thread status is not available here (%s): slow answers show a "
                    '"thinking…" message instead',
                    error,
                )
                self.status = False
            else:
                logger.warning("Slack refused the thread's status: %s", error)
            return False
        except (aiohttp.ClientError, OSError) as exc:
            logger.warning("could not show the thread's status: %s", type(exc).__name__)
            return False
        return True

    async def quiet(self, key: tuple[str, str]) -> bool:
        """Whether the answer at `key` needs no "thinking…" message: its thread's status says
        so (waits for Slack's answer when the status is being set)."""
        stream = self._open.get(key)
        if stream is None or stream.status == "unset":
            return False
        await stream.known.wait()
        return stream.status == "shown"

    async def finish(self, key: tuple[str, str], channel: str) -> str | None:
        """The answer at `key` is being sent: its stream stops; the ts of the message to show
        the answer in (None: none started, post it)."""
        stream = self._open.pop(key, None)
        if stream is None or stream.preview is None:
            return None
        await stream.preview.stop()
        if stream.starting is not None:  # the message being made now is the answer's
            await asyncio.gather(stream.starting, return_exceptions=True)
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
        starting = [s.starting for s in streams if s.starting is not None]
        await asyncio.gather(*starting, return_exceptions=True)
