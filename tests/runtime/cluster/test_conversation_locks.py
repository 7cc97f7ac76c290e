"""Several workers on one PostgreSQL: a conversation is answered by one worker at a time, in the
order its messages were accepted, whichever worker accepted them; a dead worker's conversations
go on elsewhere, and nothing is answered or sent twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Connection, text

from builders.spec import BotSpec
from runtime.channel import ChannelRegistry
from runtime.cluster.conversation_locks import NAMESPACE, PostgresConversationLocks, lock_id
from runtime.cluster.presence import PostgresPresence
from runtime.llm import LlmGateway
from runtime.locks import conversation_key
from runtime.messages import Address, IncomingMessage, OutgoingMessage
from runtime.runtime import Runtime
from storage import conversations as conv_store
from storage import inbox as inbox_store
from storage.bots import BotRepository
from storage.database import Database
from storage.deployments import DeploymentRepository
from storage.tables import Deployment
from storage.teams import TeamRepository
from tests.fakes.llm import FakeLLM
from tests.runtime.flows import MODEL, gateway
from tests.runtime.test_runtime import RecordingChannel

pytestmark = pytest.mark.postgres


class EchoBot:
    """Echoes each message after `delay_s`; conversations in `gated` wait for `opened`."""

    def __init__(self, *, delay_s: float = 0.0, gated: tuple[str, ...] = ()) -> None:
        self.delay_s = delay_s
        self.gated = set(gated)
        self.opened = asyncio.Event()
        self.started: list[str] = []

    async def handle(self, message: IncomingMessage) -> list[OutgoingMessage]:
        self.started.append(message.text)
        if message.address.conversation in self.gated:
            await self.opened.wait()
        await asyncio.sleep(self.delay_s)
        return [OutgoingMessage(address=message.address, text=message.text)]


@dataclass
class Cluster:
    db: Database
    deployment_id: str
    channel: RecordingChannel = field(default_factory=RecordingChannel)
    workers: list[Runtime] = field(default_factory=list)
    locks: list[PostgresConversationLocks] = field(default_factory=list)

    def worker(self, bot: EchoBot) -> Runtime:
        """Another `serve` process on the database (its own locks' connections)."""
        channels = ChannelRegistry()
        channels.register(self.channel)
        locks = PostgresConversationLocks(self.db)
        runtime = Runtime(db=self.db, llm=LlmGateway(), channels=channels, locks=locks)
        runtime.register_builtin(self.deployment_id, bot)
        self.workers.append(runtime)
        self.locks.append(locks)
        return runtime

    def message(self, text: str, *, chat: str = "a") -> IncomingMessage:
        address = Address(
            channel="test", deployment_id=self.deployment_id, conversation=chat, user="u1"
        )
        return IncomingMessage(address=address, text=text, dedupe_key=f"{chat}:{text}")

    def texts(self, chat: str = "a") -> list[str]:
        return [m.text for m in self.channel.sent if m.address.conversation == chat]

    async def pending(self) -> int:
        async with self.db.read_conn() as conn:
            query = text("select count(*) from inbox where status = 'pending'")
            return int((await conn.execute(query)).scalar() or 0)


@pytest.fixture
async def cluster(pg: Database) -> AsyncIterator[Cluster]:
    async with pg.write() as session:
        team = await TeamRepository(session).create("t")
        assert team.id is not None
        bot = await BotRepository(session).create(team.id, BotSpec(name="echo"))
        assert bot.id is not None
        deployment = await DeploymentRepository(session).create(
            team_id=team.id, bot_id=bot.id, channel="test", env="production", target="room"
        )
    cluster = Cluster(pg, deployment.id)
    yield cluster
    for runtime in cluster.workers:
        await runtime.drain()
    for locks in cluster.locks:
        await locks.close()


async def _until(check: object, *, timeout_s: float = 10.0) -> None:
    assert callable(check)
    for _ in range(int(timeout_s / 0.01)):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within the time given")


async def kill(cluster: Cluster, worker: Runtime) -> None:
    """The worker dies (`kill -9`): its turns stop where they are and its connections close."""
    for task in list(worker._tasks):
        task.cancel()
    await asyncio.gather(*list(worker._tasks), return_exceptions=True)
    locks = cluster.locks[cluster.workers.index(worker)]
    for session in locks._sessions:
        if session._conn is not None:
            pid = session._conn.get_server_pid()
            async with cluster.db.read_conn() as conn:
                await conn.execute(text("select pg_terminate_backend(:p)"), {"p": pid})


async def test_two_workers_answer_a_conversation_in_the_order_it_was_accepted(
    cluster: Cluster,
) -> None:
    slow, fast = EchoBot(delay_s=0.05), EchoBot()
    first, second = cluster.worker(slow), cluster.worker(fast)
    for i in range(6):  # accepted alternately: the fast worker would overtake the slow one
        assert await (first if i % 2 == 0 else second).feed(cluster.message(str(i)))
        assert await (second if i % 2 == 0 else first).feed(cluster.message(f"b{i}", chat="b"))
        # the same update delivered to the other worker too is a duplicate
        assert not await (second if i % 2 == 0 else first).feed(cluster.message(str(i)))
    for runtime in cluster.workers:
        await runtime.drain()
    assert cluster.texts("a") == [str(i) for i in range(6)]
    assert cluster.texts("b") == [f"b{i}" for i in range(6)]
    assert await cluster.pending() == 0


async def test_a_dead_workers_conversation_goes_on_on_another_worker_once(
    cluster: Cluster,
) -> None:
    stuck = EchoBot(gated=("a",))
    dying, other = cluster.worker(stuck), cluster.worker(EchoBot())
    assert await dying.feed(cluster.message("in flight"))
    await _until(lambda: asyncio.sleep(0, result=bool(stuck.started)))
    assert await other.feed(cluster.message("waits behind it"))
    await asyncio.sleep(0.2)
    assert cluster.texts() == []  # the conversation is the dying worker's
    await kill(cluster, dying)
    await other.drain()
    assert cluster.texts() == ["in flight", "waits behind it"]
    assert await cluster.pending() == 0
    stuck.opened.set()  # nothing of the dead worker's turn comes back
    await asyncio.sleep(0.05)
    assert cluster.texts() == ["in flight", "waits behind it"]


async def test_the_sweep_takes_over_only_what_workers_that_are_gone_left_and_once(
    cluster: Cluster,
) -> None:
    def left(conn: Connection) -> None:
        for chat, worker in (("x", "studio:gone"), ("z", cluster.db.worker), ("old", None)):
            message = cluster.message(f"left in {chat}", chat=chat)
            inbox_store.record_inbound(
                conn,
                dedupe_key=chat,
                deployment_id=cluster.deployment_id,
                conversation=chat,
                payload=message.model_dump(mode="json"),
                worker=worker,
            )
        reply = OutgoingMessage(address=cluster.message("", chat="y").address, text="unsent")
        inbox_store.add_outbound(
            conn,
            deployment_id=cluster.deployment_id,
            payload=reply.model_dump(mode="json"),
            worker="studio:gone",
        )

    await cluster.db.run_write(left)
    sweepers = [cluster.worker(EchoBot()) for _ in range(3)]
    presences = [PostgresPresence(cluster.db, after_s=0) for _ in sweepers]
    queued = await asyncio.gather(
        *(w.recover(presence=p) for w, p in zip(sweepers, presences, strict=True))
    )
    assert max(queued) == 2  # (one may answer before another looks)
    for runtime in sweepers:
        await runtime.backlog.wait()
        await runtime.drain()
    assert cluster.texts("x") == ["left in x"]
    assert cluster.texts("y") == ["unsent"]
    # a live worker's message, and one of an older version, are not the sweep's yet
    assert cluster.texts("z") == cluster.texts("old") == []
    again = [await w.recover(presence=p) for w, p in zip(sweepers, presences, strict=True)]
    assert again == [0, 0, 0]


async def test_a_conversation_lock_is_held_by_one_worker_and_dies_with_its_connection(
    pg: Database,
) -> None:
    first, second = PostgresConversationLocks(pg), PostgresConversationLocks(pg)
    key = conversation_key("d", "c")
    try:
        async with first.hold(key):
            async with second.attempt(key) as held:
                assert not held
            async with first.attempt(key) as held:  # its own turn waiting: not a second holder
                assert not held
            waiting = asyncio.create_task(_hold_briefly(second, key))
            await asyncio.sleep(0.1)
            assert not waiting.done()
        await asyncio.wait_for(waiting, 5)
        async with first.attempt(conversation_key("d", "other")) as held:
            assert held  # other conversations are free meanwhile

        entered = asyncio.Event()
        release = asyncio.Event()

        async def hold_until_released() -> None:
            async with first.hold(key):
                entered.set()
                await release.wait()

        holder = asyncio.create_task(hold_until_released())
        await entered.wait()
        async with pg.read_conn() as conn:  # the holder's connection dies
            killed = await conn.execute(
                text(
                    "select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory'"
                    " and classid = :ns and objid = :k and granted"
                ),
                {"ns": NAMESPACE, "k": lock_id(key) & 0xFFFFFFFF},
            )
            assert killed.scalars().all() == [True]
        await asyncio.wait_for(_hold_briefly(second, key), 5)
        release.set()
        await holder  # its unlock finds its connection gone: no error
        async with first.attempt(key) as held:  # and it reconnects for the next one
            assert held
    finally:
        await first.close()
        await second.close()


async def _hold_briefly(locks: PostgresConversationLocks, key: str) -> None:
    async with locks.hold(key):
        await asyncio.sleep(0)


async def test_a_turn_cancelled_while_it_waits_leaves_no_lock_behind(pg: Database) -> None:
    first, second = PostgresConversationLocks(pg), PostgresConversationLocks(pg)
    key = conversation_key("d", "c")
    try:
        for _ in range(20):  # cancelled at every point of its wait, statements included
            async with first.hold(key):
                waiting = asyncio.create_task(_hold_briefly(second, key))
                await asyncio.sleep(0.003)
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)
        await asyncio.gather(*second._unlocking)
        async with first.attempt(key) as held:
            assert held
        async with second.attempt(conversation_key("d", "another")) as held:
            assert held  # its connection still works
    finally:
        await first.close()
        await second.close()


