"""Two `serve` workers on one PostgreSQL: what is changed through one is served by the other
within a second (LISTEN/NOTIFY), and within the check period when the notification is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from runtime.channel import ChannelRegistry
from runtime.cluster.invalidation import APPLICATION_NAME, HandoffChanged, PostgresInvalidations
from runtime.llm import LlmGateway
from runtime.messages import Address
from runtime.runtime import Runtime, UnknownDeploymentError
from storage import handoffs as handoff_store
from storage.bots import BotRepository
from storage.tables import utcnow
from tests.ab_traffic import two_versions
from tests.factories import Service
from tests.people import bot_id
from tests.runtime.cluster.conftest import two_workers

pytestmark = pytest.mark.postgres

SOON_S = 1.0


@pytest.fixture
async def workers(tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[Service, Service]]:
    async with two_workers(tmp_path, postgres_url) as started:
        yield started


async def soon(check: Callable[[], Awaitable[bool]], *, within_s: float = SOON_S) -> None:
    """`check` comes true within `within_s`."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"not seen within {within_s} s"
        await asyncio.sleep(0.02)


def answers(worker: Service, deployment: str, said: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await worker.chat(deployment, "hello")).json()["reply"] == said

    return check


async def test_a_promotion_and_a_rollback_through_one_worker_are_served_by_the_other(
    workers: tuple[Service, Service],
) -> None:
    a, b = workers
    deployment = await two_versions(a)  # production v1, staging v2
    assert await answers(b, deployment, "v1 says hi")()  # b has v1 compiled and cached
    await a.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "production"})
    await soon(answers(b, deployment, "v2 says hi"))
    await a.call("POST", "/api/v1/bots/faq-bot/rollback", json={"env": "production"})
    await soon(answers(b, deployment, "v1 says hi"))


async def test_an_ab_test_started_on_one_worker_runs_on_the_other(
    workers: tuple[Service, Service],
) -> None:
    a, b = workers
    await two_versions(a)
    bot = await bot_id(a, "faq-bot")
    runtime = b.app.state.core.runtime
    assert await runtime.ab_plan(bot, "production") is None  # cached: no test runs
    assert (await a.reply("/abtest faq-bot v1 v2 50")).startswith("Started an A/B test")

    async def running() -> bool:
        return await runtime.ab_plan(bot, "production") is not None

    await soon(running)


async def test_a_deployment_removed_on_one_worker_is_gone_on_the_other(
    workers: tuple[Service, Service],
) -> None:
    a, b = workers
    deployment = await two_versions(a)
    assert (await b.chat(deployment, "hello")).status_code == 200  # b has its target cached
    await a.call("DELETE", f"/api/v1/deployments/{deployment}")
    runtime = b.app.state.core.runtime

    async def gone() -> bool:
        try:
            await runtime.target(deployment)
        except UnknownDeploymentError:
            return True
        return False

    await soon(gone)  # asked of the cache, not by a chat: a turn racing the delete would fail
    assert (await b.chat(deployment, "hello")).status_code == 404


async def _handoff_opened(worker: Service, bot: int, address: Address, *, thread: str) -> int:
    """A handoff of the conversation at `address` to #support, stored through `worker` as
    `HandoffDesk.open` records it once its first post is in the room (no Slack here), with no
    notice sent: its id."""
    now = utcnow()
    opened = handoff_store.NewHandoff(
        bot_id=bot,
        deployment_id=address.deployment_id,
        conversation_key=address.conversation,
        address=address.model_dump(mode="json"),
        room_kind="slack",
        room="C0001",
        room_name="#support",
        thread=thread,
        reason="they asked for a person",
        timeout_minutes=30,
        opened_at=now,
        expires_at=now + timedelta(minutes=30),
    )
    runtime = worker.app.state.core.runtime
    return int(await runtime.writes.run(lambda c: handoff_store.open_handoff(c, opened)))


