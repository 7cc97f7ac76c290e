"""The Slack adapter: one slack-bolt `AsyncApp` behind `POST /slack/events` for events, slash
commands and button clicks, verified by bolt with the signing secret.

Routing: DMs, mentions of the app and the Studio's own threads reach the Studio; other channel
messages reach the generated bot deployed to that channel, if any. Every message is recorded in
the runtime's inbox (deduplicated by channel and message ts, since one message can arrive as both
`message` and `app_mention`) before bolt acknowledges it (`process_before_response`); the answer
follows through `SlackChannel.send`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Request, Response
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.channel import SlackChannel, slack_thread
from adapters.slack.render import blocks, fallback_text, mentions, plain
from runtime.messages import Address, FileRef, IncomingMessage
from runtime.runtime import Runtime
from storage.deployments import DeploymentRepository
from studio.address import studio_address
from studio.members import Members

logger = logging.getLogger(__name__)

# Message subtypes that are a person speaking (not edits, deletions, joins or bot posts).
_SPOKEN = {None, "file_share", "thread_broadcast"}
_STUDIO_THREADS = 10_000  # threads the Studio answered in, remembered so follow-ups reach it
_COMMANDS = ("/deploy", "/stats", "/studio")
_TARGETLESS_DEPLOY = re.compile(r"^\S+\s+slack\s*$")


class SlackAdapter:
    def __init__(
        self,
        *,
        token: str,
        signing_secret: str,
        api_url: str,
        owners: list[str],
        runtime: Runtime,
        members: Members,
    ) -> None:
        self.runtime = runtime
        self.members = members
        self.owners = owners
        self.client = AsyncWebClient(token=token, base_url=api_url)
        self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
        self.channel = SlackChannel(self.client, bot_name=runtime.bot_name)
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret,
            process_before_response=True,  # record before the 200, then answer in the background
            logger=logger,
        )
        self.handler = AsyncSlackRequestHandler(self.app)
        self._teams: dict[str, int] = {}
        self._studio_threads: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self.app.event("message")(self._on_message)
        self.app.event("app_mention")(self._on_mention)
        for command in _COMMANDS:
            self.app.command(command)(self._on_command)
        self.app.action(re.compile(r"^studio-\d+$"))(self._on_action)

    async def handle(self, request: Request) -> Response:
        response = await self.handler.handle(request)
        if response.status_code == 404:  # bolt's "unhandled request": known to us, not acted on
            logger.info("ignored a Slack payload nobody handles")
            return Response(status_code=200)
        return response

    # -- who and where ----------------------------------------------------------------------

    async def _team(self, slack_team: str) -> int:
        cached = self._teams.get(slack_team)
        if cached is None:
            cached = await self.members.workspace_team(
                f"slack-{slack_team.lower()}", owners=[f"slack:{o}" for o in self.owners]
            )
            self._teams[slack_team] = cached
        return cached

    async def _bound(self, channel: str) -> str | None:
        """The deployment answering in `channel` (production before staging), if any."""
        async with self.runtime.db.read() as session:
            repo = DeploymentRepository(session)
            for env in ("production", "staging"):
                found = await repo.find(channel="slack", target=channel, env=env)
                if found is not None:
                    return found.id
        return None

    def _remember_studio_thread(self, channel: str, thread_ts: str) -> None:
        self._studio_threads[(channel, thread_ts)] = None
        self._studio_threads.move_to_end((channel, thread_ts))
        while len(self._studio_threads) > _STUDIO_THREADS:
            self._studio_threads.popitem(last=False)

    # -- events ------------------------------------------------------------------------------

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        if event.get("subtype") not in _SPOKEN or event.get("bot_id") or not event.get("user"):
            return
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts")
        text = event.get("text") or ""
        if event.get("channel_type") == "im":
            await self._to_studio(event, body, context, reply_in=thread_ts)
        elif mentions(text, context.get("bot_user_id")):
            await self._to_studio(event, body, context, reply_in=thread_ts or ts)
        elif thread_ts and (channel, thread_ts) in self._studio_threads:
            await self._to_studio(event, body, context, reply_in=thread_ts)
        else:
            deployment = await self._bound(channel)
            if deployment is not None:
                await self._to_bot(deployment, event, reply_in=thread_ts or ts)

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        await self._to_studio(event, body, context, reply_in=event.get("thread_ts") or event["ts"])

    async def _to_studio(
        self, event: dict[str, Any], body: dict[str, Any], context: Any, *, reply_in: str | None
    ) -> None:
        channel = event["channel"]
        team_id = await self._team(body.get("team_id") or event.get("team") or "")
        if reply_in:
            self._remember_studio_thread(channel, reply_in)
        address = studio_address(
            "slack", team_id, f"slack:{event['user']}", thread=slack_thread(channel, reply_in)
        )
        text = plain(event.get("text") or "", bot_user=context.get("bot_user_id"))
        await self.runtime.feed(_incoming(address, text, event))

    async def _to_bot(self, deployment: str, event: dict[str, Any], *, reply_in: str) -> None:
        channel = event["channel"]
        address = Address(
            channel="slack",
            deployment_id=deployment,
            conversation=f"{channel}:{reply_in}",
            user=f"slack:{event['user']}",
            thread=slack_thread(channel, reply_in),
        )
        if await self.runtime.feed(_incoming(address, plain(event.get("text") or ""), event)):
            self.channel.expect_answer(address)

    # -- slash commands and buttons ------------------------------------------------------------

    async def _on_command(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        """Acknowledged at once; the Studio's answer follows through `response_url`, to the
        caller alone."""
        await ack()
        name = command["command"].lstrip("/")
        text = command.get("text", "").strip()
        if name == "deploy" and _TARGETLESS_DEPLOY.match(text):
            text += f" {command['channel_id']}"  # the channel the command was typed in
        said = text if name == "studio" else f"{name} {text}".strip()
        self._spawn(self._answer_privately(command, plain(said), respond, None))

    async def _on_action(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        container = body.get("container", {})
        channel = container.get("channel_id") or body.get("channel", {}).get("id", "")
        message = body.get("message") or {}
        if container.get("is_ephemeral") or not message:
            self._spawn(self._answer_privately(body, "", respond, action.get("value")))
            return
        team_id = await self._team(body.get("team", {}).get("id", ""))
        is_dm = channel.startswith("D")
        reply_in = message.get("thread_ts") or (None if is_dm else message.get("ts"))
        address = studio_address(
            "slack", team_id, f"slack:{body['user']['id']}", thread=slack_thread(channel, reply_in)
        )
        clicked = IncomingMessage(
            address=address,
            action=action.get("value"),
            dedupe_key=f"slack-action:{channel}:{message.get('ts')}:{action.get('action_ts')}",
        )
        await self.runtime.feed(clicked)

    async def _answer_privately(
        self, payload: dict[str, Any], text: str, respond: Any, action: str | None
    ) -> None:
        """A slash command or a click on an ephemeral message: answered through `response_url`."""
        team = payload.get("team_id") or payload.get("team", {}).get("id", "")
        user = payload.get("user_id") or payload.get("user", {}).get("id", "")
        channel = payload.get("channel_id") or payload.get("channel", {}).get("id", "")
        team_id = await self._team(team)
        address = studio_address(
            "slack", team_id, f"slack:{user}", thread=slack_thread(channel, None)
        )
        reply = await self.runtime.answer(
            IncomingMessage(address=address, text=text, action=action)
        )
        for message in reply.messages:
            await respond(
                text=fallback_text(message),
                blocks=blocks(message),
                response_type="ephemeral",
                replace_original=False,
            )

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _incoming(address: Address, text: str, event: dict[str, Any]) -> IncomingMessage:
    files = tuple(
        FileRef(
            name=str(f.get("name") or f.get("title") or "file"),
            url=f.get("url_private"),
            size=f.get("size"),
            mime=f.get("mimetype"),
        )
        for f in event.get("files") or []
    )
    return IncomingMessage(
        address=address,
        text=text,
        files=files,
        dedupe_key=f"slack:{event['channel']}:{event['ts']}",
    )


def router() -> APIRouter:
    """`POST /slack/events`: every Slack request (events, slash commands, interactivity)."""
    routes = APIRouter()

    @routes.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        adapter: SlackAdapter = request.app.state.core.slack
        return await adapter.handle(request)

    return routes
