"""Recording what a bot spent, for the budget tests: a conversation with priced turns."""

from __future__ import annotations

import itertools
from datetime import datetime
from functools import partial

from sqlalchemy import update

from builders.spec import BotSpec
from storage import conversations as conv
from storage.bots import BotRepository
from storage.database import Database
from storage.tables import Message
from storage.teams import TeamRepository

_keys = itertools.count(1)


async def team_and_bot(db: Database, name: str = "faq-bot") -> tuple[int, int]:
    """(team id, bot id) of a new team with one bot."""
    async with db.write() as session:
        team = await TeamRepository(session).create(f"team-{name}")
        assert team.id is not None
        bot = await BotRepository(session).create(team.id, BotSpec(name=name))
    assert bot.id is not None
    return team.id, bot.id


async def spend(
    db: Database,
    bot_id: int,
    *costs: float | None,
    at: datetime | None = None,
    sandbox: bool = False,
) -> None:
    """One conversation whose answers cost `costs` (None: an unknown price), stored now or
    dated `at`."""
    new = conv.NewConversation(
        bot_id=bot_id,
        deployment_id=None,
        channel="web",
        key=f"conversation-{next(_keys)}",
        user="web:alice",
        sandbox=sandbox,
    )
    conversation_id = await db.run_write(partial(conv.start_conversation, new=new))
    records = []
    for cost in costs:
        records += [
            conv.TurnRecord("user", "q", cost_usd=None),
            conv.TurnRecord("assistant", "a", cost_usd=cost),
        ]
    await db.run_write(
        partial(conv.add_messages, conversation_id=conversation_id, bot_id=bot_id, records=records)
    )
    if at is not None:
        moved = (
            update(Message)
            .where(Message.conversation_id == conversation_id)  # type: ignore[arg-type]
            .values(created_at=at)
        )
        async with db.write_conn() as c:
            await c.execute(moved)
