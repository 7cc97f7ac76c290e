"""A fake Slack Web API: records every call and pops scripted answers, per method.

It runs uvicorn in its own thread and event loop on 127.0.0.1:0, so real clients (slack_sdk's
`AsyncWebClient`, slack-bolt) reach it over real HTTP from any test's event loop, and a
session-scoped fake does not clash with function-scoped test loops.

    fake = FakeSlack().start()
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)   # trailing slash included
    fake.add_channel("C0001", "support", member=True)      # conversations.info and .list know it
    fake.fail("chat.postMessage", "channel_not_found")     # then a 200 {"ok": false, "error": ...}
    fake.rate_limit("chat.postMessage", retry_after=1)     # then a 429 with `Retry-After: 1`
    fake.delay("chat.update", 0.5)                         # then a normal answer after 0.5 s
    fake.respond("views.open", {"ok": True, "view": {}})   # then exactly that body
    await fake.wait_for("chat.postMessage")                # polls; AssertionError on timeout
    fake.calls_to("chat.postMessage")[-1].body["blocks"]   # JSON-string fields come decoded
    fake.messages("C0001")[-1]["ts"]     # what chat.postMessage posted there, with the ts it got
    fake.response_url("cmd1")   # a slash-command response_url; posts are recorded as
                                # Call(method="response_url:cmd1", ...)
    fake.stop()

`chat.startStream` / `chat.appendStream` / `chat.stopStream` keep each streamed message's text
(`fake.streaming()`: those not stopped yet); a start without `thread_ts`, or outside a DM
without `recipient_team_id` and `recipient_user_id`, is refused as Slack does
(`invalid_arguments`). `assistant.threads.setStatus` keeps each thread's status
(`fake.statuses()`: (channel, thread_ts) -> status) until an empty status, or until the app
posts in that thread (`chat.postMessage`, `chat.startStream`), as Slack clears it. Any of them
is refused like any method: `fake.fail("assistant.threads.setStatus", "missing_scope")`.
`fake.grant(scopes)` makes the fake check scopes as Slack does: a method none of whose scopes
(`SCOPES`, from Slack's method reference) was granted answers `missing_scope`.

Served: `GET|POST /api/{method}` (slack_sdk sends some methods as GET with query parameters, others
as form-encoded or JSON bodies; all are merged into `Call.body`), `POST /response/{name}`, the
upload URLs handed out by `files.getUploadURLExternal` (`POST /upload/{file_id}`, recorded as
`upload:{file_id}` with the bytes in `body["data"]`) and `GET /files/{file_id}` for files added
with `add_file` (recorded as `download:{file_id}`). Unknown API methods are recorded and answered
`{"ok": false, "error": "unknown_method"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import ServedFake

TEAM_ID = "T0001"
TEAM_NAME = "Acme"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
BOT_NAME = "studio"

# Fields slack_sdk (or a form post) sends as JSON strings; recorded decoded.
JSON_FIELDS = frozenset(
    {"blocks", "attachments", "view", "files", "metadata", "unfurls", "user_auth_blocks", "outputs"}
)


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received, recorded before it is answered.

    `method` is the Web API method ("chat.postMessage"), or "response_url:{name}",
    "upload:{file_id}", "download:{file_id}". `token` comes from `Authorization: Bearer ...` or a
    `token` field. `body` merges query parameters and the form or JSON body, with JSON-string
    fields such as `blocks` decoded.
    """

    method: str
    token: str | None
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Answer:
    """One scripted answer for a method: after `delay_s`, either the normal answer (`body` None,
    status 200) or `body` with `status` and `headers`."""

    body: dict[str, Any] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    member: bool = True
    private: bool = False


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    content: bytes
    name: str
    mimetype: str


