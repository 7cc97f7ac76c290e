"""A bot's live spend, and the budget notices its owners were given (once each per month).

Reads are async; writes are plain functions of a `Connection` (`Database.run_write`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import BudgetNotice, Conversation, Message, utcnow

_conv = Conversation.__table__  # type: ignore[attr-defined]
_msg = Message.__table__  # type: ignore[attr-defined]
_notice = BudgetNotice.__table__  # type: ignore[attr-defined]


async def spent_since(conn: AsyncConnection, bot_id: int, since: datetime) -> float:
    """The cost of the bot's live turns (not `/try`) since `since`, in USD; unknown costs
    count as nothing."""
    query = (
        select(func.coalesce(func.sum(_msg.c.cost_usd), 0.0))
        .select_from(_msg.join(_conv, _conv.c.id == _msg.c.conversation_id))
        .where(
            and_(
                _msg.c.bot_id == bot_id,
                _msg.c.created_at >= since,
                _msg.c.role == "assistant",
                _conv.c.sandbox.is_(False),
            )
        )
    )
    return float((await conn.execute(query)).scalar() or 0.0)


def claim_notice(conn: Connection, *, bot_id: int, month: str, level: int) -> bool:
    """Record that the bot's owners are told of `level` percent in `month`; False when that was
    recorded already (by this process before a restart, or by another worker)."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    statement = dialect.insert(_notice).values(
        bot_id=bot_id, month=month, level=level, created_at=utcnow()
    )
    result = conn.execute(statement.on_conflict_do_nothing())
    return bool(result.rowcount)


async def notices(conn: AsyncConnection, bot_id: int, month: str) -> list[int]:
    """The levels the bot's owners were told of in `month`, lowest first."""
    query = (
        select(_notice.c.level)
        .where(_notice.c.bot_id == bot_id, _notice.c.month == month)
        .order_by(_notice.c.level)
    )
    return [int(level) for level in (await conn.execute(query)).scalars()]
