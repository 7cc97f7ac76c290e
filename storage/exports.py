"""Conversation exports: a bot's real (not `/try`) messages of a time window, read in short
pages by keyset on (conversation id, message id).

Each page is its own short read that starts where the last one stopped, so an export of a
million messages holds one page at a time and never keeps a read transaction open for the whole
download (SQLite's writer is never held back by it). Ordered by conversation, then message, so
the messages of one conversation come together (a JSON export nests them).

The walk goes from the bot's conversations (their `bot_id` index, in id order) to each one's
messages of the window (the `(conversation_id, created_at)` index): the order the pages ask for,
so no page sorts the window.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import ColumnElement, ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.conversations import StoredMessage
from storage.tables import Conversation, Feedback, Message

_conv = Conversation.__table__  # type: ignore[attr-defined]
_msg = Message.__table__  # type: ignore[attr-defined]
_fb = Feedback.__table__  # type: ignore[attr-defined]
# A `StoredMessage` is the message's columns of the same names, then its ratings up and down.
_STORED = [_msg.c[f.name] for f in fields(StoredMessage) if not f.name.startswith("ratings_")]


@dataclass(frozen=True, slots=True)
class ExportTotals:
    """What a window holds: its messages and conversations, and the first conversation (the
    keyset starts there; None: nothing to export)."""

    messages: int
    conversations: int
    first_conversation: int | None


@dataclass(frozen=True, slots=True)
class ExportedMessage:
    """One message with its conversation's particulars and the A/B test it was part of."""

    conversation_id: int
    channel: str
    user: str
    started_at: datetime
    message: StoredMessage
    ab_test_id: int | None

    @property
    def key(self) -> tuple[int, int]:
        """Where the next page starts (after this message)."""
        return self.conversation_id, self.message.id


def _in_window(bot_id: int, since: datetime, until: datetime) -> list[ColumnElement[bool]]:
    return [
        _conv.c.bot_id == bot_id,
        _conv.c.sandbox.is_(False),
        _msg.c.created_at >= since,
        _msg.c.created_at < until,
    ]


async def totals(
    conn: AsyncConnection, bot_id: int, *, since: datetime, until: datetime
) -> ExportTotals:
    """How many messages and conversations the bot's window holds (one aggregate read)."""
    joined = _msg.join(_conv, _conv.c.id == _msg.c.conversation_id)
    row = (
        await conn.execute(
            select(
                func.count(),
                func.count(func.distinct(_msg.c.conversation_id)),
                func.min(_msg.c.conversation_id),
            )
            .select_from(joined)
            .where(_msg.c.bot_id == bot_id, *_in_window(bot_id, since, until))
        )
    ).one()
    return ExportTotals(messages=row[0], conversations=row[1], first_conversation=row[2])


def _rated(positive: bool) -> ScalarSelect[int]:
    """The message's ratings up (or down), one count per person."""
    rating = _fb.c.rating > 0 if positive else _fb.c.rating < 0
    return (
        select(func.count())
        .where(_fb.c.message_id == _msg.c.id, rating)
        .correlate(_msg)
        .scalar_subquery()
    )


async def page(
    conn: AsyncConnection,
    bot_id: int,
    *,
    since: datetime,
    until: datetime,
    after: tuple[int, int],
    limit: int,
) -> list[ExportedMessage]:
    """At most `limit` messages of the window after `after` (a conversation id and a message
    id: `ExportedMessage.key`, or (`first_conversation`, 0) to begin), in that order.

    Two reads, each an index walk: the rest of the conversation the last page stopped in (from
    its message on, not from the conversation's start), then the conversations after it, each
    read only within the window (`ix_message_conversation_time`): a short window of a bot with
    long-lived conversations does not read their whole history."""
    conversation, message = after
    window = _in_window(bot_id, since, until)
    rows: list[ExportedMessage] = []
    if message:
        rest = [_msg.c.conversation_id == conversation, _msg.c.id > message]
        rows = await _read(conn, [*window, *rest], limit)
        onward = _conv.c.id > conversation
    else:
        onward = _conv.c.id >= conversation
    if len(rows) < limit:
        rows += await _read(conn, [*window, onward], limit - len(rows))
    return rows


async def _read(
    conn: AsyncConnection, where: list[ColumnElement[bool]], limit: int
) -> list[ExportedMessage]:
    query = (
        select(
            _conv.c.id,
            _conv.c.channel,
            _conv.c.user,
            _conv.c.started_at,
            *_STORED,
            _rated(True),
            _rated(False),
            _msg.c.ab_test_id,
        )
        .select_from(_conv.join(_msg, _msg.c.conversation_id == _conv.c.id))
        .where(*where)
        .order_by(_conv.c.id, _msg.c.id)
        .limit(limit)
    )
    stored = slice(4, 4 + len(_STORED) + 2)  # the message's columns and its two counts
    return [
        ExportedMessage(row[0], row[1], row[2], row[3], StoredMessage(*row[stored]), row[-1])
        for row in (await conn.execute(query)).all()
    ]
