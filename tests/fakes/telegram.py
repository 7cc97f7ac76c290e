"""A fake Telegram Bot API: records every call and pops scripted answers, per method (and token).

It runs uvicorn in its own thread and event loop on 127.0.0.1:0, so real clients (aiogram,
python-telegram-bot) reach it over real HTTP from any test's event loop, and a session-scoped fake
does not clash with function-scoped test loops.

    fake = FakeTelegram().start()
    fake.add_bot(TOKEN, username="faq_helper_bot")          # unknown tokens get 401 Unauthorized
    fake.add_managed_bot(MANAGER, TOKEN2, username="x_bot") # MANAGER's getManagedBotToken gives it
    bot = aiogram.Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
    bot = telegram.Bot(TOKEN, base_url=f"{fake.base_url}/bot")   # python-telegram-bot
    fake.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    fake.rate_limit("sendMessage", retry_after=1)           # then a 429 with parameters.retry_after
    fake.delay("sendMessage", 0.5)                          # then a normal answer after 0.5 s
    fake.per_bot_per_s = 30                                 # Telegram's limits (off by default):
    fake.per_chat_per_s = 1                                 # beyond them a send gets a 429
    fake.throttled                                          # the sends it refused so
    fake.set_chat_member(GROUP_ID, USER_ID, "administrator")  # getChatMember (default "member")
    fake.push_update(TOKEN, message_update("hi"))           # for getUpdates (long polling)
    await fake.wait_for("sendMessage")                      # polls; AssertionError on timeout
    fake.calls_to("sendMessage")[-1].body["reply_markup"]   # JSON-string fields come decoded
    fake.messages(42)[-1]["message_id"]                     # what bots sent chat 42 (and kept)
    fake.delete_message(42, message_id)                     # the person deletes it
    fake.webhook(TOKEN)                                     # {"url": ..., "secret_token": ...}
    fake.stop()

Served: `GET|POST /bot{token}/{method}` (method names are case-insensitive, as on Telegram) and
`GET /file/bot{token}/{path}` for files added with `add_file` or uploaded with sendDocument /
sendPhoto (recorded as `download:{path}`). Bodies may be JSON, form-encoded (python-telegram-bot)
or multipart/form-data (aiogram when it uploads a file; without one aiohttp sends a form-encoded
body); scalar fields are recorded as sent (form values are strings), uploaded files as `Upload`.

Like Telegram, the fake refuses: text that is empty or longer than 4,096 characters, text that its
`parse_mode` cannot parse (a simplified HTML / Markdown / MarkdownV2 check with Telegram's wording),
an edit (editMessageText) of a message it does not hold in that chat, sent or deleted ("message to
edit not found"), of another's message ("message can't be edited") or that changes nothing: the
same text, entities and inline keyboard ("message is not modified"; HTML makes entities, as on
Telegram, and sent messages carry them; Markdown's are not reported), a malformed webhook
`secret_token` or bot command, getUpdates while a webhook is set (409), and getFile of an unknown
file_id. It is lenient about the rest: any chat exists, and deleting a message it does not know
succeeds.
Like Telegram, getUpdates hands over only the update types the bot asked for (`allowed_updates` of
its last setWebhook or getUpdates; by default all but chat_member, message_reaction and
message_reaction_count, which a bot must name).

Pacing, when set (`FakeTelegram(per_bot_per_s=30, per_chat_per_s=1)` or the attributes of the
same names; `reset()` turns it off): a send (sendMessage, sendPhoto, sendDocument; an edit,
editMessageText, counts too) beyond `per_bot_per_s` of one token in any second, or beyond
`per_chat_per_s` to one private chat, gets Telegram's HTTP 429 "Too Many Requests: retry after
N" with `parameters.retry_after` N (whole seconds until the window has room again), as a
broadcast faster than Telegram allows does. The windows (`WINDOW_S`, read at call time) are read
on `clock` (time.monotonic unless given), so a test can hold time still.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import math
import re
import threading
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import ServedFake

MAX_TEXT = 4096
MAX_CAPTION = 1024
# What Telegram's limits count (edits too).
PACED = frozenset({"sendmessage", "sendphoto", "senddocument", "editmessagetext"})
WINDOW_S = 1.0

# Fields clients send as JSON strings in form bodies; recorded decoded.
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "commands",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "scope",
        "media",
        "results",
    }
)

UNAUTHORIZED = {"ok": False, "error_code": 401, "description": "Unauthorized"}
NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
# Update types a bot receives only when it names them in `allowed_updates`.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart body (aiogram's `attach://` references are resolved)."""

    filename: str | None
    content_type: str | None
    content: bytes


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received, recorded before it is answered.

    `method` is the Bot API method as sent ("sendMessage"), or "download:{path}" for a file
    download. `body` merges query parameters and the JSON, form or multipart body, with
    JSON-string fields such as `reply_markup` decoded and file parts as `Upload`.
    """

    token: str
    method: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    at: float = field(default=0.0, compare=False, repr=False)  # arrival, on the fake's `clock`


@dataclass(frozen=True, slots=True)
class Answer:
    """One scripted answer: after `delay_s`, either the normal answer (`body` None) or `body`
    with HTTP `status`."""

    body: dict[str, Any] | None = None
    status: int = 200
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class StoredFile:
    file_id: str
    path: str
    content: bytes


class _Refused(Exception):
    """A handler's Telegram error: answered `{"ok": false, "error_code": ..., ...}`."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


