"""A bot live on a platform that names what it sends, for the ratings and online evaluation
tests: end users' turns go through the real runtime (offline model: the answer is the bot's
fallback) and are kept, sent and referenced as in production."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from builders.spec import BotSpec, Guardrails
from runtime.channel import Capabilities, ChannelRegistry, DeploymentInfo, SendReceipt
from runtime.llm import LlmGateway
from runtime.messages import Address, IncomingMessage, OutgoingMessage, Reply
from runtime.runtime import Runtime
from runtime.turn.guardrails import GuardrailStep
from storage.bots import BotRepository
from storage.database import Database
from storage.deployments import DeploymentRepository
from storage.teams import TeamRepository

ANSWER = "Refunds take 5 days."


@dataclass
class ReferencingChannel:
    """Records what it sends and names each message "room:N", as Telegram's "CHAT:ID"."""

    kind: ClassVar[str] = "test"
    capabilities: ClassVar[Capabilities] = Capabilities()
    sent: list[OutgoingMessage] = field(default_factory=list)

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        self.sent.append(message)
        return SendReceipt(platform_id=str(len(self.sent)), ref=f"room:{len(self.sent)}")

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        return None

    async def teardown(self, deployment: DeploymentInfo) -> None:
        return None


@dataclass
class World:
    db: Database
    runtime: Runtime
    channel: ReferencingChannel
    team_id: int
    bot_id: int
    deployment_id: str

    def address(self, chat: str = "c1", user: str = "u1") -> Address:
        return Address(
            channel="test", deployment_id=self.deployment_id, conversation=chat, user=user
        )

    async def ask(self, text: str, *, chat: str = "c1", user: str = "u1") -> Reply:
        """A synchronous turn (as the web's): the reply carries the answer's id."""
        message = IncomingMessage(address=self.address(chat, user), text=text)
        return await self.runtime.answer(message)

    async def answered(self, text: str, *, chat: str = "c1") -> int:
        """The stored answer's id of a synchronous turn."""
        reply = await self.ask(text, chat=chat)
        assert reply.text == ANSWER and reply.message_id is not None
        return reply.message_id

    async def feed(self, text: str, *, chat: str = "c1", key: str) -> None:
        """An asynchronous turn (as Telegram's): recorded, answered and sent in the background."""
        message = IncomingMessage(address=self.address(chat), text=text, dedupe_key=key)
        assert await self.runtime.feed(message)
        await self.runtime.drain()


async def live_world(
    db: Database, *, name: str = "faq-bot", pii: bool = False, team: str = "t"
) -> World:
    """A team with a bot in production (its fallback is `ANSWER`) deployed on the test channel."""
    spec = BotSpec(name=name, fallback=ANSWER, guardrails=Guardrails(pii=pii))
    async with db.write() as session:
        teams = TeamRepository(session)
        found = await teams.by_name(team)
        team_row = found if found is not None else await teams.create(team)
        assert team_row.id is not None
        bots = BotRepository(session)
        bot = await bots.create(team_row.id, spec)
        assert bot.id is not None
        version = await bots.add_version(bot, spec, created_by="test")
        assert version.id is not None
        await bots.set_pointer(bot.id, "production", version.id)
        deployment = await DeploymentRepository(session).create(
            team_id=team_row.id, bot_id=bot.id, channel="test", env="production", target=name
        )
    channel = ReferencingChannel()
    channels = ChannelRegistry()
    channels.register(channel)
    runtime = Runtime(db=db, llm=LlmGateway(), channels=channels)
    runtime.runner.add_steps(GuardrailStep())  # as in production: the PII guard masks
    return World(db, runtime, channel, team_row.id, bot.id, deployment.id)
