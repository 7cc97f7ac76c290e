"""The Studio's stats reports: kept per bot and place, fired like schedules (env "studio"),
posted through the Studio's `report_poster`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from builders.cron import CronError
from runtime.messages import Address, OutgoingMessage
from runtime.scheduler.types import Report
from storage.schedules import LEASE
from tests.runtime.scheduler.conftest import World

MONDAY = datetime(2030, 4, 1, 7, tzinfo=UTC)
OPS = {"kind": "slack", "channel": "C0OPS"}


async def add(world: World, **changes: object) -> int:
    fields: dict[str, object] = {
        "team_id": world.team_id,
        "bot_id": world.bot_id,
        "cron": "0 9 * * *",
        "tz": "Europe/Lisbon",
        "period": "24h",
        "address": OPS,
        "place": "#ops",
        "by": "slack:U1",
        **changes,
    }
    info = await world.scheduler.add_report(**fields)  # type: ignore[arg-type]
    return info.id


async def test_reports_are_listed_replaced_and_removed(world: World) -> None:
    world.scheduler.clock = lambda: MONDAY
    first = await add(world)
    (info,) = await world.scheduler.reports(world.bot_id)
    assert (info.id, info.place, info.period, info.last_run) == (first, "#ops", "24h", None)
    assert info.next_run is not None and info.next_run.hour == 9  # Lisbon time
    assert str(info.next_run.tzinfo) == "Europe/Lisbon"
    assert await add(world, period="7d", cron="0 8 * * MON") == first  # same place: replaced
    (info,) = await world.scheduler.reports(world.bot_id)
    assert (info.period, info.cron) == ("7d", "0 8 * * MON")
    other = await add(world, place="@ana", address={"kind": "slack", "channel": "D1"})
    assert [r.id for r in await world.scheduler.reports(world.bot_id)] == [first, other]
    assert not await world.scheduler.remove_report(bot_id=world.bot_id + 1, report_id=first)
    assert await world.scheduler.remove_report(bot_id=world.bot_id, report_id=first)
    assert [r.id for r in await world.scheduler.reports(world.bot_id)] == [other]
    with pytest.raises(CronError):
        await add(world, cron="every day")
    with pytest.raises(CronError):
        await add(world, tz="Mars/Olympus")
    assert len(await world.scheduler.reports(world.bot_id)) == 1


async def test_a_report_is_posted_once_when_due(world: World) -> None:
    world.scheduler.clock = lambda: MONDAY
    report_id = await add(world)
    posted: list[Report] = []

    async def post(report: Report) -> None:
        posted.append(report)

    world.scheduler.report_poster = post
    await world.scheduler.run_due(datetime(2030, 4, 1, 7, 59, tzinfo=UTC))
    assert posted == []
    for _ in range(2):
        await world.scheduler.run_due(datetime(2030, 4, 1, 8, 0, tzinfo=UTC))  # 09:00 Lisbon
    (report,) = posted
    assert (report.id, report.place, report.address, report.period) == (
        report_id,
        "#ops",
        OPS,
        "24h",
    )
    ((env, run_id, _, status, sent, _, _),) = await world.runs()
    assert (env, run_id, status, sent) == ("studio", f"report-{report_id}", "sent", 1)
    (info,) = await world.scheduler.reports(world.bot_id)
    assert info.last_run is not None and info.last_run.status == "sent"


async def test_without_a_studio_to_post_it_the_run_fails_and_says_why(world: World) -> None:
    world.scheduler.clock = lambda: MONDAY
    await add(world)
    await world.scheduler.run_due(datetime(2030, 4, 1, 8, tzinfo=UTC))
    (info,) = await world.scheduler.reports(world.bot_id)
    assert info.last_run is not None and info.last_run.status == "failed"
    assert "no Studio" in (info.last_run.error or "")

    async def refuse(report: Report) -> None:
        raise RuntimeError("the app is not in #ops")

    world.scheduler.report_poster = refuse
    await world.scheduler.run_due(datetime(2030, 4, 2, 8, tzinfo=UTC))
    (info,) = await world.scheduler.reports(world.bot_id)
    assert info.last_run is not None and "not in #ops" in (info.last_run.error or "")


async def test_a_report_under_way_is_not_posted_again_and_a_crashed_one_fails(
    world: World,
) -> None:
    """Two processes that both believe they lead (the old leader has not noticed yet): the
    one posting holds the run; when it crashed, its run is not posted again (its copy may be
    in the outbox already)."""
    world.scheduler.clock = lambda: MONDAY
    await add(world)
    posting, posted = asyncio.Event(), []

    async def stuck(report: Report) -> None:
        posted.append(report)
        posting.set()
        await asyncio.Event().wait()  # the platform never answers: the process dies here

    world.scheduler.report_poster = stuck
    eight = datetime(2030, 4, 1, 8, tzinfo=UTC)
    first = asyncio.create_task(world.scheduler.run_due(eight))
    await asyncio.wait_for(posting.wait(), 10)
    runtime, other = world.process()
    other.report_poster = stuck
    await asyncio.wait_for(other.run_due(eight + timedelta(seconds=30)), 10)
    assert len(posted) == 1
    assert await world.rows("select status, owner from schedule_run") == [
        ("sending", world.scheduler.owner)
    ]
    first.cancel()  # the first process crashes
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(other.run_due(eight + LEASE + timedelta(seconds=1)), 10)
    assert len(posted) == 1
    ((status, error),) = await world.rows("select status, error from schedule_run")
    assert (status, error) == ("failed", "interrupted; not posted again")
    await other.stop()
    await runtime.drain()


async def test_a_report_the_platform_refused_is_recorded_failed(world: World) -> None:
    world.scheduler.clock = lambda: MONDAY
    await add(world)
    nowhere = Address(channel="nowhere", deployment_id="studio", conversation="c", user="u")

    async def post(report: Report) -> None:  # as the Studio posts one
        error = await world.runtime.push(OutgoingMessage(address=nowhere, text="stats"))
        if error is not None:
            raise RuntimeError(error)

    world.scheduler.report_poster = post
    await world.scheduler.run_due(datetime(2030, 4, 1, 8, tzinfo=UTC))
    ((status, error),) = await world.rows("select status, error from schedule_run")
    assert status == "failed"
    assert error == "not posted: the nowhere channel is not configured in this process"