class FakeSlack(ServedFake):
    """The fake Web API. Scripting and reading `calls` are thread-safe; scripted answers are
    popped in order, per method, and an empty queue gives the normal answer."""

    name = "Slack"

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._script: defaultdict[str, deque[Answer]] = defaultdict(deque)
        self._channels: dict[str, Channel] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._files: dict[str, StoredFile] = {}
        self._messages: list[dict[str, Any]] = []  # posted by chat.postMessage, oldest first
        self._streams: dict[str, str] = {}  # ts -> the text of a message still streaming
        self._statuses: dict[tuple[str, str], str] = {}  # (channel, thread_ts) -> its status
        self._granted: frozenset[str] | None = None  # None: every method is allowed
        self._lock = threading.Lock()
        # Never reset: ts and ids stay unique across the whole session.
        self._seq = itertools.count(101)
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/response/{name}", self._response_url, methods=["POST"]),
                Route("/upload/{file_id}", self._upload, methods=["POST"]),
                Route("/files/{file_id}", self._download, methods=["GET"]),
            ]
        )

    # -- addresses ------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        if not self.port:
            raise RuntimeError("the fake Slack is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The Web API base URL, `http://127.0.0.1:PORT/api/` (with the trailing slash that
        slack_sdk's `AsyncWebClient(base_url=...)` needs)."""
        return f"{self.root_url}/api/"

    def response_url(self, name: str) -> str:
        """A slash-command / interaction `response_url`; posts to it are recorded as
        `Call(method="response_url:" + name, ...)`."""
        return f"{self.root_url}/response/{name}"

    # -- workspace state ------------------------------------------------------------------

    def add_channel(
        self, channel_id: str, name: str, member: bool = True, *, private: bool = False
    ) -> None:
        """Make `conversations.info` know a channel (unknown ones are `channel_not_found`)."""
        with self._lock:
            self._channels[channel_id] = Channel(channel_id, name, member, private)

    def add_user(self, user_id: str, name: str, real_name: str | None = None) -> None:
        """Name a user for `users.info` (any other id gets a made-up user)."""
        with self._lock:
            self._users[user_id] = _user(user_id, name, real_name or name.title())

    def add_file(
        self,
        file_id: str,
        content: bytes,
        *,
        name: str = "file.txt",
        mimetype: str = "text/plain",
    ) -> dict[str, Any]:
        """Store a file for `files.info` and `GET {url_private}`; returns its Slack file object
        (fit for `message_event(files=[...])`)."""
        with self._lock:
            self._files[file_id] = StoredFile(file_id, content, name, mimetype)
        return self._file_object(file_id, name, mimetype, len(content))

    # -- what happened --------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        """The calls to one method, oldest first."""
        return [c for c in self.calls if c.method == method]

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """The messages chat.postMessage posted (in `channel`, or anywhere), oldest first: the
        `message` of each answer with its `channel` (so a test knows the `ts` Slack gave)."""
        with self._lock:
            posted = [dict(m) for m in self._messages]
        return [m for m in posted if channel is None or m["channel"] == channel]

    @property
    def pending(self) -> int:
        """How many scripted answers have not been used yet (all methods)."""
        with self._lock:
            return sum(len(q) for q in self._script.values())

    async def wait_for(self, method: str, count: int = 1, timeout_s: float = 3.0) -> list[Call]:
        """The calls to `method` once at least `count` arrived (polling, without blocking the
        caller's loop); AssertionError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            calls = self.calls_to(method)
            if len(calls) >= count:
                return calls
            if time.monotonic() > deadline:
                seen = sorted({c.method for c in self.calls})
                raise AssertionError(
                    f"expected {count} call(s) to {method} on the fake Slack, got {len(calls)}"
                    f" (methods called: {seen})"
                )
            await asyncio.sleep(0.01)

    # -- scripting ------------------------------------------------------------------------

    def script(self, method: str, *answers: Answer) -> None:
        """Queue answers for `method`, used in order by its next calls."""
        with self._lock:
            self._script[method].extend(answers)

    def fail(self, method: str, error: str = "channel_not_found", *, times: int = 1) -> None:
        """The next `times` calls to `method` get HTTP 200 `{"ok": false, "error": error}`."""
        self.script(method, *[Answer(body={"ok": False, "error": error})] * times)

    def rate_limit(self, method: str, retry_after: int = 1, *, times: int = 1) -> None:
        """The next `times` calls to `method` get HTTP 429 with `Retry-After` (whole seconds,
        as Slack sends it) and `{"ok": false, "error": "ratelimited"}`."""
        answer = Answer(
            body={"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )
        self.script(method, *[answer] * times)

    def delay(self, method: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` calls to `method` get their normal answer after `seconds` (cut short
        when the client hangs up)."""
        self.script(method, *[Answer(delay_s=seconds)] * times)

    def respond(
        self,
        method: str,
        body: Mapping[str, Any],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls to `method` get exactly `body` (for odd answers)."""
        answer = Answer(body=dict(body), status=status, headers=dict(headers or {}))
        self.script(method, *[answer] * times)

    def reset(self) -> None:
        """Forget calls, scripted answers, channels, users, files and posted messages."""
        with self._lock:
            self._calls.clear()
            self._messages.clear()
            self._script.clear()
            self._channels.clear()
            self._users.clear()
            self._files.clear()
            self._streams.clear()
            self._statuses.clear()
            self._granted = None

    def grant(self, scopes: Iterable[str]) -> None:
        """Answer `missing_scope` to a method that needs a scope not in `scopes` (until reset)."""
        self._granted = frozenset(scopes)

    def streaming(self) -> dict[str, str]:
        """The messages still streaming (started, not stopped): ts -> their text so far."""
        with self._lock:
            return dict(self._streams)

    def statuses(self) -> dict[tuple[str, str], str]:
        """The thread statuses shown now (`assistant.threads.setStatus`, not cleared yet):
        (channel, thread_ts) -> the status."""
        with self._lock:
            return dict(self._statuses)

    # -- serving --------------------------------------------------------------------------

    async def _record(self, request: Request, method: str) -> Call:
        raw = await request.body()
        body: dict[str, Any] = dict(request.query_params)
        content_type = request.headers.get("content-type", "")
        if raw:
            if "json" in content_type:
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict):
                    body.update(parsed)
            else:
                body.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        for key in JSON_FIELDS & body.keys():
            if isinstance(body[key], str):
                with contextlib.suppress(ValueError):
                    body[key] = json.loads(body[key])
        authorization = request.headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ").strip() or None
        if token is None and isinstance(body.get("token"), str):
            token = body["token"]
        call = Call(method, token, body, dict(request.headers))
        with self._lock:
            self._calls.append(call)
        return call

    def _pop(self, method: str) -> Answer | None:
        with self._lock:
            queue = self._script.get(method)
            return queue.popleft() if queue else None

    async def _scripted(self, request: Request, method: str) -> Response | None:
        """The scripted answer for `method` if it replaces the normal one, else None (after any
        scripted delay)."""
        answer = self._pop(method)
        if answer is None:
            return None
        if answer.delay_s > 0:
            await _pause(request, answer.delay_s)
        if answer.body is None:
            return None
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        call = await self._record(request, method)
        scripted = await self._scripted(request, method)
        if scripted is not None:
            return scripted
        handler = self._handlers.get(method)
        if handler is None:
            return JSONResponse({"ok": False, "error": "unknown_method"})
        needed = SCOPES[method]
        if self._granted is not None and needed and not needed & self._granted:
            provided = ",".join(sorted(self._granted))
            refusal = {"ok": False, "error": "missing_scope", "needed": ",".join(sorted(needed))}
            return JSONResponse({**refusal, "provided": provided})
        return JSONResponse(handler(self, call.body))

    async def _response_url(self, request: Request) -> Response:
        method = "response_url:" + request.path_params["name"]
        await self._record(request, method)
        scripted = await self._scripted(request, method)
        return scripted or JSONResponse({"ok": True})

    async def _upload(self, request: Request) -> Response:
        raw = await request.body()
        method = "upload:" + request.path_params["file_id"]
        headers = dict(request.headers)
        call = Call(method, None, {"data": raw}, headers)
        with self._lock:
            self._calls.append(call)
        scripted = await self._scripted(request, method)
        return scripted or PlainTextResponse(f"OK - {len(raw)}")

    async def _download(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        await self._record(request, "download:" + file_id)
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            return PlainTextResponse("file not found", status_code=404)
        return Response(stored.content, media_type=stored.mimetype)

    # -- normal answers -------------------------------------------------------------------

    def _ts(self) -> str:
        return f"1700000000.{next(self._seq):06d}"

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._seq):08d}"

    def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://acme.slack.com/",
            "team": TEAM_NAME,
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, body: dict[str, Any]) -> dict[str, Any]:
        ts = self._ts()
        message: dict[str, Any] = {
            "type": "message",
            "text": body.get("text", ""),
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": ts,
        }
        if body.get("thread_ts"):
            message["thread_ts"] = body["thread_ts"]
        if body.get("blocks"):
            message["blocks"] = body["blocks"]
        with self._lock:
            self._messages.append({**message, "channel": body.get("channel")})
            self._replied(body)
        return {"ok": True, "channel": body.get("channel"), "ts": ts, "message": message}

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "channel": body.get("channel"),
            "ts": body.get("ts"),
            "text": body.get("text", ""),
        }

    def _start_stream(self, body: dict[str, Any]) -> dict[str, Any]:
        """`chat.startStream`: a message in a thread that grows as text is appended."""
        if not body.get("channel") or not body.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        outside_dm = not str(body["channel"]).startswith("D")
        if outside_dm and not (body.get("recipient_team_id") and body.get("recipient_user_id")):
            return {"ok": False, "error": "invalid_arguments"}  # required outside a DM
        ts = self._ts()
        with self._lock:
            self._streams[ts] = str(body.get("markdown_text") or "")
            self._replied(body)
        return {"ok": True, "channel": body["channel"], "ts": ts}

    def _append_stream(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if str(body.get("ts")) not in self._streams:
                return {"ok": False, "error": "message_not_in_streaming_state"}
            self._streams[str(body["ts"])] += str(body.get("markdown_text") or "")
        return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}

    def _stop_stream(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._streams.pop(str(body.get("ts")), None) is None:
                return {"ok": False, "error": "message_not_in_streaming_state"}
        return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}

    def _set_status(self, body: dict[str, Any]) -> dict[str, Any]:
        """`assistant.threads.setStatus`: "is thinking…" under the thread; "" clears it."""
        channel, thread_ts = body.get("channel_id"), body.get("thread_ts")
        if not channel or not thread_ts or "status" not in body:
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            if body["status"]:
                self._statuses[(str(channel), str(thread_ts))] = str(body["status"])
            else:
                self._statuses.pop((str(channel), str(thread_ts)), None)
        return {"ok": True}

    def _replied(self, body: dict[str, Any]) -> None:
        """The app posted in a thread: Slack clears its status (called holding the lock)."""
        if body.get("thread_ts"):
            self._statuses.pop((str(body.get("channel")), str(body["thread_ts"])), None)

    def _post_ephemeral(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._ts()}

    def _views_open(self, body: dict[str, Any]) -> dict[str, Any]:
        view = body.get("view")
        view = dict(view) if isinstance(view, dict) else {}
        view.update({"id": self._id("V"), "team_id": TEAM_ID})
        return {"ok": True, "view": view}

    def _conversations_info(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._channels.get(str(body.get("channel")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {
                "id": channel.id,
                "name": channel.name,
                "is_channel": True,
                "is_private": channel.private,
                "is_im": False,
                "is_member": channel.member,
            },
        }

    def _conversations_list(self, body: dict[str, Any]) -> dict[str, Any]:
        """Every channel added with `add_channel`, in one page."""
        with self._lock:
            channels = list(self._channels.values())
        listed = [
            {
                "id": c.id,
                "name": c.name,
                "is_channel": True,
                "is_private": c.private,
                "is_member": c.member,
            }
            for c in channels
        ]
        return {"ok": True, "channels": listed, "response_metadata": {"next_cursor": ""}}

    def _users_info(self, body: dict[str, Any]) -> dict[str, Any]:
        user_id = str(body.get("user", ""))
        with self._lock:
            user = self._users.get(user_id)
        return {"ok": True, "user": user or _user(user_id, f"user-{user_id.lower()}", "A User")}

    def _file_object(self, file_id: str, name: str, mimetype: str, size: int) -> dict[str, Any]:
        url = f"{self.root_url}/files/{file_id}"
        return {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "size": size,
            "url_private": url,
            "url_private_download": url,
        }

    def _files_info(self, body: dict[str, Any]) -> dict[str, Any]:
        file_id = str(body.get("file", ""))
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            return {"ok": True, "file": self._file_object(file_id, "file.txt", "text/plain", 0)}
        file = self._file_object(stored.id, stored.name, stored.mimetype, len(stored.content))
        return {"ok": True, "file": file}

    def _get_upload_url(self, body: dict[str, Any]) -> dict[str, Any]:
        file_id = self._id("F")
        return {"ok": True, "upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def _complete_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        files = body.get("files")
        items = files if isinstance(files, list) else []
        return {
            "ok": True,
            "files": [
                {"id": f.get("id"), "title": f.get("title")} for f in items if isinstance(f, dict)
            ],
        }

    def _conversations_open(self, body: dict[str, Any]) -> dict[str, Any]:
        """The app's DM with a user: `D` + the user id's tail (stable per user)."""
        users = str(body.get("users", ""))
        return {"ok": True, "channel": {"id": "D" + users.lstrip("UW"), "is_im": True}}

    _handlers = {
        "auth.test": _auth_test,
        "conversations.open": _conversations_open,
        "chat.postMessage": _post_message,
        "chat.update": _update,
        "chat.startStream": _start_stream,
        "chat.appendStream": _append_stream,
        "chat.stopStream": _stop_stream,
        "assistant.threads.setStatus": _set_status,
        "chat.postEphemeral": _post_ephemeral,
        "views.open": _views_open,
        "conversations.info": _conversations_info,
        "conversations.list": _conversations_list,
        "users.info": _users_info,
        "files.info": _files_info,
        "files.getUploadURLExternal": _get_upload_url,
        "files.completeUploadExternal": _complete_upload,
    }


# The bot scopes each method the fake serves accepts (any one of them), as Slack's method
# reference lists them; an empty set: none needed.
SCOPES: dict[str, frozenset[str]] = {
    "auth.test": frozenset(),
    "conversations.open": frozenset({"channels:manage", "groups:write", "im:write", "mpim:write"}),
    "chat.postMessage": frozenset({"chat:write"}),
    "chat.update": frozenset({"chat:write"}),
    "chat.startStream": frozenset({"chat:write"}),
    "chat.appendStream": frozenset({"chat:write"}),
    "chat.stopStream": frozenset({"chat:write"}),
    "assistant.threads.setStatus": frozenset({"chat:write", "assistant:write"}),
    "chat.postEphemeral": frozenset({"chat:write"}),
    "views.open": frozenset(),
    "conversations.info": frozenset({"channels:read", "groups:read", "im:read", "mpim:read"}),
    "conversations.list": frozenset({"channels:read", "groups:read", "im:read", "mpim:read"}),
    "users.info": frozenset({"users:read"}),
    "files.info": frozenset({"files:read"}),
    "files.getUploadURLExternal": frozenset({"files:write"}),
    "files.completeUploadExternal": frozenset({"files:write"}),
}


def _user(user_id: str, name: str, real_name: str) -> dict[str, Any]:
    return {
        "id": user_id,
        "team_id": TEAM_ID,
        "name": name,
        "real_name": real_name,
        "is_bot": False,
        "deleted": False,
        "tz": "UTC",
        "profile": {
            "real_name": real_name,
            "display_name": name,
            "email": f"{name}@acme.test",
        },
    }


async def _pause(request: Request, delay_s: float) -> None:
    """Sleep `delay_s`, ending early when the client hangs up (it timed out)."""
    deadline = time.monotonic() + delay_s
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(left, 0.02))
        if await request.is_disconnected():
            return
