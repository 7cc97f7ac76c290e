"""The schedule the scale-out tests plan once per session, to fire while the other tests run
(`tests/scale/test_schedule.py` checks it was sent once)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from tests.fakes.telegram_payloads import SECRET_HEADER, message_update, token
from tests.scale.cluster import Cluster, Deployed

TICK = "Time for the daily tick."
FIRE_LEAD_S = 8  # the schedule fires at the first minute at least this far from its creation


@dataclass(frozen=True, slots=True)
class Planned:
    """A schedule made as the session's scale tests start, to fire once while they run."""

    bot: Deployed
    chat: int
    fire: datetime  # the occurrence, UTC


def _wait_sent(cluster: Cluster, bot: Deployed, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(cluster.sent(bot)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{bot.bot}: {count} answer(s) expected, {cluster.sent(bot)}")
        time.sleep(0.05)


def plan_schedule(cluster: Cluster) -> Planned:
    """A bot whose production has a schedule firing once, at the next minute at least
    FIRE_LEAD_S away, to a chat that has talked to the bot."""
    bot = cluster.deploy_bot("sched-bot", token(903))
    chat = 7_000
    response = httpx.post(
        f"{cluster.workers[0].url}/telegram/bots/{bot.deployment}",
        json=message_update("hello", chat_id=chat, user_id=chat, username="sched"),
        headers={SECRET_HEADER: bot.secret},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    _wait_sent(cluster, bot, 1, 60)
    earliest = datetime.now(UTC) + timedelta(seconds=FIRE_LEAD_S)
    fire = earliest.replace(second=0, microsecond=0) + timedelta(minutes=1)
    cron = f"{fire.minute} {fire.hour} * * *"
    body = {"cron": cron, "message": TICK, "to": str(chat), "tz": "UTC"}
    cluster.call("POST", "/api/v1/bots/sched-bot/schedules", body)
    cluster.promote("sched-bot")
    return Planned(bot, chat, fire)
