"""Handoffs: conversations handed to people of the team, and the posts in their rooms.

Reads are async; writes are plain functions of a `Connection` (`Runtime.writes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import HandoffPost, HandoffRecord

_handoff = HandoffRecord.__table__  # type: ignore[attr-defined]
_post = HandoffPost.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class NewHandoff:
    bot_id: int
    deployment_id: str
    conversation_key: str
    address: dict[str, Any]
    room_kind: str
    room: str
    room_name: str
    thread: str
    reason: str
    timeout_minutes: int
    opened_at: datetime
    expires_at: datetime

    def opened(self, handoff_id: int) -> OpenHandoff:
        """This handoff as the runtime keeps it once recorded (`open_handoff` gave its id)."""
        return OpenHandoff(
            id=handoff_id,
            bot_id=self.bot_id,
            deployment_id=self.deployment_id,
            conversation_key=self.conversation_key,
            address=self.address,
            room_kind=self.room_kind,
            room=self.room,
            room_name=self.room_name,
            thread=self.thread,
            timeout_minutes=self.timeout_minutes,
            expires_at=self.expires_at,
            posts=[self.thread],
        )


@dataclass(slots=True)
class OpenHandoff:
    """An open handoff as the runtime keeps it in memory (`posts`: its room's message ids)."""

    id: int
    bot_id: int
    deployment_id: str
    conversation_key: str
    address: dict[str, Any]
    room_kind: str
    room: str
    room_name: str
    thread: str
    timeout_minutes: int
    expires_at: datetime
    answered: bool = False
    posts: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class HandoffStats:
    count: int
    first_answer_s: list[float]  # seconds from the handoff to the first human answer, sorted


def open_handoff(conn: Connection, new: NewHandoff) -> int:
    """Record a handoff whose first post is `new.thread` in its room; its id."""
    result = conn.execute(
        insert(_handoff).values(
            bot_id=new.bot_id,
            deployment_id=new.deployment_id,
            conversation_key=new.conversation_key,
            address=new.address,
            room_kind=new.room_kind,
            room=new.room,
            room_name=new.room_name[:200],
            thread=new.thread,
            reason=new.reason[:500],
            timeout_minutes=new.timeout_minutes,
            opened_at=new.opened_at,
            expires_at=new.expires_at,
        )
    )
    handoff_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    add_post(
        conn, handoff_id=handoff_id, room_kind=new.room_kind, room=new.room, message_id=new.thread
    )
    return handoff_id


def add_post(
    conn: Connection, *, handoff_id: int, room_kind: str, room: str, message_id: str
) -> None:
    """A message of the handoff's room: a reply to it reaches the handoff."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    row = {"room_kind": room_kind, "room": room, "message_id": message_id, "handoff_id": handoff_id}
    conn.execute(dialect.insert(_post).values(**row).on_conflict_do_nothing())


def answered(conn: Connection, handoff_id: int, *, at: datetime, expires_at: datetime) -> None:
    """A person of the team answered at `at`: the first answer is kept, the timeout moves on."""
    conn.execute(
        update(_handoff)
        .where(_handoff.c.id == handoff_id, _handoff.c.first_answer_at.is_(None))
        .values(first_answer_at=at)
    )
    conn.execute(update(_handoff).where(_handoff.c.id == handoff_id).values(expires_at=expires_at))


def close(conn: Connection, handoff_id: int, *, at: datetime, by: str) -> bool:
    """End an open handoff; False when it had ended already."""
    result = conn.execute(
        update(_handoff)
        .where(_handoff.c.id == handoff_id, _handoff.c.closed_at.is_(None))
        .values(closed_at=at, closed_by=by[:200])
    )
    return bool(result.rowcount)


async def open_handoffs(
    conn: AsyncConnection, *, ids: Sequence[int] | None = None
) -> list[OpenHandoff]:
    """Every open handoff (or those of `ids` that are open) with its posts."""
    query = select(_handoff).where(_handoff.c.closed_at.is_(None))
    if ids is not None:
        query = query.where(_handoff.c.id.in_(ids))
    rows = (await conn.execute(query)).all()
    found = {
        row.id: OpenHandoff(
            id=row.id,
            bot_id=row.bot_id,
            deployment_id=row.deployment_id,
            conversation_key=row.conversation_key,
            address=row.address,
            room_kind=row.room_kind,
            room=row.room,
            room_name=row.room_name,
            thread=row.thread,
            timeout_minutes=row.timeout_minutes,
            expires_at=_aware(row.expires_at),
            answered=row.first_answer_at is not None,
        )
        for row in rows
    }
    if found:
        posts = select(_post.c.handoff_id, _post.c.message_id).where(
            _post.c.handoff_id.in_(list(found))
        )
        for handoff_id, message_id in (await conn.execute(posts)).all():
            found[handoff_id].posts.append(message_id)
    return list(found.values())


async def stats(conn: AsyncConnection, bot_id: int, since: datetime) -> HandoffStats:
    """The bot's handoffs opened since `since`, and how long each answered one waited."""
    query = select(_handoff.c.opened_at, _handoff.c.first_answer_at).where(
        and_(_handoff.c.bot_id == bot_id, _handoff.c.opened_at >= since)
    )
    rows = (await conn.execute(query)).all()
    waits = sorted(
        (_aware(answer) - _aware(opened)).total_seconds()
        for opened, answer in rows
        if answer is not None
    )
    return HandoffStats(count=len(rows), first_answer_s=waits)


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes (stored as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
