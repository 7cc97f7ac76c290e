"""A bot live on a recording channel, a runtime and a scheduler on one database, and a clock
the tests move by hand (`Scheduler.run_due(now)`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import text, update

from builders.spec import BotSpec
from runtime.channel import Capabilities, ChannelRegistry, DeploymentInfo, SendReceipt
from runtime.cluster.leader import Leadership, LocalLeadership
from runtime.llm import LlmGateway, RetryPolicy
from runtime.messages import Address, IncomingMessage, OutgoingMessage
from runtime.runtime import Runtime
from runtime.scheduler.service import Scheduler
from storage import handoffs as handoff_store
from storage.bots import BotRepository
from storage.database import Database
from storage.deployments import DeploymentRepository
from storage.tables import EnvironmentPointer
from storage.teams import TeamRepository

MOVED = datetime(2030, 3, 1, tzinfo=UTC)  # when the tests' pointers moved


@dataclass
class RecordingChannel:
    """An asynchronous platform that records what it is asked to send; `hold` makes sends
    from the `hold_after`-th on wait (a process stopped in the middle of a fan-out)."""

    kind: ClassVar[str] = "test"
    capabilities: ClassVar[Capabilities] = Capabilities()
    sent: list[OutgoingMessage] = field(default_factory=list)
    hold_after: int | None = None
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Event = field(default_factory=asyncio.Event)  # a send is waiting

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        if self.hold_after is not None and len(self.sent) >= self.hold_after:
            self.held.set()
            await self.hold.wait()
        self.sent.append(message)
        return SendReceipt(platform_id=str(len(self.sent)))

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        return None

    async def teardown(self, deployment: DeploymentInfo) -> None:
        return None

    def texts(self) -> list[str]:
        return [message.text for message in self.sent]


@dataclass
class World:
    db: Database
    channel: RecordingChannel
    team_id: int
    bot_id: int
    deployment_id: str
    runtime: Runtime = field(init=False)
    scheduler: Scheduler = field(init=False)
    # More channels, each made for the process's runtime (a platform adapter needs it).
    extra_channels: list[Callable[[Runtime], Any]] = field(default_factory=list)
    llm_api_base: str | None = None  # the fake LLM's, for bots that use a model

    def process(
        self, *, leadership: Leadership | None = None, batch: int = 500
    ) -> tuple[Runtime, Scheduler]:
        """Another process on the same database (a restart, a second `serve`)."""
        channels = ChannelRegistry()
        channels.register(self.channel)
        policy = RetryPolicy(attempts=1, attempt_timeout_s=10, deadline_s=10)
        llm = LlmGateway(api_base=self.llm_api_base, policy=policy)
        runtime = Runtime(db=self.db, llm=llm, channels=channels)
        for make in self.extra_channels:
            channels.register(make(runtime))
        scheduler = Scheduler(
            runtime=runtime, leadership=leadership or LocalLeadership(), batch=batch
        )
        return runtime, scheduler

    def restart(self, **options: Any) -> None:
        self.runtime, self.scheduler = self.process(**options)

    async def version(self, **fields: Any) -> int:
        """A new version of the bot (its draft with `fields`); the version's id."""
        async with self.db.write() as session:
            repo = BotRepository(session)
            bot = await repo.by_id(self.bot_id)
            assert bot is not None
            spec = BotSpec.model_validate({**bot.draft, **fields})
            version = await repo.add_version(bot, spec, created_by="test")
            assert version.id is not None
            return version.id

    async def point(self, env: str, version_id: int, *, at: datetime = MOVED) -> None:
        """Move `env` to a version at `at` (a promotion or a rollback), as the Studio does."""
        async with self.db.write() as session:
            await BotRepository(session).set_pointer(self.bot_id, env, version_id)
            await session.exec(
                update(EnvironmentPointer)
                .where(EnvironmentPointer.bot_id == self.bot_id, EnvironmentPointer.env == env)  # type: ignore[arg-type]
                .values(updated_at=at)
            )
        self.runtime.invalidate_bot(self.bot_id)

    async def promote(self, env: str = "production", *, at: datetime = MOVED, **fields: Any) -> int:
        version_id = await self.version(**fields)
        await self.point(env, version_id, at=at)
        return version_id

    def address(self, user: str, *, deployment: str | None = None) -> Address:
        return Address(
            channel="test",
            deployment_id=deployment or self.deployment_id,
            conversation=f"chat-{user}",
            user=f"test:{user}",
        )

    async def talk(self, user: str, said: str = "hello", *, deployment: str | None = None) -> None:
        """`user` says something and the bot answers (the conversation exists from then)."""
        message = IncomingMessage(address=self.address(user, deployment=deployment), text=said)
        assert await self.runtime.feed(message)
        await self.runtime.drain()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.db.read_conn() as conn:
            return list((await conn.execute(text(sql), params)).all())

    async def runs(self) -> list[tuple[str, str, datetime, str, int, int, str | None]]:
        rows = await self.rows(
            "select env, schedule_id, due_at, status, sent, failed, error from schedule_run "
            "order by id"
        )
        return [(e, s, _aware(d), st, n, f, err) for e, s, d, st, n, f, err in rows]


async def hand_over(world: World, deployment_id: str, conversation: str) -> None:
    """A person of the team has that conversation now (an open handoff, as after a restart)."""
    now = datetime.now(UTC)
    new = handoff_store.NewHandoff(
        bot_id=world.bot_id,
        deployment_id=deployment_id,
        conversation_key=conversation,
        address={},
        room_kind="slack",
        room="C0TEAM",
        room_name="#team",
        thread="1700000000.000200",
        reason="asked for a person",
        timeout_minutes=60,
        opened_at=now,
        expires_at=now + timedelta(hours=1),
    )
    await world.db.run_write(lambda conn: handoff_store.open_handoff(conn, new))
    await world.runtime.handoffs.load()


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def make_world(db: Database, **spec: Any) -> World:
    async with db.write() as session:
        team = await TeamRepository(session).create("t")
        assert team.id is not None
        bot = await BotRepository(session).create(
            team.id, BotSpec.model_validate({"name": "echo", "fallback": "hi from the bot", **spec})
        )
        assert bot.id is not None
        deployment = await DeploymentRepository(session).create(
            team_id=team.id, bot_id=bot.id, channel="test", env="production", target="room"
        )
    world = World(db, RecordingChannel(), team.id, bot.id, deployment.id)
    world.restart()
    await world.promote()  # live from the start, without schedules
    return world


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    built = await make_world(db)
    yield built
    await built.scheduler.stop()
    await built.runtime.drain()
