"""Two `serve` workers on one PostgreSQL (issue 21): redeliveries across the two; a worker killed
(`kill -9`) in the middle of turns, whose conversations go on on the other without losing or
repeating an answer; the leader killed, and the other worker leads within seconds."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.fakes.telegram_payloads import token
from tests.scale.cluster import Cluster, Worker
from tests.scale.traffic import echo, redelivery_storm, update, verdict

pytestmark = pytest.mark.postgres

WORKERS = 2
STORM_CHATS = 16
STORM_MESSAGES = 3
KILLED_CHATS = 6
TURN_LATENCY_S = 1.5  # the model's, while a worker is killed: its turns are in flight
RECOVERY_S = 20.0  # the killed worker's acknowledged messages are answered within this
TAKEOVER_S = 10.0  # another worker reports "leader" this long after the leader died
ROLES = ("leader", "follower")


async def test_a_redelivered_update_is_answered_once_and_in_order(healed: Cluster) -> None:
    """16 chats x 3 messages, each delivered to both workers at once: every message answered
    exactly once, each chat's answers in the order sent."""
    bot = await asyncio.to_thread(healed.deploy_bot, "storm2-bot", token(911))
    failure = await redelivery_storm(
        healed, bot, chats=STORM_CHATS, messages=STORM_MESSAGES, first_chat=20_000
    )
    if failure is not None:
        pytest.fail(failure, pytrace=False)


async def test_a_worker_killed_mid_turn_loses_nothing_and_repeats_nothing(
    healed: Cluster,
) -> None:
    """Six chats' first messages acknowledged by worker 0, whose turns are waiting on the model
    when it is killed; each chat's second message then goes to worker 1. Within RECOVERY_S both
    messages of every chat are answered, once each, first before second."""
    cluster = healed
    bot = await asyncio.to_thread(cluster.deploy_bot, "kill-bot", token(912))
    victim, survivor = cluster.workers
    chats = [30_000 + k for k in range(KILLED_CHATS)]
    cluster.llm.latency_s = TURN_LATENCY_S
    arrived = cluster.llm.arrived
    async with httpx.AsyncClient(timeout=30) as http:
        statuses = await asyncio.gather(
            *(cluster.post(http, victim, bot, update(chat, 0)) for chat in chats)
        )
        assert statuses == [200] * len(chats), f"{victim} did not acknowledge: {statuses}"
        deadline = time.monotonic() + 30
        while cluster.llm.arrived - arrived < len(chats):  # every turn waits on the model
            assert time.monotonic() < deadline, (
                f"{cluster.llm.arrived - arrived} of {len(chats)} turns reached the model\n"
                + victim.log_tail()
            )
            await asyncio.sleep(0.02)
        answered_before = len(cluster.sent(bot))
        cluster.kill(victim)
        statuses = await asyncio.gather(
            *(cluster.post(http, survivor, bot, update(chat, 1)) for chat in chats)
        )
        assert statuses == [200] * len(chats), f"{survivor} did not acknowledge: {statuses}"
    answered = await cluster.wait_for_answers(bot, 2 * len(chats), timeout_s=RECOVERY_S)
    expected = {chat: [echo(chat, 0), echo(chat, 1)] for chat in chats}
    failure = verdict(
        f"{victim} killed with {len(chats)} turns in flight ({answered_before} answers sent "
        f"before), the chats' next messages to {survivor}; after {RECOVERY_S:g} s",
        answered,
        expected,
    )
    if failure is not None:
        pytest.fail(failure, pytrace=False)


async def _roles(cluster: Cluster, http: httpx.AsyncClient) -> dict[int, object]:
    """Each running worker's role as its /readyz reports it (None: no role reported)."""
    bodies = await asyncio.gather(*(cluster.readyz(http, w) for w in cluster.alive))
    return {
        w.index: (body or {}).get("role") for w, body in zip(cluster.alive, bodies, strict=True)
    }


async def test_the_leader_killed_another_worker_leads_within_seconds(healed: Cluster) -> None:
    """/readyz reports each worker's role: one leader, the others followers; the leader is
    killed, and within TAKEOVER_S one of the others reports "leader"."""
    cluster = healed
    async with httpx.AsyncClient(timeout=10) as http:
        roles = await _roles(cluster, http)
        assert set(roles.values()) <= set(ROLES), f"/readyz roles: {roles}"
        leaders = [w for w, role in roles.items() if role == "leader"]
        assert len(leaders) == 1, f"one leader expected: {roles}"
        leader: Worker = cluster.workers[leaders[0]]
        cluster.kill(leader)
        killed = time.monotonic()
        while True:
            roles = await _roles(cluster, http)
            if list(roles.values()).count("leader") == 1:
                break
            assert time.monotonic() - killed < TAKEOVER_S, (
                f"{TAKEOVER_S:g} s after {leader} (the leader) was killed: {roles}"
            )
            await asyncio.sleep(0.1)
    assert list(roles.values()).count("follower") == len(roles) - 1, roles
