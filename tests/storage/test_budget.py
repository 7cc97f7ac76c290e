"""A bot's live spend and its budget notices, on SQLite and (when available) PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import text

from storage import budget
from storage.bots import BotRepository
from storage.database import Database
from storage.tables import utcnow
from tests.storage.spend import spend, team_and_bot


async def test_the_spend_counts_live_answers_since_the_given_time(any_db: Database) -> None:
    _, bot_id = await team_and_bot(any_db)
    _, other_id = await team_and_bot(any_db, "other-bot")
    now = utcnow()
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    await spend(any_db, bot_id, 0.25, 0.5, None)
    await spend(any_db, bot_id, 4.0, sandbox=True)  # /try: never counted
    await spend(any_db, bot_id, 8.0, at=start - timedelta(seconds=1))  # last month
    await spend(any_db, other_id, 16.0)
    async with any_db.read_conn() as conn:
        assert await budget.spent_since(conn, bot_id, start) == pytest.approx(0.75)
        assert await budget.spent_since(conn, bot_id, start - timedelta(days=40)) == (
            pytest.approx(8.75)
        )
        assert await budget.spent_since(conn, other_id, start) == pytest.approx(16.0)
        assert await budget.spent_since(conn, 999, start) == 0.0


async def test_a_notice_is_claimed_once_even_by_racing_workers(any_db: Database) -> None:
    _, bot_id = await team_and_bot(any_db)
    claim = partial(budget.claim_notice, bot_id=bot_id, month="2026-12", level=80)
    claims = await asyncio.gather(*[any_db.run_write(claim) for _ in range(5)])
    assert sorted(claims) == [False, False, False, False, True]
    assert await any_db.run_write(partial(claim, level=100)) is True
    assert await any_db.run_write(partial(claim, month="2027-01")) is True
    async with any_db.read_conn() as conn:
        assert await budget.notices(conn, bot_id, "2026-12") == [80, 100]
        assert await budget.notices(conn, bot_id, "2027-01") == [80]


async def test_notices_go_with_their_bot(any_db: Database) -> None:
    _, bot_id = await team_and_bot(any_db)
    await any_db.run_write(partial(budget.claim_notice, bot_id=bot_id, month="2026-12", level=100))
    async with any_db.write() as session:
        repo = BotRepository(session)
        bot = await repo.by_id(bot_id)
        assert bot is not None
        await repo.delete(bot)
    async with any_db.read_conn() as conn:
        count = (await conn.execute(text("select count(*) from budget_notice"))).scalar()
    assert count == 0
