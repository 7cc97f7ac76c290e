"""Generated bots' answers shown on Telegram while they are written, through a
`runtime.preview.Preview` per (deployment, chat). Nothing is shown before `PREVIEW_AFTER_S`: a
quicker answer is sent whole with nothing before it. A slower one first gets "typing" while no
words have come, then, by what the chat and the bot's Bot API server allow:

- **Drafts** (private chats): `sendMessageDraft` (Bot API 9.5) with the text so far, at most
  every `DRAFT_EVERY_S`. Telegram drops a draft when the bot sends a message (or after 30 s).
- **An edited message** (private chats whose drafts Telegram refused): the text so far is sent
  as a message, as plain text (the Telegram HTML the answer will be, without its tags: no partial
  markup can break a parse mode), then edited (`editMessageText`) at most every
  `EDIT_EVERY_S` as more arrives, each call paced with the chat's other sends (about one a
  second, so the answer's own edit may wait up to that long behind the preview's last). The
  answer then replaces that message's text (`finish` hands its id to the send): its first part
  as Telegram HTML, with what a send of it would carry; parts beyond 4,096 characters follow as
  new messages.
- **Typing only** (groups; private chats whose drafts and edits were both refused): "typing"
  at most every `TYPING_EVERY_S` while the answer is written, then the whole answer. Groups get
  no edited preview by choice: drafts are for private chats only, and a preview edited every
  few seconds would spend the group's budget of about twenty messages a minute (edits count),
  which the bot's answers to everyone there, its handoff relays and its schedules share, and
  would hold each answer up to the group's three-second pace behind the preview's last edit.
  Forum topics get nothing before the answer (see `TelegramBots.stream`).

A refusal is remembered per deployment ("fall back, once, and remember"): drafts refused
(`refused`) turn that answer, and the bot's next ones, into an edited message; edits refused
(`edits_refused`) into typing only. A preview that fails never fails the answer: it just shows
no more.

The answer itself is always sent whole, through the outbox, as every reply is: the preview is
only a preview. Its send first `finish`es the chat's preview: the preview stops, and a Bot API
call of it still in flight lands before the answer does (so no draft or stale edit follows the
answer). Whatever is sent to the chat next does that (in practice the answer; a scheduled
message arriving mid-answer would take the preview's message, and the answer come as a new one).
A crash mid-answer leaves at most a partial preview message; the restarted service sends the
answer once, as a new message. An edit that did not go through for a passing reason (the
network) is `keep`-ed for the send's next attempt, which edits again: an edit is idempotent, so
the answer never shows twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any, TypeVar

from adapters.telegram.render import markdown_to_html, plain_text, split_html
from runtime.llm import TextSink
from runtime.preview import Preview

PREVIEW_AFTER_S = 0.8  # an answer quicker than this is sent whole, with nothing before it
DRAFT_EVERY_S = 0.5
EDIT_EVERY_S = 1.0  # editMessageText: at most once a second per chat
TYPING_EVERY_S = 4.0  # "typing" shows for 5 s, or until the bot sends a message
MAX_DRAFT_CHARS = 4096
IDLE_S = 30.0  # Telegram drops a draft after 30 s: a preview no word reached for as long ends
# A preview message that ended longer ago than this (a turn that failed and sent nothing) is not
# replaced by a later message to its chat: an edit far up the chat would go unnoticed.
CLAIM_S = 120.0
_FORGET_AFTER = 10_000  # ended previews kept before the old ones are forgotten

_T = TypeVar("_T")


def preview_text(text: str) -> tuple[str, bool]:
    """What a preview message shows of the answer so far, and whether that is all of it (else
    the answer's first message is full: the answer shows the rest)."""
    parts = split_html(markdown_to_html(_closed(text)))
    if not parts:
        return "", True
    return plain_text(parts[0]).strip(), len(parts) == 1


def _closed(text: str) -> str:
    """The answer so far without a bold mark still open at its end: `**five` shows as `five`
    until the model closes it, so a preview never flashes Markdown's marks."""
    for mark in ("**", "__"):
        if text.count(mark) % 2:
            head, _, tail = text.rpartition(mark)
            text = head + tail
    return text


@dataclass(slots=True, eq=False)
class _Stream:
    """One answer being written in one chat, and how it is shown."""

    deployment: str
    chat: int
    mode: str  # "draft", "edit" or "typing"
    draft_id: int
    preview: Preview | None = None
    message_id: int | None = None  # the preview message ("edit"), once sent
    shown: str = ""  # what that message shows
    typed_at: float = float("-inf")
    at: float = field(default_factory=time.monotonic)  # the last preview call
    call: asyncio.Future[Any] | None = None  # the preview's Bot API call, maybe in flight


def _every(mode: str) -> float:
    """How often a preview of `mode` may show more (the constants are read at call time)."""
    if mode == "draft":
        return DRAFT_EVERY_S
    return EDIT_EVERY_S if mode == "edit" else TYPING_EVERY_S


@dataclass(slots=True)
class Drafts:
    """The previews open per (deployment, chat), and the deployments whose drafts or edits
    Telegram refused. The Bot API calls (each says whether Telegram took it):
    `draft(deployment, chat, draft_id, text)`, `typing(deployment, chat)`,
    `post(deployment, chat, text)` (a preview message's id, None if it was not sent) and
    `edit(deployment, chat, message_id, text)`; they add to `refused` and `edits_refused`."""

    draft: Callable[[str, int, int, str], Awaitable[bool]]
    typing: Callable[[str, int], Awaitable[bool]]
    post: Callable[[str, int, str], Awaitable[int | None]]
    edit: Callable[[str, int, int, str], Awaitable[bool]]
    refused: set[str] = field(default_factory=set)
    edits_refused: set[str] = field(default_factory=set)
    _open: dict[tuple[str, int], _Stream] = field(default_factory=dict)
    # Preview messages whose preview ended and whose answer is not sent yet: (id, when).
    _left: dict[tuple[str, int], tuple[int, float]] = field(default_factory=dict)
    _ids: count[int] = field(default_factory=lambda: count(1))

    def open(self, deployment: str, chat: int) -> TextSink | None:
        """A sink for the answer being written in `chat` (groups have negative ids)."""
        if chat <= 0:
            mode = "typing"
        elif deployment not in self.refused:
            mode = "draft"
        else:
            mode = "edit" if deployment not in self.edits_refused else "typing"
        self.close(deployment, chat)
        stream = _Stream(deployment, chat, mode, draft_id=next(self._ids))

        async def show(text: str, new: str) -> bool:
            if stream.mode == "draft":
                sent = await self._call(
                    stream, self.draft(deployment, chat, stream.draft_id, text[:MAX_DRAFT_CHARS])
                )
                if sent:
                    return len(text) < MAX_DRAFT_CHARS  # a full draft: the answer shows more
                if deployment not in self.refused or deployment in self.edits_refused:
                    return False  # not this time (or nothing else to show with)
                stream.mode = "edit"  # refused: this answer already goes on as a message
            if stream.mode == "edit":
                return await self._edited(stream, text)
            return await self._typing(stream)

        stream.preview = Preview(
            show=show,
            after_s=PREVIEW_AFTER_S,
            every_s=lambda: _every(stream.mode),
            waiting=lambda: self._typing(stream),
            idle_s=IDLE_S,
        )
        key = (deployment, chat)
        self._open[key] = stream
        stream.preview.start()
        assert stream.preview.task is not None
        stream.preview.task.add_done_callback(lambda _: self._ended(key, stream))
        return stream.preview.add

    async def _edited(self, stream: _Stream, text: str) -> bool:
        """The preview message shows `text` so far: sent first, edited after."""
        shown, whole = preview_text(text)
        if not shown or shown == stream.shown:
            return True  # nothing (new) to show yet
        if stream.message_id is None:
            message_id = await self._call(stream, self.post(stream.deployment, stream.chat, shown))
            if message_id is None:
                return False
            stream.message_id = message_id
        elif not await self._call(
            stream, self.edit(stream.deployment, stream.chat, stream.message_id, shown)
        ):
            return False  # the answer still replaces the message, or comes as a new one
        stream.shown = shown
        return whole

    async def _typing(self, stream: _Stream) -> bool:
        now = time.monotonic()
        if now - stream.typed_at >= TYPING_EVERY_S:
            stream.typed_at = now
            await self._call(stream, self.typing(stream.deployment, stream.chat))
        return True

    async def _call(self, stream: _Stream, call: Awaitable[_T]) -> _T:
        """A Bot API call of the preview. It is not cut short when the preview stops (an edit
        cancelled mid-flight could still land after the answer and hide it): `finish` waits
        for it instead."""
        stream.at = time.monotonic()
        task = asyncio.ensure_future(call)
        stream.call = task
        return await asyncio.shield(task)

    def _ended(self, key: tuple[str, int], stream: _Stream) -> None:
        """A preview stopped showing on its own (no more to show, idle, a failure): its
        message, if it sent one, waits for the answer."""
        if self._open.get(key) is not stream:
            return  # finished, or replaced by the next answer's
        del self._open[key]
        if stream.message_id is not None:
            self._leave(key, stream.message_id, stream.at)

    def _leave(self, key: tuple[str, int], message_id: int, at: float) -> None:
        self._left[key] = (message_id, at)
        if len(self._left) > _FORGET_AFTER:
            old = time.monotonic() - CLAIM_S
            for other, (_, then) in list(self._left.items()):
                if then < old:
                    del self._left[other]

    async def finish(self, deployment: str, chat: int) -> int | None:
        """A message is being sent to `chat`: its preview shows no more, and any call of it
        in flight has landed. Returns the id of the preview message the answer should replace
        (None: send it as a new message)."""
        key = (deployment, chat)
        stream = self._open.pop(key, None)
        if stream is not None:
            self._left.pop(key, None)
            if stream.preview is not None:
                await stream.preview.stop()
            if stream.call is not None:
                await asyncio.gather(stream.call, return_exceptions=True)
            return stream.message_id
        left = self._left.pop(key, None)
        if left is None or time.monotonic() - left[1] > CLAIM_S:
            return None
        return left[0]

    def keep(self, deployment: str, chat: int, message_id: int) -> None:
        """The answer could not replace preview message `message_id` this time (the network):
        the send's next attempt gets it again from `finish`."""
        self._leave((deployment, chat), message_id, time.monotonic())

    def close(self, deployment: str, chat: int) -> None:
        """Forget the chat's preview (a new answer is being written there)."""
        key = (deployment, chat)
        self._left.pop(key, None)
        stream = self._open.pop(key, None)
        if stream is not None and stream.preview is not None and stream.preview.task is not None:
            stream.preview.task.cancel()

    async def close_all(self) -> None:
        """Shutdown: every preview stops, and is gone (its calls too) before this returns."""
        streams = list(self._open.values())
        self._open.clear()
        self._left.clear()
        for stream in streams:
            if stream.preview is not None:
                await stream.preview.stop()
            if stream.call is not None:
                await asyncio.gather(stream.call, return_exceptions=True)
