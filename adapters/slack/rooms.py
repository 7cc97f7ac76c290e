"""Slack channels as handoff rooms (`runtime.handoff.TeamRooms`): the first post of a handoff
opens a thread, and the team answers in it. Posts are the app's (not a bot's), as plain text
with Slack's entities escaped, so an end user's words can never ping a channel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.channel import _NETWORK, _failure, explain
from adapters.slack.front import SLACK_ROOM
from adapters.slack.markdown import escape
from runtime.handoff import Room, RoomError

_PAGES = 20  # conversations.list pages read at most when finding a channel by name
_INVITE = "invite the app there (/invite @Chat Studio), then say this again"


class SlackRooms:
    kind: ClassVar[str] = "slack"
    threads: ClassVar[bool] = True
    hint: ClassVar[str] = "Reply in this thread"
    give_back: ClassVar[str] = "type resume in the thread"  # Slack refuses a `/resume` message

    def __init__(self, client: AsyncWebClient, *, owns: Callable[[int], Awaitable[bool]]) -> None:
        self.client = client
        self._owns = owns  # whether a team is the installing workspace's

    async def find(self, target: str, *, by: str, team_id: int) -> Room:
        """A channel by id (`C123`, what Slack makes of `#support` picked from the list) or by
        name (`#support`), which the app must be in. Any member of the workspace's team may set
        it (`by`): the workspace is that team, and every channel the app is in is its; another
        team (on Telegram, by API key) may not."""
        if not await self._owns(team_id):
            raise RoomError(
                "the Slack workspace this service is installed in is another team's: hand over "
                "to a room of your own team"
            )
        name = target.strip().lstrip("#")
        try:
            if SLACK_ROOM.fullmatch(target.strip()):
                channel = (await self.client.conversations_info(channel=name))["channel"]
            else:
                channel = await self._named(name)
        except SlackApiError as exc:
            raise RoomError(f"Slack could not show {target}: {explain(exc)}") from None
        except _NETWORK as exc:
            raise RoomError(f"Slack could not be reached ({type(exc).__name__})") from None
        shown = f"#{channel.get('name') or channel['id']}"
        if channel.get("is_im") or channel.get("is_mpim"):
            raise RoomError(f"{target} is a direct message: hand over to a channel of the team")
        if not channel.get("is_member"):
            raise RoomError(f"the app is not in {shown}: {_INVITE}")
        return Room(kind=self.kind, id=str(channel["id"]), name=shown)

    async def _named(self, name: str) -> dict[str, Any]:
        cursor: str | None = None
        for _ in range(_PAGES):
            listed = await self.client.conversations_list(
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=1000,
                cursor=cursor,
            )
            for channel in listed.get("channels") or []:
                if channel.get("name") == name:
                    return dict(channel)
            cursor = (listed.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                break
        raise RoomError(
            f"Slack has no channel #{name} that the app can see: check the name; for a private "
            f"channel, {_INVITE}"
        )

    async def post(self, room: str, text: str, *, thread: str | None = None) -> str:
        try:
            posted = await self.client.chat_postMessage(
                channel=room, text=escape(text), thread_ts=thread, unfurl_links=False
            )
        except (SlackApiError, *_NETWORK) as exc:
            raise _failure(exc) from None
        return str(posted["ts"])
