"""`SlackChannel`: the runtime's outbound side for Slack, through one `AsyncWebClient`.

Addresses on Slack carry `thread = "CHANNEL:THREAD_TS"` (`THREAD_TS` empty for a top-level DM
reply). A generated bot posts under its own name (`chat:write.customize`); the Studio posts as
the app. When a generated bot's answer takes more than `THINKING_AFTER_S`, a "thinking…" message
appears first and the answer replaces it (`chat.update`), so a fast answer costs one API call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import blocks, fallback_text
from runtime.channel import Capabilities, DeploymentInfo, SendError, SendReceipt
from runtime.messages import Address, OutgoingMessage
from studio.address import STUDIO_DEPLOYMENT

logger = logging.getLogger(__name__)

THINKING_AFTER_S = 1.5
THINKING = "_thinking…_"
# Errors that no retry can mend, and what the person who deployed should do about them.
_FIXES = {
    "channel_not_found": "Slack does not know that channel, or the app cannot see it: invite "
    "the app to it (/invite @Chat Studio)",
    "not_in_channel": "the app is not in that channel: invite it (/invite @Chat Studio)",
    "is_archived": "that channel is archived",
    "invalid_auth": "the Slack token is not valid (SLACK_BOT_TOKEN)",
    "account_inactive": "the Slack token was revoked (SLACK_BOT_TOKEN)",
    "token_revoked": "the Slack token was revoked (SLACK_BOT_TOKEN)",
    "missing_scope": "the Slack app lacks a scope: reinstall it from slack-manifest.yml",
}


def slack_thread(channel: str, thread_ts: str | None) -> str:
    return f"{channel}:{thread_ts or ''}"


def parse_thread(address: Address) -> tuple[str, str | None]:
    channel, _, thread_ts = (address.thread or "").partition(":")
    if not channel:
        raise SendError(f"not a Slack address: {address.conversation}", permanent=True)
    return channel, thread_ts or None


def explain(error: SlackApiError) -> str:
    code = str(error.response.get("error", "")) if error.response is not None else ""
    return _FIXES.get(code, f"Slack answered {code or error}")


class SlackChannel:
    kind: ClassVar[str] = "slack"
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=True, threads=True, files=True, edits=True
    )

    def __init__(
        self, client: AsyncWebClient, *, bot_name: Callable[[str], Awaitable[str]]
    ) -> None:
        self.client = client
        self._bot_name = bot_name
        self._thinking: dict[tuple[str, str], asyncio.Task[str | None]] = {}

    def expect_answer(self, address: Address) -> None:
        """A generated bot is about to answer at `address`: show "thinking…" if it is slow."""
        key = (address.deployment_id, address.thread or "")
        if key not in self._thinking:
            self._thinking[key] = asyncio.create_task(self._think(address))

    async def _think(self, address: Address) -> str | None:
        await asyncio.sleep(THINKING_AFTER_S)
        channel, thread_ts = parse_thread(address)
        try:
            response = await self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=THINKING,
                **await self._identity(address),
            )
        except SlackApiError as exc:
            logger.warning("could not post thinking: %s", explain(exc))
            return None
        return str(response["ts"])

    async def _identity(self, address: Address) -> dict[str, Any]:
        if address.deployment_id == STUDIO_DEPLOYMENT:
            return {}
        return {
            "username": await self._bot_name(address.deployment_id),
            "icon_emoji": ":robot_face:",
        }

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        address = message.address
        channel, thread_ts = parse_thread(address)
        thinking = self._thinking.pop((address.deployment_id, address.thread or ""), None)
        placeholder: str | None = None
        if thinking is not None:
            if thinking.done():
                placeholder = thinking.result()
            else:
                thinking.cancel()
        body: dict[str, Any] = {
            "channel": channel,
            "text": fallback_text(message),
            "blocks": blocks(message),
        }
        try:
            if placeholder is not None:
                response = await self.client.chat_update(ts=placeholder, **body)
            else:
                response = await self.client.chat_postMessage(
                    thread_ts=thread_ts, **body, **await self._identity(address)
                )
        except SlackApiError as exc:
            code = exc.response.get("error") if exc.response is not None else None
            status = exc.response.status_code if exc.response is not None else None
            permanent = code in _FIXES or (
                status is not None and 400 <= status < 500 and status != 429
            )
            raise SendError(explain(exc), permanent=permanent) from None
        return SendReceipt(platform_id=str(response.get("ts")))

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        """A channel deployment needs a channel the app is in; say how to fix it otherwise."""
        try:
            info = await self.client.conversations_info(channel=deployment.target)
        except SlackApiError as exc:
            raise SendError(explain(exc), permanent=True) from None
        if info["channel"].get("is_member") is False:
            raise SendError(_FIXES["not_in_channel"], permanent=True)
        return None

    async def teardown(self, deployment: DeploymentInfo) -> None:
        return None
