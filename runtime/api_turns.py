"""API turns: a bot answering over the OpenAI-compatible API (`adapters/web/openai_api.py`).

An API turn is a live turn on the channel `api`, run by the one turn engine (`BotRunner`), so
guardrails, budgets, metrics and traces apply as on any channel. What differs is the conversation
(`_ApiSession`):
- without `user` (stateless), the caller's earlier messages are the turn's history and the turn is
  kept as a conversation of its own, keyed by the completion's id; nobody is remembered (no
  participant memory);
- with `user`, the stored conversation of that person with the bot's environment is continued: its
  history comes from the store, the turn is appended to it (one at a time, under the
  conversation's lock), and the person's memory is theirs on the channel `api`.

The version is the environment's: a running A/B test does not split API traffic. A handoff step
cannot hand an API conversation to people (there is no channel to answer in): such a turn fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection

from runtime.llm import ChatMessage, TextSink
from runtime.participant import Scalar
from runtime.pipeline import TurnContext, TurnOutput, turn_records
from runtime.runtime import LiveTurn, LiveVersion, Runtime
from storage import conversations as conv_store
from storage import participants as participant_store
from storage.bots import BotRepository
from storage.schedules import aware

API = conv_store.API_CHANNEL  # the channel of API turns: conversations, memory, stats
Env = Literal["production", "staging"]


class UnknownBotError(LookupError):
    """The team has no bot of that name."""


@dataclass(frozen=True, slots=True)
class ApiBot:
    """A bot's environment as the API calls it: the version it runs."""

    bot_id: int
    team_id: int
    env: Env
    live: LiveVersion


@dataclass(frozen=True, slots=True)
class ApiModel:
    """A bot's environment that can be called: `name`, or `name@staging`."""

    id: str
    created: int  # when the bot was created, in seconds since the epoch


@dataclass(frozen=True, slots=True)
class ApiAsk:
    """One call: the user's message, the caller's earlier messages, the person whose stored
    conversation it continues (None: stateless), the calling key's member and the completion's
    id."""

    text: str
    history: tuple[ChatMessage, ...]
    user: str | None
    caller: str
    completion_id: str


async def resolve(runtime: Runtime, *, team_id: int, name: str, env: Env) -> ApiBot:
    """The version `env` of the team's bot `name` runs (cached by the runtime until a pointer
    moves); `UnknownBotError`, or `NotLiveError` when the environment has no version yet."""
    bot_id = await runtime.bot_named(team_id=team_id, name=name)
    if bot_id is None:
        raise UnknownBotError(name)
    return ApiBot(bot_id, team_id, env, await runtime.live_version(bot_id, env))


async def models(runtime: Runtime, *, team_id: int, staging: bool) -> list[ApiModel]:
    """The team's callable bots, by name: each with a production version, and (`staging`) each
    with a staging version as `name@staging`."""
    found: list[ApiModel] = []
    async with runtime.db.read() as session:
        repo = BotRepository(session)
        for bot in await repo.for_team(team_id):
            assert bot.id is not None
            pointers = await repo.pointers(bot.id)
            created = int(aware(bot.created_at).timestamp())
            if "production" in pointers:
                found.append(ApiModel(bot.name, created))
            if staging and "staging" in pointers:
                found.append(ApiModel(f"{bot.name}@staging", created))
    return found


class AnswerStream:
    """A turn's answer as it becomes available: its text in pieces (`async for`), then the
    turn's outcome (`output`). The turn runs on its own: a watcher that goes away leaves it to
    finish and be kept.

    The model's text is `put` as it is written (a step that does not stream, such as a bot
    with tools, gives the whole answer at the end). Only answer text is put: a failed turn's
    fallback or a guard's refusal is not (`output` says). `spawn` runs the turn as a task that
    outlives its watcher (`Runtime.spawn`: shutdown waits for it)."""

    def __init__(
        self,
        turn: Callable[[TextSink], Awaitable[TurnOutput]],
        spawn: Callable[[Coroutine[object, object, TurnOutput]], asyncio.Task[TurnOutput]],
    ) -> None:
        self._pieces: asyncio.Queue[str | None] = asyncio.Queue()
        self._first = asyncio.Event()  # a piece, or the end, has come
        self._wrote = ""  # the text put so far
        self._task = spawn(self._run(turn(self.put)))

    def put(self, piece: str) -> None:
        """A piece of the answer's text (a `runtime.llm.TextSink`)."""
        if piece:
            self._pieces.put_nowait(piece)
            self._wrote += piece
            self._first.set()

    async def _run(self, turn: Awaitable[TurnOutput]) -> TurnOutput:
        try:
            output = await turn
            plain = output.error is None and output.blocked is None
            # what the answer holds beyond what streamed (its sources), or all of it from a turn
            # that streamed none
            if plain and output.reply.startswith(self._wrote):
                self.put(output.reply[len(self._wrote) :])
            return output
        finally:
            self._pieces.put_nowait(None)
            self._first.set()

    async def started(self) -> bool:
        """Wait for the first piece of text (True) or the end of a turn that wrote none."""
        await self._first.wait()
        return bool(self._wrote)

    async def __aiter__(self) -> AsyncIterator[str]:
        while (piece := await self._pieces.get()) is not None:
            yield piece

    async def output(self) -> TurnOutput:
        """The turn's outcome once it is kept (waiting for it is never what cancels it)."""
        return await asyncio.shield(self._task)


