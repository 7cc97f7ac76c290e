"""Sent messages by the platform's id, and what the platform reported of them since: a report
moves a message forward (sent, delivered, read) or to failed, never back (reports arrive out of
order), and a report of a message this service never sent is told apart."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import Delivery, utcnow

_delivery = Delivery.__table__  # type: ignore[attr-defined]
STATUSES = ("sent", "delivered", "read", "failed")
_ERROR_CHARS = 500

_REMEMBER = {
    d.dialect.name: d.insert(_delivery).on_conflict_do_nothing(
        index_elements=["deployment_id", "platform_id"]
    )
    for d in (sqlite, postgresql)
}


def remember(conn: Connection, *, deployment_id: str, platform_id: str, outbox_id: int) -> None:
    """A message just sent (a repeat changes nothing)."""
    conn.execute(
        _REMEMBER[conn.dialect.name],
        {
            "deployment_id": deployment_id,
            "platform_id": platform_id[:200],
            "outbox_id": outbox_id,
            "status": "sent",
            "updated_at": utcnow(),
        },
    )


async def report(
    conn: AsyncConnection, *, deployment_id: str, platform_id: str, status: str, error: str | None
) -> bool:
    """Record a platform's report on a sent message; False when no such message was sent
    from this deployment (nothing is recorded then)."""
    where = (_delivery.c.deployment_id == deployment_id) & (
        _delivery.c.platform_id == platform_id[:200]
    )
    current = (await conn.execute(select(_delivery.c.status).where(where))).scalar_one_or_none()
    if current is None:
        return False
    if STATUSES.index(status) > STATUSES.index(current):
        await conn.execute(
            update(_delivery)
            .where(where)
            .values(
                status=status, error=(error or None) and error[:_ERROR_CHARS], updated_at=utcnow()
            )
        )
    return True


async def status_of(conn: AsyncConnection, *, deployment_id: str, platform_id: str) -> str | None:
    """The last status reported of a sent message (None: not one this deployment sent)."""
    query = select(_delivery.c.status).where(
        (_delivery.c.deployment_id == deployment_id) & (_delivery.c.platform_id == platform_id)
    )
    return (await conn.execute(query)).scalar_one_or_none()


def expire(conn: Connection, *, before: datetime) -> None:
    """Forget what was reported of messages last heard of before `before` (housekeeping)."""
    conn.execute(delete(_delivery).where(_delivery.c.updated_at < before))
