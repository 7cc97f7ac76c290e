"""The inbox and outbox of ARCHITECTURE principle 10: acknowledged means recorded.

The unique dedupe key and `INSERT ... ON CONFLICT DO NOTHING` decide "duplicate" (the row count,
never a check-then-insert). Writes are plain functions of a `Connection`, run by
`Database.run_write`; reads are async.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import InboxItem, OutboxItem, utcnow

_inbox = InboxItem.__table__  # type: ignore[attr-defined]
_outbox = OutboxItem.__table__  # type: ignore[attr-defined]


# The hot-path statements are built once, with bound parameters: building a statement with
# literal values costs more CPU than SQLite takes to run it (measured: ~0.1 ms a statement).
_RECORD = {
    dialect.dialect.name: dialect.insert(_inbox)
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    .returning(_inbox.c.id)
    for dialect in (sqlite, postgresql)
}
_SET_INBOX_STATUS = (
    update(_inbox).where(_inbox.c.id == bindparam("b_id")).values(status=bindparam("b_status"))
)
_ADD_OUTBOUND = _outbox.insert()
_MARK_OUTBOUND = (
    update(_outbox)
    .where(_outbox.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), error=bindparam("b_error"), sent_at=bindparam("b_at"))
)


def record_inbound(
    conn: Connection,
    *,
    dedupe_key: str,
    deployment_id: str,
    conversation: str,
    payload: dict[str, Any],
    worker: str | None,
) -> int | None:
    """The new inbox row's id, or None when this key was seen before."""
    row = {
        "dedupe_key": dedupe_key,
        "deployment_id": deployment_id,
        "conversation": conversation,
        "worker": worker,
        "payload": payload,
        "status": "pending",
        "received_at": utcnow(),
    }
    return conn.execute(_RECORD[conn.dialect.name], row).scalar()


def set_inbox_status(conn: Connection, item_id: int, status: str) -> None:
    conn.execute(_SET_INBOX_STATUS, {"b_id": item_id, "b_status": status})


_ANSWERED = (
    update(_inbox)
    .where(_inbox.c.id == bindparam("b_id"), _inbox.c.status == "pending")
    .values(status="done")
)


def answered(conn: Connection, item_id: int) -> bool:
    """Mark the message answered; False when it was not waiting any more (answered by another
    worker, whose lock on the conversation was lost meanwhile): this answer must not be kept."""
    return conn.execute(_ANSWERED, {"b_id": item_id}).rowcount == 1


class Waiting(NamedTuple):
    """A message not answered yet, or a reply not sent yet."""

    id: int
    payload: dict[str, Any]
    worker: str | None  # who accepted or stored it (None: a version that did not say)
    at: datetime


async def pending_inbox(conn: AsyncConnection) -> list[Waiting]:
    """Messages accepted and not answered, oldest first."""
    query = (
        select(_inbox.c.id, _inbox.c.payload, _inbox.c.worker, _inbox.c.received_at)
        .where(_inbox.c.status == "pending")
        .order_by(_inbox.c.id)
    )
    return [Waiting(*row) for row in (await conn.execute(query)).all()]


_PENDING_OF = (
    select(_inbox.c.id, _inbox.c.payload)
    .where(
        _inbox.c.deployment_id == bindparam("b_deployment"),
        _inbox.c.conversation == bindparam("b_conversation"),
        _inbox.c.status == "pending",
        _inbox.c.id <= bindparam("b_up_to"),
    )
    .order_by(_inbox.c.id)
)


async def pending_of(
    conn: AsyncConnection, *, deployment_id: str, conversation: str, up_to: int
) -> list[tuple[int, dict[str, Any]]]:
    """The conversation's messages not answered yet, oldest first, up to inbox row `up_to`."""
    params = {"b_deployment": deployment_id, "b_conversation": conversation, "b_up_to": up_to}
    return [(i, p) for i, p in (await conn.execute(_PENDING_OF, params)).all()]


def add_outbound(
    conn: Connection, *, deployment_id: str, payload: dict[str, Any], worker: str | None
) -> int:
    row = {
        "deployment_id": deployment_id,
        "worker": worker,
        "payload": payload,
        "status": "pending",
        "created_at": utcnow(),
    }
    result = conn.execute(_ADD_OUTBOUND, row)
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def mark_outbound(conn: Connection, item_id: int, *, status: str, error: str | None = None) -> None:
    sent_at = utcnow() if status == "sent" else None
    conn.execute(
        _MARK_OUTBOUND, {"b_id": item_id, "b_status": status, "b_error": error, "b_at": sent_at}
    )


async def pending_outbox(conn: AsyncConnection) -> list[Waiting]:
    """Replies stored and not sent, oldest first."""
    query = (
        select(_outbox.c.id, _outbox.c.payload, _outbox.c.worker, _outbox.c.created_at)
        .where(_outbox.c.status == "pending")
        .order_by(_outbox.c.id)
    )
    return [Waiting(*row) for row in (await conn.execute(query)).all()]


async def outbox_pending(conn: AsyncConnection, outbox_id: int) -> bool:
    """Whether the reply is still to be sent (nobody sent it meanwhile)."""
    query = select(_outbox.c.status).where(_outbox.c.id == outbox_id)
    return (await conn.execute(query)).scalar() == "pending"


def expire(conn: Connection, *, before: datetime) -> None:
    """Forget finished rows older than `before` (dedupe only needs the platforms' retry window)."""
    conn.execute(delete(_inbox).where(_inbox.c.status != "pending", _inbox.c.received_at < before))
    conn.execute(
        delete(_outbox).where(_outbox.c.status != "pending", _outbox.c.created_at < before)
    )