async def test_a_turn_whose_lock_was_lost_meanwhile_keeps_and_sends_nothing(
    cluster: Cluster,
) -> None:
    stuck = EchoBot(gated=("a",))
    first, second = cluster.worker(stuck), cluster.worker(EchoBot())
    assert await first.feed(cluster.message("in flight"))
    await _until(lambda: asyncio.sleep(0, result=bool(stuck.started)))
    # its lock's connection drops (a network blip), the worker lives on, mid-turn
    for session in cluster.locks[0]._sessions:
        if session._conn is not None:
            async with cluster.db.read_conn() as conn:
                pid = session._conn.get_server_pid()
                await conn.execute(text("select pg_terminate_backend(:p)"), {"p": pid})
    assert await second.feed(cluster.message("next"))
    await second.drain()
    assert cluster.texts() == ["in flight", "next"]  # the other worker went on
    stuck.opened.set()
    await first.drain()
    assert cluster.texts() == ["in flight", "next"]  # the first one's late answer is dropped
    assert await cluster.pending() == 0
    async with cluster.db.read_conn() as conn:
        outbox = await conn.execute(text("select count(*) from outbox"))
        assert outbox.scalar() == 2  # nor was a second reply stored


async def test_a_database_url_with_options_serves_the_locks_under_the_workers_name(
    pg: Database,
) -> None:
    db = Database(pg.url + "?ssl=disable")
    locks = PostgresConversationLocks(db)
    try:
        async with locks.hold(conversation_key("d", "c")):
            query = text(
                "select count(*) from pg_stat_activity where application_name = :name"
                " and datname = current_database()"
            )
            async with pg.read_conn() as conn:
                assert (await conn.execute(query, {"name": db.worker})).scalar() == 1
    finally:
        await locks.close()
        await db.dispose()


