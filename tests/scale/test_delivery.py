"""Four `serve` workers on one PostgreSQL behind a round-robin load balancer (issue 21): a
redelivered update is answered once and a chat's answers keep their order whichever workers get
its updates; a promotion made on one worker is what the others serve a second later; a schedule
fires once however many workers run the scheduler."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fakes.telegram_payloads import SECRET_HEADER, message_update, token
from tests.scale.cluster import Cluster, Deployed
from tests.scale.traffic import redelivery_storm

pytestmark = pytest.mark.postgres

WORKERS = 4
STORM_CHATS = 24
STORM_MESSAGES = 4
PROMOTION_SEEN_S = 1.0  # a promotion is served by every worker this long after it returned
TICK = "Time for the daily tick."
FIRE_LEAD_S = 8  # the schedule fires at the first minute at least this far from its creation
FIRE_LATE_S = 40  # the occurrence may be sent this late (a leader's refresh, a loaded machine)
TWICE_WINDOW_S = 5  # a second sending of the occurrence would come within this


@dataclass(frozen=True, slots=True)
class Planned:
    """A schedule made as the module starts, to fire once while the other tests run."""

    bot: Deployed
    chat: int
    fire: datetime  # the occurrence, UTC


def _wait_sent(cluster: Cluster, bot: Deployed, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(cluster.sent(bot)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{bot.bot}: {count} answer(s) expected, {cluster.sent(bot)}")
        time.sleep(0.05)


@pytest.fixture(scope="module", autouse=True)
def planned(cluster: Cluster) -> Planned:
    """Before the module's tests: a bot whose production has a schedule firing once, at the next
    minute at least FIRE_LEAD_S away, to a chat that has talked to the bot."""
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


async def test_a_redelivered_update_is_answered_once_and_in_order(healed: Cluster) -> None:
    """24 chats x 4 messages, each delivered to two of the four workers at once: every message
    answered exactly once, each chat's answers in the order sent."""
    bot = await asyncio.to_thread(healed.deploy_bot, "storm-bot", token(901))
    failure = await redelivery_storm(
        healed, bot, chats=STORM_CHATS, messages=STORM_MESSAGES, first_chat=10_000
    )
    if failure is not None:
        pytest.fail(failure, pytrace=False)


async def test_a_promotion_on_one_worker_is_served_by_the_others_within_a_second(
    healed: Cluster,
) -> None:
    """Every worker greets with v1 (so each has served it and kept what it keeps); worker 0
    promotes v2 (another greeting); a second later every other worker greets with v2."""
    cluster = healed
    bot = await asyncio.to_thread(cluster.deploy_bot, "promo-bot", token(902), greeting="Hi, v1")
    chats = {worker.index: 8_000 + worker.index for worker in cluster.workers}

    async def greet(http: httpx.AsyncClient, workers: list[int]) -> dict[int, str]:
        """/start from each worker's chat, posted to that worker: its greeting, per worker."""
        before = len(cluster.sent(bot))
        statuses = await asyncio.gather(
            *(
                cluster.post(
                    http,
                    cluster.workers[w],
                    bot,
                    message_update("/start", chat_id=chats[w], user_id=chats[w]),
                )
                for w in workers
            )
        )
        assert statuses == [200] * len(workers)
        answered = await cluster.wait_for_answers(
            bot, before + len(workers), timeout_s=30, settle_s=0.3
        )
        return {w: answered[chats[w]][-1].text for w in workers if answered.get(chats[w])}

    everyone = [worker.index for worker in cluster.workers]
    others = everyone[1:]
    async with httpx.AsyncClient(timeout=30) as http:
        first = await greet(http, everyone)
        assert first == dict.fromkeys(everyone, "Hi, v1"), first
        await asyncio.to_thread(
            cluster.call, "PATCH", "/api/v1/bots/promo-bot", {"greeting": "Hi, v2"}
        )
        version = await asyncio.to_thread(cluster.promote, "promo-bot")
        promoted = time.monotonic()
        assert version == 2
        await asyncio.sleep(max(0.0, promoted + PROMOTION_SEEN_S - time.monotonic()))
        then = await greet(http, others)
    stale = {w: text for w, text in then.items() if text != "Hi, v2"}
    silent = [w for w in others if w not in then]
    assert not stale and not silent, (
        f"{PROMOTION_SEEN_S:g} s after worker 0 promoted v2, workers {sorted(stale)} still "
        f"greeted with v1 ({stale}); no greeting from workers {silent}"
    )


async def test_a_schedule_fires_once_with_several_workers(
    healed: Cluster, planned: Planned
) -> None:
    """The occurrence planned as the module started reaches its chat once, from one worker."""
    cluster = healed
    deadline = planned.fire + timedelta(seconds=FIRE_LATE_S)

    def ticks() -> list[tuple[int | None, float]]:
        return [
            (s.worker, s.at)
            for s in cluster.sent(planned.bot)
            if s.chat == planned.chat and s.text == TICK
        ]

    while True:  # the fake is polled: it runs in another thread
        if ticks() or datetime.now(UTC) > deadline:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(TWICE_WINDOW_S)
    sent = ticks()
    assert len(sent) == 1, (
        f"the occurrence of {planned.fire:%H:%M} UTC was sent {len(sent)} times by workers "
        f"{[w for w, _ in sent]} (waited until {FIRE_LATE_S} s after it, then "
        f"{TWICE_WINDOW_S} s more)"
    )
    live = await asyncio.to_thread(cluster.call, "GET", "/api/v1/bots/sched-bot/schedules")
    runs = [s["last_run"] for s in live["live"] if s["env"] == "production"]
    assert runs and runs[0] is not None and runs[0]["sent"] == 1, live
