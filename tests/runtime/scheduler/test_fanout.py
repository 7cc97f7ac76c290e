"""A schedule without a target goes to each end user of the environment, in batches, and a
fan-out stopped in the middle goes on from its cursor: everyone gets it once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import Connection

from storage import conversations as conv_store
from storage.database import Database
from storage.deployments import DeploymentRepository
from tests.runtime.scheduler.conftest import World, make_world

NOON = datetime(2030, 3, 30, 12, tzinfo=UTC)
EVERYONE = {"id": "news", "cron": "0 12 * * *", "message": "Our news!"}


async def people(world: World, count: int) -> set[str]:
    """`count` end users with an open conversation each; plus what must not count: an older
    open conversation and an ended one of the same person, a sandbox one, and one on a staging
    deployment. The users who should get the message."""
    async with world.db.write() as session:
        staging = await DeploymentRepository(session).create(
            team_id=world.team_id, bot_id=world.bot_id, channel="test", env="staging", target="s"
        )

    def new(
        user: str, deployment: str | None, *, sandbox: bool = False
    ) -> conv_store.NewConversation:
        return conv_store.NewConversation(
            bot_id=world.bot_id,
            deployment_id=deployment,
            channel="test",
            key=f"chat-{user}",
            user=f"test:{user}",
            sandbox=sandbox,
        )

    def fill(conn: Connection) -> None:
        older = conv_store.start_conversation(conn, new("u1", world.deployment_id))
        ended = conv_store.start_conversation(conn, new("u2", world.deployment_id))
        conv_store.end_conversation(conn, ended)
        for n in range(count):
            conv_store.start_conversation(conn, new(f"u{n}", world.deployment_id))
        conv_store.start_conversation(conn, new("tryer", None, sandbox=True))
        conv_store.start_conversation(conn, new("stager", staging.id))
        assert older < ended

    await world.db.run_write(fill)
    return {f"test:u{n}" for n in range(count)}


async def kept_per_conversation(world: World) -> Counter[int]:
    rows = await world.rows(
        "select conversation_id from message where role = 'assistant' and text = 'Our news!'"
    )
    return Counter(conversation for (conversation,) in rows)


async def test_each_participant_gets_it_once_in_batches(world: World) -> None:
    world.restart(batch=7)
    wanted = await people(world, 30)
    await world.promote(schedules=[EVERYONE], at=datetime(2030, 3, 29, tzinfo=UTC))
    await world.scheduler.run_due(NOON)
    assert Counter(m.address.user for m in world.channel.sent) == Counter(wanted)
    assert {m.address.conversation for m in world.channel.sent} == {
        user.replace("test:", "chat-") for user in wanted
    }
    kept = await kept_per_conversation(world)
    assert len(kept) == 30 and set(kept.values()) == {1}
    ((status, sent, failed),) = await world.rows("select status, sent, failed from schedule_run")
    assert (status, sent, failed) == ("sent", 30, 0)


async def test_a_fan_out_stopped_in_the_middle_goes_on_from_its_cursor(db: Database) -> None:
    world = await make_world(db)
    world.restart(batch=40)
    wanted = await people(world, 300)
    await world.promote(schedules=[EVERYONE], at=datetime(2030, 3, 29, tzinfo=UTC))
    world.channel.hold_after = 100  # the platform stops answering after 100 messages
    running = asyncio.create_task(world.scheduler.run_due(NOON))
    await asyncio.wait_for(world.channel.held.wait(), 30)
    stopping = asyncio.create_task(world.scheduler.stop())
    await asyncio.sleep(0)  # the service is stopping: it starts no new sends
    world.channel.hold_after = None
    world.channel.hold.set()  # the sends under way finish
    await asyncio.wait_for(asyncio.gather(stopping, running), 30)
    await world.runtime.drain()
    ((status, cursor, sent),) = await world.rows("select status, cursor, sent from schedule_run")
    assert status == "sending" and sent >= 80 and cursor is not None
    first_process = len(world.channel.sent)
    assert 100 <= first_process < 300

    world.restart(batch=40)  # the next start (or the next leader) goes on
    await world.scheduler.run_due(NOON)
    assert len(world.channel.sent) == 300
    assert Counter(m.address.user for m in world.channel.sent) == Counter(wanted)
    kept = await kept_per_conversation(world)
    assert len(kept) == 300 and set(kept.values()) == {1}
    assert await world.rows("select status, sent, failed from schedule_run") == [("sent", 300, 0)]
    await world.scheduler.stop()
    await world.runtime.drain()
