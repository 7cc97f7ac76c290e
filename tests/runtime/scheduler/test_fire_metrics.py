"""The scheduler's occurrences, counted by kind and outcome (`studio_schedule_fires_total`):
a schedule's run sent or skipped, a stats report posted or failed, follow-ups sent or dropped,
triggers sent, skipped or failed (and shown at `GET /metrics`); each once, whoever looks at it
again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from runtime.scheduler.types import HandedOverError, ProactiveError, Report
from storage.tables import FollowUpDue, utcnow
from tests.counters import counts, moved
from tests.factories import Service
from tests.runtime.scheduler.conftest import World, hand_over

FIRES = "studio_schedule_fires_total"
KINDS = ("schedule", "report", "followup", "trigger")
OUTCOMES = ("sent", "skipped", "failed")
MORNING = {"id": "morning", "cron": "0 9 * * *", "tz": "UTC", "message": "Good morning!"}
NUDGE = {"id": "nudge", "after_minutes": 30, "message": "Still there?", "times": 1}


def snapshot() -> dict[str, float]:
    return counts(FIRES, kind=KINDS, outcome=OUTCOMES)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2030, 3, day, hour, minute, tzinfo=UTC)


async def test_a_schedules_runs_sent_once_and_missed(world: World) -> None:
    await world.talk("ana")
    await world.talk("rui")
    await world.promote(schedules=[{**MORNING, "grace_minutes": 0}], at=at(29, 0))
    before = snapshot()
    for _ in range(2):  # the same occurrence looked at again: recorded once, counted once
        await world.scheduler.run_due(at(30, 9))
    assert moved(before, snapshot()) == {"schedule/sent": 1}  # one occurrence, to both end users
    world.restart()  # down over the next 09:00, up at 09:05: missed, beyond its grace
    await world.scheduler.run_due(at(31, 9, 5))
    assert moved(before, snapshot()) == {"schedule/sent": 1, "schedule/skipped": 1}


async def test_a_report_posted_then_failed(world: World) -> None:
    world.scheduler.clock = lambda: at(29, 0)
    await world.scheduler.add_report(
        team_id=world.team_id,
        bot_id=world.bot_id,
        cron="0 9 * * *",
        tz="UTC",
        period="24h",
        address={"kind": "slack", "channel": "C0OPS"},
        place="#ops",
        by="slack:U1",
    )
    posted: list[Report] = []

    async def post(report: Report) -> None:
        posted.append(report)

    world.scheduler.report_poster = post
    before = snapshot()
    await world.scheduler.run_due(at(30, 9))
    assert len(posted) == 1 and moved(before, snapshot()) == {"report/sent": 1}

    async def refuse(report: Report) -> None:
        raise RuntimeError("the app is not in #ops")

    world.scheduler.report_poster = refuse
    await world.scheduler.run_due(at(31, 9))
    assert moved(before, snapshot()) == {"report/sent": 1, "report/failed": 1}


async def test_follow_ups_sent_and_dropped(world: World) -> None:
    await world.promote(followups=[NUDGE])
    start = utcnow()
    await world.talk("ana")
    await world.talk("rui")
    async with world.db.write_conn() as conn:  # ana's came due while the service was down
        await conn.execute(
            update(FollowUpDue)
            .where(FollowUpDue.conversation_key == "chat-ana")  # type: ignore[arg-type]
            .values(due_at=start - timedelta(minutes=1))
        )
    before = snapshot()
    await world.scheduler.run_due(start + timedelta(minutes=35))
    assert world.channel.texts().count("Still there?") == 1  # rui's
    assert moved(before, snapshot()) == {"followup/sent": 1, "followup/skipped": 1}
    await world.scheduler.run_due(start + timedelta(minutes=70))  # `times` 1: nothing more
    assert moved(before, snapshot()) == {"followup/sent": 1, "followup/skipped": 1}


async def test_triggers_sent_skipped_and_failed(world: World) -> None:
    await world.talk("ana")
    trigger = world.scheduler.trigger
    before = snapshot()
    await trigger(bot_id=world.bot_id, env="production", channel="test", user="ana", message="Hi")
    assert world.channel.texts()[-1] == "Hi"
    # the offline model has only the bot's fallback to say to a prompt: nothing is sent
    with pytest.raises(ProactiveError, match="fallback"):
        await trigger(
            bot_id=world.bot_id, env="production", channel="test", user="ana", message="prompt: hi"
        )
    await hand_over(world, world.deployment_id, "chat-ana")
    with pytest.raises(HandedOverError):
        await trigger(
            bot_id=world.bot_id, env="production", channel="test", user="ana", message="Hi"
        )
    assert moved(before, snapshot()) == {
        "trigger/sent": 1,
        "trigger/failed": 1,
        "trigger/skipped": 1,
    }


async def test_a_trigger_by_rest_is_shown_at_metrics(service: Service) -> None:
    deployment = await service.live_web_bot()
    session = (await service.chat(deployment, "hello")).json()["session"]
    before = snapshot()
    body = {"user": f"web:{session[:12]}", "channel": "web", "text": "Your order shipped."}
    await service.call("POST", "/api/v1/bots/faq-bot/trigger", json=body)
    assert moved(before, snapshot()) == {"trigger/sent": 1}
    metrics = (await service.client.get("/metrics")).text
    assert 'studio_schedule_fires_total{kind="trigger",outcome="sent"}' in metrics
