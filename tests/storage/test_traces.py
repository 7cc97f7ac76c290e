"""Turns read back with their traces (SQLite and, when marked, PostgreSQL): newest first, the
user's message before each answer, only real conversations and the reader's own sandbox."""

from __future__ import annotations

from functools import partial

from storage import conversations as conv
from storage import traces
from storage.database import Database
from tests.storage.test_repositories import _team_and_bot

TRACE = {"v": 1, "model": "offline", "steps": [{"id": "answer", "kind": "llm", "ms": 1.5}]}


async def _conversation(db: Database, bot_id: int, key: str, *, user: str, sandbox: bool) -> int:
    new = conv.NewConversation(
        bot_id=bot_id,
        deployment_id=None,
        channel="sandbox" if sandbox else "web",
        key=key,
        user=user,
        sandbox=sandbox,
    )
    return await db.run_write(partial(conv.start_conversation, new=new))


async def _turn(db: Database, bot_id: int, conversation_id: int, said: str, answer: str) -> None:
    records = [
        conv.TurnRecord("user", said),
        conv.TurnRecord("assistant", answer, version=1, latency_ms=3.0, trace=TRACE),
    ]
    await db.run_write(
        partial(conv.add_messages, conversation_id=conversation_id, bot_id=bot_id, records=records)
    )


async def test_traced_turns_newest_first_with_what_was_said(any_db: Database) -> None:
    _, bot = await _team_and_bot(any_db)
    assert bot.id is not None
    live = await _conversation(any_db, bot.id, "a", user="web:1", sandbox=False)
    mine = await _conversation(any_db, bot.id, "b", user="ada", sandbox=True)
    theirs = await _conversation(any_db, bot.id, "c", user="bob", sandbox=True)
    await _turn(any_db, bot.id, live, "hi", "hello")
    await _turn(any_db, bot.id, mine, "try me", "tried")
    await _turn(any_db, bot.id, theirs, "secret draft", "not yours")
    await _turn(any_db, bot.id, live, "again", "hello again")

    async with any_db.read_conn() as c:
        found = await traces.traced_turns(c, bot.id, sandbox_user="ada", limit=10)
        one = await traces.traced_turns(
            c, bot.id, sandbox_user="ada", conversation_id=live, limit=1
        )
        other = await traces.traced_turns(
            c, bot.id, sandbox_user="ada", conversation_id=theirs, limit=10
        )
    assert [(t.said, t.reply, t.sandbox) for t in found] == [
        ("again", "hello again", False),
        ("try me", "tried", True),
        ("hi", "hello", False),
    ]
    assert found[0].trace == TRACE and found[0].latency_ms == 3.0
    assert [t.reply for t in one] == ["hello again"]
    assert other == []  # another member's sandbox stays theirs


async def test_a_message_said_outside_a_turn_is_no_traced_answer(any_db: Database) -> None:
    """A trigger's, a schedule's or the team's message is kept alone, after the end user's last
    turn: it is not shown as the answer to what they said then."""
    _, bot = await _team_and_bot(any_db)
    assert bot.id is not None
    live = await _conversation(any_db, bot.id, "a", user="web:1", sandbox=False)
    await _turn(any_db, bot.id, live, "hello there", "hi!")
    proactive = conv.TurnRecord(
        "assistant", "Your order shipped.", version=1, parts=[{"type": "proactive"}]
    )
    await any_db.run_write(
        partial(conv.add_messages, conversation_id=live, bot_id=bot.id, records=[proactive])
    )
    async with any_db.read_conn() as c:
        found = await traces.traced_turns(c, bot.id, sandbox_user="ada", limit=10)
        one = await traces.traced_turns(
            c, bot.id, sandbox_user="ada", conversation_id=live, limit=1
        )
    assert [(t.said, t.reply) for t in found] == [("hello there", "hi!")]
    assert [t.reply for t in one] == ["hi!"]
