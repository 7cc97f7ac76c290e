"""`HandoffDesk`: the runtime's side of handed-over conversations.

- Opening (`Handover.open`, from a turn): the first post goes to the team's room at once (its id
  is the thread), then the handoff is recorded and kept in memory, keyed by the end user's
  conversation and by each of its posts in the room. Loaded at start (`load`), so a turn asks
  only a dictionary.
- The end user's messages, while open, are relayed to the room through the outbox (this desk is
  also the `handoff` channel that posts them), so a restart still delivers them.
- What people write in the room comes in through an adapter (`from_team`) as an inbound message
  of the built-in deployment `handoff`: recorded in the inbox (a redelivery is a duplicate),
  then handled here (`handle`): stored in the end user's conversation as the team's answer and
  sent to them through the outbox, under the bot's name. A web end user's page fetches it.
- It ends with `resume` or `/resume` (the whole message) in the room, the end user's `/reset`,
  or `timeout_minutes` without a human answer (`watch`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, Literal

from sqlalchemy import Connection

from runtime.channel import Capabilities, DeploymentInfo, SendError, SendReceipt
from runtime.cluster.invalidation import HandoffChanged
from runtime.handoff import RESUME
from runtime.llm import ChatMessage
from runtime.locks import conversation_key
from runtime.messages import Address, IncomingMessage, OutgoingMessage
from runtime.metrics import HANDOFFS
from runtime.pipeline import NodeResult, TurnContext
from storage import conversations as conv_store
from storage import handoffs as store
from storage.tables import utcnow

if TYPE_CHECKING:
    from runtime.runtime import DeploymentTarget, Runtime

logger = logging.getLogger(__name__)

HANDOFF_DESK = "handoff"  # the built-in deployment (and the channel) of the team's rooms
TRANSCRIPT_MESSAGES = 10  # recent messages shown in the first post
_QUOTE_CHARS = 300
_WATCH_EVERY_S = 30.0
NOBODY_CAME = "Sorry, nobody from the team could answer in time. I'm here again if I can help."
Key = tuple[str, str]  # (deployment id, conversation key)
# Why a handoff ended (`studio_handoffs_total`'s event): a person gave it back, nobody answered
# in time, or the end user started over.
Ending = Literal["resumed", "timeout", "reset"]


@dataclass(frozen=True, slots=True)
class _Spot:
    """Where in a room a message goes: the room and the post it belongs to."""

    kind: str
    room: str
    thread: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.room}:{self.thread}"

    @classmethod
    def parse(cls, text: str | None) -> _Spot:
        kind, _, rest = (text or "").partition(":")
        room, _, thread = rest.rpartition(":")
        return cls(kind, room, thread)


class HandoffDesk:
    """Open handoffs, the team's rooms, and the `handoff` channel that posts in them."""

    kind: ClassVar[str] = HANDOFF_DESK
    capabilities: ClassVar[Capabilities] = Capabilities(threads=True)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._open: dict[Key, store.OpenHandoff] = {}
        self._by_id: dict[int, store.OpenHandoff] = {}
        self._posts: dict[tuple[str, str, str], int] = {}  # (kind, room, message id) -> id

    # -- wiring -----------------------------------------------------------------------------

    async def load(self) -> None:
        """The open handoffs as stored: at start, before any turn asks; again when changes of
        other workers may have been missed."""
        async with self.runtime.db.read_conn() as conn:
            found = await store.open_handoffs(conn)
        stored = {handoff.id for handoff in found}
        for gone in [h for i, h in self._by_id.items() if i not in stored]:
            self._forget(gone)
        for handoff in found:
            self._replace(handoff.id, handoff)

    async def refresh(self, handoff_id: int) -> None:
        """Another worker opened, answered, posted in or closed this handoff: as stored now."""
        async with self.runtime.db.read_conn() as conn:
            found = await store.open_handoffs(conn, ids=[handoff_id])
        self._replace(handoff_id, found[0] if found else None)

    async def confirm(self, key: Key, stored: int | None) -> None:
        """The conversation's open handoff as the holder of its lock read it (`stored`, None:
        none): taken as stored now where this worker knew otherwise (another one opened or
        closed it a moment ago, and its notice is still on the way)."""
        known = self._open.get(key)
        if (known.id if known is not None else None) == stored:
            return
        if known is not None:
            await self.refresh(known.id)
        if stored is not None:
            await self.refresh(stored)

    def _replace(self, handoff_id: int, handoff: store.OpenHandoff | None) -> None:
        kept = self._by_id.get(handoff_id)
        if kept is not None:
            self._forget(kept)
        if handoff is not None:
            self._remember(handoff)

    def _remember(self, handoff: store.OpenHandoff) -> None:
        self._open[(handoff.deployment_id, handoff.conversation_key)] = handoff
        self._by_id[handoff.id] = handoff
        for post in handoff.posts:
            self._posts[(handoff.room_kind, handoff.room, post)] = handoff.id

    def _forget(self, handoff: store.OpenHandoff) -> None:
        self._open.pop((handoff.deployment_id, handoff.conversation_key), None)
        self._by_id.pop(handoff.id, None)
        for post in handoff.posts:
            self._posts.pop((handoff.room_kind, handoff.room, post), None)

    # -- what turns and adapters ask ----------------------------------------------------------

    def is_open(self, deployment_id: str, conversation: str) -> bool:
        return (deployment_id, conversation) in self._open

    def in_room(self, kind: str, room: str, message_id: str) -> bool:
        """`message_id` in `room` is one of an open handoff's posts (its thread on Slack)."""
        return (kind, room, message_id) in self._posts

    async def team_in_room(self, kind: str, room: str, message_id: str) -> int | None:
        """The team whose bot's open handoff `message_id` in `room` is one of the posts of (its
        thread on Slack); None when it is no open handoff's. Only that team's members answer."""
        handoff = self._by_id.get(self._posts.get((kind, room, message_id), -1))
        if handoff is None:
            return None
        return (await self.runtime.target(handoff.deployment_id)).team_id

    def bind(self, target: DeploymentTarget, address: Address) -> _Binding:
        return _Binding(self, target, address)

    # -- opening ----------------------------------------------------------------------------

    async def open(
        self,
        target: DeploymentTarget,
        address: Address,
        ctx: TurnContext,
        *,
        reason: str,
        message: str,
    ) -> NodeResult:
        spec = ctx.spec
        wanted = spec.handoff
        assert wanted is not None  # `start_handoff` checked it
        key = (target.id, address.conversation)
        if key in self._open:  # asked twice in one conversation: it is with the team already
            ctx.handed_over = wanted.name
            return NodeResult(reply=message)
        fronts = self.runtime.fronts
        rooms = fronts.rooms(wanted.channel)
        if rooms is None:
            return NodeResult(
                reply=spec.fallback,
                error=f"handoff: {fronts.off_reason(wanted.channel)}, so {wanted.name} cannot "
                "be asked",
            )
        bot = await self.runtime.bot_name(target.id)
        text = _announcement(
            bot=bot,
            who=_who(address, ctx),
            where=self.runtime.channels.title(address.channel),
            reason=reason,
            transcript=[*ctx.history, ChatMessage("user", ctx.text)],
            hint=rooms.hint,
            give_back=rooms.give_back,
            timeout=wanted.timeout_minutes,
        )
        try:
            thread = await rooms.post(wanted.target, text)
        except SendError as exc:
            logger.warning("a handoff could not be posted: %s", exc, extra={"bot": target.bot_id})
            return NodeResult(
                reply=spec.fallback, error=f"handoff: could not post in {wanted.name}: {exc}"
            )
        now = utcnow()
        new = store.NewHandoff(
            bot_id=target.bot_id,
            deployment_id=target.id,
            conversation_key=address.conversation,
            address=address.model_dump(mode="json"),
            room_kind=wanted.channel,
            room=wanted.target,
            room_name=wanted.name,
            thread=thread,
            reason=reason,
            timeout_minutes=wanted.timeout_minutes,
            opened_at=now,
            expires_at=now + timedelta(minutes=wanted.timeout_minutes),
        )
        handoff_id = await self.runtime.writes.run(lambda conn: store.open_handoff(conn, new))
        self._remember(new.opened(handoff_id))
        self.runtime.invalidations.publish(HandoffChanged(handoff_id))
        HANDOFFS.labels("handed").inc()
        ctx.handed_over = wanted.name
        return NodeResult(reply=message)

    async def relay(self, key: Key, ctx: TurnContext) -> None:
        """The end user's message, to the room (through the outbox)."""
        handoff = self._open.get(key)
        if handoff is not None:
            address = Address.model_validate(handoff.address)
            await self.runtime.push(self._to_room(handoff, f"{_who(address, ctx)}: {ctx.text}"))

    # -- the team's messages ------------------------------------------------------------------

    async def from_team(
        self, *, kind: str, room: str, thread: str, user: str, text: str, dedupe_key: str
    ) -> bool:
        """A person wrote `text` in a handoff's room (a reply to its post `thread`): recorded,
        then handled in the background. False: not a handoff's, or a redelivery."""
        handoff_id = self._posts.get((kind, room, thread))
        if handoff_id is None:
            return False
        message = IncomingMessage(
            address=Address(
                channel=HANDOFF_DESK,
                deployment_id=HANDOFF_DESK,
                conversation=str(handoff_id),
                user=user,
                thread=str(_Spot(kind, room, thread)),
            ),
            text=text,
            dedupe_key=f"handoff:{dedupe_key}",
        )
        return await self.runtime.feed(message)

    async def handle(self, message: IncomingMessage) -> list[OutgoingMessage]:
        """A message from the team's room (the runtime calls this for the `handoff`
        deployment, in order per handoff): `resume`, or an answer for the end user."""
        handoff = self._by_id.get(int(message.address.conversation))
        text = message.text.strip()
        resume = text.lower() in RESUME  # the whole message: "Resume your order…" is an answer
        if handoff is None:
            spot = _Spot.parse(message.address.thread)
            said = "That conversation is no longer handed over"
            said += "." if resume else ", so this was not passed on."
            return [self._to_spot(spot, message.address.conversation, said)]
        async with self._conversation(handoff):
            if handoff.id not in self._by_id:  # ended while this waited
                return []
            if resume:
                return await self._end(handoff, by=message.address.user, why="resumed")
            if not text:
                return []
            return await self._answer(
                handoff, text, by=message.address.user, key=message.dedupe_key
            )

    async def _answer(
        self, handoff: store.OpenHandoff, text: str, *, by: str, key: str | None
    ) -> list[OutgoingMessage]:
        now = utcnow()
        expires = now + timedelta(minutes=handoff.timeout_minutes)
        reply = await self._to_user(
            handoff, text, role="human", by=by, answered=(now, expires), key=key
        )
        handoff.answered = True
        handoff.expires_at = expires
        self.runtime.invalidations.publish(HandoffChanged(handoff.id))  # its timeout moved
        return reply

    async def _to_user(
        self,
        handoff: store.OpenHandoff,
        text: str,
        *,
        role: str,
        by: str | None = None,
        answered: tuple[datetime, datetime] | None = None,
        key: str | None = None,
    ) -> list[OutgoingMessage]:
        """Keep `text` in the end user's conversation (as `role`: the team's answer, or the
        bot's word) and the message that sends it (none on the web: the page fetches it).
        `key`: the inbox item it answers, so a run again after a crash keeps it once (the
        message out is stored with the item's status, after this)."""
        address = Address.model_validate(handoff.address)
        parts = [{"type": "handoff", "by": by, "key": key}] if by else None
        # no model wrote it: it costs nothing (stats never count it at an unknown price)
        record = conv_store.TurnRecord(role=role, text=text, parts=parts, cost_usd=0.0)
        new = conv_store.NewConversation(
            bot_id=handoff.bot_id,
            deployment_id=handoff.deployment_id,
            channel=address.channel,
            key=address.conversation,
            user=address.user,
        )

        def keep(conn: Connection) -> None:
            conv_store.add_to_conversation(
                conn, new, record, once=None if key is None else {"key": key}
            )
            if answered is not None:
                store.answered(conn, handoff.id, at=answered[0], expires_at=answered[1])

        await self.runtime.writes.run(keep)
        if self._synchronous(address.channel):
            return []
        return [OutgoingMessage(address=address, text=text, reply_to=address.thread)]

    def _synchronous(self, channel: str) -> bool:
        channels = self.runtime.channels
        return channels.has(channel) and channels.get(channel).capabilities.synchronous

    # -- ending -----------------------------------------------------------------------------

    async def _end(
        self,
        handoff: store.OpenHandoff,
        *,
        by: str,
        why: Ending,
        notice: str | None = None,
        note: str | None = None,
    ) -> list[OutgoingMessage]:
        """Close it (the caller holds the conversation's lock): the bot answers again. The room
        is told (`note`, or who handed it back); the end user gets `notice` (the bot's word),
        when given. Counted by `why`, once: only the close that ends it."""
        closed = await self.runtime.writes.run(
            lambda conn: store.close(conn, handoff.id, at=utcnow(), by=by)
        )
        self._forget(handoff)
        key = (handoff.deployment_id, handoff.conversation_key)
        self.runtime.conversations.forget(key)  # history again from storage: the team's answers
        if not closed:
            return []
        self.runtime.invalidations.publish(HandoffChanged(handoff.id))
        HANDOFFS.labels(why).inc()
        bot = await self.runtime.bot_name(handoff.deployment_id)
        said = note or f"{by} handed the conversation back: {bot} answers again."
        messages = [self._to_room(handoff, said)]
        if notice:
            messages += await self._to_user(handoff, notice, role="assistant")
        return messages

    async def started_over(self, address: Address) -> None:
        """The end user said /reset (the caller holds the conversation's lock)."""
        handoff = self._open.get((address.deployment_id, address.conversation))
        if handoff is None:
            return
        note = f"{address.user} started a new conversation: the handoff has ended."
        for message in await self._end(handoff, by=address.user, why="reset", note=note):
            await self.runtime.push(message)

    async def expire(self, *, now: datetime | None = None) -> int:
        """End the handoffs whose people said nothing for their timeout; how many."""
        moment = now or utcnow()
        due = [h for h in list(self._by_id.values()) if h.expires_at <= moment]
        ended = 0
        for handoff in due:
            async with self._conversation(handoff):
                # as stored now: another worker may have seen it answered, or ended it, since
                async with self.runtime.db.read_conn() as conn:
                    found = await store.open_handoffs(conn, ids=[handoff.id])
                if not found or found[0].expires_at > moment:
                    continue  # ended, or answered, while this waited
                handoff = found[0]
                bot = await self.runtime.bot_name(handoff.deployment_id)
                note = (
                    f"Nobody wrote here for {_minutes(handoff.timeout_minutes)}: the handoff "
                    f"ended and {bot} answers again."
                )
                notice = None if handoff.answered else NOBODY_CAME
                messages = await self._end(
                    handoff, by="timeout", why="timeout", notice=notice, note=note
                )
            for message in messages:
                await self.runtime.push(message)
            ended += 1
        return ended

    async def watch(self, *, every_s: float = _WATCH_EVERY_S) -> None:
        """Forever: end what timed out. Cancel to stop."""
        while True:
            try:
                await self.expire()
            except Exception:
                logger.exception("ending timed-out handoffs failed; trying again later")
            await asyncio.sleep(every_s)

    @asynccontextmanager
    async def _conversation(self, handoff: store.OpenHandoff) -> AsyncIterator[None]:
        """The end user's conversation lock (the one its turns hold)."""
        async with self.runtime.locks.hold(
            conversation_key(handoff.deployment_id, handoff.conversation_key)
        ):
            yield

    # -- the `handoff` channel: posts in the rooms ------------------------------------------

    def _to_room(self, handoff: store.OpenHandoff, text: str) -> OutgoingMessage:
        spot = _Spot(handoff.room_kind, handoff.room, handoff.thread)
        return self._to_spot(spot, str(handoff.id), text, deployment=handoff.deployment_id)

    def _to_spot(
        self, spot: _Spot, conversation: str, text: str, *, deployment: str = HANDOFF_DESK
    ) -> OutgoingMessage:
        address = Address(
            channel=HANDOFF_DESK,
            deployment_id=deployment,
            conversation=conversation,
            user=HANDOFF_DESK,
            thread=str(spot),
        )
        return OutgoingMessage(address=address, text=text)

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        spot = _Spot.parse(message.address.thread)
        fronts = self.runtime.fronts
        rooms = fronts.rooms(spot.kind)
        if rooms is None:
            raise SendError(fronts.off_reason(spot.kind), permanent=True)
        posted = await rooms.post(spot.room, message.text, thread=spot.thread or None)
        handoff = self._by_id.get(_int(message.address.conversation))
        if handoff is not None and not rooms.threads:  # a reply to this post reaches it too
            handoff.posts.append(posted)
            self._posts[(spot.kind, spot.room, posted)] = handoff.id
            await self.runtime.writes.run(
                lambda conn: store.add_post(
                    conn,
                    handoff_id=handoff.id,
                    room_kind=spot.kind,
                    room=spot.room,
                    message_id=posted,
                )
            )
            self.runtime.invalidations.publish(HandoffChanged(handoff.id))  # a reply reaches it
        return SendReceipt(platform_id=posted)

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        raise SendError("handoff rooms host no deployments", permanent=True)

    async def teardown(self, deployment: DeploymentInfo) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Binding:
    """`Handover` for one live turn: the desk, bound to the end user's conversation."""

    desk: HandoffDesk
    target: DeploymentTarget
    address: Address

    @property
    def is_open(self) -> bool:
        return self.desk.is_open(self.target.id, self.address.conversation)

    async def relay(self, ctx: TurnContext) -> None:
        await self.desk.relay((self.target.id, self.address.conversation), ctx)

    async def open(self, ctx: TurnContext, *, reason: str, message: str) -> NodeResult:
        return await self.desk.open(self.target, self.address, ctx, reason=reason, message=message)


