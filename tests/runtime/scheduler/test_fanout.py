"""A schedule without a target goes to each end user of the environment, in batches, and a
fan-out stopped in the middle goes on from its cursor: everyone gets it once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

from runtime.messages import Address
from runtime.runtime import UnknownDeploymentError
from runtime.scheduler.fanout import FanOut, Lease, Pacer
from storage import conversations as conv_store
from storage import schedules as store
from storage.database import Database
from storage.deployments import DeploymentRepository
from storage.schedules import LEASE
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


async def stopped_in_the_middle(world: World, wanted_count: int = 300) -> set[str]:
    """A fan-out of the world's scheduler (batches of 40) held by the platform after 100
    messages: the sends under way wait. The users who should get it."""
    world.restart(batch=40)
    world.scheduler.clock = lambda: NOON
    wanted = await people(world, wanted_count)
    await world.promote(schedules=[EVERYONE], at=datetime(2030, 3, 29, tzinfo=UTC))
    world.channel.hold_after = 100
    return wanted


async def test_a_run_another_process_sends_is_taken_over_only_once_its_lease_ran_out(
    db: Database,
) -> None:
    world = await make_world(db)
    wanted = await stopped_in_the_middle(world)
    first = world.scheduler  # believes it leads, and stalls (its clock stands still)
    running = asyncio.create_task(first.run_due(NOON))
    await asyncio.wait_for(world.channel.held.wait(), 30)
    runtime, second = world.process(batch=40)  # believes it leads too
    # the first holds the run
    await asyncio.wait_for(second.run_due(NOON + timedelta(seconds=30)), 30)
    assert await world.rows("select owner from schedule_run") == [(first.owner,)]
    world.channel.hold_after = None  # the platform answers new sends again
    second.clock = lambda: NOON + LEASE + timedelta(minutes=1)
    # the lease ran out: taken over
    await asyncio.wait_for(second.run_due(NOON + LEASE + timedelta(seconds=1)), 30)
    assert await world.rows("select owner from schedule_run") == [(second.owner,)]
    world.channel.hold.set()  # the first process's sends under way finish; it stops there
    await asyncio.wait_for(running, 30)
    assert Counter(m.address.user for m in world.channel.sent) == Counter(wanted)
    kept = await kept_per_conversation(world)
    assert len(kept) == 300 and set(kept.values()) == {1}
    assert await world.rows("select status, sent, failed from schedule_run") == [("sent", 300, 0)]
    for scheduler in (first, second):
        await scheduler.stop()
    await runtime.drain()
    await world.runtime.drain()


async def test_a_run_stopped_then_beyond_its_grace_is_not_continued(db: Database) -> None:
    world = await make_world(db)
    await stopped_in_the_middle(world)
    running = asyncio.create_task(world.scheduler.run_due(NOON))
    await asyncio.wait_for(world.channel.held.wait(), 30)
    stopping = asyncio.create_task(world.scheduler.stop())
    await asyncio.sleep(0)  # the service is stopping: it starts no new sends
    world.channel.hold_after = None
    world.channel.hold.set()
    await asyncio.wait_for(asyncio.gather(stopping, running), 30)
    await world.runtime.drain()
    before = len(world.channel.sent)
    ((saved,),) = await world.rows("select sent from schedule_run")

    world.restart(batch=40)  # two hours later: its grace (60 minutes) is over
    await world.scheduler.run_due(NOON + timedelta(hours=2))
    assert len(world.channel.sent) == before
    assert await world.rows("select status, sent, error from schedule_run") == [
        ("sent", saved, "stopped, then beyond its grace")
    ]
    await world.scheduler.stop()
    await world.runtime.drain()


async def test_someone_whose_conversation_changed_during_the_fan_out_gets_it_once(
    db: Database,
) -> None:
    world = await make_world(db)
    world.restart(batch=2)
    for name in ("ana", "rui", "eva", "ivo"):
        await world.talk(name)
    world.channel.sent.clear()
    await world.promote(schedules=[EVERYONE], at=datetime(2030, 3, 29, tzinfo=UTC))
    world.channel.hold_after = 2  # the second batch waits on the platform
    running = asyncio.create_task(world.scheduler.run_due(NOON))
    await asyncio.wait_for(world.channel.held.wait(), 10)
    ana = world.address("ana")

    def start_over(conn: Connection) -> None:  # a /reset, a new web session or Slack thread
        (old,) = conn.execute(
            text("select id from conversation where key = :k"), {"k": ana.conversation}
        ).scalars()
        conv_store.end_conversation(conn, old)
        conv_store.start_conversation(
            conn,
            conv_store.NewConversation(
                bot_id=world.bot_id,
                deployment_id=world.deployment_id,
                channel="test",
                key="chat-ana-2",
                user=ana.user,
            ),
        )

    await world.db.run_write(start_over)
    world.channel.hold.set()
    await asyncio.wait_for(running, 10)
    assert Counter(m.address.user for m in world.channel.sent) == Counter(
        f"test:{name}" for name in ("ana", "rui", "eva", "ivo")
    )
    assert await world.rows("select status, sent from schedule_run") == [("sent", 4)]


async def test_one_recipients_unexpected_failure_does_not_stop_the_others(world: World) -> None:
    run_id = await world.db.run_write(
        lambda conn: store.claim_run(
            conn,
            bot_id=world.bot_id,
            env="production",
            schedule_id="news",
            due_at=NOON,
            owner="me",
            now=NOON,
        )
    )
    assert run_id is not None
    recipients = [
        store.Recipient(n, world.deployment_id, "test", f"chat-u{n}", f"test:u{n}")
        for n in range(1, 6)
    ]

    async def read(after: int, limit: int) -> list[store.Recipient]:
        return [r for r in recipients if r.conversation_id > after][:limit]

    async def send(recipient: store.Recipient, address: Address) -> bool:
        if recipient.user == "test:u3":  # undeployed meanwhile
            raise UnknownDeploymentError(recipient.deployment_id)
        return True

    async def never() -> bool:
        return False

    lease = Lease(
        run_id=run_id, owner="me", writes=world.runtime.writes, clock=lambda: NOON, since=NOON
    )
    fanout = FanOut(
        read=read,
        lease=lease,
        paused=never,
        rate_of=lambda kind: None,
        pacer=Pacer(),
        halted=lambda: False,
        batch=2,
    )
    row = store.RunRow(
        run_id, world.bot_id, "production", "news", NOON, "sending", 0, 0, None, None, NOON
    )
    tally = await fanout.run(row, send, resumed=False)
    assert tally is not None and (tally.sent, tally.failed) == (4, 1)
    assert tally.error == "internal: UnknownDeploymentError"
