"""`Runtime`: one runtime answers every deployed bot.

A message: record in the inbox (dedupe) -> lock the conversation -> the version its environment
points at -> the turn engine (`runtime.turn.runner.BotRunner`: guards, history, memory, pipeline)
-> store both messages, the memory it changed, the outbox row and the inbox status in one
transaction (`_LiveSession.record`) -> send -> mark sent. Synchronous channels (web) skip the
inbox and outbox: their response is the acknowledgement, so nothing is acknowledged before the
turn is stored.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from sqlalchemy import Connection
from sqlmodel import select

from builders.spec import BotSpec
from runtime.ab import AbPlan, Arm, variant_of
from runtime.backlog import Backlog, Job
from runtime.channel import ChannelRegistry, SendError, StreamingChannel, UnknownChannelError
from runtime.cluster.invalidation import (
    AbChanged,
    BotChanged,
    Change,
    ConversationForgotten,
    DeploymentForgotten,
    DeploymentsChanged,
    Everything,
    HandoffChanged,
    Invalidations,
    LocalInvalidations,
    ParticipantsForgotten,
)
from runtime.cluster.presence import Presence
from runtime.conversation_cache import ConversationCache, ConversationState, Peek
from runtime.feedback import Ratings
from runtime.handoff_desk import HANDOFF_DESK, HandoffDesk
from runtime.hearing import hear, heard, spoken, voice_note
from runtime.llm import ChatMessage, LlmGateway, TextSink
from runtime.locks import (
    AbstractLock,
    ConversationLocks,
    LocalConversationLocks,
    SharedConversationLocks,
    conversation_key,
)
from runtime.messages import Address, IncomingMessage, OutgoingMessage, Reply
from runtime.metrics import DUPLICATES, SENDS
from runtime.participant import Scalar
from runtime.participant_cache import ParticipantCache
from runtime.pipeline import CompiledBot, TurnContext, TurnOutput, compile_spec, turn_records
from runtime.team_front import TeamFronts
from runtime.turn.runner import BotRunner
from storage import abtests as ab_store
from storage import conversations as conv_store
from storage import deliveries
from storage import inbox as inbox_store
from storage import participants as participant_store
from storage import schedules as schedule_store
from storage.batch import WriteBatcher
from storage.bots import BotRepository
from storage.database import Database
from storage.held import HELD, Held
from storage.tables import Bot, BotVersion, Deployment, EnvironmentPointer, utcnow

if TYPE_CHECKING:
    from runtime.knowledge.gateway import KnowledgeGateway
    from runtime.tools.gateway import ToolGateway
    from runtime.voice import VoiceGateway

_R = TypeVar("_R")
logger = logging.getLogger(__name__)

RESET_COMMAND = "/reset"
TEXT_ONLY = "Sorry, I only read text messages for now."
START_COMMAND = "/start"
_SEND_ATTEMPTS = 3
# Platforms redeliver within minutes (Slack: up to ~5 min; Telegram: while unacknowledged), so
# two days of delivery rows is ample for deduplication.
KEEP_DELIVERIES = timedelta(days=2)
# Jobs of the restart backlog running at once (conversations answered side by side): enough to
# work off hundreds of updates in seconds, few enough not to flood the model provider.
RECOVERY_CONCURRENCY = 32


# With several workers (`Runtime.recover`): a message a live worker accepted and has not
# answered this long after is the sweep's too (no turn takes that long), and so is a reply
# stored this long ago by a version that did not name its worker (longer than any send's
# retries take).
SWEEP_INBOX_AGE = timedelta(minutes=2)
SWEEP_OUTBOX_AGE = timedelta(minutes=5)
SWEEP_EVERY_S = 2.0


@asynccontextmanager
async def _waited(lock: AbstractLock) -> AsyncIterator[bool]:
    """`hold` as `attempt` reads: held, after waiting."""
    async with lock:
        yield True


class AnsweredElsewhereError(RuntimeError):
    """The message was answered by another worker while this one answered it too (a lost
    conversation lock): this answer is neither kept nor sent."""


class UnknownDeploymentError(LookupError):
    """No deployment has this id (the web answers 404)."""


class NotLiveError(LookupError):
    """The deployment's environment points at no version."""


@dataclass(frozen=True, slots=True)
class DeploymentTarget:
    id: str
    team_id: int
    bot_id: int
    channel: str
    env: str


@dataclass(frozen=True, slots=True)
class TurnRows:
    """The messages of a turn and the conversation they belong to (`new`: start it)."""

    bot_id: int
    conversation_id: int | None
    new: conv_store.NewConversation | None
    records: list[conv_store.TurnRecord]
    memory: tuple[str, str, dict[str, Scalar]] | None = None  # (channel, user, what changed)
    followups: schedule_store.Arming | None = None  # armed (or cancelled) with the turn


@dataclass(frozen=True, slots=True)
class LiveVersion:
    number: int
    compiled: CompiledBot

    @property
    def spec(self) -> BotSpec:
        return self.compiled.spec


@dataclass(frozen=True, slots=True)
class LiveTurn:
    """A live turn that was answered and kept, as `Runtime.turn_listeners` are told of it
    (online evaluation samples these)."""

    bot_id: int
    team_id: int
    deployment_id: str | None  # None: an API turn (`runtime.api_turns`), no deployment
    channel: str
    user: str
    version: int
    arm: Arm | None
    message_id: int  # the stored answer's id
    text: str  # the user's message as stored (masked when a guard says)
    answer: str


class Expiry(Protocol):
    """Deletes rows older than `before` in a write transaction (housekeeping)."""

    def __call__(self, conn: Connection, *, before: datetime) -> None: ...


