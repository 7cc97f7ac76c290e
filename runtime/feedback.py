"""End users rating a bot's answers: Slack's feedback buttons, Telegram's reactions and the web
page's thumbs all arrive here. A rating names an answer the person could see: by the platform's
reference to the sent message (kept when it was sent), or by the answer's id within the
conversation the person is in; anything else is ignored. Ratings are idempotent (a replayed
event sets the same value), so they need no dedupe."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from sqlalchemy import Connection

from storage import feedback as feedback_store
from storage.batch import WriteBatcher
from storage.database import Database

logger = logging.getLogger(__name__)

Rating = Literal[1, -1, 0]  # up, down, taken back


class Ratings:
    def __init__(self, db: Database, writes: WriteBatcher) -> None:
        self.db = db
        self.writes = writes
        # Platform references of answers just sent, written together: a busy service writes
        # the references of many sends in one statement, off the send's own write.
        self._sent: list[feedback_store.SentRow] = []
        self._writing: asyncio.Task[None] | None = None

    def sent(self, *, deployment_id: str, ref: str, message_id: int) -> None:
        """A platform names the sent answer `message_id` `ref` (a Telegram chat and message
        id, a Slack channel and ts): kept shortly, with the others sent meanwhile."""
        self._sent.append(feedback_store.SentRow(deployment_id, ref, message_id))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.ensure_future(self._write_sent())

    async def settled(self) -> None:
        """Wait until the references of answers sent so far are written (before a rating
        looks one up, and at shutdown)."""
        while self._writing is not None and not self._writing.done():
            await asyncio.shield(self._writing)

    async def _write_sent(self) -> None:
        while self._sent:
            rows, self._sent = self._sent, []

            def write(conn: Connection, rows: list[feedback_store.SentRow] = rows) -> None:
                feedback_store.remember_sent(conn, rows)

            try:
                await self.writes.run(write)
            except Exception:  # a rating of those answers will find nothing; nothing else
                logger.exception("the references of %d sent answers were not kept", len(rows))

    async def by_ref(
        self, *, deployment_id: str, ref: str, user: str, channel: str, rating: Rating
    ) -> bool:
        """Rate the answer the platform names `ref` on this deployment; False: no such answer."""
        await self.settled()
        async with self.db.read_conn() as conn:
            found = await feedback_store.answer_by_ref(conn, deployment_id=deployment_id, ref=ref)
        if found is None:
            return False
        message_id, bot_id = found
        await self._store(message_id, bot_id, user=user, channel=channel, rating=rating)
        return True

    async def by_answer(
        self,
        *,
        deployment_id: str,
        conversation: str,
        message_id: int,
        user: str,
        channel: str,
        rating: Rating,
    ) -> bool:
        """Rate answer `message_id` of the conversation at (`deployment_id`, `conversation`);
        False: it is not an answer of that conversation."""
        async with self.db.read_conn() as conn:
            bot_id = await feedback_store.answer_in_conversation(
                conn,
                deployment_id=deployment_id,
                conversation_key=conversation,
                message_id=message_id,
            )
        if bot_id is None:
            return False
        await self._store(message_id, bot_id, user=user, channel=channel, rating=rating)
        return True

    async def _store(
        self, message_id: int, bot_id: int, *, user: str, channel: str, rating: Rating
    ) -> None:
        def write(conn: Connection) -> None:
            feedback_store.rate(
                conn,
                message_id=message_id,
                bot_id=bot_id,
                user=user,
                channel=channel,
                rating=rating,
            )

        await self.writes.run(write)
