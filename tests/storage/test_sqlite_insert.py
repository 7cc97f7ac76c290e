"""The hot path's INSERTs through SQLite's driver (`storage.sqlite_insert`) store exactly what
SQLAlchemy's Core statements store, on the writer thread and on the async engine alike, and fail
with SQLAlchemy's errors."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from storage import conversations as conv
from storage.database import Database
from storage.tables import utcnow
from tests.storage.test_repositories import _team_and_bot

TRACE = {"v": 1, "model": "offline", "steps": [{"id": "answer", "kind": "llm", "ms": 1.5}]}
RECORDS = [
    conv.TurnRecord("user", "héllo", parts=[{"file": "a.txt"}]),
    conv.TurnRecord(
        "assistant", "hi", version=2, latency_ms=3.0, prompt_tokens=5, cost_usd=0.25, trace=TRACE
    ),
]


def _with_core(conn: Connection, new: conv.NewConversation) -> list[int]:
    """The same rows through SQLAlchemy's own execution of the Core statements."""
    values = {
        "bot_id": new.bot_id,
        "deployment_id": new.deployment_id,
        "channel": new.channel,
        "key": new.key,
        "user": new.user,
        "sandbox": new.sandbox,
        "started_at": utcnow(),
    }
    conversation_id = conn.execute(conv._START_CONVERSATION, values).inserted_primary_key[0]  # type: ignore[index]
    rows = [
        {
            "conversation_id": conversation_id,
            "bot_id": new.bot_id,
            "role": r.role,
            "text": r.text,
            "parts": r.parts,
            "version": r.version,
            "latency_ms": r.latency_ms,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "cost_usd": r.cost_usd,
            "error": r.error,
            "ab_test_id": r.ab_test_id,
            "variant": r.variant,
            "trace": r.trace,
            "created_at": utcnow(),
        }
        for r in RECORDS
    ]
    return [int(i) for i in conn.execute(conv._ADD_MESSAGES, rows).scalars()]


def _with_driver(conn: Connection, new: conv.NewConversation) -> list[int]:
    conversation_id = conv.start_conversation(conn, new)
    return conv.add_messages(
        conn, conversation_id=conversation_id, bot_id=new.bot_id, records=RECORDS
    )


async def _stored(db: Database, conversation_id: int) -> list[tuple[Any, ...]]:
    """The stored rows as SQLite holds them (datetimes and JSON as text), without ids or times'
    values: a conversation, then its messages."""
    async with db.read_conn() as c:
        started = (
            await c.execute(
                text(
                    "select bot_id, deployment_id, channel, key, user, sandbox, "
                    "length(started_at), ended_at from conversation where id = :id"
                ),
                {"id": conversation_id},
            )
        ).all()
        said = (
            await c.execute(
                text(
                    "select bot_id, role, text, parts, version, latency_ms, prompt_tokens, "
                    "completion_tokens, cost_usd, error, ab_test_id, variant, trace, "
                    "length(created_at) from message where conversation_id = :id order by id"
                ),
                {"id": conversation_id},
            )
        ).all()
    return [tuple(row) for row in [*started, *said]]


async def _conversation_of(db: Database, message_id: int) -> int:
    async with db.read_conn() as c:
        found = await c.execute(
            text("select conversation_id from message where id = :id"), {"id": message_id}
        )
        return int(found.scalar_one())


async def test_the_driver_stores_what_sqlalchemy_stores(db: Database) -> None:
    _, bot = await _team_and_bot(db)
    assert bot.id is not None
    new = conv.NewConversation(bot_id=bot.id, deployment_id=None, channel="api", key="k", user="u")
    core = await db.run_write(partial(_with_core, new=new))
    driver = await db.run_write(partial(_with_driver, new=new))  # the writer thread's connection
    async with db.write_conn() as c:  # the async engine's (aiosqlite) connection
        through_async = await c.run_sync(partial(_with_driver, new=new))
    assert driver[1] == driver[0] + 1 and through_async[1] == through_async[0] + 1
    expected = await _stored(db, await _conversation_of(db, core[0]))
    assert expected[1][3] == '[{"file": "a.txt"}]' and expected[0][6] == 26  # text, as stored
    for ids in (driver, through_async):
        assert await _stored(db, await _conversation_of(db, ids[0])) == expected


async def test_a_failed_insert_raises_sqlalchemys_error(db: Database) -> None:
    new = conv.NewConversation(bot_id=999, deployment_id=None, channel="api", key="k", user="u")
    with pytest.raises(IntegrityError):  # no such bot: the foreign key refuses it
        await db.run_write(partial(conv.start_conversation, new=new))
