"""Conversation exports' reads (`storage.exports`): a bot's real messages of a window, paged by
(conversation, message) keyset with their ratings; other bots, `/try` and other times are left
out. Run on SQLite and (when available) PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from sqlalchemy import Connection, update

from builders.spec import BotSpec
from storage import conversations as conv
from storage import exports
from storage import feedback as feedback_store
from storage.bots import BotRepository
from storage.database import Database
from storage.tables import Message, utcnow
from storage.teams import TeamRepository

_msg = Message.__table__  # type: ignore[attr-defined]


async def _bots(db: Database) -> tuple[int, int]:
    async with db.write() as session:
        team = await TeamRepository(session).create("acme")
        assert team.id is not None
        repo = BotRepository(session)
        bots = [await repo.create(team.id, BotSpec(name=name)) for name in ("one", "two")]
    assert bots[0].id is not None and bots[1].id is not None
    return bots[0].id, bots[1].id


def _talk(
    conn: Connection, bot_id: int, key: str, texts: list[str], *, sandbox: bool = False
) -> list[int]:
    new = conv.NewConversation(bot_id, None, "web", key, f"user-{key}", sandbox=sandbox)
    conversation_id = conv.start_conversation(conn, new)
    records = [
        conv.TurnRecord(role="user", text=text)
        if i % 2 == 0
        else conv.TurnRecord(
            role="assistant",
            text=text,
            version=2,
            latency_ms=12.5,
            prompt_tokens=30,
            completion_tokens=7,
            cost_usd=0.0001,
            ab_test_id=4,
            variant="B",
        )
        for i, text in enumerate(texts)
    ]
    return conv.add_messages(conn, conversation_id=conversation_id, bot_id=bot_id, records=records)


def _age(conn: Connection, message_ids: list[int], days: int) -> None:
    conn.execute(
        update(_msg)
        .where(_msg.c.id.in_(message_ids))
        .values(created_at=utcnow() - timedelta(days=days))
    )


async def _all(db: Database, bot_id: int, *, limit: int) -> list[exports.ExportedMessage]:
    until = utcnow() + timedelta(seconds=1)
    since = until - timedelta(days=7)
    async with db.read_conn() as c:
        totals = await exports.totals(c, bot_id, since=since, until=until)
    assert totals.first_conversation is not None
    found: list[exports.ExportedMessage] = []
    after = (totals.first_conversation, 0)
    while True:
        async with db.read_conn() as c:
            page = await exports.page(c, bot_id, since=since, until=until, after=after, limit=limit)
        found += page
        if len(page) < limit:
            return found
        after = page[-1].key


async def test_a_window_pages_through_real_conversations_only(any_db: Database) -> None:
    bot, other = await _bots(any_db)
    first = await any_db.run_write(partial(_talk, bot_id=bot, key="k1", texts=["a", "b", "c"]))
    await any_db.run_write(partial(_talk, bot_id=bot, key="try", texts=["t", "u"], sandbox=True))
    await any_db.run_write(partial(_talk, bot_id=other, key="k2", texts=["x", "y"]))
    second = await any_db.run_write(partial(_talk, bot_id=bot, key="k3", texts=["d", "e", "f"]))
    await any_db.run_write(partial(_age, message_ids=second[:1], days=8))  # before the window
    await any_db.run_write(
        partial(
            feedback_store.rate,
            message_id=first[1],
            bot_id=bot,
            user="u1",
            channel="web",
            rating=-1,
        )
    )
    for user in ("u1", "u2"):
        await any_db.run_write(
            partial(
                feedback_store.rate,
                message_id=second[1],
                bot_id=bot,
                user=user,
                channel="web",
                rating=1,
            )
        )
    until = utcnow() + timedelta(seconds=1)
    async with any_db.read_conn() as c:
        totals = await exports.totals(c, bot, since=until - timedelta(days=7), until=until)
        before = until - timedelta(days=10)
        empty = await exports.totals(c, bot, since=before - timedelta(days=30), until=before)
    assert (totals.messages, totals.conversations) == (5, 2)
    assert empty == exports.ExportTotals(0, 0, None)

    for limit in (1, 2, 1000):  # page boundaries inside and between conversations
        rows = await _all(any_db, bot, limit=limit)
        assert [(r.message.text, r.user) for r in rows] == [
            ("a", "user-k1"),
            ("b", "user-k1"),
            ("c", "user-k1"),
            ("e", "user-k3"),
            ("f", "user-k3"),
        ]
    answer = rows[1]
    assert answer.message.id == first[1] and answer.channel == "web"
    assert (answer.message.role, answer.message.version, answer.message.variant) == (
        "assistant",
        2,
        "B",
    )
    assert (answer.ab_test_id, answer.message.prompt_tokens, answer.message.cost_usd) == (
        4,
        30,
        0.0001,
    )
    assert (answer.message.ratings_up, answer.message.ratings_down) == (0, 1)
    assert (rows[3].message.ratings_up, rows[3].message.ratings_down) == (2, 0)
    assert rows[0].ab_test_id is None and rows[0].message.latency_ms is None
    assert rows[2].conversation_id < rows[3].conversation_id
