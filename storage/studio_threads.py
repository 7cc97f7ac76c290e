"""The channel threads the Studio talks in: remembered with each message there, forgotten by
housekeeping once idle. Writes are functions of a `Connection` (`Runtime.writes`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import StudioThread, utcnow

_thread = StudioThread.__table__  # type: ignore[attr-defined]


def remember(conn: Connection, *, key: str, team_id: int) -> None:
    """The thread `key` is the Studio's, in use now."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    now = utcnow()
    statement = dialect.insert(_thread).values(key=key, team_id=team_id, last_at=now)
    conn.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"last_at": now}))


async def known(conn: AsyncConnection, key: str) -> bool:
    found = await conn.execute(select(_thread.c.key).where(_thread.c.key == key))
    return found.first() is not None


def expire(conn: Connection, *, before: datetime) -> None:
    """Forget threads idle since before `before` (housekeeping)."""
    conn.execute(delete(_thread).where(_thread.c.last_at < before))
