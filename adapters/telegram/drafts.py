"""Generated bots' answers shown on Telegram while they are written: `sendMessageDraft` (Bot API
9.5), in private chats, through a `runtime.preview.Preview`: typing while the first words are
awaited, then the text so far at most every `DRAFT_EVERY_S`; a quick answer is sent whole with
nothing before it.

The answer itself is sent whole, through the outbox, as every reply is: drafts are only a
preview (Telegram drops one when the bot sends a message, or after 30 s), so a crash mid-answer
loses nothing and the restart sends the answer once. The reply's send first `close`s the chat's
draft, so no draft is shown after the answer.

A bot whose drafts Telegram refuses (an older Bot API server, say) is remembered: its next
answers are not drafted, and arrive whole as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import count

from runtime.preview import Preview

DRAFT_AFTER_S = 0.8
DRAFT_EVERY_S = 0.5
MAX_DRAFT_CHARS = 4096
IDLE_S = 30.0  # Telegram drops a draft after 30 s: a draft no word reached for as long ends


@dataclass(slots=True)
class Drafts:
    """The drafts open per (deployment, chat), and the deployments whose drafts Telegram
    refused. `send(deployment, chat, draft_id, text)` and `typing(deployment, chat)` make the
    Bot API calls and say whether Telegram took them."""

    send: Callable[[str, int, int, str], Awaitable[bool]]
    typing: Callable[[str, int], Awaitable[bool]]
    refused: set[str] = field(default_factory=set)
    _open: dict[tuple[str, int], Preview] = field(default_factory=dict)
    _ids: count[int] = field(default_factory=lambda: count(1))

    def open(self, deployment: str, chat: int) -> Callable[[str], None] | None:
        """A sink for the answer being written in `chat` (None: no drafts there)."""
        if chat <= 0 or deployment in self.refused:  # drafts: private chats only
            return None
        self.close(deployment, chat)
        draft_id = next(self._ids)

        async def show(text: str, new: str) -> bool:
            sent = await self.send(deployment, chat, draft_id, text[:MAX_DRAFT_CHARS])
            return sent and len(text) < MAX_DRAFT_CHARS  # a full preview: the answer shows more

        draft = Preview(
            show=show,
            after_s=DRAFT_AFTER_S,
            every_s=lambda: DRAFT_EVERY_S,
            waiting=lambda: self.typing(deployment, chat),
            idle_s=IDLE_S,
        )
        key = (deployment, chat)
        self._open[key] = draft
        draft.start()
        assert draft.task is not None
        draft.task.add_done_callback(
            lambda _: self._open.pop(key) if self._open.get(key) is draft else None
        )
        return draft.add

    def close(self, deployment: str, chat: int) -> None:
        """The answer is being sent: no draft may follow it."""
        draft = self._open.pop((deployment, chat), None)
        if draft is not None and draft.task is not None:
            draft.task.cancel()

    async def close_all(self) -> None:
        """Shutdown: every draft stops, and is gone before this returns."""
        drafts = list(self._open.values())
        self._open.clear()
        for draft in drafts:
            await draft.stop()