class ApiTurns:
    """Runs API turns on the runtime's turn engine and keeps them (channel `api`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def answer(
        self, bot: ApiBot, asked: ApiAsk, *, stream: TextSink | None = None
    ) -> TurnOutput:
        """Answer `asked.text`: statelessly after the caller's history (kept as a conversation
        keyed by the environment and the completion's id, of the caller), or, when `asked.user`
        is given, in that person's stored conversation (the caller's history is not used
        then)."""
        if asked.user is None:
            key = conv_store.api_key(bot.bot_id, bot.env, asked.completion_id)
            session = _ApiSession(self.runtime, bot, key=key, user=asked.caller)
            session.given = list(asked.history)
            return await self._run(bot, asked.text, session, stream)
        key = conv_store.api_key(bot.bot_id, bot.env, asked.user)
        async with self.runtime.locks.hold(key):
            async with self.runtime.db.read_conn() as conn:
                found = await conv_store.active_conversation(conn, None, key)
            session = _ApiSession(self.runtime, bot, key=key, user=asked.user, remembers=True)
            session.conversation = found
            return await self._run(bot, asked.text, session, stream)

    def stream(self, bot: ApiBot, asked: ApiAsk) -> AnswerStream:
        """`answer`, with its text as it becomes available."""
        return AnswerStream(
            lambda put: self.answer(bot, asked, stream=put), spawn=self.runtime.spawn
        )

    async def _run(
        self, bot: ApiBot, text: str, session: _ApiSession, stream: TextSink | None
    ) -> TurnOutput:
        return await self.runtime.runner.run(
            bot.live.compiled,
            text=text,
            session=session,
            mode="live",
            bot_id=bot.bot_id,
            team_id=bot.team_id,
            user=session.user,
            channel=API,
            version=bot.live.number,
            stream=stream,
        )


class _ApiSession:
    """One API conversation. Stateless: the `given` history, no memory, a new conversation.
    A person's (`remembers`): the stored `conversation` (None: not started) and their memory."""

    __slots__ = ("bot", "conversation", "given", "key", "remembers", "runtime", "user")

    def __init__(
        self, runtime: Runtime, bot: ApiBot, *, key: str, user: str, remembers: bool = False
    ) -> None:
        self.runtime = runtime
        self.bot = bot
        self.key = key
        self.user = user
        self.remembers = remembers
        self.given: list[ChatMessage] = []
        self.conversation: int | None = None

    async def history(self, turns: int) -> list[ChatMessage]:
        if turns <= 0:
            return []
        if self.conversation is None:
            return self.given[-2 * turns :]
        async with self.runtime.db.read_conn() as conn:
            pairs = await conv_store.history(conn, self.conversation, turns)
        return [ChatMessage(role, content) for role, content in pairs]

    async def memory(self) -> dict[str, Scalar]:
        if not self.remembers:
            return {}
        return await self.runtime.participants.load((self.bot.bot_id, API, self.user))

    async def record(
        self, ctx: TurnContext, output: TurnOutput, *, text: str, latency_ms: float
    ) -> None:
        bot = self.bot
        records = turn_records(
            text, output, version=bot.live.number, latency_ms=latency_ms, ctx=ctx
        )
        new = conv_store.NewConversation(
            bot_id=bot.bot_id, deployment_id=None, channel=API, key=self.key, user=self.user
        )
        memory = dict(ctx.participant.written) if self.remembers else {}
        conversation = self.conversation

        def store(conn: Connection) -> list[int]:
            conversation_id = conversation or conv_store.start_conversation(conn, new)
            ids = conv_store.add_messages(
                conn, conversation_id=conversation_id, bot_id=bot.bot_id, records=records
            )
            if memory:
                participant_store.merge(
                    conn, bot_id=bot.bot_id, channel=API, user=self.user, changes=memory
                )
            return ids

        ids = await self.runtime.writes.run(store)
        if memory:  # the stored memory may hold more than this turn knew
            self.runtime.participants.forget(bot.bot_id, self.user)
        plain = not (output.error or output.blocked or output.silent)
        if self.runtime.turn_listeners and plain:  # online evaluation samples API turns too
            self.runtime.heard(
                LiveTurn(
                    bot_id=bot.bot_id,
                    team_id=bot.team_id,
                    deployment_id=None,
                    channel=API,
                    user=self.user,
                    version=bot.live.number,
                    arm=None,
                    message_id=ids[-1],
                    text=text,
                    answer=output.reply,
                )
            )
