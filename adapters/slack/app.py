"""The Slack adapter: one slack-bolt `AsyncApp` behind `POST /slack/events` for events, slash
commands and button clicks. Each request is verified with the signing secret before bolt sees it
(a failed check answers 401 and is logged without the body, which may hold a token).

The workspace that installed the app is one Chat Studio team; people from elsewhere (a Slack
Connect channel) are not served. Routing: DMs, mentions of the app and the threads the Studio
started (stored, so a restart keeps them) reach the Studio; other channel messages reach the
team's generated bot deployed to that channel, if any. Every message is recorded in the
runtime's inbox (deduplicated by channel and message ts, since one message can arrive as both
`message` and `app_mention`) before bolt acknowledges it (`process_before_response`); the answer
follows through `SlackChannel.send`.
Slash commands are recorded in the inbox too (deduplicated by Slack's trigger id, so a replay
does nothing), then answered to the caller alone (`response_url`); what the Studio says later
about them goes to the caller's DM with the app. A click on a generated bot's feedback buttons
rates the answer that message is (found by its channel and ts, never by the button's value).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections import OrderedDict
from typing import Any

import aiohttp
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.internals import parse_body
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryState
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.plugin import built
from adapters.slack import forms
from adapters.slack.channel import SlackChannel, slack_thread
from adapters.slack.render import FEEDBACK_ACTION, RATINGS, blocks, fallback_text, mentions, plain
from adapters.slack.rooms import SlackRooms
from builders.tokens import redact_studio_input
from runtime.cipher import Cipher
from runtime.messages import Address, FileRef, IncomingMessage
from runtime.metrics import RATE_LIMITED
from runtime.runtime import Runtime
from storage import inbox, studio_threads
from studio.address import studio_address
from studio.members import Members
from studio.roles import Role

logger = logging.getLogger(__name__)

# Message subtypes that are a person speaking (not edits, deletions, joins or bot posts).
_SPOKEN = {None, "file_share", "thread_broadcast"}
# Channel threads known to be the Studio's (or not), cached: the Studio's are stored, and whether a
# thread is the Studio's is settled when its first message is handled, so a "no" stays true.
_KNOWN_THREADS = 20_000
_COMMANDS = ("/deploy", "/stats", "/studio")
# `/deploy BOT slack [--env ENV]` typed in a channel: that channel is the target.
_TARGETLESS_DEPLOY = re.compile(r"^(\S+\s+slack)(\s+--env[= ]\S+)?\s*$")
# `here` as a schedule's or a stats report's place, after the last quote (not in the message).
_SCHEDULE_HERE = re.compile(r"^(schedule\b.*\s)to\s+here\b(?=[^\"]*$)", re.IGNORECASE | re.DOTALL)
_STATS_HERE = re.compile(r"^(stats\b[^\"]*?\s)(?:in\s+)?here\b", re.IGNORECASE)
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # seconds, as Slack sends them (int() takes far more)
WORKING_AFTER_S = 1.5  # a slash command's answer slower than this is preceded by WORKING
WORKING = "Working on it…"
SECRET_FORM = forms.SECRET_MODAL.callback_id  # the modal that takes a team secret's value
_FAILED = "Something went wrong on our side (it is logged). Please try again."


def _readable(body: bytes, content_type: str | None) -> bool:
    """Whether bolt can read `body` as an object (JSON, or a form whose `payload` is JSON): bolt
    parses it before any handler and raises on anything else, a 500 that Slack retries."""
    kind = content_type.split(";")[0].strip() if content_type else None
    try:
        parsed = parse_body(body.decode("utf-8"), kind)
    except ValueError:  # not JSON (a body that is not UTF-8 failed verification before)
        return False
    return isinstance(parsed, dict)


class CountedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's retry of a call Slack answered 429 (after its `Retry-After`), counting each
    429 once as it arrives: the last one too, which no retry follows (the call then raises
    `ratelimited`). The sender's own retries are new calls, so new answers."""

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if error is None and response is not None and response.status_code == 429:
            RATE_LIMITED.labels("slack").inc()
        return await super().can_retry_async(
            state=state, request=request, response=response, error=error
        )


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
        cipher: Cipher,
    ) -> None:
        self.runtime = runtime
        self.members = members
        self.cipher = cipher
        self.owners = [f"slack:{o.removeprefix('slack:')}" for o in owners]
        for owner in self.owners:
            if not _SLACK_USER.match(owner.removeprefix("slack:")):
                raise ValueError(f"STUDIO_SLACK_OWNERS: '{owner}' is not a Slack user id (U…)")
        self.session = aiohttp.ClientSession()  # one connection pool for every Web API call
        self.client = AsyncWebClient(
            token=token, base_url=api_url.rstrip("/") + "/", session=self.session
        )
        self.client.retry_handlers.append(CountedRateLimitRetryHandler(max_retry_count=3))
        self.channel = SlackChannel(self.client, bot_name=runtime.bot_name, owns=self._owns)
        # Channels that take handed-over conversations (the workspace's team's only).
        self.rooms = SlackRooms(self.client, owns=self._owns)
        self.verifier = SignatureVerifier(signing_secret)
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret,
            process_before_response=True,  # record before the 200, then answer in the background
            logger=logger,
            request_verification_enabled=False,  # `handle` verifies, before bolt reads the body
        )
        self.handler = AsyncSlackRequestHandler(self.app)
        self._home: tuple[str, int] | None = None  # (workspace id, team id)
        self._threads: OrderedDict[tuple[str, str], bool] = OrderedDict()  # -> the Studio's?
        self._tasks: set[asyncio.Task[None]] = set()
        self.app.event("message")(self._on_message)
        self.app.event("app_mention")(self._on_mention)
        for command in _COMMANDS:
            self.app.command(command)(self._on_command)
        self.app.action(re.compile(r"^studio-\d+$"))(self._on_action)
        self.app.action(FEEDBACK_ACTION)(self._on_feedback)
        for form in forms.FORMS:
            self.app.view(form.callback_id)(self._on_form)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        if not self._verified(body, request):
            # Never with the body: bolt's own check logged it whole, a token form's token included.
            logger.info("refused a Slack request that failed verification")
            return JSONResponse({"error": "invalid request"}, status_code=401)
        if not _readable(body, request.headers.get("content-type")):
            logger.info("refused a signed Slack request whose body is no JSON object or form")
            return JSONResponse({"error": "the body is no Slack payload"}, status_code=400)
        response = await self.handler.handle(request)
        if response.status_code == 404:  # bolt's "unhandled request": known to us, not acted on
            logger.info("ignored a Slack payload nobody handles")
            return Response(status_code=200)
        return response

    def _verified(self, body: bytes, request: Request) -> bool:
        """Signed with the signing secret in the last five minutes; a malformed timestamp or
        signature header is a failed check (slack_sdk raises on them), and so is a body that is
        not UTF-8 (Slack signs text; slack_sdk decodes the body and raises)."""
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return (
            _TIMESTAMP.fullmatch(timestamp) is not None
            and signature.isascii()
            and self.verifier.is_valid(text, timestamp, signature)
        )

    # -- who and where ----------------------------------------------------------------------

    async def _workspace(self) -> tuple[str, int]:
        """The installing workspace (from `auth.test`) and its team, created on first contact
        with the configured owners (added again at each start, in case the list grew)."""
        if self._home is None:
            auth = await self.client.auth_test()
            workspace = str(auth["team_id"])
            team_id = await self.members.workspace_team(
                f"slack-{workspace.lower()}", owners=self.owners
            )
            for owner in self.owners:
                await self.members.admit(team_id, owner, Role.OWNER, actor="STUDIO_SLACK_OWNERS")
            self._home = (workspace, team_id)
        return self._home

    async def _team(
        self, payload: dict[str, Any], event: dict[str, Any] | None = None
    ) -> int | None:
        """The team for a request from the installing workspace; None for anyone else."""
        workspace, team_id = await self._workspace()
        team = payload.get("team")
        user = payload.get("user")
        seen = {
            payload.get("team_id"),
            team.get("id") if isinstance(team, dict) else None,
            user.get("team_id") if isinstance(user, dict) else None,
            (event or {}).get("user_team"),
        } - {None}
        if seen - {workspace}:
            logger.info("ignored a request from another workspace")
            return None
        return team_id

    async def _owns(self, team_id: int) -> bool:
        return (await self._workspace())[1] == team_id

    async def _remember_studio_thread(self, team_id: int, channel: str, thread_ts: str) -> None:
        """The Studio talks in this channel thread (stored, so a restart still knows it)."""
        self._know_thread(channel, thread_ts, studio=True)
        key = f"{channel}:{thread_ts}"
        await self.runtime.writes.run(
            lambda conn: studio_threads.remember(conn, key=key, team_id=team_id)
        )

    async def _is_studio_thread(self, channel: str, thread_ts: str) -> bool:
        """Whether a thread is the Studio's: asked of the database once per thread (a bot's
        conversation threads are asked about on every message)."""
        known = self._threads.get((channel, thread_ts))
        if known is None:
            async with self.runtime.db.read_conn() as conn:
                known = await studio_threads.known(conn, f"{channel}:{thread_ts}")
            self._know_thread(channel, thread_ts, studio=known)
        return known

    def _know_thread(self, channel: str, thread_ts: str, *, studio: bool) -> None:
        self._threads[(channel, thread_ts)] = studio
        self._threads.move_to_end((channel, thread_ts))
        while len(self._threads) > _KNOWN_THREADS:
            self._threads.popitem(last=False)

    # -- events ------------------------------------------------------------------------------

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        if not _spoken(event):
            return
        team_id = await self._team(body, event)
        if team_id is None:
            return
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts")
        if await self._to_handoff(event, context):
            return
        if event.get("channel_type") == "im":
            await self._to_studio(team_id, event, context, reply_in=thread_ts)
        elif mentions(event.get("text") or "", context.get("bot_user_id")):
            await self._to_studio(team_id, event, context, reply_in=thread_ts or ts)
        elif thread_ts and await self._is_studio_thread(channel, thread_ts):
            await self._remember_studio_thread(team_id, channel, thread_ts)  # still in use
            await self._to_studio(team_id, event, context, reply_in=thread_ts)
        else:
            deployment = await self.runtime.deployment_at("slack", channel, team_id=team_id)
            if deployment is not None:
                await self._to_bot(deployment, event, reply_in=thread_ts or ts)

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        if not _spoken(event):
            return
        team_id = await self._team(body, event)
        if team_id is not None and not self._in_handoff(event):  # the message event has it
            reply_in = event.get("thread_ts") or event["ts"]
            await self._to_studio(team_id, event, context, reply_in=reply_in)

    def _in_handoff(self, event: dict[str, Any]) -> bool:
        """A reply in the thread of a handed-over conversation (the team answering)."""
        thread_ts = event.get("thread_ts")
        return bool(thread_ts) and self.runtime.handoffs.in_room(
            "slack", event["channel"], str(thread_ts)
        )

    async def _to_handoff(self, event: dict[str, Any], context: Any) -> bool:
        """The team's answer (or `resume`) to the handoff desk, recorded before Slack's 200.
        The workspace is the team, so anyone in the channel answers for it, but only a person:
        not a bot, not Slackbot (what is not a person's is dropped)."""
        if event.get("channel_type") == "im" or not self._in_handoff(event):
            return False
        if not _person(str(event["user"])):
            return True
        channel = event["channel"]
        await self.runtime.handoffs.from_team(
            kind="slack",
            room=channel,
            thread=event["thread_ts"],
            user=f"slack:{event['user']}",
            text=plain(event.get("text") or "", bot_user=context.get("bot_user_id")),
            dedupe_key=f"slack:{channel}:{event['ts']}",
        )
        return True

    async def _to_studio(
        self, team_id: int, event: dict[str, Any], context: Any, *, reply_in: str | None
    ) -> None:
        channel = event["channel"]
        if reply_in is not None and reply_in == event["ts"]:  # the Studio starts this thread
            await self._remember_studio_thread(team_id, channel, reply_in)
        address = studio_address(
            "slack", team_id, f"slack:{event['user']}", thread=slack_thread(channel, reply_in)
        )
        text = plain(event.get("text") or "", bot_user=context.get("bot_user_id"))
        # Stored: never with a token or a secret's value typed after `/secret set NAME`.
        await self.runtime.feed(_incoming(address, redact_studio_input(text), event))

    async def _to_bot(self, deployment: str, event: dict[str, Any], *, reply_in: str) -> None:
        channel = event["channel"]
        address = Address(
            channel="slack",
            deployment_id=deployment,
            conversation=f"{channel}:{reply_in}",
            user=f"slack:{event['user']}",
            thread=slack_thread(channel, reply_in),
        )
        fed = await self.runtime.feed(_incoming(address, plain(event.get("text") or ""), event))
        # No "thinking…" while people of the team have the conversation: the bot says nothing.
        if fed and not self.runtime.handoffs.is_open(deployment, address.conversation):
            self.channel.expect_answer(address)

    # -- slash commands and buttons ------------------------------------------------------------

    async def _on_command(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        """Acknowledged at once; the Studio's answer follows through `response_url`."""
        await ack()
        name = command["command"].lstrip("/")
        text = command.get("text", "").strip()
        if name == "deploy":
            text = _TARGETLESS_DEPLOY.sub(rf"\1 {command['channel_id']}\2", text)
        said = text if name == "studio" else f"{name} {text}".strip()
        said = _here_is(said, command["channel_id"])
        await self._privately(command, plain(said), None, respond)

    async def _on_action(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        container = body.get("container", {})
        channel = container.get("channel_id") or body.get("channel", {}).get("id", "")
        message = body.get("message") or {}
        value = str(action.get("value") or "")
        if forms.form_for(value) is not None:
            if await self._team(body) is None:
                return
            thread = message.get("thread_ts") or (
                None if channel.startswith("D") else message.get("ts")
            )
            if container.get("is_ephemeral") or not message:  # answers go to the caller's DM
                channel, thread = await self.channel.dm(body["user"]["id"]), None
            if not await self._open_form(body.get("trigger_id"), value, channel, thread):
                await respond(
                    text="The form could not open; click the button again.",
                    response_type="ephemeral",
                    replace_original=False,
                )
            return
        if container.get("is_ephemeral") or not message:
            await self._privately(body, "", action.get("value"), respond)
            return
        team_id = await self._team(body)
        if team_id is None:
            return
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

    async def _on_feedback(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        """A click on a bot answer's feedback buttons: the answer is the one the clicked message
        (its channel and ts) was sent as by the deployment in that channel, the button says only
        up or down. Rated before Slack's 200, thanked privately after; a click on anything that
        is not a rateable answer (or from another workspace) changes nothing and says nothing."""
        await ack()
        rating = RATINGS.get(str(action.get("value")))
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or "")
        ts = str(container.get("message_ts") or "")
        user = str((body.get("user") or {}).get("id") or "")
        if rating is None or not (channel and ts and _SLACK_USER.match(user)):
            return
        team_id = await self._team(body)
        if team_id is None:
            return
        deployment = await self.runtime.deployment_at("slack", channel, team_id=team_id)
        if deployment is None:
            return
        rated = await self.runtime.ratings.by_ref(
            deployment_id=deployment,
            ref=f"{channel}:{ts}",
            user=f"slack:{user}",
            channel="slack",
            rating=rating,
        )
        if rated:
            self._spawn(self._thank(respond))

    async def _thank(self, respond: Any) -> None:
        try:
            await respond(
                text="Thanks for the feedback", response_type="ephemeral", replace_original=False
            )
        except Exception as exc:  # an expired response_url, say: the rating is kept anyway
            logger.info("could not thank for feedback: %s", type(exc).__name__)

    async def _privately(
        self, payload: dict[str, Any], text: str, action: str | None, respond: Any
    ) -> None:
        """A slash command or a click on an ephemeral message: recorded in the inbox before
        Slack's 200, like events (a replayed request is a duplicate and does nothing), then
        answered in the background to the caller alone (`response_url`); what comes later goes
        to their DM with the app."""
        try:
            team_id = await self._team(payload)
            if team_id is None:
                await respond(
                    text="This app serves its own workspace only.", response_type="ephemeral"
                )
                return
            user = payload.get("user_id") or payload.get("user", {}).get("id", "")
            later = slack_thread(await self.channel.dm(user), None)
            message = IncomingMessage(
                address=studio_address("slack", team_id, f"slack:{user}", thread=later),
                text=redact_studio_input(text),  # stored: never with a token or a secret
                action=action,
                dedupe_key=_once(payload),
            )
            inbox_id = await self.runtime.accept(message)
        except Exception:
            logger.exception("a slash command failed")
            await respond(text=_FAILED, response_type="ephemeral")
            return
        if inbox_id is not None:
            self._spawn(self._answer_privately(payload, inbox_id, message, respond))

    async def _answer_privately(
        self, payload: dict[str, Any], inbox_id: int, message: IncomingMessage, respond: Any
    ) -> None:
        try:
            answering = asyncio.ensure_future(self.runtime.answer(message))
            done, _ = await asyncio.wait({answering}, timeout=WORKING_AFTER_S)
            if not done:  # slow work (a deployment's set-up, say): say so, then answer
                await respond(text=WORKING, response_type="ephemeral")
            reply = await answering
        except Exception:
            logger.exception("a slash command failed")
            await self._settle(inbox_id, "failed")
            await respond(text=_FAILED, response_type="ephemeral")
            return
        await self._settle(inbox_id, "done")  # answered: a restart does not answer it again
        trigger = payload.get("trigger_id")
        opens = _form_button(reply.messages)
        if trigger and opens:  # `/deploy BOT telegram`, `/secret set NAME`: the form at once
            where = (message.address.thread or "").partition(":")[0]
            if await self._open_form(trigger, opens, where, None):
                return
        try:
            for said in reply.messages:
                await respond(
                    text=fallback_text(said),
                    blocks=blocks(said),
                    response_type="ephemeral",
                    replace_original=False,
                )
                if said.file is not None:  # no file goes through response_url: to their DM
                    await self.runtime.push(
                        said.model_copy(update={"text": "", "fields": (), "buttons": ()})
                    )
        except Exception:
            logger.exception("a slash command's answer could not be posted")

    async def _settle(self, inbox_id: int, status: str) -> None:
        await self.runtime.writes.run(lambda conn: inbox.set_inbox_status(conn, inbox_id, status))

    # -- what is never typed into a channel, through a private form (`adapters.slack.forms`) -----

    async def _open_form(
        self, trigger_id: str | None, action: str, channel: str, thread: str | None
    ) -> bool:
        """The modal that `action` (a form button's) asks for. False when it cannot open (no
        trigger, or the trigger's 3 seconds are over)."""
        found = forms.form_for(action)
        if not trigger_id or found is None:
            return False
        form, request = found
        try:
            await self.client.views_open(
                trigger_id=trigger_id,
                view=forms.view(form, request, channel=channel, thread=thread),
            )
        except Exception as exc:  # an expired trigger, say: the caller gets the button instead
            logger.info("views.open failed: %s", exc)
            return False
        return True

    async def _on_form(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        """A form was submitted: what was typed is checked, sealed with the service's cipher
        and handed to the Studio (which acts on it: deploys, stores the secret)."""
        form = forms.form_by_callback(str(view.get("callback_id")))
        if form is None:
            await ack()
            return
        value, problem = form.read(forms.typed(form, view))
        if value is None:
            await ack(response_action="errors", errors={form.block: problem})
            return
        await ack()
        team_id = await self._team(body)
        if team_id is None:
            return
        try:
            where = json.loads(view.get("private_metadata") or "{}")
            request, channel, thread = where["request"], where["channel"], where.get("thread")
        except (ValueError, KeyError, TypeError):
            logger.info("ignored a private form without its metadata")
            return
        address = studio_address(
            "slack", team_id, f"slack:{body['user']['id']}", thread=slack_thread(channel, thread)
        )
        await self.runtime.feed(
            IncomingMessage(
                address=address,
                action=form.seal(self.cipher, value, str(request)),
                dedupe_key=f"slack-view:{view.get('id')}",
            )
        )

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self) -> None:
        """Wait for the slash commands being answered (shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Let go of the connection pool (after the runtime sent what it had to send)."""
        await self.channel.close()
        await self.session.close()


def _once(payload: dict[str, Any]) -> str:
    """The dedupe key of a slash command or click: Slack's trigger id, new for each invocation
    and the same in a replay (a digest of the payload, should one come without it)."""
    trigger = (
        payload.get("trigger_id")
        or hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    )
    return f"slack-command:{trigger}"


def _form_button(messages: Any) -> str | None:
    """The action of the button that opens a private form, when the Studio's answer is only
    that button (a token or a secret asked for)."""
    if len(messages) != 1 or len(messages[0].buttons) != 1:
        return None
    action = str(messages[0].buttons[0].action)
    return action if forms.form_for(action) is not None else None


def _spoken(event: dict[str, Any]) -> bool:
    """A person said something (not a bot, an edit, a deletion or a join)."""
    return event.get("subtype") in _SPOKEN and not event.get("bot_id") and bool(event.get("user"))


def _person(user: str) -> bool:
    """A Slack user id of a person (Slackbot, `USLACKBOT`, posts reminders as itself)."""
    return _SLACK_USER.match(user) is not None and user != "USLACKBOT"


def _external(file: dict[str, Any]) -> bool:
    """A file that lives elsewhere (a Drive link): not Slack's to hand over, never downloaded."""
    return bool(file.get("is_external")) or file.get("mode") == "external"


def _incoming(address: Address, text: str, event: dict[str, Any]) -> IncomingMessage:
    files = tuple(
        FileRef(
            name=str(f.get("name") or f.get("title") or "file"),
            url=None if _external(f) else f.get("url_private"),
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
        adapter: SlackAdapter = built(request, "slack")
        return await adapter.handle(request)

    return routes


def _here_is(said: str, channel: str) -> str:
    """A slash command's answer goes to the caller's DM, so `here` (a schedule's or a stats
    report's place) is named as the channel the command was typed in."""
    said = _SCHEDULE_HERE.sub(rf"\1to {channel}", said)
    return _STATS_HERE.sub(rf"\1in {channel}", said)
