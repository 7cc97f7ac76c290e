"""`LeaderWork`: the leader-only jobs run in the leader alone, stop when it stops leading, and
move to another worker within a few checks when the leader's connection dies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text

from runtime.cluster.leader import LocalLeadership, PostgresLeadership
from runtime.cluster.leader_work import LeaderWork
from storage.database import Database
from tests.runtime.cluster.test_leader import THIS_DATABASE, kill_leader

EVERY_S = 0.2


class Job:
    """A leader-only loop that says whether it runs, and how many times it started."""

    def __init__(self) -> None:
        self.started = 0
        self.running = False

    async def __call__(self) -> None:
        self.started += 1
        self.running = True
        try:
            await asyncio.Event().wait()
        finally:
            self.running = False


async def _until(check: Callable[[], bool], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s} s"
        await asyncio.sleep(0.02)


async def test_a_lone_process_runs_the_jobs_until_it_stops() -> None:
    loop, once = Job(), Job()
    ran: list[str] = []

    async def one_shot() -> None:
        ran.append("tended")

    async def broken() -> None:
        raise RuntimeError("a bug")

    work = LeaderWork(LocalLeadership(), every_s=EVERY_S)
    work.add("loop", loop)
    work.add("once", one_shot)
    work.add("broken", broken)
    await work.start()
    await _until(lambda: loop.running and ran == ["tended"], 2)
    assert work.leading
    await asyncio.sleep(3 * EVERY_S)  # checks go on: nothing starts twice in one term
    assert loop.started == 1 and ran == ["tended"] and once.started == 0
    await work.stop()
    assert not loop.running and not work.leading


@pytest.mark.postgres
async def test_one_worker_runs_the_job_and_the_other_takes_over_when_it_dies(
    pg: Database,
) -> None:
    leaderships = [PostgresLeadership(pg.url), PostgresLeadership(pg.url)]
    jobs = [Job(), Job()]
    supervisors = [LeaderWork(leadership, every_s=EVERY_S) for leadership in leaderships]
    for supervisor, job in zip(supervisors, jobs, strict=True):
        supervisor.add("poller", job)
    try:
        for supervisor in supervisors:
            await supervisor.start()
        await asyncio.sleep(3 * EVERY_S)
        assert [job.running for job in jobs] == [True, False]
        assert [leadership.leader for leadership in leaderships] == [True, False]

        # Its connection dies, the process lives: whichever asks first leads, and the jobs run
        # in that one process only.
        await kill_leader(pg)
        await asyncio.sleep(3 * EVERY_S)  # both asked since
        assert [job.running for job in jobs] == [x.leader for x in leaderships]
        assert sorted(job.running for job in jobs) == [False, True]

        # The leader dies (kill -9: it asks nothing more, and the server drops its lock): the
        # other starts the jobs within a couple of checks.
        dead = 0 if leaderships[0].leader else 1
        await supervisors[dead].stop()
        await kill_leader(pg, held=False)
        await _until(lambda: jobs[1 - dead].running, 5 * EVERY_S + 1)
        assert leaderships[1 - dead].leader
    finally:
        for supervisor, leadership in zip(supervisors, leaderships, strict=True):
            await supervisor.stop()
            await leadership.release()


@pytest.mark.postgres
async def test_only_one_of_two_workers_starting_at_once_leads(pg: Database) -> None:
    leaderships = [PostgresLeadership(pg.url) for _ in range(2)]
    jobs = [Job(), Job()]
    supervisors = [LeaderWork(leadership, every_s=EVERY_S) for leadership in leaderships]
    for supervisor, job in zip(supervisors, jobs, strict=True):
        supervisor.add("poller", job)
    try:
        await asyncio.gather(*(supervisor.start() for supervisor in supervisors))
        await asyncio.sleep(3 * EVERY_S)
        assert sorted(job.running for job in jobs) == [False, True]
        async with pg.read_conn() as conn:
            holders = await conn.execute(
                text(
                    "select count(*) from pg_locks "
                    f"where {THIS_DATABASE} and locktype = 'advisory' and granted"
                )
            )
            assert holders.scalar() == 1
    finally:
        for supervisor, leadership in zip(supervisors, leaderships, strict=True):
            await supervisor.stop()
            await leadership.release()
