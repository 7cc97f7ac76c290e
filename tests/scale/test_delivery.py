"""Four `serve` workers on one PostgreSQL behind a round-robin load balancer (issue 21): a
redelivered update is answered once and a chat's answers keep their order whichever workers get
its updates; a promotion made on one worker is what the others serve a second later."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.fakes.telegram_payloads import message_update, token
from tests.scale.cluster import Cluster
from tests.scale.traffic import redelivery_storm

pytestmark = pytest.mark.postgres

WORKERS = 4
STORM_CHATS = 24
STORM_MESSAGES = 4
PROMOTION_SEEN_S = 1.0  # a promotion is served by every worker this long after it returned


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