class BuiltinBot(Protocol):
    """A bot whose handler is code rather than a spec (the Studio)."""

    async def handle(self, message: IncomingMessage) -> list[OutgoingMessage]: ...


class Runtime:
    """Answers every deployed bot (see the module).

    Caches what turns read (compiled versions, A/B plans, deployments, bot names; conversations
    and participants' memory). A change made here is invalidated here and published through
    `invalidations` to the other workers sharing the database, which `apply` it.
    `conversation_cache_size` None: 5,000 on SQLite (one process); on a server database, where
    another worker may store a turn or a memory between two of this one's, conversations are
    cached only where shared locks let a turn check what is stored (`conversation_cache`), and
    participants' memory not at all.
    """

    def __init__(
        self,
        *,
        db: Database,
        llm: LlmGateway,
        channels: ChannelRegistry,
        locks: ConversationLocks | None = None,
        conversation_cache_size: int | None = None,
        knowledge: KnowledgeGateway | None = None,
        recovery_concurrency: int = RECOVERY_CONCURRENCY,
        tools: ToolGateway | None = None,
        voice: VoiceGateway | None = None,
        invalidations: Invalidations | None = None,
    ) -> None:
        self.db = db
        self.llm = llm
        self.voice = voice  # voice notes heard (`runtime.hearing`); None: text only
        self.knowledge = knowledge
        self.channels = channels
        self.locks: ConversationLocks = locks or LocalConversationLocks()
        self._builtins: dict[str, BuiltinBot] = {}
        self._targets: dict[str, DeploymentTarget] = {}
        self._live: dict[tuple[int, str], LiveVersion] = {}
        self._bindings: dict[tuple[str, str, int], str | None] = {}
        self.invalidations: Invalidations = invalidations or LocalInvalidations()
        shared = self.locks if isinstance(self.locks, SharedConversationLocks) else None
        self._shared_locks = shared if shared is not None and shared.shared else None
        size = 5_000 if conversation_cache_size is None else conversation_cache_size
        self.conversations = ConversationCache(
            db,
            size=size if db.is_sqlite or self._shared_locks is not None else 0,
            invalidations=self.invalidations,
            latest=self._latest if self._shared_locks is not None else None,
            fetch=self._held_fetch if self._shared_locks is not None else None,
        )
        self.participants = ParticipantCache(
            db, size=size if db.is_sqlite else 0, invalidations=self.invalidations
        )
        self._bot_ids: dict[tuple[int, str], int] = {}
        self.runner = BotRunner(llm=llm, knowledge=knowledge, versions=self, tools=tools)
        self.writes = WriteBatcher(db)
        self.ratings = Ratings(db, self.writes)
        self._tasks: set[asyncio.Task[Any]] = set()
        # Told (with the bot's id) when a bot's pointers move or it goes (the scheduler).
        self.bot_listeners: list[Callable[[int], None]] = []
        # Told of each answered live turn once it is kept; must return at once (spawn work).
        self.turn_listeners: list[Callable[[LiveTurn], None]] = []
        # A/B tests by (bot, environment), and versions by (bot, number), as turns need them.
        self._plans: dict[tuple[int, str], AbPlan | None] = {}
        self._versions: dict[tuple[int, int], LiveVersion] = {}
        # Bumped by `invalidate_bot`: a read that began before it is not cached after it.
        self._generation = 0
        self.backlog = Backlog(concurrency=recovery_concurrency)
        # Where teams talk to the Studio itself (its Slack app, its Telegram bot): the plugins
        # add them at start, on or off.
        self.fronts = TeamFronts()
        # Conversations handed to people of the team: their rooms' messages come in as the
        # built-in deployment `handoff`, and the desk is the channel that posts in the rooms.
        self.handoffs = HandoffDesk(self)
        self.register_builtin(HANDOFF_DESK, self.handoffs)
        channels.register(self.handoffs)

    # -- wiring and caches ------------------------------------------------------------------

    async def _latest(self, key: tuple[str, str]) -> tuple[int | None, int | None] | None:
        """The active conversation at `key` and its newest message, read by the holder of the
        conversation's lock on the lock's connection (`ConversationCache.load`); None when
        that connection is lost (the conversation is then read through the pool)."""
        try:
            rows = await self._held_fetch(key, conv_store.LATEST, *key)
        except Exception:
            logger.warning("could not check a cached conversation", exc_info=True)
            return None
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    async def _held_fetch(
        self, key: tuple[str, str], query: str, *args: object
    ) -> list[tuple[Any, ...]]:
        """Rows of `query` on the connection that holds the lock of the conversation at `key`."""
        assert self._shared_locks is not None
        return await self._shared_locks.fetch(conversation_key(*key), query, *args)

    def register_builtin(self, deployment_id: str, bot: BuiltinBot) -> None:
        self._builtins[deployment_id] = bot

    def invalidate_bot(self, bot_id: int) -> None:
        """A pointer moved or the bot was deleted (committed): the next turn loads (hot-swaps)
        its version, and reads its participants' memory afresh (SQLite may give a deleted bot's
        id to a new one); the other workers are told."""
        self._drop_bot(bot_id)
        self.invalidations.publish(BotChanged(bot_id))

    def ab_changed(self, bot_id: int) -> None:
        """An A/B test of the bot started or ended: the next turn reads which one runs. Only
        that: the bot's versions, deployments and participants' memory are as they were."""
        self._drop_ab(bot_id)
        self.invalidations.publish(AbChanged(bot_id))

    def forget_deployment(self, deployment_id: str) -> None:
        self._drop_deployment(deployment_id)
        self.invalidations.publish(DeploymentForgotten(deployment_id))

    def deployments_changed(self) -> None:
        """A deployment was added: places looked up before may be bound now."""
        self._bindings.clear()
        self.invalidations.publish(DeploymentsChanged())

    async def apply(self, change: Change) -> None:
        """A change another worker made (or the safety net found): the same invalidation as
        the worker that made it did, not published again."""
        match change:
            case BotChanged(bot_id):
                self._drop_bot(bot_id)
            case AbChanged(bot_id):
                self._drop_ab(bot_id)
            case DeploymentForgotten(deployment_id):
                self._drop_deployment(deployment_id)
            case DeploymentsChanged():
                self._bindings.clear()
            case ParticipantsForgotten(bot_id, user):
                self.participants.drop(bot_id, user)
            case ConversationForgotten(deployment_id, conversation):
                self.conversations.drop((deployment_id, conversation))
            case HandoffChanged(handoff_id):
                await self.handoffs.refresh(handoff_id)
            case Everything():
                self._drop_everything()
                await self.handoffs.load()

    def _drop_bot(self, bot_id: int) -> None:
        self.participants.drop(bot_id)
        for key in [k for k in self._live if k[0] == bot_id]:
            del self._live[key]
        self._drop_ab(bot_id)
        for dep_id in [d for d, t in self._targets.items() if t.bot_id == bot_id]:
            del self._targets[dep_id]
        for name in [n for n, i in self._bot_ids.items() if i == bot_id]:
            del self._bot_ids[name]
        self._bindings.clear()
        for listener in self.bot_listeners:
            listener(bot_id)

    def _drop_ab(self, bot_id: int) -> None:
        self._generation += 1
        for plan in [k for k in self._plans if k[0] == bot_id]:
            del self._plans[plan]
        for number in [k for k in self._versions if k[0] == bot_id]:
            del self._versions[number]

    def _drop_deployment(self, deployment_id: str) -> None:
        self._targets.pop(deployment_id, None)
        self._bindings.clear()

    def _drop_everything(self) -> None:
        """Changes may have been missed: every cache is read again (not the bot listeners:
        the safety net's next check tells them of the bots whose pointers moved)."""
        self._generation += 1
        for cache in (self._live, self._versions, self._plans, self._targets, self._bindings):
            cache.clear()
        self._bot_ids.clear()
        self.participants.clear()
        self.conversations.clear()

    async def deployment_at(self, channel: str, target: str, *, team_id: int) -> str | None:
        """The deployment of `team_id` bound to `target` (a Slack channel, say) on `channel`,
        production before staging; cached until deployments change."""
        key = (channel, target, team_id)
        if key in self._bindings:
            return self._bindings[key]
        query = select(Deployment.id, Deployment.env).where(
            Deployment.channel == channel,
            Deployment.target == target,
            Deployment.team_id == team_id,
        )
        async with self.db.read() as session:
            rows = list((await session.exec(query)).all())
        found = min(rows, key=lambda row: row[1] != "production")[0] if rows else None
        self._bindings[key] = found
        return found

    async def target(self, deployment_id: str) -> DeploymentTarget:
        cached = self._targets.get(deployment_id)
        if cached is not None:
            return cached
        async with self.db.read() as session:
            row = await session.get(Deployment, deployment_id)
        if row is None:
            raise UnknownDeploymentError(deployment_id)
        target = DeploymentTarget(row.id, row.team_id, row.bot_id, row.channel, row.env)
        self._targets[deployment_id] = target
        return target

    async def live_version(self, bot_id: int, env: str) -> LiveVersion:
        cached = self._live.get((bot_id, env))
        if cached is not None:
            return cached
        generation = self._generation
        async with self.db.read() as session:
            pointer = await session.get(EnvironmentPointer, (bot_id, env))
            version = await session.get(BotVersion, pointer.version_id) if pointer else None
        if version is None:
            raise NotLiveError(f"{env} has no version yet")
        live = LiveVersion(version.number, compile_spec(BotSpec.model_validate(version.spec)))
        if generation == self._generation:  # a pointer moved meanwhile: read it again next time
            self._live[(bot_id, env)] = live
        return live

    async def numbered_version(self, bot_id: int, number: int) -> LiveVersion:
        """Version `number` of the bot, compiled (an A/B test's B arm); cached until the bot's
        pointers move."""
        cached = self._versions.get((bot_id, number))
        if cached is not None:
            return cached
        generation = self._generation
        async with self.db.read() as session:
            version = await BotRepository(session).version(bot_id, number)
        if version is None:
            raise NotLiveError(f"version v{number} is gone")
        live = LiveVersion(number, compile_spec(BotSpec.model_validate(version.spec)))
        if generation == self._generation:  # not invalidated meanwhile: still true
            self._versions[(bot_id, number)] = live
        return live

    async def ab_plan(self, bot_id: int, env: str) -> AbPlan | None:
        """The A/B test running on the bot's `env`, cached until its pointers move (starting or
        ending a test invalidates the bot)."""
        key = (bot_id, env)
        if key in self._plans:
            return self._plans[key]
        generation = self._generation
        async with self.db.read_conn() as conn:
            found = await ab_store.running(conn, bot_id, env)
        plan = None
        if found is not None:
            plan = AbPlan(found.id, found.version_a, found.version_b, found.percent)
        if generation == self._generation:  # a test started or ended meanwhile: read again
            self._plans[key] = plan
        return plan

    async def _version_for(
        self, target: DeploymentTarget, address: Address
    ) -> tuple[LiveVersion, Arm | None]:
        """The version that answers this end user: the environment's, or the variant of a
        running A/B test the user is hashed into."""
        plan = await self.ab_plan(target.bot_id, target.env)
        if plan is None:
            return await self.live_version(target.bot_id, target.env), None
        variant = variant_of(
            bot_id=target.bot_id, channel=address.channel, user=address.user, percent=plan.percent
        )
        if variant == "B":
            live = await self.numbered_version(target.bot_id, plan.version_b)
        else:
            live = await self.live_version(target.bot_id, target.env)
        return live, Arm(plan.test_id, variant)

    async def greeting(self, deployment_id: str, *, address: Address | None = None) -> str:
        """The greeting of the version that answers the end user at `address` (their variant
        of a running A/B test); without one, the environment's."""
        target = await self.target(deployment_id)
        if address is None:
            return (await self.live_version(target.bot_id, target.env)).spec.greeting
        live, _ = await self._version_for(target, address)
        return live.spec.greeting

    async def bot_name(self, deployment_id: str) -> str:
        target = await self.target(deployment_id)
        async with self.db.read() as session:
            bot = await session.get(Bot, target.bot_id)
        return bot.name if bot else ""

    # -- entry points -----------------------------------------------------------------------

    async def answer(self, message: IncomingMessage, *, stream: TextSink | None = None) -> Reply:
        """A synchronous turn: the reply is returned, not sent (web); `stream` gets the
        answer's text as it is written."""
        return await self._turn(message, inbox_id=None, stream=stream)

    def answer_streaming(self, message: IncomingMessage, stream: TextSink) -> asyncio.Task[Reply]:
        """`answer` as a task the runtime keeps (shutdown waits for it): the turn completes
        and is stored even when whoever watched its stream has gone."""
        return self.spawn(self.answer(message, stream=stream))

    def _may_follow_up(self, deployment_id: str) -> bool:
        """Whether the deployment's bot may have follow-ups armed: False only when its live
        version is cached and has none (the hot path pays nothing then), True when unknown."""
        if deployment_id in self._builtins:
            return False
        live = self._cached_live(deployment_id)
        return live is None or bool(live.spec.followups)

    def _cached_live(self, deployment_id: str) -> LiveVersion | None:
        """The deployment's live version, when it is cached (None: not known without a read)."""
        target = self._targets.get(deployment_id)
        return self._live.get((target.bot_id, target.env)) if target is not None else None

    async def accept(self, message: IncomingMessage) -> int | None:
        """Record an inbound message before the platform is acknowledged; None = a duplicate.
        Whatever the end user sent, the conversation's follow-ups are cancelled with it: none
        goes out after they spoke (the answer arms them again)."""
        dedupe_key = message.dedupe_key or f"once:{uuid.uuid4().hex}"
        payload = message.model_dump(mode="json")
        address = message.address
        follow_ups = self._may_follow_up(address.deployment_id)

        def record(conn: Connection) -> int | None:
            inbox_id = inbox_store.record_inbound(
                conn,
                dedupe_key=dedupe_key,
                deployment_id=address.deployment_id,
                conversation=address.conversation,
                payload=payload,
                worker=self.db.worker,
            )
            if inbox_id is not None and follow_ups:
                schedule_store.cancel_followups(
                    conn, deployment_id=address.deployment_id, conversation_key=address.conversation
                )
            return inbox_id

        inbox_id = await self.writes.run(record)
        if inbox_id is None:
            DUPLICATES.labels(message.address.channel).inc()
        return inbox_id

    async def feed(self, message: IncomingMessage) -> bool:
        """Record, then answer and send in the background. False: a duplicate, ignored."""
        inbox_id = await self.accept(message)
        if inbox_id is None:
            return False
        # After a restart, a conversation with a backlog answers this after it.
        if not self.backlog or not self.backlog.join(
            message.address, partial(self.process, inbox_id, message)
        ):
            self.spawn(self.process(inbox_id, message))
        return True

    async def process(
        self, inbox_id: int, message: IncomingMessage, *, wait: bool = True
    ) -> Reply | None:
        """Answer an accepted message and send the reply (shown while it is written where the
        channel streams); failures are logged, never raised.

        When other workers share the conversation locks, whichever holds the conversation
        answers its pending messages oldest first, up to this one: a message another worker
        accepted earlier (and has not answered yet, or never will: it died) goes first, and one
        answered meanwhile is not answered again. `wait=False` (recovery, the sweep) skips a
        conversation someone is answering: the sweep comes back to it."""
        locks = self._shared_locks
        if locks is None:
            return await self._process_held(inbox_id, message, locked=False)
        try:
            return await self._drain(locks, inbox_id, message, wait=wait)
        except Exception:  # the database or the lock's connection: the sweep tries again
            logger.exception("could not take the conversation", extra={"inbox": inbox_id})
            return None

    async def _drain(
        self,
        locks: SharedConversationLocks,
        inbox_id: int,
        message: IncomingMessage,
        *,
        wait: bool,
    ) -> Reply | None:
        """`process` with shared locks: the conversation's waiting messages up to this one."""
        address = message.address
        key = conversation_key(address.deployment_id, address.conversation)
        async with _waited(locks.hold(key)) if wait else locks.attempt(key) as held:
            if not held:
                return None
            where = (address.deployment_id, address.conversation)
            seen = await self._seen(locks, where, up_to=inbox_id)
            earlier: dict[int, dict[str, Any]] = {}
            if seen.pending[:1] not in ([], [inbox_id]):  # rare: read what the others said
                async with self.db.read_conn() as conn:
                    rows = await inbox_store.pending_of(
                        conn, deployment_id=where[0], conversation=where[1], up_to=inbox_id
                    )
                earlier = dict(rows)
            reply: Reply | None = None
            try:
                for row_id in seen.pending:
                    if row_id == inbox_id:
                        reply = await self._process_held(inbox_id, message, locked=True)
                    elif row_id in earlier:
                        said = IncomingMessage.model_validate(earlier[row_id])
                        await self._process_held(row_id, said, locked=True)
                    self.conversations.unpeek(where)
            finally:
                self.conversations.unpeek(where)
            return reply

    async def _seen(
        self, locks: SharedConversationLocks, where: tuple[str, str], *, up_to: int
    ) -> Held:
        """What the new holder of the conversation's lock reads first (`storage.held`), in one
        statement: its pending messages up to inbox row `up_to`; its open handoff, taken as
        stored (another worker may have opened it a moment ago); and its latest message, with
        what was stored after the cached history, kept for the next load of the conversation
        (unpeeked by the caller after the first turn: a turn may store what it does not cache,
        a handoff's relay)."""
        end = self.conversations.cached_end(where)
        seen = Held.of(await locks.fetch(conversation_key(*where), HELD, *where, up_to, *end))
        await self.handoffs.confirm(where, seen.handoff)
        peek = Peek(seen.conversation, seen.last, after=end[:2], since=seen.since)
        self.conversations.peek(where, peek)
        return seen

    async def _process_held(
        self, inbox_id: int, message: IncomingMessage, *, locked: bool
    ) -> Reply | None:
        """`process` for one message (`locked`: the caller holds its conversation)."""
        try:
            stream = self._stream(message)
            return await self._turn(message, inbox_id=inbox_id, stream=stream, locked=locked)
        except AnsweredElsewhereError:
            logger.warning("answered by another worker meanwhile", extra={"inbox": inbox_id})
            return None
        except (UnknownDeploymentError, NotLiveError) as exc:
            logger.warning("dropping message: %s", exc, extra={"inbox": inbox_id})
        except Exception:
            logger.exception("turn failed", extra={"inbox": inbox_id})
        await self.db.run_write(lambda conn: inbox_store.set_inbox_status(conn, inbox_id, "failed"))
        return None

    def _stream(self, message: IncomingMessage) -> TextSink | None:
        """Where the channel shows the answer while it is written (None: nowhere; a person of
        the team has the conversation, the bot says nothing)."""
        address = message.address
        kind = address.channel
        if address.deployment_id in self._builtins or not self.channels.has(kind):
            return None
        if self.handoffs.is_open(address.deployment_id, address.conversation):
            return None
        channel = self.channels.get(kind)
        if not channel.capabilities.streams:
            return None
        streaming = cast(StreamingChannel, channel)
        live = self._cached_live(address.deployment_id)
        if live is not None and self.llm.answers_within(live.spec.model, streaming.shows_after()):
            return None  # done before its preview would show: asked for whole, at less cost
        if live is not None and live.spec.voice and voice_note(message) is not None:
            return None  # answered by voice: a preview of its words would be a second answer
        return streaming.stream(message.address)

    def heard(self, turn: LiveTurn) -> None:
        """Tell `turn_listeners` of a live turn answered and kept."""
        for listener in self.turn_listeners:
            try:
                listener(turn)
            except Exception:  # the turn is kept and sent: a listener's bug costs it nothing
                logger.exception("a turn listener failed", extra={"bot": turn.bot_id})

    async def push(self, message: OutgoingMessage) -> str | None:
        """Send a message that answers nothing just now (a background job's report): stored in
        the outbox first, like every reply, so a restart still delivers it. Returns why the
        platform refused it for good (`deliver`), or None once sent."""
        payload = message.model_dump(mode="json")

        def store(conn: Connection) -> int:
            return inbox_store.add_outbound(
                conn,
                deployment_id=message.address.deployment_id,
                payload=payload,
                worker=self.db.worker,
            )

        return await self.deliver(await self.writes.run(store), message)

    async def show(self, message: OutgoingMessage) -> str | None:
        """Send a passing status (a progress line) at once, not through the outbox: nothing is
        lost if it never arrives. Its platform id, for `revise`; None where that is impossible."""
        try:
            port = self.channels.get(message.address.channel)
        except UnknownChannelError:
            return None
        if not port.capabilities.edits or not hasattr(port, "edit"):
            return None
        try:
            return (await port.send(message)).platform_id
        except SendError as exc:
            logger.info("a status message was not shown: %s", exc)
            return None

    async def report_delivery(
        self, *, deployment_id: str, platform_id: str, status: str, error: str | None = None
    ) -> bool:
        """What the platform says became of a message it sent (`storage.deliveries.STATUSES`);
        False when this deployment sent no such message (nothing is recorded)."""
        for attempt in (1, 2):
            async with self.db.write_conn() as conn:
                known = await deliveries.report(
                    conn,
                    deployment_id=deployment_id,
                    platform_id=platform_id,
                    status=status,
                    error=error,
                )
            if known or attempt == 2:
                return known
            await self.writes.flush()  # a report may outrun the batched write of the send
        raise AssertionError("unreachable")

    async def revise(self, message: OutgoingMessage, platform_id: str) -> None:
        """Replace a status shown with `show` (best effort, like the status itself)."""
        port: Any = self.channels.get(message.address.channel)
        try:
            await port.edit(message, platform_id)
        except SendError as exc:
            logger.info("a status message was not updated: %s", exc)

    async def recover(self, *, presence: Presence | None = None) -> int:
        """Queue what was stored but not sent, then what was accepted but not answered, and
        answer it in the background (`backlog`); how many rows were queued. At start, returns
        once it is queued, so call it before taking messages: a new one then waits for its
        conversation's backlog.

        Alone (no `presence`), everything waiting is this process's to finish. With several
        workers only what is nobody's any more: the rows of workers that are gone, a message
        still unanswered after `SWEEP_INBOX_AGE` (its turn lost its way: the conversation's
        lock and `inbox.answered` keep it answered once), and, after `SWEEP_OUTBOX_AGE`, a reply
        stored by a version that did not name its worker. A reply a live worker stored is its
        own to send, since replies outside a turn (`push`) are sent without a lock."""
        async with self.db.read_conn() as conn:
            unsent = await inbox_store.pending_outbox(conn)
            pending = await inbox_store.pending_inbox(conn)
        if presence is not None:
            named = {row.worker for row in (*unsent, *pending) if row.worker is not None}
            gone = await presence.gone(named) if named else set()
            now = utcnow()
            unsent = [
                row
                for row in unsent
                if row.worker in gone or (row.worker is None and now - row.at > SWEEP_OUTBOX_AGE)
            ]
            pending = [
                row for row in pending if row.worker in gone or now - row.at > SWEEP_INBOX_AGE
            ]
        jobs: list[tuple[Address, Job]] = []
        for outbox_id, payload, _worker, _at in unsent:
            reply = OutgoingMessage.model_validate(payload)
            jobs.append((reply.address, partial(self._deliver_pending, outbox_id, reply)))
        for inbox_id, payload, _worker, _at in pending:
            message = IncomingMessage.model_validate(payload)
            jobs.append((message.address, partial(self.process, inbox_id, message, wait=False)))
        self.backlog.start(jobs)
        if jobs:
            logger.info(
                "answering %d unsent replies and %d pending messages in the background",
                len(unsent),
                len(pending),
            )
        return len(jobs)

    async def sweep(self, presence: Presence, *, every_s: float = SWEEP_EVERY_S) -> None:
        """Forever (the leader, when workers share the database): what a worker accepted or
        stored and then died before answering or sending is answered or sent by this one.
        Cancel to stop."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.recover(presence=presence)
            except Exception:
                logger.exception("the sweep of unanswered messages failed; trying again later")

    async def _deliver_pending(self, outbox_id: int, message: OutgoingMessage) -> None:
        """Send a reply found unsent (recovery), unless someone is sending it or has sent it."""
        if not self.locks.shared:
            await self.deliver(outbox_id, message)
            return
        address = message.address
        key = conversation_key(address.deployment_id, address.conversation)
        async with self.locks.attempt(key) as held:
            if not held:
                return
            async with self.db.read_conn() as conn:
                if not await inbox_store.outbox_pending(conn, outbox_id):
                    return
            await self.deliver(outbox_id, message)

    async def housekeeping(
        self,
        *,
        every_s: float = 3600,
        keep: timedelta = KEEP_DELIVERIES,
        also: Sequence[Expiry] = (),
        kept_longer: Sequence[tuple[Expiry, timedelta]] = (),
    ) -> None:
        """Forever: forget finished inbox and outbox rows older than `keep`, what the `also`
        functions expire of the same age (others' delivery rows), and what the `kept_longer`
        ones expire of their own age (a schedule's runs), in one transaction. Cancel to stop."""

        def expire(conn: Connection) -> None:
            now = utcnow()
            for job in (inbox_store.expire, deliveries.expire, *also):
                job(conn, before=now - keep)
            for job, kept in kept_longer:
                job(conn, before=now - kept)

        while True:
            try:
                await self.db.run_write(expire)
            except Exception:
                logger.exception("housekeeping failed; trying again later")
            await asyncio.sleep(every_s)

    async def drain(self) -> None:
        """Wait for background turns (shutdown, tests); the restart backlog stops at its running
        turns, the rest stays pending for the next start."""
        await self.backlog.stop()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.ratings.settled()
        await self.writes.flush()

    def spawn(self, coroutine: Coroutine[Any, Any, _R]) -> asyncio.Task[_R]:
        """Run `coroutine` as a task the runtime keeps until it ends (shutdown waits for it)."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- one turn ---------------------------------------------------------------------------

    async def _turn(
        self,
        message: IncomingMessage,
        *,
        inbox_id: int | None,
        stream: TextSink | None = None,
        locked: bool = False,
    ) -> Reply:
        """One turn under its conversation's lock (`locked`: the caller holds it)."""
        if not locked:
            where = (message.address.deployment_id, message.address.conversation)
            async with self.locks.hold(conversation_key(*where)):
                try:
                    if self._shared_locks is not None:
                        await self._seen(self._shared_locks, where, up_to=inbox_id or 0)
                    return await self._turn(message, inbox_id=inbox_id, stream=stream, locked=True)
                finally:
                    self.conversations.unpeek(where)
        builtin = self._builtins.get(message.address.deployment_id)
        if builtin is not None:
            replies = await builtin.handle(message)
            return await self._finish(inbox_id, replies, error=None)
        return await self._bot_turn(message, inbox_id, stream)

    async def _bot_turn(
        self, message: IncomingMessage, inbox_id: int | None, stream: TextSink | None = None
    ) -> Reply:
        address = message.address
        target = await self.target(address.deployment_id)
        live, arm = await self._version_for(target, address)
        spec = live.spec
        if inbox_id is None and spec.followups:  # synchronous (web): nothing went through
            # `accept`, so the end user's message cancels the follow-ups here

            def cancel(conn: Connection) -> None:
                schedule_store.cancel_followups(
                    conn, deployment_id=target.id, conversation_key=address.conversation
                )

            await self.writes.run(cancel)
        note = voice_note(message)
        if note is not None:
            heard = await hear(message, note, voice=self.voice, channels=self.channels)
            if heard.message is None:
                reply = OutgoingMessage(address=address, text=heard.reply, reply_to=address.thread)
                return await self._finish(inbox_id, [reply], error=heard.error, version=live.number)
            message = heard.message
        text = message.text.strip()
        if not text:  # a photo, a file: bots read text only, for now
            reply = OutgoingMessage(address=address, text=TEXT_ONLY, reply_to=address.thread)
            return await self._finish(inbox_id, [reply], error=None, version=live.number)
        if text in (START_COMMAND, RESET_COMMAND):
            if text == RESET_COMMAND:
                await self.reset(address)
            reply = OutgoingMessage(address=address, text=spec.greeting or spec.fallback)
            return await self._finish(inbox_id, [reply], error=None, version=live.number)
        session = _LiveSession(self, target, message, inbox_id, live, arm)
        await self.runner.run(
            live.compiled,
            text=message.text,
            session=session,
            mode="live",
            bot_id=target.bot_id,
            team_id=target.team_id,
            user=address.user,
            channel=address.channel,
            version=live.number,
            handover=self.handoffs.bind(target, address),
            stream=stream,
        )
        assert session.reply is not None
        return session.reply

    async def bot_named(self, *, team_id: int, name: str) -> int | None:
        """The id of the team's bot called `name` (None: no such bot), cached until the bot
        changes (`invalidate_bot`)."""
        bot_id = self._bot_ids.get((team_id, name))
        if bot_id is None:
            query = select(Bot.id).where(Bot.team_id == team_id, Bot.name == name)
            async with self.db.read() as session:
                bot_id = (await session.exec(query)).first()
            if bot_id is not None:
                self._bot_ids[(team_id, name)] = bot_id
        return bot_id

    async def production_of(self, *, team_id: int, bot: str) -> tuple[int, CompiledBot] | None:
        """The production version of the team's bot called `bot` (the `bot` step asks it)."""
        bot_id = await self.bot_named(team_id=team_id, name=bot)
        if bot_id is None:
            return None
        try:
            live = await self.live_version(bot_id, "production")
        except NotLiveError:
            return None
        return bot_id, live.compiled

    async def _finish(
        self,
        inbox_id: int | None,
        replies: list[OutgoingMessage],
        *,
        error: str | None,
        version: int | None = None,
        rows: TurnRows | None = None,
    ) -> Reply:
        """One transaction (shared with concurrent turns): the turn's messages, the outbox rows
        and the inbox status."""
        outbound = inbox_id is not None

        def store(conn: Connection) -> tuple[int | None, int | None, list[int]]:
            nonlocal replies
            conversation_id: int | None = None
            answer_id: int | None = None
            outbox_ids: list[int] = []
            if rows is not None:
                conversation_id = rows.conversation_id
                if conversation_id is None and rows.new is not None:
                    conversation_id = conv_store.start_conversation(conn, rows.new)
                assert conversation_id is not None
                ids = conv_store.add_messages(
                    conn, conversation_id=conversation_id, bot_id=rows.bot_id, records=rows.records
                )
                answer = rows.records[-1]
                # A real answer (not a fallback after a failure, nor a guard's refusal) is what
                # end users may rate.
                if answer.role == "assistant" and answer.error is None:
                    answer_id = ids[-1]
                    replies = [r.model_copy(update={"feedback_id": answer_id}) for r in replies]
                if rows.memory is not None:
                    channel, user, changes = rows.memory
                    participant_store.merge(
                        conn, bot_id=rows.bot_id, channel=channel, user=user, changes=changes
                    )
                if rows.followups is not None:
                    schedule_store.arm(conn, rows.followups)
            if inbox_id is not None:
                for reply in replies:
                    outbox_ids.append(
                        inbox_store.add_outbound(
                            conn,
                            deployment_id=reply.address.deployment_id,
                            payload=reply.model_dump(mode="json"),
                            worker=self.db.worker,
                        )
                    )
                if not inbox_store.answered(conn, inbox_id):
                    raise AnsweredElsewhereError(f"inbox row {inbox_id}")
            return conversation_id, answer_id, outbox_ids

        if rows is None and inbox_id is None:  # a synchronous built-in turn stores nothing
            return Reply(messages=tuple(replies), error=error, version=version)
        conversation_id, answer_id, outbox_ids = await self.writes.run(store)
        if outbound:
            for outbox_id, reply in zip(outbox_ids, replies, strict=True):
                await self.deliver(outbox_id, reply)
        return Reply(
            messages=tuple(replies),
            error=error,
            version=version,
            conversation_id=conversation_id,
            message_id=answer_id,
        )

    async def reset(self, address: Address) -> None:
        """End the conversation at this address (and its handoff); the next message starts a
        new one. The caller holds the conversation's lock."""
        await self.handoffs.started_over(address)
        key = (address.deployment_id, address.conversation)
        state = await self.conversations.load(key, 0)
        self.conversations.forget(key)
        if state.id is not None:
            ended = state.id

            def end(conn: Connection) -> None:
                conv_store.end_conversation(conn, ended)
                schedule_store.cancel_followups(conn, deployment_id=key[0], conversation_key=key[1])

            await self.db.run_write(end)

    async def deliver(self, outbox_id: int, message: OutgoingMessage) -> str | None:
        """Send a stored reply and mark it; a reply marked sent is never sent again. Returns
        why it failed for good, or None once sent."""
        kind = message.address.channel
        error: str | None = None
        ref: str | None = None
        receipt: str | None = None  # the platform's id, kept where it reports on the message
        for attempt in range(1, _SEND_ATTEMPTS + 1):
            try:
                port = self.channels.get(kind)
                sent = await port.send(message)
                ref = sent.ref
                receipt = sent.platform_id if port.capabilities.receipts else None
                error = None
                break
            except UnknownChannelError:
                error = f"the {kind} channel is not configured in this process"
                break
            except SendError as exc:
                error = str(exc)
                if exc.permanent:
                    break
                await asyncio.sleep(0.5 * attempt)
            except Exception as exc:  # a channel's bug must not leave the reply pending
                logger.exception("send raised", extra={"outbox": outbox_id})
                error = f"the {kind} channel failed: {type(exc).__name__}"
                break
        status = "failed" if error else "sent"

        if ref is not None and message.feedback_id is not None and error is None:
            # a reaction to the message names it so (a rating of this answer)
            self.ratings.sent(
                deployment_id=message.address.deployment_id,
                ref=ref,
                message_id=message.feedback_id,
            )

        def mark(conn: Connection) -> None:
            inbox_store.mark_outbound(conn, outbox_id, status=status, error=error)
            if receipt is not None and error is None:
                deliveries.remember(
                    conn,
                    deployment_id=message.address.deployment_id,
                    platform_id=receipt,
                    outbox_id=outbox_id,
                )

        await self.writes.run(mark)
        SENDS.labels(kind, "failed" if error else "ok").inc()
        if error:
            logger.warning("send failed for good: %s", error, extra={"outbox": outbox_id})
        return error


class _LiveSession:
    """An end user's conversation on a deployment: history from the conversation cache, memory
    from the participant cache, and the turn kept in one transaction with its outbox row and
    inbox status (`Runtime._finish`), then sent. `reply` is what was sent."""

    __slots__ = (
        "arm",
        "inbox_id",
        "live",
        "message",
        "reply",
        "runtime",
        "state",
        "target",
        "version",
    )

    def __init__(
        self,
        runtime: Runtime,
        target: DeploymentTarget,
        message: IncomingMessage,
        inbox_id: int | None,
        live: LiveVersion,
        arm: Arm | None = None,
    ) -> None:
        self.runtime = runtime
        self.arm = arm
        self.target = target
        self.message = message
        self.inbox_id = inbox_id
        self.live = live
        self.version = live.number
        self.state: ConversationState | None = None
        self.reply: Reply | None = None

    @property
    def _key(self) -> tuple[str, str]:
        return (self.target.id, self.message.address.conversation)

    async def history(self, turns: int) -> list[ChatMessage]:
        self.state = await self.runtime.conversations.load(self._key, turns)
        return self.state.history(turns)

    async def memory(self) -> dict[str, Scalar]:
        address = self.message.address
        return await self.runtime.participants.load(
            (self.target.bot_id, address.channel, address.user)
        )

    async def record(
        self, ctx: TurnContext, output: TurnOutput, *, text: str, latency_ms: float
    ) -> None:
        runtime, address, target = self.runtime, self.message.address, self.target
        state = self.state or await runtime.conversations.load(self._key, ctx.spec.history)
        reply = OutgoingMessage(address=address, text=output.reply, reply_to=address.thread)
        if ctx.spec.voice and heard(self.message) and not (output.error or output.silent):
            reply = await spoken(reply, voice=runtime.voice)
        voice_s = self.message.voice_s
        records = turn_records(
            text,
            output,
            version=self.version,
            latency_ms=latency_ms,
            arm=self.arm,
            ctx=ctx,
            said_parts=None if voice_s is None else [{"type": "voice", "duration_s": voice_s}],
        )
        new = None
        if state.id is None:
            new = conv_store.NewConversation(
                bot_id=target.bot_id,
                deployment_id=target.id,
                channel=address.channel,
                key=address.conversation,
                user=address.user,
            )
        memory = None
        if ctx.participant.changed:
            memory = (address.channel, address.user, dict(ctx.participant.written))
        followups = None
        if self.live.spec.followups:  # bots without follow-ups pay nothing here
            followups = self._followups(output)
        self.reply = await runtime._finish(
            self.inbox_id,
            [] if output.silent else [reply],
            error=output.error,
            version=self.version,
            rows=TurnRows(target.bot_id, state.id, new, records, memory, followups),
        )
        if memory is not None:  # the stored memory may hold more than this turn knew
            runtime.participants.forget(target.bot_id, address.user)
        answered = self.reply.message_id
        plain = not (output.error or output.blocked or output.silent)
        if runtime.turn_listeners and answered is not None and plain:
            runtime.heard(
                LiveTurn(
                    bot_id=target.bot_id,
                    team_id=target.team_id,
                    deployment_id=target.id,
                    channel=address.channel,
                    user=address.user,
                    version=self.version,
                    arm=self.arm,
                    message_id=answered,
                    text=text,
                    answer=output.reply,
                )
            )
        if self.reply.conversation_id is not None:
            state.id = self.reply.conversation_id
            if not output.error and not output.blocked and not output.silent:
                turn = [ChatMessage("user", text), ChatMessage("assistant", output.reply)]
                runtime.conversations.record(self._key, state, turn, last=self.reply.message_id)

    def _followups(self, output: TurnOutput) -> schedule_store.Arming:
        """After an answer: the follow-ups start again from now. A turn that handed the
        conversation over (or said nothing, a person having it) cancels them."""
        address = self.message.address
        quiet = output.silent or output.handed_over is not None
        return schedule_store.Arming(
            bot_id=self.target.bot_id,
            deployment_id=self.target.id,
            conversation_key=address.conversation,
            address=address.model_dump(mode="json"),
            version=self.version,
            followups=() if quiet else tuple(self.live.spec.followups),
            at=utcnow(),
        )
