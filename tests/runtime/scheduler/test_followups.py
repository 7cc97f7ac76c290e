"""Follow-ups after inactivity: armed with each answer, sent `times` times `after_minutes`
apart, cancelled by the end user's reply and by /reset; bots without them arm nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, update

from runtime.messages import IncomingMessage
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


async def test_the_end_users_message_cancels_them_as_soon_as_it_is_recorded(
    world: World,
) -> None:
    await world.promote(followups=[NUDGE])
    start = utcnow()
    await world.talk("ana")
    # ana writes (a photo, say) just before the nudge is due; it is recorded, not answered yet
    photo = IncomingMessage(address=world.address("ana"), text="", dedupe_key="photo-1")
    assert await world.runtime.accept(photo) is not None
    assert await due_rows(world) == []
    assert await nudges_at(world, start + minutes(31)) == 0


async def test_a_start_on_a_synchronous_channel_cancels_them(world: World) -> None:
    await world.promote(followups=[NUDGE])
    await world.talk("ana")
    await world.runtime.answer(IncomingMessage(address=world.address("ana"), text="/start"))
    assert await due_rows(world) == []


async def test_one_too_late_or_failing_is_dropped_and_the_others_go(world: World) -> None:
    await world.promote(followups=[NUDGE])
    start = utcnow()
    await world.talk("ana")
    await world.talk("rui")
    async with world.db.write_conn() as conn:
        # ana's was due 31 minutes ago (the service was down): later than its 30 minutes
        await conn.execute(
            update(FollowUpDue)
            .where(FollowUpDue.conversation_key == "chat-ana")  # type: ignore[arg-type]
            .values(due_at=start - minutes(1))
        )
        # a row this version cannot read fails every time it is tried
        await conn.execute(
            insert(FollowUpDue).values(
                bot_id=world.bot_id,
                deployment_id=world.deployment_id,
                conversation_key="chat-broken",
                address={"channel": "test"},
                followup_id="nudge",
                message="Still there?",
                after_minutes=30,
                times=2,
                sent=0,
                due_at=start + minutes(20),
            )
        )
    assert await nudges_at(world, start + minutes(35)) == 1  # rui's
    assert [m.address.user for m in world.channel.sent if m.text == "Still there?"] == ["test:rui"]
    assert await due_rows(world) == [("chat-rui", 1)]
