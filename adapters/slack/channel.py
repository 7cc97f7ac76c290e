"""`SlackChannel`: the runtime's outbound side for Slack, through one `AsyncWebClient`.

Addresses on Slack carry `thread = "CHANNEL:THREAD_TS"` (`THREAD_TS` empty for a top-level DM
reply). A generated bot posts under its own name (`chat:write.customize`); the Studio posts as
the app. When a generated bot's answer takes more than `THINKING_AFTER_S`, a "thinking…" message
appears first and the answer replaces it (`chat.update`), so a fast answer costs one API call;
none appears where the thread's status says the bot is thinking instead (`SlackStreams.quiet`).
A generated bot's live answer carries feedback buttons, and its send returns `ref` =
"CHANNEL:TS", where a click on them finds it again (`SlackAdapter._on_feedback`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import streams as streams_module
from adapters.slack.render import blocks, fallback_text
from adapters.slack.streams import SlackStreams
from runtime.channel import (
    Capabilities,
    DeployForm,
    DeployInputError,
    DeploymentInfo,
    DeployPlan,
    SendError,
    SendReceipt,
)
from runtime.llm import TextSink
from runtime.messages import Address, Attachment, FileRef, OutgoingMessage
from studio.address import STUDIO_DEPLOYMENT

logger = logging.getLogger(__name__)

THINKING_AFTER_S = 1.5
FILE_TIMEOUT_S = 60.0
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
# Slack answers most errors with HTTP 200 and `ok: false`; only these are worth a retry.
_TRANSIENT = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}
_NETWORK = (aiohttp.ClientError, TimeoutError)
_SENT_PRIVATELY = "_The file holds end users' words, so I sent it to you in a direct message._"


def slack_thread(channel: str, thread_ts: str | None) -> str:
    return f"{channel}:{thread_ts or ''}"


def parse_thread(address: Address) -> tuple[str, str | None]:
    channel, _, thread_ts = (address.thread or "").partition(":")
    if not channel:
        raise SendError(f"not a Slack address: {address.conversation}", permanent=True)
    return channel, thread_ts or None


def explain(error: SlackApiError) -> str:
    code = str(error.response.get("error", "")) if error.response is not None else ""
    return _FIXES.get(code, f"Slack answered {code or 'an error'}")


def _failure(exc: Exception) -> SendError:
    if isinstance(exc, SlackApiError):
        code = exc.response.get("error") if exc.response is not None else None
        return SendError(explain(exc), permanent=code not in _TRANSIENT)
    return SendError(f"Slack could not be reached ({type(exc).__name__})", permanent=False)


def _key(address: Address) -> tuple[str, str]:
    """An answer's place: its deployment and thread."""
    return address.deployment_id, address.thread or ""


@dataclass(slots=True)
class _Thinking:
    """The "thinking…" placeholder of one pending answer: the timer, then the posted ts."""

    task: asyncio.Task[str | None] | None = None
    posting: bool = False  # past the wait: cancelling now could leave a placeholder behind


