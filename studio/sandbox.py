"""`/try`: a member's private conversation with a bot's draft.

The conversation is stored like any other, marked `sandbox` (never counted in stats) and kept
until `/try BOT --new`. It runs the draft as it is now, so an edit shows on the next message.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from builders.spec import BotSpec
from builders.tokens import TOKEN_REFUSAL, has_token
from runtime.llm import ChatMessage
from runtime.participant import Scalar
from runtime.pipeline import TurnContext, TurnOutput, compile_spec, turn_records
from runtime.turn.runner import BotRunner
from storage import conversations as conv_store
from storage import participants as participant_store
from storage.database import Database
from studio.errors import InvalidError
from studio.operations import Operations
from studio.roles import Caller, Role

SANDBOX = "sandbox"  # the channel of sandbox conversations, and of the memory they keep


@dataclass(frozen=True, slots=True)
class SandboxTurn:
    output: TurnOutput
    fresh: bool  # this message started a new sandbox conversation


@dataclass(frozen=True, slots=True)
class Tried:
    bot: str  # the bot's name as stored
    spec: BotSpec  # the draft that answered
    turn: SandboxTurn | None  # None: nothing was said (the conversation was only restarted)


def _key(team_id: int, identity: str, bot_id: int) -> str:
    return f"try:{team_id}:{bot_id}:{identity}"


class Sandbox:
    def __init__(self, *, ops: Operations, runner: BotRunner) -> None:
        self.ops = ops
        self.db = ops.db
        self.runner = runner

    async def try_draft(self, caller: Caller, bot: str, text: str, *, new: bool = False) -> Tried:
        """Say `text` (unless empty) to the draft of `bot` in the caller's sandbox conversation,
        a new one when `new` (`/try` and REST `POST /bots/{bot}/try`)."""
        caller.require(Role.EDITOR, "Trying a draft")
        if has_token(text):  # it would be stored with the conversation and sent to the model
            raise InvalidError(f"{TOKEN_REFUSAL[0].upper()}{TOKEN_REFUSAL[1:]}; nothing was sent")
        draft = await self.ops.draft(caller, bot)
        if new:
            await self.restart(
                team_id=caller.team_id, identity=caller.identity, bot_id=draft.bot_id
            )
        if not text:
            return Tried(draft.name, draft.spec, None)
        turn = await self.send(
            team_id=caller.team_id,
            identity=caller.identity,
            bot_id=draft.bot_id,
            spec=draft.spec,
            text=text,
        )
        return Tried(draft.name, draft.spec, turn)

    async def _active(self, key: str) -> int | None:
        async with self.db.read_conn() as conn:
            return await conv_store.active_conversation(conn, None, key)

    async def send(
        self, *, team_id: int, identity: str, bot_id: int, spec: BotSpec, text: str
    ) -> SandboxTurn:
        key = _key(team_id, identity, bot_id)
        session = _SandboxSession(self.db, key, bot_id, identity, await self._active(key))
        output = await self.runner.run(
            compile_spec(spec),
            text=text,
            session=session,
            mode="try",
            bot_id=bot_id,
            team_id=team_id,
            user=identity,
            channel=SANDBOX,
        )
        return SandboxTurn(output=output, fresh=session.conversation is None)

    async def restart(self, *, team_id: int, identity: str, bot_id: int) -> bool:
        """End the member's sandbox conversation with the bot; False if there was none."""
        conversation = await self._active(_key(team_id, identity, bot_id))
        if conversation is None:
            return False
        await self.db.run_write(lambda conn: conv_store.end_conversation(conn, conversation))
        return True


class _SandboxSession:
    """A member's sandbox conversation with a draft: kept like a live one (marked `sandbox`), with
    the member's own participant memory on the `sandbox` channel."""

    def __init__(
        self, db: Database, key: str, bot_id: int, identity: str, conversation: int | None
    ) -> None:
        self.db = db
        self.key = key
        self.bot_id = bot_id
        self.identity = identity
        self.conversation = conversation

    async def history(self, turns: int) -> list[ChatMessage]:
        if self.conversation is None:
            return []
        async with self.db.read_conn() as conn:
            pairs = await conv_store.history(conn, self.conversation, turns)
        return [ChatMessage(role, content) for role, content in pairs]

    async def memory(self) -> dict[str, Scalar]:
        async with self.db.read_conn() as conn:
            return await participant_store.load(
                conn, bot_id=self.bot_id, channel=SANDBOX, user=self.identity
            )

    async def record(
        self, ctx: TurnContext, output: TurnOutput, *, text: str, latency_ms: float
    ) -> None:
        records = turn_records(text, output, version=None, latency_ms=latency_ms, ctx=ctx)
        new = conv_store.NewConversation(
            bot_id=self.bot_id,
            deployment_id=None,
            channel=SANDBOX,
            key=self.key,
            user=self.identity,
            sandbox=True,
        )
        memory = dict(ctx.participant.written)

        def store(conn: Connection) -> None:
            conversation_id = self.conversation or conv_store.start_conversation(conn, new)
            conv_store.add_messages(
                conn, conversation_id=conversation_id, bot_id=self.bot_id, records=records
            )
            if memory:
                participant_store.merge(
                    conn, bot_id=self.bot_id, channel=SANDBOX, user=self.identity, changes=memory
                )

        await self.db.run_write(store)
