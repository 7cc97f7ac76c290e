"""One proactive message (a schedule's, a follow-up's, a trigger's) to one conversation.

Fixed text is sent as it is; a "prompt:" message is answered by the bot's turn engine (its
persona, knowledge, tools and guards) in that conversation, and only the answer is kept. The
message is kept in the conversation as an `assistant` message with a `proactive` part, with its
outbox row, in one transaction, then delivered like a reply. On a synchronous channel (web) it is
only kept: the page fetches it from the history. A schedule run's message also records its
delivery to that recipient in that transaction (`storage.schedules.deliver_once`): a run
resumed, or sent by two processes, reaches each recipient once. A conversation a person of the
team has now (an open handoff) gets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from builders.spec import proactive_prompt
from runtime.channel import UnknownChannelError
from runtime.llm import ChatMessage
from runtime.locks import conversation_key
from runtime.messages import Address, OutgoingMessage
from runtime.participant import Scalar
from runtime.pipeline import TurnContext, TurnOutput, Usage
from runtime.scheduler.types import HandedOverError, ProactiveError
from storage import conversations as conv_store
from storage import inbox as inbox_store
from storage import schedules as store

if TYPE_CHECKING:
    from runtime.runtime import DeploymentTarget, LiveVersion, Runtime


@dataclass(frozen=True, slots=True)
class Place:
    """Where a proactive message goes: a conversation of a deployment."""

    target: DeploymentTarget
    address: Address

    @property
    def lock_key(self) -> str:
        return conversation_key(self.address.deployment_id, self.address.conversation)


def address_of(recipient: store.Recipient) -> Address:
    """A stored conversation's address, as its channel's adapter builds it for an inbound
    message (`thread`: the Telegram chat, the Slack thread; none on the web)."""
    thread = None
    if recipient.channel == "telegram":
        thread = recipient.key.split(":", 1)[0]
    elif recipient.channel == "slack":
        thread = recipient.key
    return Address(
        channel=recipient.channel,
        deployment_id=recipient.deployment_id,
        conversation=recipient.key,
        user=recipient.user,
        thread=thread,
    )


HANDED_OVER = "a person of the team has this conversation now"


@dataclass(frozen=True, slots=True)
class Delivered:
    conversation_id: int | None  # None: the run's message was kept there already, not again
    text: str


class Proactive:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def send(
        self,
        place: Place,
        message: str,
        *,
        live: LiveVersion,
        origin: str,
        ident: str,
        run: int | None = None,
    ) -> Delivered:
        """Send under the conversation's lock (turns of it wait); raises ProactiveError
        (HandedOverError: a person of the team has the conversation)."""
        async with self.runtime.locks.hold(place.lock_key):
            return await self.send_locked(
                place, message, live=live, origin=origin, ident=ident, run=run
            )

    async def send_locked(
        self,
        place: Place,
        message: str,
        *,
        live: LiveVersion,
        origin: str,
        ident: str,
        run: int | None = None,
    ) -> Delivered:
        """The caller holds the conversation's lock. `run`: the schedule run it belongs to (its
        message is kept, and sent, once per recipient)."""
        runtime, address, target = self.runtime, place.address, place.target
        if runtime.handoffs.is_open(target.id, address.conversation):
            raise HandedOverError(HANDED_OVER)
        try:
            synchronous = runtime.channels.get(address.channel).capabilities.synchronous
        except UnknownChannelError:
            raise ProactiveError(
                f"the {address.channel} channel is not configured in this process"
            ) from None
        part: dict[str, Any] = {"type": "proactive", "origin": origin, "id": ident}
        if run is not None:
            part["run"] = run
        # a set text calls no model: it costs nothing (a known $0, never an unknown price)
        text, usage, latency_ms = message, Usage(cost_usd=0.0), None
        prompt = proactive_prompt(message)
        if prompt is not None:
            if run is not None and await self._delivered(place, run):
                return Delivered(None, "")  # no prompt to the model for nothing
            text, usage, latency_ms = await self._write(place, prompt, live)
        record = conv_store.TurnRecord(
            role="assistant",
            text=text,
            version=live.number,
            latency_ms=latency_ms,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=usage.cost_usd,
            parts=[part],
        )
        new = conv_store.NewConversation(
            bot_id=target.bot_id,
            deployment_id=target.id,
            channel=address.channel,
            key=address.conversation,
            user=address.user,
        )
        outgoing = OutgoingMessage(address=address, text=text, reply_to=address.thread)

        def keep(conn: Connection) -> tuple[int | None, int | None]:
            if run is not None and not store.deliver_once(
                conn, run_id=run, deployment_id=target.id, user=address.user
            ):
                return None, None
            conversation_id = conv_store.add_to_conversation(conn, new, record)
            if synchronous:
                return conversation_id, None
            payload = outgoing.model_dump(mode="json")
            return conversation_id, inbox_store.add_outbound(
                conn, deployment_id=target.id, payload=payload, worker=runtime.db.worker
            )

        conversation_id, outbox_id = await runtime.writes.run(keep)
        if conversation_id is None:
            return Delivered(None, text)
        # The next turn reads the history again, with this message in it.
        runtime.conversations.forget((target.id, address.conversation))
        if outbox_id is not None:
            error = await runtime.deliver(outbox_id, outgoing)
            if error is not None:
                raise ProactiveError(error)
        return Delivered(conversation_id, text)

    async def _delivered(self, place: Place, run: int) -> bool:
        async with self.runtime.db.read_conn() as conn:
            return await store.delivered(
                conn, run_id=run, deployment_id=place.target.id, user=place.address.user
            )

    async def _write(
        self, place: Place, prompt: str, live: LiveVersion
    ) -> tuple[str, Usage, float]:
        """The bot's answer to `prompt` in the conversation (kept by the caller, not here)."""
        runtime, address, target = self.runtime, place.address, place.target
        session = _PromptSession(runtime, place)
        output = await runtime.runner.run(
            live.compiled,
            text=prompt,
            session=session,
            mode="live",
            bot_id=target.bot_id,
            team_id=target.team_id,
            user=address.user,
            channel=address.channel,
            version=live.number,
        )
        problem = output.error or (f"blocked: {output.blocked}" if output.blocked else None)
        if problem is None and not output.reply.strip():
            problem = "it wrote nothing"
        elif problem is None and output.reply.strip() == live.spec.fallback.strip():
            # What a bot says when it cannot answer is no message to send anyone unasked.
            problem = "it could only give its fallback answer"
        if problem is not None:
            raise ProactiveError(f"the bot could not write the message ({problem})")
        return output.reply, output.usage, round(session.latency_ms, 2)


class _PromptSession:
    """The end user's conversation as a prompt's turn sees it: its history and the person's
    memory; nothing is recorded (the caller keeps the answer alone)."""

    __slots__ = ("latency_ms", "place", "runtime")

    def __init__(self, runtime: Runtime, place: Place) -> None:
        self.runtime = runtime
        self.place = place
        self.latency_ms = 0.0

    async def history(self, turns: int) -> list[ChatMessage]:
        key = (self.place.target.id, self.place.address.conversation)
        return (await self.runtime.conversations.load(key, turns)).history(turns)

    async def memory(self) -> dict[str, Scalar]:
        address = self.place.address
        return await self.runtime.participants.load(
            (self.place.target.bot_id, address.channel, address.user)
        )

    async def record(
        self, ctx: TurnContext, output: TurnOutput, *, text: str, latency_ms: float
    ) -> None:
        self.latency_ms = latency_ms