class SlackChannel:
    kind: ClassVar[str] = "slack"
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=True, threads=True, edits=True, files=True, broadcast_per_s=1.0, streams=True
    )
    title: ClassVar[str] = "Slack"
    form: ClassVar[DeployForm] = DeployForm(
        target="required", target_hint="name the Slack channel: /deploy BOT slack #channel"
    )

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        bot_name: Callable[[str], Awaitable[str]],
        owns: Callable[[int], Awaitable[bool]],
    ) -> None:
        self.client = client
        self._bot_name = bot_name
        self._owns = owns  # is a team the one of this Slack workspace?
        self._names: dict[str, str] = {}
        self._thinking: dict[tuple[str, str], _Thinking] = {}
        self._dms: dict[str, str] = {}
        self.streams = SlackStreams(client)

    async def edit(self, message: OutgoingMessage, platform_id: str) -> None:
        """Replace the text of a message the app posted (a progress line)."""
        channel, _ = parse_thread(message.address)
        try:
            await self.client.chat_update(
                channel=channel, ts=platform_id, text=fallback_text(message), blocks=blocks(message)
            )
        except (SlackApiError, *_NETWORK) as exc:
            raise _failure(exc) from None

    async def fetch_file(self, file: FileRef, limit: int) -> bytes:
        """A file shared with the app (its `url_private`, read with the bot token)."""
        if not file.url or self.client.session is None:
            raise SendError("Slack gave no address for the file", permanent=True)
        if not self._slack_hosted(file.url):  # the bot token goes to Slack's own hosts only
            raise SendError("the file is not stored in Slack", permanent=True)
        headers = {"Authorization": f"Bearer {self.client.token}"}
        timeout = aiohttp.ClientTimeout(total=FILE_TIMEOUT_S)
        try:
            async with self.client.session.get(file.url, headers=headers, timeout=timeout) as got:
                if got.status != 200:
                    raise SendError(f"Slack answered {got.status}", permanent=True)
                if got.content_type == "text/html" and not (file.mime or "").endswith("html"):
                    # Slack's sign-in page: the token may not read files
                    raise SendError("Slack did not hand over the file (is files:read granted?)")
                content = bytearray()
                async for piece in got.content.iter_chunked(65536):
                    content += piece
                    if len(content) > limit:
                        raise SendError(f"the file is over {limit // (1024 * 1024)} MB")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError(f"Slack could not be reached ({type(exc).__name__})") from None
        return bytes(content)

    def _slack_hosted(self, url: str) -> bool:
        """An https URL on slack.com (or on the Web API's own host, a local fake in tests)."""
        where = urlsplit(url)
        api = urlsplit(self.client.base_url)
        if (where.scheme, where.netloc) == (api.scheme, api.netloc):
            return True
        host = where.hostname or ""
        return where.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com"))

    def expect_answer(self, address: Address) -> None:
        """A generated bot is about to answer at `address`: show "thinking…" if it is slow."""
        key = _key(address)
        if key not in self._thinking:
            pending = _Thinking()
            pending.task = asyncio.create_task(self._think(address, pending))
            self._thinking[key] = pending

    async def _think(
        self, address: Address, pending: _Thinking, *, at_once: bool = False
    ) -> str | None:
        await asyncio.sleep(0 if at_once else THINKING_AFTER_S)
        if not at_once and await self.streams.quiet(_key(address)):
            return None  # the thread's status says it: one "thinking" is enough
        pending.posting = True
        channel, thread_ts = parse_thread(address)
        try:
            response = await self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=THINKING, **await self._identity(address)
            )
            return str(response["ts"])
        except (SlackApiError, *_NETWORK) as exc:
            logger.warning("could not post thinking: %s", _failure(exc))
            return None

    def shows_after(self) -> float:
        return streams_module.STREAM_AFTER_S  # read now: tests shorten it

    def stream(self, address: Address) -> TextSink | None:
        """A generated bot's answer shown while it is written (`adapters.slack.streams`)."""
        if address.deployment_id == STUDIO_DEPLOYMENT:
            return None
        channel, thread_ts = parse_thread(address)

        async def claim(post: bool) -> str | None:
            """The answer's "thinking…" message, if it was posted (its timer stops); with
            `post`, one posted now when there was none."""
            ts = await self._placeholder(address)
            if ts is None and post:
                ts = await self._think(address, _Thinking(), at_once=True)
            return ts

        def thinking() -> bool:
            """Whether the answer's "thinking…" message is posted, or being posted."""
            pending = self._thinking.get(_key(address))
            return pending is not None and pending.posting

        return self.streams.open(
            _key(address),
            channel=channel,
            thread_ts=thread_ts,
            claim=claim,
            identity=lambda: self._identity(address),
            thinking=thinking,
            user=address.user.removeprefix("slack:"),
        )

    async def _placeholder(self, address: Address) -> str | None:
        pending = self._thinking.pop(_key(address), None)
        if pending is None or pending.task is None:
            return None
        if not pending.posting:
            pending.task.cancel()
            return None
        return await pending.task

    async def _identity(self, address: Address) -> dict[str, Any]:
        deployment = address.deployment_id
        if deployment == STUDIO_DEPLOYMENT:
            return {}
        if deployment not in self._names:  # a deployment's bot never changes
            self._names[deployment] = await self._bot_name(deployment)
        return {"username": self._names[deployment], "icon_emoji": ":robot_face:"}

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        """The text (with its fields and buttons), then the file, if any, in the same thread; a
        message that is only a file is only the upload."""
        address = message.address
        channel, thread_ts = parse_thread(address)
        file_to = (channel, thread_ts)
        if message.file is not None and message.file.private and not channel.startswith("D"):
            # end users' words stay out of a shared channel: the file goes to the member's DM
            file_to = (await self.dm(address.user.removeprefix("slack:")), None)
            message = message.model_copy(update={"text": f"{message.text}\n{_SENT_PRIVATELY}"})
        if message.file is not None and not (message.text.strip() or message.fields):
            await self._upload(message.file, *file_to, posted=False)
            return SendReceipt(platform_id=None)
        markdown = address.deployment_id != STUDIO_DEPLOYMENT  # a bot's answer: a model's Markdown
        rateable = markdown and message.feedback_id is not None  # a live answer: feedback buttons
        body: dict[str, Any] = {
            "channel": channel,
            "text": fallback_text(message, markdown=markdown),
            "blocks": blocks(message, markdown=markdown, rateable=rateable),
        }
        try:
            placeholder = None
            if address.deployment_id != STUDIO_DEPLOYMENT:  # the streamed message, if any
                placeholder = await self.streams.finish(_key(address), channel)
            placeholder = placeholder or await self._placeholder(address)
            if placeholder is not None:
                response = await self.client.chat_update(ts=placeholder, **body)
            else:
                response = await self.client.chat_postMessage(
                    thread_ts=thread_ts, **body, **await self._identity(address)
                )
        except (SlackApiError, *_NETWORK) as exc:
            raise _failure(exc) from None
        if message.file is not None:
            await self._upload(message.file, *file_to, posted=True)
        ts = str(response.get("ts"))
        # A click on its feedback buttons names the message by its channel and ts.
        return SendReceipt(platform_id=ts, ref=f"{response.get('channel') or channel}:{ts}")

    async def dm(self, user: str) -> str:
        """The app's DM channel with Slack user `user` (private files, slash commands'
        follow-ups)."""
        if user not in self._dms:
            try:
                opened = await self.client.conversations_open(users=user)
            except (SlackApiError, *_NETWORK) as exc:
                raise _failure(exc) from None
            self._dms[user] = str(opened["channel"]["id"])
        return self._dms[user]

    async def _upload(
        self, file: Attachment, channel: str, thread_ts: str | None, *, posted: bool
    ) -> None:
        """`files_upload_v2`: an upload URL, the bytes, then the file shared where the message
        goes. Once the text is `posted`, a failure is not worth a retry of the whole message
        (the text would be posted twice)."""
        try:
            await self.client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                file=file.payload,
                filename=file.name,
                title=file.name,
            )
        except SlackRequestError as exc:  # the upload URL refused the bytes
            raise SendError(f"Slack refused the file {file.name}: {exc}", permanent=True) from None
        except (SlackApiError, *_NETWORK) as exc:
            failure = _failure(exc)
            raise SendError(
                f"{failure} (file {file.name})", permanent=posted or failure.permanent
            ) from None

    def plan(
        self, *, target: str | None, secrets: Mapping[str, str], options: Mapping[str, str]
    ) -> DeployPlan:
        if not target:
            raise DeployInputError(self.form.target_hint)
        if secrets:
            raise DeployInputError(
                "a Slack deployment takes no token: the service's Slack app answers there"
            )
        return DeployPlan(target=target)

    def details(self, deployment_id: str) -> Mapping[str, str]:
        return {}

    def link(self, deployment_id: str, stored: str | None) -> str | None:
        return stored

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        """A channel of this workspace, deployed by its team, that the app is in; otherwise
        say how to fix it."""
        if not await self._owns(deployment.team_id):
            raise SendError(
                "only the team of this Slack workspace deploys to its channels: talk to the "
                "Studio in Slack, or use an API key of that team",
                permanent=True,
            )
        try:
            info = await self.client.conversations_info(channel=deployment.target)
        except (SlackApiError, *_NETWORK) as exc:
            raise _failure(exc) from None
        if info["channel"].get("is_member") is False:
            raise SendError(_FIXES["not_in_channel"], permanent=True)
        return None

    async def teardown(self, deployment: DeploymentInfo) -> None:
        return None

    async def close(self) -> None:
        for pending in self._thinking.values():
            if pending.task is not None:
                pending.task.cancel()
        self._thinking.clear()
        await self.streams.close()
