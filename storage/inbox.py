"""The inbox and outbox of ARCHITECTURE principle 10: acknowledged means recorded.

The unique dedupe key and `INSERT ... ON CONFLICT DO NOTHING` decide "duplicate" (the row count,
never a check-then-insert). Writes are plain functions of a `Connection`, run by
`Database.run_write`; reads are async.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import InboxItem, OutboxItem, utcnow

_inbox = InboxItem.__table__  # type: ignore[attr-defined]
_outbox = OutboxItem.__table__  # type: ignore[attr-defined]


def record_inbound(
    conn: Connection, *, dedupe_key: str, deployment_id: str, payload: dict[str, Any]
) -> int | None:
    """The new inbox row's id, or None when this key was seen before."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(_inbox)
        .values(
            dedupe_key=dedupe_key,
            deployment_id=deployment_id,
            payload=payload,
            status="pending",
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(_inbox.c.id)
    )
    return (conn.execute(statement)).scalar()


def set_inbox_status(conn: Connection, item_id: int, status: str) -> None:
    conn.execute(update(_inbox).where(_inbox.c.id == item_id).values(status=status))


async def pending_inbox(conn: AsyncConnection) -> list[tuple[int, str, dict[str, Any]]]:
    query = (
        select(_inbox.c.id, _inbox.c.deployment_id, _inbox.c.payload)
        .where(_inbox.c.status == "pending")
        .order_by(_inbox.c.id)
    )
    return [(i, d, p) for i, d, p in (await conn.execute(query)).all()]


def add_outbound(conn: Connection, *, deployment_id: str, payload: dict[str, Any]) -> int:
    result = conn.execute(
        _outbox.insert().values(
            deployment_id=deployment_id, payload=payload, status="pending", created_at=utcnow()
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def mark_outbound(conn: Connection, item_id: int, *, status: str, error: str | None = None) -> None:
    conn.execute(
        update(_outbox)
        .where(_outbox.c.id == item_id)
        .values(status=status, error=error, sent_at=utcnow() if status == "sent" else None)
    )


async def pending_outbox(conn: AsyncConnection) -> list[tuple[int, str, dict[str, Any]]]:
    query = (
        select(_outbox.c.id, _outbox.c.deployment_id, _outbox.c.payload)
        .where(_outbox.c.status == "pending")
        .order_by(_outbox.c.id)
    )
    return [(i, d, p) for i, d, p in (await conn.execute(query)).all()]


def expire(conn: Connection, *, before: datetime) -> None:
    """Forget finished rows older than `before` (dedupe only needs the platforms' retry window)."""
    conn.execute(delete(_inbox).where(_inbox.c.status != "pending", _inbox.c.received_at < before))
    conn.execute(
        delete(_outbox).where(_outbox.c.status != "pending", _outbox.c.created_at < before)
    )
