"""Live A/B tests at turn time: each end user sticks to one variant on every turn, the split
matches the percentage, and every answer is stored with its test and variant."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from builders.spec import BotSpec
from runtime.ab import variant_of
from runtime.channel import ChannelRegistry
from runtime.llm import LlmGateway
from runtime.messages import Address, IncomingMessage
from runtime.runtime import Runtime
from storage import abtests as ab_store
from storage.bots import BotRepository
from storage.database import Database
from storage.deployments import DeploymentRepository
from storage.tables import Message
from storage.teams import TeamRepository

USERS = 1_000
PERCENT = 20
TOLERANCE = 3  # percentage points


def test_a_user_always_gets_the_same_variant_and_the_split_is_the_percentage() -> None:
    for percent in (1, 20, 50, 99):
        seen = [
            variant_of(bot_id=7, channel="telegram", user=str(n), percent=percent)
            for n in range(10_000)
        ]
        again = [
            variant_of(bot_id=7, channel="telegram", user=str(n), percent=percent)
            for n in range(10_000)
        ]
        assert seen == again
        assert abs(seen.count("B") / 100 - percent) < 1.5
    # Another bot hashes the same people differently; a larger share keeps its B users.
    one = [variant_of(bot_id=1, channel="web", user=str(n), percent=20) for n in range(2_000)]
    two = [variant_of(bot_id=2, channel="web", user=str(n), percent=20) for n in range(2_000)]
    assert one != two
    more = [variant_of(bot_id=1, channel="web", user=str(n), percent=40) for n in range(2_000)]
    assert all(m == "B" for o, m in zip(one, more, strict=True) if o == "B")


@dataclass
class World:
    db: Database
    runtime: Runtime
    deployment_id: str
    bot_id: int
    test_id: int


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    """A bot whose production runs v1 while v2 gets PERCENT% of the end users (the offline
    model answers each version's fallback, which names it)."""
    async with db.write() as session:
        team = await TeamRepository(session).create("t")
        assert team.id is not None
        repo = BotRepository(session)
        bot = await repo.create(team.id, BotSpec(name="echo", fallback="v1 says hi"))
        assert bot.id is not None
        first = await repo.add_version(
            bot, BotSpec(name="echo", fallback="v1 says hi"), created_by="t"
        )
        await repo.add_version(bot, BotSpec(name="echo", fallback="v2 says hi"), created_by="t")
        assert first.id is not None
        await repo.set_pointer(bot.id, "production", first.id)
        deployment = await DeploymentRepository(session).create(
            team_id=team.id, bot_id=bot.id, channel="web", env="production", target="site"
        )
        test = await ab_store.start(
            await session.connection(),
            bot_id=bot.id,
            env="production",
            version_a=1,
            version_b=2,
            percent=PERCENT,
            by="t",
        )
    runtime = Runtime(db=db, llm=LlmGateway(), channels=ChannelRegistry())
    yield World(db, runtime, deployment.id, bot.id, test.id)
    await runtime.drain()


def _said(world: World, user: int, text: str) -> IncomingMessage:
    address = Address(
        channel="web", deployment_id=world.deployment_id, conversation=f"s{user}", user=f"u{user}"
    )
    return IncomingMessage(address=address, text=text)


async def test_a_thousand_users_stick_to_their_variant_turn_after_turn(world: World) -> None:
    replies: dict[int, list[str]] = {}
    for turn in ("hello", "and again"):
        for start in range(0, USERS, 100):  # conversations side by side, as in production
            batch = range(start, start + 100)
            answered = await asyncio.gather(
                *(world.runtime.answer(_said(world, user, turn)) for user in batch)
            )
            for user, reply in zip(batch, answered, strict=True):
                replies.setdefault(user, []).append(reply.text)
    expected = {
        user: variant_of(bot_id=world.bot_id, channel="web", user=f"u{user}", percent=PERCENT)
        for user in range(USERS)
    }
    for user, texts in replies.items():
        version = "v2" if expected[user] == "B" else "v1"
        assert texts == [f"{version} says hi"] * 2, user
    share_b = Counter(expected.values())["B"] / USERS * 100
    assert abs(share_b - PERCENT) <= TOLERANCE

    msg = Message.__table__  # type: ignore[attr-defined]
    async with world.db.read_conn() as conn:
        rows = (
            await conn.execute(select(msg.c.role, msg.c.ab_test_id, msg.c.variant, msg.c.version))
        ).all()
    answers = [r for r in rows if r.role == "assistant"]
    assert len(answers) == 2 * USERS
    assert {r.ab_test_id for r in answers} == {world.test_id}
    assert Counter(r.variant for r in answers)["B"] == 2 * Counter(expected.values())["B"]
    assert all((r.variant == "B") == (r.version == 2) for r in answers)
    assert {r.variant for r in rows if r.role == "user"} == {None}  # only answers carry it


async def test_an_ended_test_sends_everyone_back_to_the_environment(world: World) -> None:
    b_user = next(
        n
        for n in range(100)
        if variant_of(bot_id=world.bot_id, channel="web", user=f"u{n}", percent=PERCENT) == "B"
    )
    assert (await world.runtime.answer(_said(world, b_user, "hi"))).text == "v2 says hi"
    async with world.db.write_conn() as conn:
        assert await ab_store.end(conn, world.test_id, status="stopped", by="t", reason="x")
    assert (await world.runtime.answer(_said(world, b_user, "hi"))).text == "v2 says hi"  # cached
    world.runtime.ab_changed(world.bot_id)  # what ending a test does
    reply = await world.runtime.answer(_said(world, b_user, "hi"))
    assert reply.text == "v1 says hi" and reply.version == 1 and reply.message_id is not None
    msg = Message.__table__  # type: ignore[attr-defined]
    async with world.db.read_conn() as conn:
        row = (
            await conn.execute(
                select(msg.c.variant, msg.c.ab_test_id).where(msg.c.id == reply.message_id)
            )
        ).one()
    assert (row.variant, row.ab_test_id) == (None, None)  # no longer in the test
