"""Slack as a front of the Studio (`runtime.team_front.TeamFront`): its channels are the team's
rooms (`#support`, or the id Slack gives a picked channel), and a Studio message's thread is
`CHANNEL:TS`, where a direct message's channel id starts with `D`. Cheap to import: the Studio
reads it even when Slack is off."""

from __future__ import annotations

import re
from typing import ClassVar

from runtime.handoff import Room
from runtime.messages import Address
from runtime.team_front import PrivateWay, Spot

SLACK_ROOM = re.compile(r"^[CG][A-Z0-9]{2,20}$")  # a public or private Slack channel's id
# A channel named without its "#" (support, dev-ops): Slack's names are lowercase letters,
# digits, "-" and "_"; one that starts with a digit needs its "#" (a bare number is a chat id).
_BARE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,79}$")


class SlackFront:
    kind: ClassVar[str] = "slack"
    channel: ClassVar[str] = "slack"
    title: ClassVar[str] = "Slack"
    private: ClassVar[PrivateWay | None] = (
        "form"  # a modal: Slack has no private messages to delete
    )
    room_hint: ClassVar[str] = "#channel (Slack)"

    def room(self, said: str) -> str | None:
        name = said.strip().removeprefix("slack:")
        if SLACK_ROOM.fullmatch(name) or (name.startswith("#") and len(name) > 1):
            return name
        return f"#{name}" if _BARE_NAME.fullmatch(name) else None

    def chat(self, said: str) -> Room | None:
        return None  # a channel is a room: the app must be in it

    def spot(self, address: Address) -> Spot | None:
        channel = (address.thread or "").partition(":")[0]
        return Spot(channel, direct=channel.startswith("D")) if channel else None

    def report_thread(self, room: str) -> str:
        return f"{room}:"  # a new message in the channel, not a reply in a thread

    def dm(self, identity: str) -> str | None:
        platform, _, user = identity.partition(":")
        return f"{user}:" if platform == "slack" and user else None  # a user id opens the DM


FRONT = SlackFront()
