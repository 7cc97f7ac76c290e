"""Several workers on one PostgreSQL: a conversation is answered by one worker at a time, in the
order its messages were accepted, whichever worker accepted them; a dead worker's conversations
go on elsewhere, and nothing is answered or sent twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import text

from builders.spec import BotSpec
from runtime.channel import ChannelRegistry
from runtime.cluster.conversation_locks import NAMESPACE, PostgresConversationLocks, lock_id
from runtime.llm import LlmGateway
from runtime.locks import conversation_key
from runtime.messages import Address, IncomingMessage, OutgoingMessage
from runtime.runtime import Runtime
from storage import inbox as inbox_store
from storage.bots import BotRepository
from storage.database import Database
from storage.deployments import DeploymentRepository
from storage.migrate import migrate
from storage.teams import TeamRepository
from tests.conftest import drop_postgres_database, fresh_postgres_database
from tests.runtime.test_runtime import RecordingChannel

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Database]:
    url = await fresh_postgres_database(postgres_url)
    db = Database(url)
    await migrate(db)
    yield db
    await db.dispose()
    await drop_postgres_database(postgres_url, url)


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
        locks = PostgresConversationLocks(self.db.url)
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


async def test_the_sweep_answers_a_dead_workers_messages_and_sends_its_replies_once(
    cluster: Cluster,
) -> None:
    dead = cluster.worker(EchoBot())
    assert await dead.accept(cluster.message("accepted, never answered", chat="x")) is not None
    reply = OutgoingMessage(address=cluster.message("", chat="y").address, text="stored, unsent")
    payload = reply.model_dump(mode="json")
    await cluster.db.run_write(
        lambda conn: inbox_store.add_outbound(
            conn, deployment_id=cluster.deployment_id, payload=payload
        )
    )
    await kill(cluster, dead)
    sweepers = [cluster.worker(EchoBot()) for _ in range(3)]
    now = timedelta(0)
    queued = await asyncio.gather(*(w.recover(inbox_age=now, outbox_age=now) for w in sweepers))
    assert max(queued) == 2  # (one may answer before another looks)
    for runtime in sweepers:
        await runtime.backlog.wait()
        await runtime.drain()
    assert cluster.texts("x") == ["accepted, never answered"]
    assert cluster.texts("y") == ["stored, unsent"]
    assert [await w.recover(inbox_age=now, outbox_age=now) for w in sweepers] == [0, 0, 0]
    # a younger row is not the sweep's: its worker is still on its way to answer it
    assert await sweepers[0].accept(cluster.message("just now", chat="z")) is not None
    assert await sweepers[1].recover(inbox_age=timedelta(seconds=30)) == 0


async def test_a_conversation_lock_is_held_by_one_worker_and_dies_with_its_connection(
    pg: Database,
) -> None:
    first, second = PostgresConversationLocks(pg.url), PostgresConversationLocks(pg.url)
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
    first, second = PostgresConversationLocks(pg.url), PostgresConversationLocks(pg.url)
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
