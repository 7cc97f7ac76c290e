"""The runtime's durable path: inbox dedupe, outbox, restart recovery, ordering, hot swap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from sqlalchemy import text

from builders.spec import BotSpec
from runtime.channel import Capabilities, ChannelRegistry, DeploymentInfo, SendError, SendReceipt
from runtime.conversation_cache import ConversationCache
from runtime.llm import LlmGateway
from runtime.messages import Address, IncomingMessage, OutgoingMessage
from runtime.runtime import Runtime, UnknownDeploymentError
from storage import inbox as inbox_store
from storage.bots import BotRepository
from storage.database import Database
from storage.deployments import DeploymentRepository
from storage.teams import TeamRepository


@dataclass
class RecordingChannel:
    """A channel port that records what it is asked to send (an asynchronous platform)."""

    kind: ClassVar[str] = "test"
    capabilities: ClassVar[Capabilities] = Capabilities()
    sent: list[OutgoingMessage] = field(default_factory=list)
    fail: SendError | None = None

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        if self.fail is not None:
            raise self.fail
        self.sent.append(message)
        return SendReceipt(platform_id=str(len(self.sent)))

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        return None

    async def teardown(self, deployment: DeploymentInfo) -> None:
        return None


@dataclass
class World:
    db: Database
    channel: RecordingChannel
    runtime: Runtime
    deployment_id: str
    bot_id: int

    def fresh_runtime(self, **options: Any) -> Runtime:
        """Another process on the same database, as after a restart."""
        channels = ChannelRegistry()
        channels.register(self.channel)
        return Runtime(db=self.db, llm=LlmGateway(), channels=channels, **options)

    async def restart(self) -> Runtime:
        """A fresh runtime that has worked off the backlog it found."""
        runtime = self.fresh_runtime()
        await runtime.recover()
        await runtime.backlog.wait()
        return runtime

    def message(self, text: str, *, key: str | None = None, chat: str = "c1") -> IncomingMessage:
        address = Address(
            channel="test", deployment_id=self.deployment_id, conversation=chat, user="u1"
        )
        return IncomingMessage(address=address, text=text, dedupe_key=key)

    async def promote(self, **fields: object) -> int:
        async with self.db.write() as session:
            repo = BotRepository(session)
            bot = await repo.by_id(self.bot_id)
            assert bot is not None
            spec = BotSpec.model_validate({**bot.draft, **fields})
            version = await repo.add_version(bot, spec, created_by="test")
            assert version.id is not None
            await repo.set_pointer(self.bot_id, "production", version.id)
        self.runtime.invalidate_bot(self.bot_id)
        return version.number


@pytest.fixture
async def world(any_db: Database) -> AsyncIterator[World]:
    db = any_db
    async with db.write() as session:
        team = await TeamRepository(session).create("t")
        assert team.id is not None
        bot = await BotRepository(session).create(
            team.id, BotSpec(name="echo", fallback="v1 says hi")
        )
        assert bot.id is not None
        deployment = await DeploymentRepository(session).create(
            team_id=team.id, bot_id=bot.id, channel="test", env="production", target="room"
        )
    channel = RecordingChannel()
    world = World(
        db,
        channel,
        Runtime(db=db, llm=LlmGateway(), channels=ChannelRegistry()),
        deployment.id,
        bot.id,
    )
    world.runtime = world.fresh_runtime()
    await world.promote()
    yield world
    await world.runtime.drain()


async def _count(db: Database, sql: str) -> int:
    async with db.read_conn() as conn:
        return int((await conn.execute(text(sql))).scalar() or 0)


async def test_a_message_is_recorded_answered_and_sent_once(world: World) -> None:
    assert await world.runtime.feed(world.message("hello", key="k1"))
    await world.runtime.drain()
    assert [m.text for m in world.channel.sent] == ["v1 says hi"]
    assert await _count(world.db, "select count(*) from inbox where status = 'done'") == 1
    assert await _count(world.db, "select count(*) from outbox where status = 'sent'") == 1
    assert await _count(world.db, "select count(*) from message") == 2


async def test_a_redelivered_message_is_answered_once(world: World) -> None:
    results = await asyncio.gather(
        *[world.runtime.feed(world.message("hi", key="same")) for _ in range(3)]
    )
    await world.runtime.drain()
    assert sorted(results) == [False, False, True]
    assert len(world.channel.sent) == 1


async def test_an_accepted_message_is_answered_after_a_restart(world: World) -> None:
    assert await world.runtime.accept(world.message("before the crash", key="k1")) is not None
    # the process dies here: recorded and acknowledged, never answered
    restarted = await world.restart()
    assert [m.text for m in world.channel.sent] == ["v1 says hi"]
    await world.restart()  # a second restart repeats nothing
    assert len(world.channel.sent) == 1
    assert await restarted.feed(world.message("before the crash", key="k1")) is False


class GatedBot:
    """Echoes each message; the conversations in `gated` wait until `opened` is set."""

    def __init__(self, *gated: str) -> None:
        self.gated = set(gated)
        self.opened = asyncio.Event()
        self.running = 0
        self.most = 0  # the most turns seen running at once

    async def handle(self, message: IncomingMessage) -> list[OutgoingMessage]:
        self.running += 1
        self.most = max(self.most, self.running)
        if message.address.conversation in self.gated:
            await self.opened.wait()
        await asyncio.sleep(0)
        self.running -= 1
        return [OutgoingMessage(address=message.address, text=message.text)]


def _texts(world: World, chat: str) -> list[str]:
    return [m.text for m in world.channel.sent if m.address.conversation == chat]


async def test_a_restart_serves_new_messages_while_the_backlog_waits_its_turn(
    world: World,
) -> None:
    stored = OutgoingMessage(address=world.message("x", chat="a").address, text="stored")
    payload = stored.model_dump(mode="json")
    await world.db.run_write(
        lambda conn: inbox_store.add_outbound(
            conn, deployment_id=world.deployment_id, payload=payload, worker=None
        )
    )
    for i in range(3):
        for chat in ("a", "b"):
            await world.runtime.accept(world.message(f"{chat}{i}", key=f"{chat}{i}", chat=chat))
    restarted = world.fresh_runtime()
    bot = GatedBot("a", "b")
    restarted.register_builtin(world.deployment_id, bot)
    await asyncio.wait_for(restarted.recover(), 5)  # returns with the backlog to answer
    assert await restarted.feed(world.message("new a", key="new-a", chat="a"))
    assert await restarted.feed(world.message("idle", key="idle", chat="idle"))
    for _ in range(500):  # the idle chat is answered while a and b wait
        if _texts(world, "idle"):
            break
        await asyncio.sleep(0.01)
    assert _texts(world, "idle") == ["idle"]
    assert _texts(world, "a") == ["stored"] and _texts(world, "b") == []

    bot.opened.set()
    await restarted.backlog.wait()
    await restarted.drain()
    assert _texts(world, "a") == ["stored", "a0", "a1", "a2", "new a"]
    assert _texts(world, "b") == ["b0", "b1", "b2"]
    assert await _count(world.db, "select count(*) from inbox where status != 'done'") == 0
    await world.restart()  # nothing is answered or sent twice
    assert len(world.channel.sent) == 9


async def test_the_backlog_runs_conversations_side_by_side_within_its_bound(
    world: World,
) -> None:
    for chat in "abcdef":
        for i in range(2):
            await world.runtime.accept(world.message(f"{chat}{i}", key=f"{chat}{i}", chat=chat))
    restarted = world.fresh_runtime(recovery_concurrency=3)
    bot = GatedBot()
    restarted.register_builtin(world.deployment_id, bot)
    await restarted.recover()
    await restarted.backlog.wait()
    assert bot.most == 3
    assert all(_texts(world, chat) == [f"{chat}0", f"{chat}1"] for chat in "abcdef")


async def test_shutdown_leaves_the_rest_of_the_backlog_for_the_next_start(world: World) -> None:
    for i in range(3):
        await world.runtime.accept(world.message(f"a{i}", key=f"a{i}", chat="a"))
    restarted = world.fresh_runtime()
    bot = GatedBot("a")
    restarted.register_builtin(world.deployment_id, bot)
    await asyncio.wait_for(restarted.recover(), 5)
    await restarted.feed(world.message("new a", key="new-a", chat="a"))
    await asyncio.sleep(0.01)  # a0 is running, held at the gate
    stopping = asyncio.create_task(restarted.drain())
    bot.opened.set()
    await stopping
    assert _texts(world, "a") == ["a0"]  # the running turn finished; the rest waits
    assert await _count(world.db, "select count(*) from inbox where status = 'pending'") == 3

    again = world.fresh_runtime()
    again.register_builtin(world.deployment_id, GatedBot())
    await again.recover()
    await again.backlog.wait()
    assert _texts(world, "a") == ["a0", "a1", "a2", "new a"]


async def test_a_stored_reply_is_sent_after_a_restart_and_never_twice(world: World) -> None:
    reply = OutgoingMessage(address=world.message("x").address, text="stored, not sent")
    payload = reply.model_dump(mode="json")
    await world.db.run_write(
        lambda conn: inbox_store.add_outbound(
            conn, deployment_id=world.deployment_id, payload=payload, worker=None
        )
    )
    await world.restart()
    await world.restart()
    assert [m.text for m in world.channel.sent] == ["stored, not sent"]


async def test_a_permanent_send_failure_is_recorded(world: World) -> None:
    world.channel.fail = SendError("channel_not_found", permanent=True)
    await world.runtime.feed(world.message("hi", key="k1"))
    await world.runtime.drain()
    async with world.db.read_conn() as conn:
        row = (await conn.execute(text("select status, error from outbox"))).one()
    assert tuple(row) == ("failed", "channel_not_found")


async def test_turns_of_one_conversation_run_in_order_others_concurrently(world: World) -> None:
    events: list[str] = []

    class SlowBot:
        async def handle(self, message: IncomingMessage) -> list[OutgoingMessage]:
            events.append(f"start {message.address.conversation} {message.text}")
            await asyncio.sleep(0.05)
            events.append(f"end {message.address.conversation} {message.text}")
            return [OutgoingMessage(address=message.address, text=message.text)]

    world.runtime.register_builtin(world.deployment_id, SlowBot())
    messages = [world.message(str(i), key=f"a{i}", chat="a") for i in range(3)]
    messages += [world.message(str(i), key=f"b{i}", chat="b") for i in range(3)]
    for message in messages:
        await world.runtime.feed(message)
    await world.runtime.drain()
    a_events = [e for e in events if " a " in e]
    assert a_events == ["start a 0", "end a 0", "start a 1", "end a 1", "start a 2", "end a 2"]
    assert events.index("start b 0") < events.index("end a 0")  # b overlapped a
    assert [m.text for m in world.channel.sent if m.address.conversation == "a"] == ["0", "1", "2"]


async def test_a_promotion_is_picked_up_without_restart(world: World) -> None:
    assert (await world.runtime.answer(world.message("hi"))).text == "v1 says hi"
    number = await world.promote(fallback="v2 says hi")
    reply = await world.runtime.answer(world.message("hi"))
    assert reply.text == "v2 says hi" and reply.version == number


async def test_history_window_and_reset(world: World) -> None:
    first = await world.runtime.answer(world.message("one"))
    second = await world.runtime.answer(world.message("two"))
    assert first.conversation_id == second.conversation_id
    await world.runtime.answer(world.message("/reset"))
    third = await world.runtime.answer(world.message("three"))
    assert third.conversation_id != first.conversation_id


async def test_an_unknown_deployment_is_refused(world: World) -> None:
    message = IncomingMessage(
        address=Address(channel="test", deployment_id="d_nope", conversation="c", user="u"),
        text="hi",
    )
    with pytest.raises(UnknownDeploymentError):
        await world.runtime.answer(message)
    inbox_id = await world.runtime.accept(message)
    assert inbox_id is not None
    assert await world.runtime.process(inbox_id, message) is None
    assert await _count(world.db, "select count(*) from inbox where status = 'failed'") == 1


async def test_a_checked_cache_reads_again_what_changed_and_only_that(world: World) -> None:
    reply = await world.runtime.answer(world.message("one"))
    assert reply.conversation_id is not None and reply.message_id is not None
    key = (world.deployment_id, "c1")
    stored: list[tuple[int | None, int | None] | None] = [(reply.conversation_id, reply.message_id)]

    async def latest(asked: tuple[str, str]) -> tuple[int | None, int | None] | None:
        return stored[0] if asked == key else (None, None)

    cache = ConversationCache(world.db, latest=latest)
    first = await cache.load(key, 5)
    assert first.id == reply.conversation_id
    assert [m.content for m in first.messages] == ["one", "v1 says hi"]
    assert await cache.load(key, 5) is first  # nothing changed: nothing read

    stored[0] = (reply.conversation_id, reply.message_id + 10)  # another worker answered
    second = await cache.load(key, 5)
    assert second is not first and second.id == first.id
    assert await cache.load(key, 5) is second  # kept, with the newest id it was told

    stored[0] = (None, None)  # ended on another worker: a new one starts, nothing to read
    assert (await cache.load(key, 5)).id is None

    stored[0] = None  # the check could not be made: read through the pool
    assert (await cache.load(key, 5)).id == reply.conversation_id
    cache.begin(("d", "web-session"))  # others may store its first turn: not taken as new
    assert (await cache.load(("d", "web-session"), 5)).id is None
