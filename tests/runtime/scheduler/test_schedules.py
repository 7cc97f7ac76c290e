"""Scheduled messages against a clock the tests move: on time across DST changes, once across
restarts, late within grace or skipped beyond it, paused, and switched by promotion."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tests.runtime.scheduler.conftest import World

MORNING = {"id": "morning", "cron": "0 9 * * *", "tz": "Europe/Lisbon", "message": "Good morning!"}


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def morning(**changes: Any) -> dict[str, Any]:
    return {**MORNING, **changes}


async def sends_at(world: World, *moments: datetime) -> list[str]:
    """Run the due work at each moment; the texts sent (in order)."""
    before = len(world.channel.sent)
    for moment in moments:
        await world.scheduler.run_due(moment)
    return world.channel.texts()[before:]


async def test_fires_at_nine_lisbon_time_across_both_dst_changes(world: World) -> None:
    await world.talk("ana")
    await world.talk("rui")
    world.channel.sent.clear()
    await world.promote(schedules=[morning()], at=at(2030, 3, 29, 12))
    # Lisbon is UTC+0 until the last Sunday of March (31 March 2030), UTC+1 after it.
    assert await sends_at(world, at(2030, 3, 30, 8, 59)) == []
    assert await sends_at(world, at(2030, 3, 30, 9, 0)) == ["Good morning!"] * 2
    assert await sends_at(world, at(2030, 3, 30, 9, 1), at(2030, 3, 31, 7, 59)) == []
    assert await sends_at(world, at(2030, 3, 31, 8, 0)) == ["Good morning!"] * 2
    dues = [due for _, _, due, *_ in await world.runs()]
    assert dues == [at(2030, 3, 30, 9), at(2030, 3, 31, 8)]
    assert {m.address.user for m in world.channel.sent} == {"test:ana", "test:rui"}

    # ... and back to UTC+0 on the last Sunday of October (27 October 2030).
    await world.point("production", await world.version(schedules=[morning()]), at=at(2030, 10, 25))
    assert await sends_at(world, at(2030, 10, 26, 8, 0)) == ["Good morning!"] * 2
    assert await sends_at(world, at(2030, 10, 27, 8, 0)) == []  # 08:00 UTC is 08:00 now
    assert await sends_at(world, at(2030, 10, 27, 9, 0)) == ["Good morning!"] * 2


async def test_an_hour_that_happens_twice_fires_once_and_a_missing_one_right_after(
    world: World,
) -> None:
    await world.talk("ana")
    world.channel.sent.clear()
    night = morning(id="night", cron="30 1 * * *", message="Night shift")
    await world.promote(schedules=[night], at=at(2030, 3, 30, 12))
    # 01:30 does not exist on 31 March in Lisbon (01:00 -> 02:00): it fires at 02:30 local.
    assert await sends_at(world, at(2030, 3, 31, 0, 59), at(2030, 3, 31, 1, 30)) == ["Night shift"]
    await world.point("production", await world.version(schedules=[night]), at=at(2030, 10, 26))
    # 01:30 happens twice on 27 October (01:00 -> 02:00 -> 01:00): it fires the first time.
    first, second = at(2030, 10, 27, 0, 30), at(2030, 10, 27, 1, 30)
    assert await sends_at(world, first, second, second + timedelta(minutes=5)) == ["Night shift"]
    assert [due for _, _, due, *_ in await world.runs()][-1] == first


async def test_a_restart_in_the_middle_fires_once(world: World) -> None:
    await world.talk("ana")
    world.channel.sent.clear()
    await world.promote(schedules=[morning(tz="UTC")], at=at(2030, 3, 29))
    assert await sends_at(world, at(2030, 3, 30, 9, 0, 5)) == ["Good morning!"]
    await world.scheduler.stop()
    world.restart()  # another process on the same database, at the same instant
    assert await sends_at(world, at(2030, 3, 30, 9, 0, 5), at(2030, 3, 30, 9, 30)) == []
    assert [status for *_, status, _, _, _ in await world.runs()] == ["sent"]


async def test_a_missed_run_goes_late_within_grace_and_is_skipped_beyond(world: World) -> None:
    await world.talk("ana")
    world.channel.sent.clear()
    late = morning(tz="UTC", grace_minutes=60)
    await world.promote(schedules=[late], at=at(2030, 3, 29))
    # the service was down at 09:00 and starts at 09:45: within the grace, sent late
    assert await sends_at(world, at(2030, 3, 30, 9, 45)) == ["Good morning!"]
    # down from before 09:00 on the 31st to 10:30 on 2 April: two runs missed, only the
    # latest is considered, and it is past its grace
    world.restart()
    assert await sends_at(world, at(2030, 4, 2, 10, 30)) == []
    runs = await world.runs()
    assert [(due, status) for _, _, due, status, *_ in runs] == [
        (at(2030, 3, 30, 9), "sent"),
        (at(2030, 4, 2, 9), "skipped"),
    ]
    assert "not running" in (runs[-1][-1] or "") and "grace 60 min" in (runs[-1][-1] or "")
    # with no grace, a run missed by more than a minute is skipped
    await world.point(
        "production",
        await world.version(schedules=[morning(tz="UTC", grace_minutes=0)]),
        at=at(2030, 4, 2, 11),
    )
    assert await sends_at(world, at(2030, 4, 3, 9, 0, 30)) == ["Good morning!"]  # on time
    assert await sends_at(world, at(2030, 4, 4, 9, 5)) == []
    assert (await world.runs())[-1][3] == "skipped"


async def test_paused_schedules_are_skipped_until_resumed(world: World) -> None:
    await world.talk("ana")
    world.channel.sent.clear()
    await world.promote(schedules=[morning(tz="UTC")], at=at(2030, 3, 29))
    assert await world.scheduler.pause(world.bot_id, "morning", by="test:owner")
    assert not await world.scheduler.pause(world.bot_id, "morning", by="test:owner")
    assert await sends_at(world, at(2030, 3, 30, 9), at(2030, 3, 31, 9)) == []
    assert await world.runs() == []  # its occurrences pass by, unrecorded
    (status,) = await world.scheduler.statuses(world.bot_id)
    assert status.paused and status.next_run is None and status.last_run is None

    assert await world.scheduler.resume(world.bot_id, "morning")
    assert not await world.scheduler.resume(world.bot_id, "morning")
    assert await sends_at(world, at(2030, 4, 1, 9)) == ["Good morning!"]


async def test_a_schedule_moves_with_promotion_and_rollback(world: World) -> None:
    await world.talk("ana")
    world.channel.sent.clear()
    v1 = await world.promote(at=at(2030, 3, 29))  # no schedule
    assert await sends_at(world, at(2030, 3, 30, 9)) == []
    await world.promote(schedules=[morning(tz="UTC")], at=at(2030, 3, 30, 12))  # v2 has it
    assert await sends_at(world, at(2030, 4, 1, 9)) == ["Good morning!"]
    await world.point("production", v1, at=at(2030, 3, 31, 12))  # rolled back
    assert await sends_at(world, at(2030, 4, 1, 9), at(2030, 4, 2, 9)) == []
    assert await world.scheduler.statuses(world.bot_id) == []


async def test_each_environment_runs_its_own_version_and_lists_it(world: World) -> None:
    await world.promote(
        "staging", schedules=[morning(tz="UTC", cron="0 8 * * *")], at=at(2030, 3, 29)
    )
    await world.promote(schedules=[morning()], at=at(2030, 3, 29))
    world.scheduler.clock = lambda: at(2030, 3, 30, 8, 30)
    listed = await world.scheduler.statuses(world.bot_id)
    assert [(s.env, s.schedule_id, s.paused) for s in listed] == [
        ("staging", "morning", False),
        ("production", "morning", False),
    ]
    assert listed[0].next_run == at(2030, 3, 31, 8)
    lisbon = listed[1].next_run
    assert lisbon is not None and str(lisbon.tzinfo) == "Europe/Lisbon"
    assert (lisbon.hour, lisbon.day) == (9, 30)
    await world.scheduler.run_due(at(2030, 3, 30, 9))
    assert [(env, due) for env, _, due, *_ in await world.runs()] == [
        ("staging", at(2030, 3, 30, 8)),  # missed by 1 h, within its grace: sent late
        ("production", at(2030, 3, 30, 9)),
    ]


async def test_a_pause_stops_a_fan_out_under_way_between_batches(world: World) -> None:
    world.restart(batch=2)
    for name in ("ana", "rui", "eva", "ivo", "zoe"):
        await world.talk(name)
    world.channel.sent.clear()
    await world.promote(schedules=[morning(tz="UTC")], at=at(2030, 3, 29))
    world.channel.hold_after = 2  # the second batch waits on the platform
    running = asyncio.create_task(world.scheduler.run_due(at(2030, 3, 30, 9)))
    await asyncio.wait_for(world.channel.held.wait(), 10)
    assert await world.scheduler.pause(world.bot_id, "morning", by="test:owner")
    world.channel.hold.set()  # the batch under way finishes; the next does not start
    await asyncio.wait_for(running, 10)
    assert world.channel.texts() == ["Good morning!"] * 4
    assert (await world.runs())[-1][3:] == ("sent", 4, 0, "paused")


async def test_an_occurrence_not_recorded_for_a_database_error_is_tried_again(
    world: World,
) -> None:
    await world.talk("ana")
    world.channel.sent.clear()
    await world.promote(schedules=[morning(tz="UTC")], at=at(2030, 3, 29))
    async with world.db.write_conn() as conn:  # the table cannot be written for a moment
        await conn.execute(text("alter table schedule_run rename to schedule_run_away"))
    assert await sends_at(world, at(2030, 3, 30, 9)) == []
    async with world.db.write_conn() as conn:
        await conn.execute(text("alter table schedule_run_away rename to schedule_run"))
    assert await sends_at(world, at(2030, 3, 30, 9, 0, 15)) == ["Good morning!"]


async def test_wake_ups_during_a_pass_make_one_more_pass(world: World) -> None:
    """2,000 schedules due at 9:00 wake the process 2,000 times: one pass runs at a time."""
    passes: list[datetime] = []
    due = world.scheduler._due

    async def counted(now: datetime) -> list[asyncio.Task[None]]:
        passes.append(now)
        if len(passes) == 1:  # the other timers fire while the first pass runs
            await asyncio.gather(*(world.scheduler._wake() for _ in range(49)))
        return await due(now)

    world.scheduler._due = counted  # type: ignore[method-assign]
    await world.scheduler._wake()
    while world.scheduler._pass is not None and not world.scheduler._pass.done():
        await world.scheduler._pass
    assert len(passes) == 2  # the first, and one more for all the wakes during it