# A normal answer: (fake, token, the bot's User object, the call's body) -> the result.
Handler = Callable[["FakeTelegram", str, dict[str, Any], dict[str, Any]], Any]


def _description_setter(field_name: str, limit: int) -> Handler:
    """setMyDescription / setMyShortDescription: remembered per token."""

    def handler(fake: FakeTelegram, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        text = str(body.get(field_name) or "")
        if len(text) > limit:
            raise _Refused(400, f"Bad Request: {field_name} is too long")
        with fake._lock:
            fake._descriptions[(token, field_name)] = text
        return True

    return handler


def _description_getter(field_name: str) -> Handler:
    def handler(fake: FakeTelegram, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        with fake._lock:
            return {field_name: fake._descriptions.get((token, field_name), "")}

    return handler


class FakeTelegram(ServedFake):
    """The fake Bot API. Scripting and reading `calls` are thread-safe; scripted answers are
    popped in order, per method (those given for one token first, then those for any token), and
    an empty queue gives the normal answer."""

    name = "Telegram"

    def __init__(
        self,
        *,
        per_bot_per_s: int | None = None,
        per_chat_per_s: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_bot_per_s = per_bot_per_s
        self.per_chat_per_s = per_chat_per_s
        self.clock = clock
        self._sent_at: defaultdict[tuple[str, int | None], deque[float]] = defaultdict(deque)
        self._throttled: list[Call] = []
        self._calls: list[Call] = []
        self._script: defaultdict[tuple[str, str | None], deque[Answer]] = defaultdict(deque)
        self._bots: dict[str, dict[str, Any]] = {}
        self._managed: dict[tuple[str, int], str] = {}  # (manager token, bot id) -> its token
        self._webhooks: dict[str, dict[str, Any]] = {}
        self._allowed: dict[str, frozenset[str]] = {}  # token -> the update types it asked for
        self._updates: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self._commands: dict[str, list[dict[str, Any]]] = {}
        self._descriptions: dict[tuple[str, str], str] = {}
        self._files: dict[str, StoredFile] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._statuses: dict[tuple[int, int], str] = {}  # (chat id, user id) -> getChatMember
        self._lock = threading.Lock()
        self._closing = threading.Event()  # set by stop(): long polls and delays answer now
        self._waiting = 0  # requests inside a long poll or a scripted delay
        # Never reset: message, update and file ids stay unique across the whole session.
        self._message_ids: defaultdict[int, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )
        self._seq = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._api, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._download, methods=["GET"]),
            ]
        )

    # -- addresses ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`: what aiogram's `TelegramAPIServer.from_base(...)` takes;
        python-telegram-bot takes `base_url=f"{base_url}/bot"` and
        `base_file_url=f"{base_url}/file/bot"`."""
        if not self.port:
            raise RuntimeError("the fake Telegram is not started")
        return f"http://127.0.0.1:{self.port}"

    def file_url(self, token: str, path: str) -> str:
        return f"{self.base_url}/file/bot{token}/{path}"

    # -- bots, webhooks, updates, files ---------------------------------------------------

    def add_bot(
        self,
        token: str,
        *,
        bot_id: int | None = None,
        username: str | None = None,
        first_name: str | None = None,
        can_manage_bots: bool = False,
    ) -> dict[str, Any]:
        """Make `token` valid; returns the bot's User object (what getMe answers). The id is the
        digits before ':' unless given; the username defaults to `bot{id}_bot`.
        `can_manage_bots`: other bots may be created to be managed by this one (Bot API 9.6)."""
        if bot_id is None:
            head = token.partition(":")[0]
            if not head.isdigit():
                raise ValueError(f"not a bot token (no digits before ':'): {token!r}")
            bot_id = int(head)
        username = username or f"bot{bot_id}_bot"
        user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": first_name or _title(username),
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
            "can_manage_bots": can_manage_bots,
        }
        with self._lock:
            self._bots[token] = user
        return dict(user)

    def add_managed_bot(self, manager: str, token: str, *, username: str) -> dict[str, Any]:
        """A bot someone created through `manager`'s t.me/newbot link: `token` becomes valid
        and `getManagedBotToken` called with `manager`'s token gives it. Returns its User."""
        created = self.add_bot(token, username=username)
        with self._lock:
            self._managed[(manager, created["id"])] = token
        return created

    def set_chat_member(self, chat_id: int, user_id: int, status: str) -> None:
        """What getChatMember says of `user_id` in `chat_id`: "creator", "administrator",
        "member", "left" or "kicked" (unset: "member")."""
        with self._lock:
            self._statuses[(chat_id, user_id)] = status

    def revoke(self, token: str) -> None:
        """Make `token` invalid (what @BotFather's /revoke does): every call gets 401."""
        with self._lock:
            self._bots.pop(token, None)
            self._webhooks.pop(token, None)

    def bot(self, token: str) -> dict[str, Any] | None:
        """The bot's User object, or None for an unknown or revoked token."""
        with self._lock:
            user = self._bots.get(token)
        return dict(user) if user is not None else None

    def webhook(self, token: str) -> dict[str, Any] | None:
        """The webhook set for `token` (`url`, `secret_token`, `allowed_updates`,
        `max_connections`, `drop_pending_updates`), or None."""
        with self._lock:
            hook = self._webhooks.get(token)
        return dict(hook) if hook is not None else None

    def commands(self, token: str) -> list[dict[str, Any]] | None:
        """The commands last set with setMyCommands (any scope), or None."""
        with self._lock:
            commands = self._commands.get(token)
        return list(commands) if commands is not None else None

    def description(self, token: str, *, short: bool = False) -> str | None:
        """The (short) description last set with setMy(Short)Description, or None."""
        with self._lock:
            return self._descriptions.get((token, "short_description" if short else "description"))

    def push_update(self, token: str, update: Mapping[str, Any]) -> dict[str, Any]:
        """Queue an update for `token`'s getUpdates (an `update_id` is added if missing). It stays
        queued until a getUpdates confirms it with a greater `offset`."""
        item = dict(update)
        with self._lock:
            if "update_id" not in item:
                item["update_id"] = 900_000_000 + next(self._seq)
            self._updates[token].append(item)
            self._updates[token].sort(key=lambda u: int(u["update_id"]))
        return item

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The messages bots sent to `chat_id` (as edited; deleted ones gone), oldest first."""
        with self._lock:
            return [dict(m) for (chat, _), m in self._messages.items() if chat == chat_id]

    def delete_message(self, chat_id: int, message_id: int) -> bool:
        """The person deletes a message of the chat (the bot is not told): edits of it then get
        "message to edit not found". False if there was no such message."""
        with self._lock:
            return self._messages.pop((chat_id, message_id), None) is not None

    def updates(self, token: str) -> list[dict[str, Any]]:
        """The updates queued for `token` and not yet confirmed."""
        with self._lock:
            return list(self._updates.get(token, ()))

    def add_file(
        self, file_id: str, content: bytes, *, file_path: str | None = None
    ) -> dict[str, Any]:
        """Store a file for getFile and `GET /file/bot{token}/{file_path}`; returns its File
        object."""
        path = file_path or f"documents/file_{next(self._seq)}"
        stored = StoredFile(file_id, path, content)
        with self._lock:
            self._files[file_id] = stored
        return _file_object(stored)

    # -- what happened --------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, token: str | None = None) -> list[Call]:
        """The calls to one method (case-insensitive), of one token if given, oldest first."""
        key = method.lower()
        return [
            c for c in self.calls if c.method.lower() == key and (token is None or c.token == token)
        ]

    @property
    def throttled(self) -> list[Call]:
        """The sends refused with a 429 by the pacing (`per_bot_per_s`, `per_chat_per_s`)."""
        with self._lock:
            return list(self._throttled)

    @property
    def pending(self) -> int:
        """How many scripted answers have not been used yet (all methods)."""
        with self._lock:
            return sum(len(q) for q in self._script.values())

    async def wait_for(
        self, method: str, count: int = 1, timeout_s: float = 3.0, token: str | None = None
    ) -> list[Call]:
        """The calls to `method` once at least `count` arrived (polling, without blocking the
        caller's loop); AssertionError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            calls = self.calls_to(method, token)
            if len(calls) >= count:
                return calls
            if time.monotonic() > deadline:
                seen = sorted({c.method for c in self.calls})
                raise AssertionError(
                    f"expected {count} call(s) to {method} on the fake Telegram, got {len(calls)}"
                    f" (methods called: {seen})"
                )
            await asyncio.sleep(0.01)

    # -- scripting ------------------------------------------------------------------------

    def script(self, method: str, *answers: Answer, token: str | None = None) -> None:
        """Queue answers for `method` (of `token` only, if given), used in order."""
        with self._lock:
            self._script[(method.lower(), token)].extend(answers)

    def fail(
        self,
        method: str,
        status: int = 400,
        description: str = "Bad Request: chat not found",
        *,
        times: int = 1,
        token: str | None = None,
    ) -> None:
        """The next `times` calls to `method` get HTTP `status` with
        `{"ok": false, "error_code": status, "description": description}`."""
        body = {"ok": False, "error_code": status, "description": description}
        self.script(method, *[Answer(body=body, status=status)] * times, token=token)

    def rate_limit(
        self, method: str, retry_after: int = 1, *, times: int = 1, token: str | None = None
    ) -> None:
        """The next `times` calls to `method` get HTTP 429 "Too Many Requests: retry after N"
        with `parameters.retry_after`."""
        body = {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        }
        self.script(method, *[Answer(body=body, status=429)] * times, token=token)

    def delay(
        self, method: str, seconds: float, *, times: int = 1, token: str | None = None
    ) -> None:
        """The next `times` calls to `method` get their normal answer after `seconds` (cut short
        when the client hangs up)."""
        self.script(method, *[Answer(delay_s=seconds)] * times, token=token)

    def respond(
        self,
        method: str,
        body: Mapping[str, Any],
        *,
        status: int = 200,
        times: int = 1,
        token: str | None = None,
    ) -> None:
        """The next `times` calls to `method` get exactly `body` (for odd answers)."""
        self.script(method, *[Answer(body=dict(body), status=status)] * times, token=token)

    def reset(self) -> None:
        """Forget calls, scripted answers, bots (managed ones too), webhooks, queued updates,
        commands, descriptions, files and messages (ids keep increasing)."""
        with self._lock:
            self._calls.clear()
            self._script.clear()
            self._bots.clear()
            self._managed.clear()
            self._webhooks.clear()
            self._allowed.clear()
            self._updates.clear()
            self._commands.clear()
            self._descriptions.clear()
            self._files.clear()
            self._messages.clear()
            self._statuses.clear()
            self._sent_at.clear()
            self._throttled.clear()
        self.per_bot_per_s = self.per_chat_per_s = None
        self.clock = time.monotonic

    # -- serving --------------------------------------------------------------------------

    async def _record(self, request: Request, token: str, method: str) -> Call:
        body: dict[str, Any] = dict(request.query_params)
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        if raw and "json" in content_type:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                body.update(parsed)
        elif raw and "multipart/form-data" in content_type:
            body.update(await _multipart(request))
        elif raw:
            body.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        for key in JSON_FIELDS & body.keys():
            if isinstance(body[key], str):
                with contextlib.suppress(ValueError):
                    body[key] = json.loads(body[key])
        call = Call(token, method, body, dict(request.headers), self.clock())
        with self._lock:
            self._calls.append(call)
        return call

    def _pop(self, method: str, token: str) -> Answer | None:
        key = method.lower()
        with self._lock:
            for queue_key in ((key, token), (key, None)):
                queue = self._script.get(queue_key)
                if queue:
                    return queue.popleft()
        return None

    async def _api(self, request: Request) -> Response:
        token = request.path_params["token"]
        method = request.path_params["method"]
        call = await self._record(request, token, method)
        with self._lock:
            me = self._bots.get(token)
        if me is None:
            return JSONResponse(UNAUTHORIZED, status_code=401)
        answer = self._pop(method, token)
        if answer is not None:
            if answer.delay_s > 0:
                await self._pause(request, answer.delay_s)
            if answer.body is not None:
                return JSONResponse(answer.body, status_code=answer.status)
        name = method.lower()
        if name in PACED and (retry_after := self._over_limit(token, call.body)):
            with self._lock:
                self._throttled.append(call)
            body = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            }
            return JSONResponse(body, status_code=429)
        try:
            if name == "getupdates":
                result = await self._get_updates(request, token, call.body)
            else:
                handler = self._handlers.get(name)
                if handler is None:
                    return JSONResponse(NOT_FOUND, status_code=404)
                result = handler(self, token, dict(me), call.body)
        except _Refused as refused:
            body = {"ok": False, "error_code": refused.status, "description": refused.description}
            return JSONResponse(body, status_code=refused.status)
        return JSONResponse({"ok": True, "result": result})

    def _over_limit(self, token: str, body: Mapping[str, Any]) -> int:
        """0 when a send fits in its bot's and its private chat's windows (and is counted);
        else the whole seconds until it would fit."""
        chat = _int(body.get("chat_id"))
        windows: list[tuple[tuple[str, int | None], int]] = []
        if self.per_bot_per_s is not None:
            windows.append(((token, None), self.per_bot_per_s))
        if self.per_chat_per_s is not None and chat is not None and chat > 0:
            windows.append(((token, chat), self.per_chat_per_s))
        now = self.clock()
        with self._lock:
            wait = 0.0
            for key, limit in windows:
                sent = self._sent_at[key]
                while sent and sent[0] <= now - WINDOW_S:
                    sent.popleft()
                if len(sent) >= limit:
                    wait = max(wait, sent[-limit] + WINDOW_S - now)
            if wait > 0:
                return max(1, math.ceil(wait))
            for key, _ in windows:
                self._sent_at[key].append(now)
        return 0

    async def _download(self, request: Request) -> Response:
        token = request.path_params["token"]
        path = request.path_params["path"]
        await self._record(request, token, "download:" + path)
        with self._lock:
            known = token in self._bots
            stored = next((f for f in self._files.values() if f.path == path), None)
        if not known:
            return JSONResponse(UNAUTHORIZED, status_code=401)
        if stored is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        return Response(stored.content, media_type="application/octet-stream")

    # -- normal answers -------------------------------------------------------------------

    def _message(self, me: dict[str, Any], body: dict[str, Any], **content: Any) -> dict[str, Any]:
        """A new Message from the bot in `body["chat_id"]`, remembered for edits."""
        chat = _chat(body.get("chat_id"))
        with self._lock:
            message_id = next(self._message_ids[chat["id"]])
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": _sender(me),
            "chat": chat,
            "date": int(time.time()),
        }
        thread = _int(body.get("message_thread_id"))
        if thread is not None:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        message.update({k: v for k, v in content.items() if v is not None})
        markup = body.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        with self._lock:
            self._messages[(chat["id"], message_id)] = message
        return message

    def _get_me(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        return me

    def _get_chat(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        """Any chat exists (as `sendMessage` assumes); script `fail` for one that does not."""
        _require_chat(body)
        return {**_chat(body.get("chat_id")), "accent_color_id": 0, "max_reaction_count": 11}

    def _get_chat_member(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        """A ChatMember with the status set by `set_chat_member` ("member" by default)."""
        _require_chat(body)
        chat, user = _int(body.get("chat_id")), _int(body.get("user_id"))
        if chat is None or user is None:
            raise _Refused(400, "Bad Request: invalid user_id specified")
        with self._lock:
            status = self._statuses.get((chat, user), "member")
        member: dict[str, Any] = {
            "status": status,
            "user": {"id": user, "is_bot": False, "first_name": f"User {user}"},
        }
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member |= {"is_anonymous": False} | dict.fromkeys(_ADMIN_RIGHTS, True)
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def _get_managed_bot_token(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        bot_id = _int(body.get("user_id"))
        with self._lock:
            managed = self._managed.get((token, bot_id)) if bot_id is not None else None
        if managed is None:
            raise _Refused(400, "Bad Request: the bot is not managed by this bot")
        return managed

    def _send_message(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        _require_chat(body)
        text, entities = _formatted_text(body.get("text"), body.get("parse_mode"), MAX_TEXT)
        if isinstance(body.get("entities"), list):
            entities = body["entities"]
        return self._message(me, body, text=text, entities=entities or None)

    def _send_message_draft(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        """Bot API 9.5: a partial message shown in a private chat while it is written (an empty
        text shows "Thinking…"); drafts with the same non-zero `draft_id` animate."""
        _require_chat(body)
        chat = _int(body.get("chat_id"))
        if chat is None or chat <= 0:
            raise _Refused(400, "Bad Request: drafts can be sent to private chats only")
        if not _int(body.get("draft_id")):
            raise _Refused(400, "Bad Request: draft_id must be non-zero")
        text = "" if body.get("text") is None else str(body["text"])
        if text:
            _checked_text(text, body.get("parse_mode"), MAX_TEXT)
        return True

    def _send_document(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        _require_chat(body)
        document = body.get("document")
        if document is None:
            raise _Refused(400, "Bad Request: there is no document in the request")
        stored = self._stored_upload(document, "documents", "document")
        file: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": _unique_id(stored.file_id),
        }
        if isinstance(document, Upload):
            file.update(file_name=document.filename or "document", file_size=len(document.content))
            if document.content_type:
                file["mime_type"] = document.content_type
        return self._message(me, body, document=file, caption=self._caption(body))

    def _send_photo(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        _require_chat(body)
        photo = body.get("photo")
        if photo is None:
            raise _Refused(400, "Bad Request: there is no photo in the request")
        stored = self._stored_upload(photo, "photos", "jpg")
        size = {
            "file_id": stored.file_id,
            "file_unique_id": _unique_id(stored.file_id),
            "width": 320,
            "height": 240,
            "file_size": len(stored.content),
        }
        return self._message(me, body, photo=[size], caption=self._caption(body))

    def _send_voice(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        return self._send_audio_as("voice", me, body)

    def _send_audio(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        return self._send_audio_as("audio", me, body)

    def _send_audio_as(self, field: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        """sendVoice (an Ogg Opus voice note) or sendAudio: the file as Telegram keeps it."""
        _require_chat(body)
        upload = body.get(field)
        if upload is None:
            raise _Refused(400, f"Bad Request: there is no {field} in the request")
        stored = self._stored_upload(upload, "voice" if field == "voice" else "music", "oga")
        file: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": _unique_id(stored.file_id),
            "duration": 1,
            "file_size": len(stored.content),
        }
        if isinstance(upload, Upload) and upload.content_type:
            file["mime_type"] = upload.content_type
        return self._message(me, body, **{field: file}, caption=self._caption(body))

    def _caption(self, body: dict[str, Any]) -> str | None:
        caption = body.get("caption")
        if caption is None:
            return None
        return _checked_text(caption, body.get("parse_mode"), MAX_CAPTION, caption=True)

    def _stored_upload(self, value: Any, folder: str, suffix: str) -> StoredFile:
        """An uploaded file stored (so getFile finds it), or the file_id / URL sent."""
        n = next(self._seq)
        if isinstance(value, Upload):
            stored = StoredFile(f"file-{n}", f"{folder}/file_{n}.{suffix}", value.content)
            with self._lock:
                self._files[stored.file_id] = stored
            return stored
        return StoredFile(str(value), f"{folder}/file_{n}.{suffix}", b"")

    def _edit_message_text(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        """As Telegram: the message must be a text message this bot sent in that chat (and still
        there), and the edit must change its text, formatting or inline keyboard."""
        text, entities = _formatted_text(body.get("text"), body.get("parse_mode"), MAX_TEXT)
        if isinstance(body.get("entities"), list):
            entities = body["entities"]
        if body.get("inline_message_id"):
            return True
        _require_chat(body)
        chat = _chat(body.get("chat_id"))
        message_id = _int(body.get("message_id"))
        if message_id is None:
            raise _Refused(400, "Bad Request: message identifier is not specified")
        markup = body.get("reply_markup")
        keyboard = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
        with self._lock:
            old = self._messages.get((chat["id"], message_id))
        if old is None:  # never sent there, or deleted (by the bot, or by the person)
            raise _Refused(400, "Bad Request: message to edit not found")
        if old.get("from", {}).get("id") != me["id"]:
            raise _Refused(400, "Bad Request: message can't be edited")
        if "text" not in old:
            raise _Refused(400, "Bad Request: there is no text in the message to edit")
        if (old["text"], old.get("entities", []), old.get("reply_markup")) == (
            text,
            entities,
            keyboard,
        ):
            raise _Refused(
                400,
                "Bad Request: message is not modified: specified new message content and reply"
                " markup are exactly the same as a current content and reply markup of the"
                " message",
            )
        new = {**old, "text": text, "edit_date": int(time.time())}
        for key, value in (("reply_markup", keyboard), ("entities", entities or None)):
            new.pop(key, None)
            if value is not None:
                new[key] = value
        with self._lock:
            self._messages[(chat["id"], message_id)] = new
        return new

    def _delete_message(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        _require_chat(body)
        chat = _chat(body.get("chat_id"))
        with self._lock:
            self._messages.pop((chat["id"], _int(body.get("message_id")) or 0), None)
        return True

    def _true(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        return True

    def _set_webhook(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        url = str(body.get("url") or "")
        secret = body.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(str(secret)):
            raise _Refused(400, "Bad Request: secret token contains unallowed characters")
        allowed = body.get("allowed_updates")
        self._ask_for(token, allowed)
        hook = {
            "url": url,
            "secret_token": str(secret) if secret is not None else None,
            "allowed_updates": list(allowed) if isinstance(allowed, list) else None,
            "max_connections": _int(body.get("max_connections")) or 40,
            "drop_pending_updates": _bool(body.get("drop_pending_updates")),
        }
        with self._lock:
            if url:
                self._webhooks[token] = hook
            else:
                self._webhooks.pop(token, None)
            if hook["drop_pending_updates"]:
                self._updates.pop(token, None)
        return True

    def _delete_webhook(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        with self._lock:
            self._webhooks.pop(token, None)
            if _bool(body.get("drop_pending_updates")):
                self._updates.pop(token, None)
        return True

    def _get_webhook_info(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        with self._lock:
            hook = self._webhooks.get(token)
            pending = len(self._updates.get(token, ()))
        info: dict[str, Any] = {
            "url": hook["url"] if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": pending,
        }
        if hook:
            info["max_connections"] = hook["max_connections"]
            if hook["allowed_updates"] is not None:
                info["allowed_updates"] = hook["allowed_updates"]
        return info

    def _set_my_commands(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        commands = body.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _Refused(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict):
                raise _Refused(400, "Bad Request: can't parse BotCommand")
            if not _COMMAND.fullmatch(str(command.get("command", ""))):
                raise _Refused(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _Refused(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        with self._lock:
            self._commands[token] = [dict(c) for c in commands]
        return True

    def _get_my_commands(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        return self.commands(token) or []

    def _delete_my_commands(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        with self._lock:
            self._commands.pop(token, None)
        return True

    def _get_file(self, token: str, me: dict[str, Any], body: dict[str, Any]) -> Any:
        with self._lock:
            stored = self._files.get(str(body.get("file_id", "")))
        if stored is None:
            raise _Refused(400, "Bad Request: invalid file_id")
        return _file_object(stored)

    async def _get_updates(self, request: Request, token: str, body: dict[str, Any]) -> Any:
        """Long polling: drops updates below `offset` (confirmed), then waits up to `timeout`
        seconds for one; at most `limit` (1-100, default 100) are returned."""
        offset = _int(body.get("offset"))
        limit = min(max(_int(body.get("limit")) or 100, 1), 100)
        timeout = max(_float(body.get("timeout")) or 0.0, 0.0)
        self._ask_for(token, body.get("allowed_updates"))
        with self._lock:
            if token in self._webhooks:
                raise _Refused(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use"
                    " deleteWebhook to delete the webhook first",
                )
            queue = self._updates[token]
            if offset is not None and offset < 0:
                del queue[: max(len(queue) + offset, 0)]
            elif offset is not None:
                queue[:] = [u for u in queue if int(u["update_id"]) >= offset]
        deadline = time.monotonic() + timeout
        checked = time.monotonic()
        with self._waiter():
            while True:
                with self._lock:
                    queued = self._updates.get(token, ())
                    ready = [u for u in queued if self._wanted(token, u)][:limit]
                if ready or time.monotonic() >= deadline or self._closing.is_set():
                    return ready
                await asyncio.sleep(0.01)
                if time.monotonic() - checked > 0.1:
                    checked = time.monotonic()
                    if await request.is_disconnected():
                        return []

    def _ask_for(self, token: str, allowed: Any) -> None:
        """`allowed_updates` as sent: a list replaces the bot's choice (an empty one: the
        default); without it the last choice stays, as on Telegram."""
        if isinstance(allowed, list):
            with self._lock:
                self._allowed[token] = frozenset(str(kind) for kind in allowed)

    def _wanted(self, token: str, update: Mapping[str, Any]) -> bool:
        """Whether the bot asked for this update's type (the caller holds the lock)."""
        kinds = set(update) - {"update_id"}
        allowed = self._allowed.get(token)
        if allowed:
            return bool(kinds & allowed)
        return not kinds & OPT_IN_UPDATES

    @contextlib.contextmanager
    def _waiter(self) -> Iterator[None]:
        """Counts a request that waits (so stop() lets it answer before shutting down)."""
        with self._lock:
            self._waiting += 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting -= 1

    async def _pause(self, request: Request, delay_s: float) -> None:
        """Sleep `delay_s`, ending early when the client hangs up (it timed out) or the fake
        stops."""
        deadline = time.monotonic() + delay_s
        with self._waiter():
            while (left := deadline - time.monotonic()) > 0 and not self._closing.is_set():
                await asyncio.sleep(min(left, 0.02))
                if await request.is_disconnected():
                    return

    _handlers: dict[str, Handler] = {
        "getme": _get_me,
        "getchat": _get_chat,
        "sendmessage": _send_message,
        "sendmessagedraft": _send_message_draft,
        "senddocument": _send_document,
        "sendphoto": _send_photo,
        "sendvoice": _send_voice,
        "sendaudio": _send_audio,
        "editmessagetext": _edit_message_text,
        "deletemessage": _delete_message,
        "sendchataction": _true,
        "answercallbackquery": _true,
        "setwebhook": _set_webhook,
        "deletewebhook": _delete_webhook,
        "getwebhookinfo": _get_webhook_info,
        "setmycommands": _set_my_commands,
        "getmycommands": _get_my_commands,
        "deletemycommands": _delete_my_commands,
        "setmydescription": _description_setter("description", 512),
        "setmyshortdescription": _description_setter("short_description", 120),
        "getmydescription": _description_getter("description"),
        "getmyshortdescription": _description_getter("short_description"),
        "getfile": _get_file,
        "getmanagedbottoken": _get_managed_bot_token,
        "getchatmember": _get_chat_member,
        "logout": _true,
        "close": _true,
    }

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        self._closing.clear()
        return super().start()

    def stop(self) -> None:
        """Stop serving: long polls answer what they have (usually `[]`) and delayed answers are
        sent at once, then the server shuts down."""
        self._closing.set()
        deadline = time.monotonic() + 1
        while self._thread is not None and time.monotonic() < deadline:
            with self._lock:
                if not self._waiting:
                    break
            time.sleep(0.005)
        time.sleep(0.02)  # let the answers go out
        super().stop()


# -- helpers -------------------------------------------------------------------------------


async def _multipart(request: Request) -> dict[str, Any]:
    """The fields of a multipart body: strings, file parts as `Upload`; `attach://name`
    references are replaced by the part they name (which is then not listed on its own)."""
    fields: dict[str, Any] = {}
    async with request.form(max_part_size=50 * 1024 * 1024) as form:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                fields[key] = Upload(value.filename, value.content_type, content)
            else:
                fields[key] = value
    attached = set()
    for key, value in list(fields.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            name = value.removeprefix("attach://")
            if isinstance(fields.get(name), Upload):
                fields[key] = fields[name]
                attached.add(name)
    return {k: v for k, v in fields.items() if k not in attached}


def _title(username: str) -> str:
    words = [w for w in username.removesuffix("_bot").removesuffix("bot").split("_") if w]
    return " ".join(w.capitalize() for w in words) or "Bot"


def _sender(me: Mapping[str, Any]) -> dict[str, Any]:
    return {k: me[k] for k in ("id", "is_bot", "first_name", "username")}


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


_ADMIN_RIGHTS = (
    "can_be_edited",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)


def _require_chat(body: Mapping[str, Any]) -> None:
    if body.get("chat_id") in (None, ""):
        raise _Refused(400, "Bad Request: chat_id is empty")


def _chat(chat_id: Any) -> dict[str, Any]:
    """A Chat object for a chat_id: positive ids are private chats, `-100…` supergroups, other
    negative ids groups, `@name` a channel (with a stable made-up id)."""
    number = _int(chat_id)
    if number is None:
        name = str(chat_id).lstrip("@")
        number = -(1_000_000_000_000 + zlib.crc32(name.encode()))
        return {"id": number, "type": "channel", "title": name, "username": name}
    if number > 0:
        return {"id": number, "type": "private", "first_name": f"User {number}"}
    if str(number).startswith("-100"):
        return {"id": number, "type": "supergroup", "title": f"Group {number}"}
    return {"id": number, "type": "group", "title": f"Group {number}"}


def _unique_id(file_id: str) -> str:
    return f"U{zlib.crc32(file_id.encode()):08x}"


def _file_object(stored: StoredFile) -> dict[str, Any]:
    return {
        "file_id": stored.file_id,
        "file_unique_id": _unique_id(stored.file_id),
        "file_size": len(stored.content),
        "file_path": stored.path,
    }


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _checked_text(value: Any, parse_mode: Any, limit: int, *, caption: bool = False) -> str:
    """`value` if Telegram would take it as a message text (or caption): not empty, parsable in
    `parse_mode`, at most `limit` UTF-16 units once the markup is removed."""
    return _formatted_text(value, parse_mode, limit, caption=caption)[0]


def _formatted_text(
    value: Any, parse_mode: Any, limit: int, *, caption: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """`_checked_text`, with the entities its HTML makes (none for other parse modes: the fake
    reads Markdown's formatting but does not report it)."""
    text = "" if value is None else str(value)
    mode = str(parse_mode or "").lower()
    entities: list[dict[str, Any]] = []
    if mode == "html":
        visible, entities = _html_entities(text)
    else:
        visible = _parse(text, mode) if mode else text
    if not caption and not visible.strip():
        raise _Refused(400, "Bad Request: message text is empty")
    if _utf16_len(visible) > limit:
        what = "message caption" if caption else "message"
        raise _Refused(400, f"Bad Request: {what} is too long")
    return visible, entities


_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_HTML_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>")
_HTML_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|lt|gt|amp|quot);")
_MARKDOWN_V2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")


def _cant_parse(reason: str) -> _Refused:
    return _Refused(400, f"Bad Request: can't parse entities: {reason}")


def _offset(text: str, index: int) -> int:
    return len(text[:index].encode())


def _parse(text: str, mode: str) -> str:
    """The visible text of `text` in `mode`, or `_Refused` where Telegram would refuse it (a
    simplified parser: it finds what model output typically gets wrong)."""
    if mode == "html":
        return _parse_html(text)
    if mode == "markdownv2":
        return _parse_markdown(text, v2=True)
    if mode == "markdown":
        return _parse_markdown(text, v2=False)
    raise _Refused(400, f"Bad Request: unsupported parse_mode {mode!r}")


def _parse_html(text: str) -> str:
    return _html_entities(text)[0]


# The entity each HTML tag makes (Telegram's MessageEntity types); `a` makes a text_link.
_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
}
_ATTRIBUTE = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _html_entities(text: str) -> tuple[str, list[dict[str, Any]]]:
    """The visible text of Telegram HTML and its entities (offsets and lengths in UTF-16 code
    units, as Telegram gives them), or `_Refused` where Telegram would refuse the HTML."""
    stack: list[tuple[str, str, int]] = []  # open tags: name, attributes, where they start
    visible: list[str] = []
    entities: list[dict[str, Any]] = []
    at = 0  # UTF-16 length of the visible text so far
    i = 0
    while i < len(text):
        char = text[i]
        if char == "<":
            match = _HTML_TAG.match(text, i)
            if match is None:
                raise _cant_parse(f"Unexpected end of name token at byte offset {_offset(text, i)}")
            closing, name = match.group(1), match.group(2).lower()
            if name not in _HTML_TAGS:
                kind = "end" if closing else "start"
                raise _cant_parse(
                    f'Unsupported {kind} tag "{name}" at byte offset {_offset(text, i)}'
                )
            if closing:
                if not stack or stack[-1][0] != name:
                    raise _cant_parse(
                        f"Unmatched end tag at byte offset {_offset(text, i)}, expected"
                        f' "</{stack[-1][0] if stack else ""}>", found "</{name}>"'
                    )
                _, attributes, start = stack.pop()
                if at > start and (entity := _entity(name, attributes)) is not None:
                    entities.append({**entity, "offset": start, "length": at - start})
            else:
                stack.append((name, match.group(3), at))
            i = match.end()
            continue
        if char == "&":
            match = _HTML_ENTITY.match(text, i)
            shown = html.unescape(match.group(0)) if match is not None else "&"
            i = match.end() if match is not None else i + 1
        else:
            shown = char
            i += 1
        visible.append(shown)
        at += _utf16_len(shown)
    if stack:
        raise _cant_parse(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(visible), entities


def _entity(name: str, attributes: str) -> dict[str, Any] | None:
    """The entity (without its place) an HTML tag with `attributes` makes; None: none."""
    values = {
        m.group(1).lower(): html.unescape(m.group(2) if m.group(2) is not None else m.group(3))
        for m in _ATTRIBUTE.finditer(attributes)
    }
    kind = _ENTITY_TYPES[name]
    if name == "a":
        return {"type": kind, "url": values["href"]} if values.get("href") else None
    if name == "span" and values.get("class") != "tg-spoiler":
        return None
    if name == "tg-emoji":
        return {"type": kind, "custom_emoji_id": values.get("emoji-id", "")}
    if name == "blockquote" and "expandable" in attributes.split():
        return {"type": "expandable_blockquote"}
    return {"type": kind}


def _parse_markdown(text: str, *, v2: bool) -> str:
    """Markdown (legacy): `*bold*`, `_italic_`, `` `code` ``, ```` ```pre``` ````,
    `[text](url)`; an entity left open is refused. MarkdownV2 adds `__`, `~`, `||`, `>` and
    requires every other reserved character to be escaped with a backslash."""
    visible: list[str] = []
    open_at: dict[str, int] = {}
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and (v2 or text[i + 1] in "_*`["):
            visible.append(text[i + 1])
            i += 2
            continue
        if char == "`":
            fence = "```" if text.startswith("```", i) else "`"
            end = text.find(fence, i + len(fence))
            if end < 0:
                raise _cant_parse(
                    f"Can't find end of the entity starting at byte offset {_offset(text, i)}"
                )
            visible.append(text[i + len(fence) : end])
            i = end + len(fence)
            continue
        if char == "[":
            close = text.find("]", i + 1)
            if close < 0 or not text.startswith("(", close + 1) or text.find(")", close) < 0:
                if not v2 and close >= 0:
                    visible.append(char)
                    i += 1
                    continue
                raise _cant_parse(
                    f"Can't find end of the entity starting at byte offset {_offset(text, i)}"
                )
            visible.append(_parse_markdown(text[i + 1 : close], v2=v2))
            i = text.find(")", close) + 1
            continue
        delimiters = ("__", "||", "*", "_", "~") if v2 else ("*", "_")
        delimiter = next((d for d in delimiters if text.startswith(d, i)), None)
        if delimiter is not None:
            if delimiter in open_at:
                del open_at[delimiter]
            else:
                open_at[delimiter] = i
            i += len(delimiter)
            continue
        if v2 and char in _MARKDOWN_V2_RESERVED and not (char == ">" and _line_start(text, i)):
            raise _Refused(
                400,
                f"Bad Request: can't parse entities: Character '{char}' is reserved and must be"
                " escaped with the preceding '\\'",
            )
        visible.append(char)
        i += 1
    if open_at:
        start = min(open_at.values())
        raise _cant_parse(
            f"Can't find end of the entity starting at byte offset {_offset(text, start)}"
        )
    return "".join(visible)


def _line_start(text: str, index: int) -> bool:
    return index == 0 or text[index - 1] == "\n"
