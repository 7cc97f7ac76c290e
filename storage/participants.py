"""Participant memory rows: one per bot and end user (channel + user id)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import Participant, utcnow

_part = Participant.__table__  # type: ignore[attr-defined]


async def load(conn: AsyncConnection, *, bot_id: int, channel: str, user: str) -> dict[str, Any]:
    query = select(_part.c.data).where(
        _part.c.bot_id == bot_id, _part.c.channel == channel, _part.c.user == user
    )
    data = (await conn.execute(query)).scalar()
    return dict(data) if data else {}


def save(conn: Connection, *, bot_id: int, channel: str, user: str, data: dict[str, Any]) -> None:
    """Replace the person's memory with `data` (an upsert: the row is made on first write)."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    now = utcnow()
    statement = dialect.insert(_part).values(
        bot_id=bot_id, channel=channel, user=user, data=data, updated_at=now
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["bot_id", "channel", "user"], set_={"data": data, "updated_at": now}
        )
    )


def merge(
    conn: Connection, *, bot_id: int, channel: str, user: str, changes: dict[str, Any]
) -> None:
    """Write `changes` into the person's memory, keeping the keys they do not name (read in the
    write transaction, the row locked on PostgreSQL: what another turn or a builder wrote
    meanwhile stays)."""
    query = select(_part.c.data).where(
        _part.c.bot_id == bot_id, _part.c.channel == channel, _part.c.user == user
    )
    if conn.dialect.name != "sqlite":  # SQLite's write transaction already excludes others
        query = query.with_for_update()
    current = conn.execute(query).scalar()
    save(conn, bot_id=bot_id, channel=channel, user=user, data={**(current or {}), **changes})
