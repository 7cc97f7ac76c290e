"""Two `serve` processes on one PostgreSQL: one leads (an advisory lock on its own connection)
and fires each occurrence once; when the leader's connection dies the other takes over."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from runtime.cluster.leader import LEADER_LOCK, LocalLeadership, PostgresLeadership
from storage.database import Database
from tests.runtime.scheduler.conftest import World, make_world

pytestmark = pytest.mark.postgres

NINE = datetime(2030, 3, 30, 9, tzinfo=UTC)
DAY = datetime(2030, 3, 31, 9, tzinfo=UTC)
# Advisory locks are the database's, but pg_locks lists every database's (others' tests too).
THIS_DATABASE = "database = (select oid from pg_database where datname = current_database())"
MORNING = {"id": "morning", "cron": "0 9 * * *", "message": "Good morning!"}


async def kill_leader(db: Database, *, held: bool = True) -> None:
    """The leader's connection dies (its process crashed, the network dropped it); `held`
    False: if it still holds the lock (a check cut short by a shutdown may have let it go)."""
    holder = text(
        "select pid from pg_locks "
        f"where {THIS_DATABASE} and locktype = 'advisory' and objid = :k and granted"
    )
    async with db.read_conn() as conn:
        pids = (await conn.execute(holder, {"k": LEADER_LOCK})).scalars().all()
        assert len(pids) == 1 or (not held and not pids)
        for pid in pids:
            await conn.execute(text("select pg_terminate_backend(:p)"), {"p": pid})
    # pg_terminate_backend only signals the backend: wait until it has let the lock go.
    for _ in range(500):
        async with db.read_conn() as conn:
            still = (await conn.execute(holder, {"k": LEADER_LOCK})).scalars().all()
        if not set(pids) & set(still):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the leader's backend still holds the lock after 5 s")


async def test_the_other_process_takes_over_when_the_leaders_connection_dies(
    pg: Database,
) -> None:
    first, second = PostgresLeadership(pg.url), PostgresLeadership(pg.url)
    try:
        assert await first.check() and await first.check()
        assert not await second.check() and not second.leader
        await kill_leader(pg)
        assert await second.check()
        assert not await first.check() and not first.leader  # and it cannot take it back
        await second.release()
        assert await first.check()  # released at shutdown: taken at the next poll
    finally:
        await first.release()
        await second.release()


async def test_two_processes_fire_each_occurrence_once(pg: Database) -> None:
    world: World = await make_world(pg)
    await world.talk("ana")
    await world.talk("rui")
    world.channel.sent.clear()
    await world.promote(schedules=[MORNING], at=datetime(2030, 3, 29, tzinfo=UTC))
    leaders = [PostgresLeadership(pg.url), PostgresLeadership(pg.url)]
    processes = [world.process(leadership=leader) for leader in leaders]
    try:
        assert [await leader.check() for leader in leaders] == [True, False]
        for _, scheduler in processes:
            await scheduler.run_due(NINE)
        assert sorted(m.address.user for m in world.channel.sent) == ["test:ana", "test:rui"]

        await kill_leader(pg)  # the leader dies; the other takes over at its next poll
        assert [await leader.check() for leader in reversed(leaders)] == [True, False]
        for _, scheduler in reversed(processes):
            await scheduler.run_due(DAY)
        assert len(world.channel.sent) == 4

        # Even two processes that both think they lead send an occurrence once: the run's
        # unique row decides.
        both = [world.process(leadership=LocalLeadership()) for _ in range(2)]
        for _, scheduler in both:
            await scheduler.run_due(datetime(2030, 4, 1, 9, tzinfo=UTC))
        assert len(world.channel.sent) == 6
        statuses = [status for _, _, _, status, *_ in await world.runs()]
        assert statuses == ["sent"] * 3
    finally:
        for runtime, scheduler in processes:
            await scheduler.stop()
            await runtime.drain()
        for leader in leaders:
            await leader.release()
        await world.runtime.drain()
