"""Telegram groups as handoff rooms (`runtime.handoff.TeamRooms`), through the Studio's own bot:
the first post of a handoff and each message relayed after it are the Studio bot's, and the
team answers by replying to any of them (a group has no threads). Posts are plain text, so
nothing an end user says is read as markup."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from adapters.telegram.common import said
from runtime.channel import SendError
from runtime.handoff import Room, RoomError

if TYPE_CHECKING:
    from adapters.telegram.studio import TelegramStudio

MAX_TEXT = 4096  # Telegram's limit for one message
_GROUPS = ("group", "supergroup")
_ADMINS = ("administrator", "creator")


class TelegramRooms:
    kind: ClassVar[str] = "telegram"
    threads: ClassVar[bool] = False
    hint: ClassVar[str] = "Reply to this message (or to a later one of mine about it)"
    give_back: ClassVar[str] = "reply /resume to one of them"

    def __init__(self, studio: TelegramStudio) -> None:
        self.studio = studio

    async def find(self, target: str, *, by: str, team_id: int) -> Room:
        """A group (by chat id) that the Studio's bot is in, whose administrator (or creator)
        `by` is: being in a team and able to reach the group's id is not enough, or one team
        could route its conversations into another's group."""
        user = by.removeprefix("telegram:")
        if user == by or not user.isdigit():
            raise RoomError(
                "only an administrator of a Telegram group can hand conversations to it: say "
                "/handoff BOT to here in the group"
            )
        studio = self.studio
        if not await studio.ready(10.0):
            raise RoomError("the Studio's Telegram bot is not connected yet; try again shortly")
        try:
            chat = await studio.bot.get_chat(chat_id=int(target))
        except studio.errors.TelegramError as exc:
            raise RoomError(
                f"Telegram would not show that group ({said(exc)}): add the Studio's bot to it, "
                "then say /handoff BOT to here in the group"
            ) from None
        if chat.type not in _GROUPS:
            raise RoomError("only a Telegram group can take handed-over conversations")
        name = chat.title or str(chat.id)
        try:
            member = await studio.bot.get_chat_member(chat_id=chat.id, user_id=int(user))
        except studio.errors.TelegramError as exc:
            raise RoomError(f"Telegram would not say who you are in {name} ({said(exc)})") from None
        if member.status not in _ADMINS:
            raise RoomError(
                f"only an administrator of {name} can hand conversations to it: ask one of "
                "them to say /handoff BOT to here there"
            )
        return Room(kind=self.kind, id=str(chat.id), name=name)

    async def post(self, room: str, text: str, *, thread: str | None = None) -> str:
        studio = self.studio
        if not await studio.ready(30.0):
            raise SendError("the Studio's Telegram bot is not connected yet")
        chat_id = int(room)
        body = text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
        reply = None
        if thread is not None:
            reply = studio.ptb.ReplyParameters(
                message_id=int(thread), allow_sending_without_reply=True
            )
        sent = await studio.send_paced(
            chat_id,
            lambda: studio.bot.send_message(chat_id=chat_id, text=body, reply_parameters=reply),
            permanent=True,
        )
        return str(sent.message_id)
