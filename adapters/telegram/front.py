"""The Studio's own Telegram bot as a front (`runtime.team_front.TeamFront`): the groups it is in
are the team's rooms (by chat id, negative for a group), and a Studio message's thread is its
chat id, which in a direct message is the member's own user id. Cheap to import: the Studio
reads it even when the bot is off."""

from __future__ import annotations

import re
from typing import ClassVar

from builders.spec import TELEGRAM_CHAT
from runtime.handoff import Room
from runtime.messages import Address
from runtime.team_front import PrivateWay, Spot
from studio.address import TELEGRAM_STUDIO

TELEGRAM_ROOM = re.compile(r"^-[0-9]{1,20}$")  # a group's or supergroup's chat id


class TelegramFront:
    kind: ClassVar[str] = "telegram"
    channel: ClassVar[str] = TELEGRAM_STUDIO
    title: ClassVar[str] = "the Studio's Telegram bot"
    # The member's next message in their DM: the bot deletes it and hands it over sealed.
    private: ClassVar[PrivateWay | None] = "message"
    room_hint: ClassVar[str] = "a Telegram group's chat id (-100…)"

    def room(self, said: str) -> str | None:
        chat = said.strip().removeprefix("telegram:")
        return chat if TELEGRAM_ROOM.fullmatch(chat) else None

    def chat(self, said: str) -> Room | None:
        chat = said.strip().removeprefix("telegram:")
        if not TELEGRAM_CHAT.fullmatch(chat):
            return None
        what = "group" if chat.startswith("-") else "chat"
        return Room(kind=self.kind, id=chat, name=f"Telegram {what} {chat}")

    def spot(self, address: Address) -> Spot | None:
        chat = address.thread
        if not chat:
            return None
        return Spot(chat, direct=chat == address.user.partition(":")[2])

    def report_thread(self, room: str) -> str:
        return room

    def dm(self, identity: str) -> str | None:
        platform, _, user = identity.partition(":")
        return user if platform == "telegram" and user else None


FRONT = TelegramFront()