async def test_a_message_recorded_before_rows_named_their_conversation_is_answered(
    cluster: Cluster,
) -> None:
    worker = cluster.worker(EchoBot())
    message = cluster.message("from before the upgrade")
    insert = text(
        "INSERT INTO inbox (dedupe_key, deployment_id, payload, status, received_at) "
        "VALUES ('old', :d, :p, 'pending', now()) RETURNING id"
    )
    async with cluster.db.write_conn() as conn:
        payload = json.dumps(message.model_dump(mode="json"))
        row_id = (await conn.execute(insert, {"d": cluster.deployment_id, "p": payload})).scalar()
    assert row_id is not None
    await worker.process(row_id, message)
    assert cluster.texts() == ["from before the upgrade"]
    assert await cluster.pending() == 0


async def _echo_workers(
    cluster: Cluster, llm: FakeLLM
) -> tuple[list[Runtime], BotSpec, Callable[[Runtime, str], Awaitable[list[str]]]]:
    """Two workers of the cluster's bot, made an `llm` bot that remembers 5 turns, and `say`:
    a message answered by a worker, what the model was given before it."""
    async with cluster.db.write() as session:
        repo = BotRepository(session)
        deployment = await session.get(Deployment, cluster.deployment_id)
        assert deployment is not None
        bot = await repo.by_id(deployment.bot_id)
        assert bot is not None
        spec = BotSpec(name="echo", model=MODEL, history=5, fallback="sorry")
        version = await repo.add_version(bot, spec, created_by="test")
        assert bot.id is not None and version.id is not None
        await repo.set_pointer(bot.id, "production", version.id)
    workers = []
    for _ in range(2):
        channels = ChannelRegistry()
        channels.register(cluster.channel)
        locks = PostgresConversationLocks(cluster.db)
        cluster.locks.append(locks)
        workers.append(Runtime(db=cluster.db, llm=gateway(llm), channels=channels, locks=locks))
    cluster.workers.extend(workers)

    async def say(worker: Runtime, text: str) -> list[str]:
        llm.reply(f"re {text}")
        assert await worker.feed(cluster.message(text))
        await worker.drain()
        said = [m["content"] for m in llm.calls[-1].messages if m["role"] != "system"]
        assert said[-1] == text
        return said[:-1]

    return workers, spec, say


