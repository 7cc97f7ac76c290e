"""What a bot remembers about its end users (participant memory), seen, edited and forgotten by
builders: `/memory` in chat and `/api/v1/bots/{bot}/participants/...` over REST.

An end user is named `CHANNEL:ID` (`telegram:12345`, `web:3f2a9c01b2de`, `slack:U123`: that
address, and the member's own `/try` conversations when it is a member's identity), a bare `ID`
(the id on every channel), or `sandbox:IDENTITY` (only a member's `/try` conversations).
Memory is personal data: editors and above see and change it; forgetting a person everywhere
(conversations and messages too) is for admins, and its audit event holds only counts.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.participant import MemoryValueError, ParticipantMemory, Scalar, check_value
from storage import end_users
from storage import participants as memory_store
from storage.end_users import Address, Match
from studio.errors import InvalidError, NotFoundError
from studio.operations import Expected, Operations, audit, check_expected
from studio.roles import Caller, Role
from studio.views import Timestamp

SANDBOX = "sandbox"  # the channel of `/try` conversations
MAX_USER_CHARS = 200
_INT = re.compile(r"-?(?:0|[1-9]\d{0,17})")
_DECIMAL = re.compile(r"-?(?:0|[1-9]\d{0,17})\.\d{1,15}")
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}
_SEEING = "Seeing what a bot remembers about someone"
_CHANGING = "Changing what a bot remembers about someone"


class ChannelMemory(BaseModel):
    """What the bot remembers about the person at one address."""

    channel: str
    user: str
    values: dict[str, bool | int | float | str]
    updated_at: Timestamp


class ParticipantView(BaseModel):
    bot: str
    user: str  # as the caller named the person
    memory: list[ChannelMemory]  # empty: the bot knows the person but remembers nothing


class ForgottenView(BaseModel):
    """A person forgotten everywhere by a bot: how much went."""

    bot: str
    user: str
    memory: int  # addresses whose memory was deleted
    conversations: int
    messages: int


def end_user(text: str) -> Match:
    """The end users a builder's `USER` names, or a one-line refusal."""
    named = text.strip()
    if not named or len(named) > MAX_USER_CHARS or any(c.isspace() or c == "\x00" for c in named):
        shown = named[:40].replace("\x00", "")
        raise InvalidError(
            f"'{shown}' is not an end user: name one as CHANNEL:ID (e.g. telegram:12345) or ID"
        )
    channel, sep, rest = named.partition(":")
    if sep and channel == SANDBOX:
        if not rest:
            raise InvalidError("name the member after 'sandbox:', e.g. sandbox:slack:U123")
        return Match(user=rest, channel=SANDBOX)
    return Match(user=named, bare=not sep)


def typed_value(text: str) -> Scalar:
    """A value typed in chat: a whole number, a decimal, true/false, else the text (quoted text
    stays text: `"42"`). A number with leading zeros (a postcode) stays text too."""
    value = text.strip()
    if len(value) >= 2 and _QUOTES.get(value[0]) == value[-1]:
        return value[1:-1]
    if _INT.fullmatch(value):
        return int(value)
    if _DECIMAL.fullmatch(value):
        return float(value)
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def named(address: Address) -> str:
    """How a builder names one address (what `end_user` reads back as that address)."""
    channel, user = address
    return f"{SANDBOX}:{user}" if channel == SANDBOX else user


