"""A bot's end users as builders name them: found in its conversations and participant memory,
and forgotten from both. Reads are async; writes are plain functions of a `Connection`.

An end user is an address: a (channel, user id) pair, e.g. ("telegram", "telegram:12345") or
("sandbox", "slack:U123") for a member's `/try` conversations.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, delete, false, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import Conversation, Message, Participant

_conv: Table = Conversation.__table__  # type: ignore[attr-defined]
_msg: Table = Message.__table__  # type: ignore[attr-defined]
_part: Table = Participant.__table__  # type: ignore[attr-defined]

Address = tuple[str, str]  # (channel, user id)


@dataclass(frozen=True, slots=True)
class Match:
    """Which stored user ids a name covers: `user` (on `channel` only, when set); with `bare`,
    also every user id ending in `:user` (the same id on any channel)."""

    user: str
    channel: str | None = None
    bare: bool = False

    def covers(self, channel: str, user: str) -> bool:
        if self.channel is not None and channel != self.channel:
            return False
        return user == self.user or (self.bare and user.endswith(f":{self.user}"))

    def candidates(self, table: Table, bot_id: int) -> ColumnElement[bool]:
        """A superset of what `covers` accepts, for the database (SQLite's LIKE ignores case)."""
        user = table.c.user
        matched = user == self.user
        if self.bare:
            matched = or_(matched, user.endswith(f":{self.user}", autoescape=True))
        if self.channel is not None:
            matched = matched & (table.c.channel == self.channel)
        return (table.c.bot_id == bot_id) & matched


@dataclass(frozen=True, slots=True)
class MemoryRow:
    channel: str
    user: str
    data: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ForgottenRows:
    memory: int  # participant rows (one per address)
    conversations: int
    messages: int
    places: list[tuple[str | None, str]]  # (deployment id, key) of each forgotten conversation


def _at(table: Table, bot_id: int, addresses: Collection[Address]) -> ColumnElement[bool]:
    pairs = [(table.c.channel == channel) & (table.c.user == user) for channel, user in addresses]
    return (table.c.bot_id == bot_id) & (or_(*pairs) if pairs else false())


async def addresses(conn: AsyncConnection, bot_id: int, match: Match) -> list[Address]:
    """The addresses `match` covers that talked to the bot or are remembered by it, sorted;
    empty when the bot knows no such end user."""
    query = union(
        select(_conv.c.channel, _conv.c.user).where(match.candidates(_conv, bot_id)),
        select(_part.c.channel, _part.c.user).where(match.candidates(_part, bot_id)),
    )
    rows = (await conn.execute(query)).all()
    return sorted({(str(c), str(u)) for c, u in rows if match.covers(str(c), str(u))})


async def memory(conn: AsyncConnection, bot_id: int, at: Collection[Address]) -> list[MemoryRow]:
    """The memory at these addresses, by channel then user id."""
    query = (
        select(_part.c.channel, _part.c.user, _part.c.data, _part.c.updated_at)
        .where(_at(_part, bot_id, at))
        .order_by(_part.c.channel, _part.c.user)
    )
    return [MemoryRow(c, u, dict(d or {}), t) for c, u, d, t in (await conn.execute(query)).all()]


def forget_memory(conn: Connection, bot_id: int, at: Collection[Address]) -> int:
    """Delete the memory at these addresses; how many rows."""
    return int(conn.execute(delete(_part).where(_at(_part, bot_id, at))).rowcount or 0)


def forget_everything(conn: Connection, bot_id: int, at: Collection[Address]) -> ForgottenRows:
    """Delete the memory at these addresses, and the conversations held from them with their
    messages."""
    found = conn.execute(
        select(_conv.c.id, _conv.c.deployment_id, _conv.c.key).where(_at(_conv, bot_id, at))
    ).all()
    held = select(_conv.c.id).where(_at(_conv, bot_id, at))
    messages = conn.execute(select(func.count()).where(_msg.c.conversation_id.in_(held)))
    counted = int(messages.scalar() or 0)
    conn.execute(delete(_msg).where(_msg.c.conversation_id.in_(held)))
    conn.execute(delete(_conv).where(_at(_conv, bot_id, at)))
    return ForgottenRows(
        memory=forget_memory(conn, bot_id, at),
        conversations=len(found),
        messages=counted,
        places=[(row.deployment_id, row.key) for row in found],
    )