async def test_a_handoff_opened_on_one_worker_is_open_on_the_other(
    workers: tuple[Service, Service],
) -> None:
    a, _ = workers
    deployment = await two_versions(a)
    bot = await bot_id(a, "faq-bot")
    address = Address(
        channel="web", deployment_id=deployment, conversation="session-1", user="web:ana"
    )
    desk_a, desk_b = (w.app.state.core.runtime.handoffs for w in workers)
    runtime_a = a.app.state.core.runtime
    handoff_id = await _handoff_opened(a, bot, address, thread="1700000000.000100")
    runtime_a.invalidations.publish(HandoffChanged(handoff_id))

    async def is_open() -> bool:
        return bool(desk_b.is_open(deployment, "session-1"))

    await soon(is_open)
    assert desk_b.in_room("slack", "C0001", "1700000000.000100")
    await desk_a.load()
    await desk_a.started_over(address)  # the end user's /reset on a: closed there

    async def closed() -> bool:
        return not desk_b.is_open(deployment, "session-1")

    await soon(closed)


async def _listener_killed(worker: Service) -> None:
    """The worker's listener connection dies (PostgreSQL restarted, the network dropped it)."""
    port = worker.app.state.core.runtime.invalidations
    async with worker.app.state.core.db.read_conn() as conn:
        killed = await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ),
            {"name": f"{APPLICATION_NAME}-{port.worker}"},
        )
        assert killed.scalars().all() == [True]


async def test_a_change_made_while_the_listener_was_down_is_seen_once_it_is_back(
    workers: tuple[Service, Service],
) -> None:
    a, b = workers
    deployment = await two_versions(a)
    assert await answers(b, deployment, "v1 says hi")()
    await _listener_killed(b)
    await a.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "production"})
    # Its notification went nowhere: b drops every cache when it listens again.
    await soon(answers(b, deployment, "v2 says hi"), within_s=3.0)


async def test_a_lost_notification_heals_within_the_check_period(
    workers: tuple[Service, Service],
) -> None:
    a, _ = workers
    await two_versions(a)
    bot = await bot_id(a, "faq-bot")
    db = a.app.state.core.db
    port = PostgresInvalidations(db, check_every_s=0.2)
    other = Runtime(db=db, llm=LlmGateway(), channels=ChannelRegistry(), invalidations=port)
    await port.start(other.apply)
    try:
        assert (await other.live_version(bot, "production")).number == 1
        async with db.write() as session:  # a pointer moved by someone who tells nobody
            repo = BotRepository(session)
            v2 = await repo.version(bot, 2)
            assert v2 is not None and v2.id is not None
            await repo.set_pointer(bot, "production", v2.id)

        async def moved() -> bool:
            return (await other.live_version(bot, "production")).number == 2

        await soon(moved)
    finally:
        await port.stop()


async def test_a_handoff_whose_notice_is_still_on_the_way_is_open_for_the_next_turn(
    workers: tuple[Service, Service],
) -> None:
    """A opened a handoff a moment ago and its notice has not reached B yet: B's next turn in
    that conversation, which reads the conversation's handoff with its lock, leaves the answer
    to the person (the bot says nothing), where B's memory alone would have let the bot
    answer; and once the person gives it back, likewise, the bot answers again at once."""
    a, b = workers
    deployment = await two_versions(a)
    first = await b.chat(deployment, "hello")
    assert first.json()["reply"] == "v1 says hi"
    session = first.json()["session"]
    address = Address(channel="web", deployment_id=deployment, conversation=session, user="x")
    bot = await bot_id(a, "faq-bot")
    handoff_id = await _handoff_opened(a, bot, address, thread="1700000000.000200")
    desk_b = b.app.state.core.runtime.handoffs
    assert not desk_b.is_open(deployment, session)  # no notice was sent
    second = await b.chat(deployment, "are you there?", session=session)
    assert second.status_code == 200, second.text
    assert second.json()["reply"] != "v1 says hi", second.json()
    assert desk_b.is_open(deployment, session)
    # The person gives it back (on A, whose notice is on its way): the bot answers again.
    runtime_a = a.app.state.core.runtime
    await runtime_a.writes.run(
        lambda c: handoff_store.close(c, handoff_id, at=utcnow(), by="slack:U1")
    )
    third = await b.chat(deployment, "hello again", session=session)
    assert third.json()["reply"] == "v1 says hi", third.json()
    assert not desk_b.is_open(deployment, session)
