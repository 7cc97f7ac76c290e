"""Reading turns back with their traces (the trace is kept on the answer's message)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, desc, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.conversations import answered_by
from storage.tables import Conversation, Message

_conv = Conversation.__table__  # type: ignore[attr-defined]
_msg = Message.__table__  # type: ignore[attr-defined]
_said = _msg.alias("said")


@dataclass(frozen=True, slots=True)
class TracedTurn:
    """One answered turn: what was said before the answer (as stored: masked when the bot's PII
    guard is on), the answer and its numbers, and its trace (None: kept before traces were)."""

    message_id: int
    conversation_id: int
    channel: str
    sandbox: bool
    created_at: datetime
    said: str | None
    reply: str
    version: int | None
    variant: str | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    error: str | None
    trace: dict[str, Any] | None


async def traced_turns(
    conn: AsyncConnection,
    bot_id: int,
    *,
    sandbox_user: str,
    conversation_id: int | None = None,
    limit: int,
) -> list[TracedTurn]:
    """The bot's latest answers to turns, newest first: in real conversations and in
    `sandbox_user`'s own `/try` conversations (never another member's), in one conversation
    when given."""
    whose = or_(_conv.c.sandbox.is_(False), _conv.c.user == sandbox_user)
    query = (
        select(
            _msg.c.id,
            _msg.c.conversation_id,
            _conv.c.channel,
            _conv.c.sandbox,
            _msg.c.created_at,
            _said.c.text,
            _msg.c.text,
            _msg.c.version,
            _msg.c.variant,
            _msg.c.latency_ms,
            _msg.c.prompt_tokens,
            _msg.c.completion_tokens,
            _msg.c.cost_usd,
            _msg.c.error,
            _msg.c.trace,
        )
        .join_from(_msg, _conv, _conv.c.id == _msg.c.conversation_id)
        .join(_said, answered_by(_msg, _said))  # a message said outside a turn is no answer
        .where(and_(_msg.c.bot_id == bot_id, _msg.c.role == "assistant", whose))
        .order_by(desc(_msg.c.created_at), desc(_msg.c.id))
        .limit(limit)
    )
    if conversation_id is not None:
        query = query.where(_msg.c.conversation_id == conversation_id)
    return [TracedTurn(*tuple(row)) for row in (await conn.execute(query)).all()]