async def test_each_worker_answers_with_the_history_the_others_stored(
    cluster: Cluster, llm: FakeLLM
) -> None:
    workers, spec, say = await _echo_workers(cluster, llm)
    assert await say(workers[0], "one") == []
    assert await say(workers[1], "two") == ["one", "re one"]
    assert await say(workers[0], "three") == ["one", "re one", "two", "re two"]  # cached, checked
    assert await say(workers[0], "four") == ["one", "re one", "two", "re two", "three", "re three"]
    assert await workers[1].feed(cluster.message("/reset"))  # ends it, on the other worker
    await workers[1].drain()
    assert await say(workers[0], "five") == []  # a new conversation here too
    assert cluster.texts()[-2:] == [spec.greeting, "re five"]


async def test_a_cached_history_takes_only_what_another_worker_stored_since(
    cluster: Cluster, llm: FakeLLM
) -> None:
    workers, _, say = await _echo_workers(cluster, llm)
    cache = workers[0].conversations
    fetch = cache.fetch
    assert fetch is not None
    asked: list[str] = []

    async def counted(key: tuple[str, str], query: str, *args: object) -> list[tuple[Any, ...]]:
        asked.append(query)
        return await fetch(key, query, *args)

    cache.fetch = counted
    key = (cluster.deployment_id, "a")
    await say(workers[0], "one")
    cached = await cache.load(key, 5)
    await say(workers[1], "two")
    # taken along by the lock holder's first read: nothing more is read
    assert await say(workers[0], "three") == ["one", "re one", "two", "re two"]
    assert asked == [] and await cache.load(key, 5) is cached  # brought up to date
    for n in range(4, 10):
        await say(workers[1], f"m{n}")
    caught_up = await cache.load(key, 5)  # not as a turn: read on the lock's connection
    assert asked == [conv_store.RECENT] and caught_up is cached
    words = [w for n in range(5, 10) for w in (f"m{n}", f"re m{n}")]  # the last 5 turns
    assert [m.content for m in caught_up.messages] == words
    assert await say(workers[0], "ten") == words  # what the model is given