def _who(address: Address, ctx: TurnContext) -> str:
    """The end user as the team sees them: their remembered name, if any, and their id."""
    name = ctx.participant.get("name")
    return f"{name} ({address.user})" if isinstance(name, str) and name else address.user


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _QUOTE_CHARS else flat[: _QUOTE_CHARS - 1] + "…"


def _minutes(count: int) -> str:
    if count % 60 == 0:
        hours = count // 60
        return f"{hours} hour" + ("s" if hours != 1 else "")
    return f"{count} minute" + ("s" if count != 1 else "")


def _announcement(
    *,
    bot: str,
    who: str,
    where: str,
    reason: str,
    transcript: Sequence[ChatMessage],
    hint: str,
    give_back: str,
    timeout: int,
) -> str:
    """The first post in the room: who, where, why, the recent messages, and how to answer."""
    lines = [
        f"{bot} hands a conversation over to you.",
        f"Who: {who}, on {where}",
        f"Why: {_quote(reason) or 'not given'}",
        "Recent messages:",
    ]
    for said in transcript[-TRANSCRIPT_MESSAGES:]:
        speaker = who if said.role == "user" else bot
        lines.append(f"» {speaker}: {_quote(said.content)}")
    lines.append(
        f"{hint} to answer them as {bot}; {give_back} to give the conversation back "
        f"(it goes back by itself after {_minutes(timeout)} without an answer)."
    )
    return "\n".join(lines)


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1
