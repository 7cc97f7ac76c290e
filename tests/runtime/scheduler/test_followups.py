"""Follow-ups after inactivity: armed with each answer, sent `times` times `after_minutes`
apart, cancelled by the end user's reply and by /reset; bots without them arm nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update

from storage.tables import FollowUpDue, utcnow
from tests.runtime.scheduler.conftest import World

NUDGE = {"id": "nudge", "after_minutes": 30, "message": "Still there?", "times": 2}


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


async def nudges_at(world: World, *moments: datetime) -> int:
    before = world.channel.texts().count("Still there?")
    for moment in moments:
        await world.scheduler.run_due(moment)
    return world.channel.texts().count("Still there?") - before


async def due_rows(world: World) -> list[tuple[str, int]]:
    return [
        tuple(row) for row in await world.rows("select conversation_key, sent from followup_due")
    ]


async def test_sent_after_inactivity_times_times_then_gone(world: World) -> None:
    await world.promote(followups=[NUDGE])
    start = utcnow()
    await world.talk("ana")
    assert await due_rows(world) == [("chat-ana", 0)]
    assert await nudges_at(world, start + minutes(29)) == 0
    assert await nudges_at(world, start + minutes(31)) == 1
    assert await nudges_at(world, start + minutes(31), start + minutes(60)) == 0
    assert await nudges_at(world, start + minutes(62)) == 1  # 30 minutes after the first
    assert await due_rows(world) == []
    assert await nudges_at(world, start + minutes(200)) == 0
    (nudge, _) = [m for m in world.channel.sent if m.text == "Still there?"]
    assert nudge.address == world.address("ana")
    kept = await world.rows(
        "select role, text from message where text = 'Still there?' order by id"
    )
    assert kept == [("assistant", "Still there?")] * 2
    parts = await world.rows("select parts from message where text = 'Still there?'")
    assert '"origin": "followup"' in str(parts[0][0]).replace("'", '"')


async def test_a_reply_before_it_is_due_cancels_it(world: World) -> None:
    await world.promote(followups=[NUDGE])
    await world.talk("ana")
    # that answer was 20 minutes ago: its follow-up is due in 10
    async with world.db.write_conn() as conn:
        await conn.execute(update(FollowUpDue).values(due_at=utcnow() + minutes(10)))
    now = utcnow()
    await world.talk("ana", "sorry, I was away")  # re-armed: due 30 minutes from now
    assert await nudges_at(world, now + minutes(15)) == 0
    assert await nudges_at(world, now + minutes(31)) == 1


async def test_reset_cancels_it(world: World) -> None:
    await world.promote(followups=[NUDGE])
    now = utcnow()
    await world.talk("ana")
    await world.talk("ana", "/reset")
    assert await due_rows(world) == []
    assert await nudges_at(world, now + minutes(31)) == 0


async def test_a_version_without_the_follow_up_drops_what_was_armed(world: World) -> None:
    await world.promote(followups=[NUDGE])
    now = utcnow()
    await world.talk("ana")
    await world.promote()  # the new version has no follow-ups
    assert await nudges_at(world, now + minutes(31)) == 0
    assert await due_rows(world) == []


async def test_bots_without_follow_ups_arm_nothing(world: World) -> None:
    await world.talk("ana")
    await world.talk("ana", "again")
    assert await due_rows(world) == []