class Participants:
    def __init__(self, ops: Operations) -> None:
        self.ops = ops
        self.db = ops.db

    async def memory(self, caller: Caller, bot: str, user: str) -> ParticipantView:
        """What `bot` remembers about `user`, per address (editors and above)."""
        caller.require(Role.EDITOR, _SEEING)
        match = end_user(user)
        async with self.db.read() as session:
            row = await self.ops.owned_bot(session, caller, bot)
            assert row.id is not None
            conn = await session.connection()
            found = await _known(conn, row.id, row.name, match, user)
            rows = await end_users.memory(conn, row.id, found)
        return _view(row.name, user, rows)

    async def set_memory(
        self, caller: Caller, bot: str, user: str, key: str, value: Any
    ) -> ChannelMemory:
        """Remember `value` under `key` about `user` (editors and above). `user` names one
        address; a name that covers several is refused with their names."""
        caller.require(Role.EDITOR, _CHANGING)
        match = end_user(user)
        checked = _checked(key, value)
        async with self.db.write() as session:
            row = await self.ops.owned_bot(session, caller, bot)
            assert row.id is not None
            bot_id = row.id
            conn = await session.connection()
            found = await _known(conn, bot_id, row.name, match, user)
            channels = self.ops.runtime.channels.offered()
            channel, stored = _one_address(match, found, user, row.name, channels)
            current = await memory_store.load(conn, bot_id=bot_id, channel=channel, user=stored)
            remembered = ParticipantMemory(values=current)
            try:
                remembered.set(key, checked)
            except MemoryValueError as exc:  # one value too many
                raise InvalidError(str(exc)) from None
            data = dict(remembered.values)
            await conn.run_sync(
                lambda sync: memory_store.save(
                    sync, bot_id=bot_id, channel=channel, user=stored, data=data
                )
            )
            await audit(
                session,
                caller,
                action="memory.set",
                target=row.name,
                after={"user": stored, "channel": channel, "key": key},
            )
            saved = await end_users.memory(conn, bot_id, [(channel, stored)])
        self.ops.runtime.participants.forget(bot_id, stored)  # the next turn reads the new value
        return _channel_memory(saved[0])

    async def forget_memory(
        self, caller: Caller, bot: str, user: str, *, expect: Expected | None = None
    ) -> ParticipantView:
        """Forget what `bot` remembers about `user` on every address the name covers (their
        messages stay); what was forgotten (editors and above)."""
        caller.require(Role.EDITOR, "Forgetting what a bot remembers about someone")
        match = end_user(user)
        async with self.db.write() as session:
            row = await self.ops.owned_bot(session, caller, bot)
            assert row.id is not None
            bot_id = row.id
            check_expected(expect, row)
            conn = await session.connection()
            found = await _known(conn, bot_id, row.name, match, user)
            rows = await end_users.memory(conn, bot_id, found)
            if rows:
                await conn.run_sync(lambda sync: end_users.forget_memory(sync, bot_id, found))
                await audit(
                    session,
                    caller,
                    action="memory.forget",
                    target=row.name,
                    before={"user": user, "keys": sum(len(r.data) for r in rows)},
                )
        for _channel, forgotten in found:
            self.ops.runtime.participants.forget(bot_id, forgotten)
        return _view(row.name, user, rows)

    async def forget_participant(self, caller: Caller, bot: str, user: str) -> ForgottenView:
        """Forget `user` everywhere for `bot`: their memory, and every conversation held from an
        address the name covers, with its messages (admins and owners). The audit event holds the
        counts and the name, nothing the person said or is remembered by."""
        caller.require(Role.ADMIN, "Forgetting a person")
        match = end_user(user)
        async with self.db.write() as session:
            row = await self.ops.owned_bot(session, caller, bot)
            assert row.id is not None
            bot_id = row.id
            conn = await session.connection()
            found = await _known(conn, bot_id, row.name, match, user)
            gone = await conn.run_sync(
                lambda sync: end_users.forget_everything(sync, bot_id, found)
            )
            forgotten = ForgottenView(
                bot=row.name,
                user=user,
                memory=gone.memory,
                conversations=gone.conversations,
                messages=gone.messages,
            )
            await audit(
                session,
                caller,
                action="participant.forget",
                target=row.name,
                before=forgotten.model_dump(exclude={"bot"}),
            )
        for deployment_id, key in gone.places:  # the runtime's copy of their recent turns
            if deployment_id is not None:
                self.ops.runtime.conversations.forget((deployment_id, key))
        for _channel, person in found:
            self.ops.runtime.participants.forget(bot_id, person)
        return forgotten


async def _known(
    conn: AsyncConnection, bot_id: int, bot: str, match: Match, user: str
) -> list[Address]:
    found = await end_users.addresses(conn, bot_id, match)
    if not found:
        raise NotFoundError(f"No end user {user.strip()[:60]} has talked to {bot}.")
    return found


def _checked(key: str, value: Any) -> Scalar:
    try:
        checked = check_value(key, value)
    except MemoryValueError as exc:
        raise InvalidError(str(exc)) from None
    if isinstance(checked, float) and not math.isfinite(checked):
        raise InvalidError(f"'{key}' must be a finite number")
    if isinstance(checked, str) and "\x00" in checked:
        raise InvalidError(f"'{key}' holds a NUL character")
    return checked


def _one_address(
    match: Match, found: list[Address], user: str, bot: str, channels: tuple[str, ...]
) -> Address:
    """The one address a value is remembered at: the channel a `CHANNEL:ID` or `sandbox:ID`
    name gives, else the only address the bot knows the person by."""
    channel = match.channel or user.strip().partition(":")[0]
    if channel in (*channels, SANDBOX) and not match.bare:
        return channel, match.user
    if len(found) == 1:
        return found[0]
    names = ", ".join(named(address) for address in found[:5])
    raise InvalidError(f"{user.strip()} talks to {bot} from several places: say which ({names})")


def _channel_memory(row: end_users.MemoryRow) -> ChannelMemory:
    return ChannelMemory(
        channel=row.channel, user=row.user, values=row.data, updated_at=row.updated_at
    )


def _view(bot: str, user: str, rows: list[end_users.MemoryRow]) -> ParticipantView:
    return ParticipantView(
        bot=bot, user=user.strip(), memory=[_channel_memory(r) for r in rows if r.data]
    )
