"""A fake of Meta's Graph API for the WhatsApp Cloud API and the Messenger Send API: it records
every call, checks what Meta checks (the token, whose phone number or Page it is, the messaging
windows, templates, media limits) and pops scripted answers.

It runs uvicorn in its own thread and event loop on 127.0.0.1:0, so adapters reach it over real
HTTP from any test's event loop (`STUDIO_WHATSAPP_API_URL=fake.base_url`, the same for Messenger).

    fake = FakeMeta().start()
    fake.base_url                                   # http://127.0.0.1:PORT/v21.0 (any vN.M served)
    fake.add_phone_number(PHONE_ID, TOKEN)          # TOKEN may send from PHONE_ID (else 400 #100)
    fake.add_page(PAGE_ID, PAGE_TOKEN)              # a Page and its page access token
    fake.user_wrote(PHONE_ID, "16315551234")        # opens the 24 h window (at= the fake's now)
    fake.user_wrote(PAGE_ID, PSID, at=fake.now() - 3600)
    fake.inbound(payload)                           # the same, learnt from a webhook payload
    fake.advance(25 * 3600)                         # move the fake's clock: the window closes
    fake.approve_template(PHONE_ID, "follow_up", "en_US", body_params=1)
    media_id = fake.add_media(b"OggS...", "audio/ogg")   # inbound media, for GET /{media-id}
    fake.fail("messages", 500, code=131000, message="(#131000) Something went wrong")
    fake.rate_limit("messages")                     # then a 400 #130429 "Rate limit hit"
    fake.rate_limit("messenger")                    # then a 400 #613
    fake.delay("messages", 0.5)                     # then the normal answer after 0.5 s
    fake.sent(PHONE_ID, "16315551234")              # the bodies accepted for that user, in order
    fake.statuses(PHONE_ID)                         # the statuses Meta would post (sent / failed)
    fake.calls_to("media")[-1].body["file"].content # what was uploaded
    await fake.wait_for("messages")                 # polls; AssertionError on timeout
    fake.stop()

Served (under `/{version}` for any `v\\d+.\\d+`, or with no version as Graph also allows):
- `POST /{phone-number-id}/messages`: a WhatsApp message (kind "messages") or, with
  `{"status": "read", "message_id": ...}`, a read mark (kind "read", answered `{"success": true}`);
- `POST /{phone-number-id}/media`: a multipart upload (`file`, `type`, `messaging_product`), kind
  "media", answered `{"id": MEDIA_ID}`;
- `GET /{media-id}` (kind "media_url"): `{"messaging_product", "url", "mime_type", "sha256",
  "file_size", "id"}`; `DELETE /{media-id}` (kind "media_delete");
- `GET {root}/whatsapp_business/attachments/?mid=…&ext=…&hash=…` (kind "download"): the bytes,
  for the bearer token of an owner of the media only, while the URL is fresh (5 minutes);
- `POST /me/messages` or `/{page-id}/messages` without `"messaging_product": "whatsapp"`: the
  Messenger Send API (kind "messenger"), answered `{"recipient_id", "message_id"}`;
- `GET /{phone-number-id}`, `GET /{page-id}` or `GET /me` (kind "object"), and
  `POST|GET|DELETE /{page-or-waba-id}/subscribed_apps` (kind "subscribed_apps").
The token is read from `Authorization: Bearer …`, an `access_token` query parameter or an
`access_token` body field (taken out of `Call.body`; `Call.auth` says where it was).

Every error is Graph's body `{"error": {"message", "type", "code", "error_subcode"?,
"error_data"? , "fbtrace_id"}}` (WhatsApp errors carry `error_data.details`, as Cloud API sends):
- no token: 400 #104; an unknown token: 401 #190 "Invalid OAuth access token - Cannot parse access
  token"; an expired one (`expire_token`): 401 #190 subcode 463;
- an id that does not exist or is not the token's: 400 #100 subcode 33 "Unsupported post request.
  Object with ID '…' does not exist, cannot be loaded due to missing permissions, or does not
  support this operation…" (GraphMethodException); `/me/messages` with a token of no Page: 403 #200;
- WhatsApp: a free-form message (anything but a template) to a user who has not written to that
  phone number in the last 24 h: 400 #131047 "Re-engagement message" (or, with
  `window_error = "webhook"`, accepted with a wamid and reported as a `failed` status, as Cloud API
  often does); a template not approved for that phone number and language: 404 #132001 "Template
  name does not exist in the translation"; a body-parameter count other than the approved one:
  400 #132000; a missing field: 400 #131008; a bad value (text over 4,096 characters, more than 3
  buttons, a title too long, an unknown media id…): 400 #131009; no `messaging_product`: 400 #100;
- uploads: a type WhatsApp does not take: 400 #100; over its size limit (audio 16 MB, image 5 MB,
  document 100 MB, video 16 MB, sticker 500 KB; `media_limits` can be lowered per test): 400
  #131053 "Media upload error";
- Messenger: a PSID that never wrote to the Page: 400 #100 subcode 2018001 "No matching user
  found"; RESPONSE / UPDATE more than 24 h after the user's last message, HUMAN_AGENT after 7
  days: 400 #10 subcode 2018278 "This message is sent outside of allowed window"; MESSAGE_TAG with
  a tag Meta does not know: 400 #100; neither message nor sender_action: 400 #100 "Must send
  either message or state".
Scripted answers (`fail`, `rate_limit`, `respond`, `delay`) are keyed by a kind above or by a path
("/123/messages", with or without the version) and are used after the token check, in order, the
path's before the kind's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import ServedFake

GRAPH_VERSION = "v21.0"
WINDOW_S = 24 * 3600  # WhatsApp's customer-service window, Messenger's standard window
HUMAN_AGENT_WINDOW_S = 7 * 24 * 3600
MEDIA_URL_TTL_S = 300  # a media URL works for 5 minutes
MAX_TEXT = 4096  # WhatsApp text body
MAX_CAPTION = 1024
MAX_MESSENGER_TEXT = 2000
ERROR_CODES_URL = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
DOWNLOAD_PATH = "/whatsapp_business/attachments/"

KINDS = frozenset(
    {
        "messages",
        "read",
        "media",
        "media_url",
        "media_delete",
        "download",
        "messenger",
        "object",
        "subscribed_apps",
        "unknown",
    }
)
WHATSAPP_KINDS = frozenset({"messages", "read", "media", "media_url", "media_delete", "download"})

MESSAGE_TYPES = frozenset(
    {
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "interactive",
        "template",
        "location",
        "contacts",
        "reaction",
    }
)
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})

# What WhatsApp takes for upload, by MIME type (without parameters) -> its media category.
SUPPORTED_MEDIA = {
    "audio/aac": "audio",
    "audio/amr": "audio",
    "audio/mpeg": "audio",
    "audio/mp4": "audio",
    "audio/ogg": "audio",
    "text/plain": "document",
    "application/pdf": "document",
    "application/vnd.ms-powerpoint": "document",
    "application/msword": "document",
    "application/vnd.ms-excel": "document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "document",
    "image/jpeg": "image",
    "image/png": "image",
    "image/webp": "sticker",
    "video/mp4": "video",
    "video/3gpp": "video",
    "video/3gp": "video",
}
MB = 1024 * 1024
MEDIA_LIMITS = {
    "audio": 16 * MB,
    "image": 5 * MB,
    "document": 100 * MB,
    "video": 16 * MB,
    "sticker": 500 * 1024,
}

MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})
MESSAGE_TAGS = frozenset(
    {
        "ACCOUNT_UPDATE",
        "CONFIRMED_EVENT_UPDATE",
        "CUSTOMER_FEEDBACK",
        "HUMAN_AGENT",
        "POST_PURCHASE_UPDATE",
    }
)
SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen"})

# Titles Graph puts in `message` as "(#CODE) Title" when a script gives none.
TITLES = {
    1: "An unknown error occurred",
    2: "Service temporarily unavailable",
    4: "Application request limit reached",
    10: "Permission denied",
    100: "Invalid parameter",
    131000: "Something went wrong",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    130429: "Rate limit hit",
    132001: "Template name does not exist in the translation",
    551: "This person isn't available right now.",
    613: "Calls to this api have exceeded the rate limit.",
    80007: "Rate limit issues",
}
RE_ENGAGEMENT_DETAILS = (
    "Message failed to send because more than 24 hours have passed since the customer last"
    " replied to this number."
)
OUTSIDE_WINDOW = (
    "(#10) This message is sent outside of allowed window. Learn more about the new policy here:"
    " https://developers.facebook.com/docs/messenger-platform/policy-overview"
)

_VERSION = re.compile(r"v\d+\.\d+")
_JSON_FIELDS = frozenset({"recipient", "message", "template", "interactive", "context", "text"})


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart body."""

    filename: str | None
    content_type: str | None
    content: bytes


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received, recorded before it is answered.

    `kind` is one of `KINDS`; `path` is the request path as sent (with its version, if any).
    `body` merges query parameters and the JSON, form or multipart body (file parts as `Upload`;
    Messenger's JSON-string fields such as `recipient` and `message` decoded), without
    `access_token`. `auth` says where the token came from: "bearer", "query", "body" or "none".
    """

    method: str
    path: str
    kind: str
    token: str | None
    body: dict[str, Any]
    auth: str = "none"
    headers: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    at: float = field(default=0.0, compare=False, repr=False)  # on the fake's clock


@dataclass(frozen=True, slots=True)
class Answer:
    """One scripted answer: after `delay_s`, either the normal answer (`body` None) or `body`
    with HTTP `status` (an `error` without `fbtrace_id` gets one)."""

    body: dict[str, Any] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    id: str
    display_phone_number: str
    verified_name: str
    waba_id: str


@dataclass(frozen=True, slots=True)
class Page:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """Media the fake holds: uploaded by a phone number (`owner`) or added by the test (`owner`
    None unless given: any valid token may fetch it)."""

    id: str
    content: bytes
    mime_type: str
    owner: str | None
    filename: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    language: str
    body_params: int | None = None


class GraphError(Exception):
    """A Graph API error answer."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        type_: str = "OAuthException",
        subcode: int | None = None,
        details: str | None = None,
        whatsapp: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.type = type_
        self.subcode = subcode
        self.details = details
        self.whatsapp = whatsapp
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(
            self.code,
            self.message,
            type_=self.type,
            subcode=self.subcode,
            details=self.details,
            whatsapp=self.whatsapp,
        )


def error_body(
    code: int,
    message: str,
    *,
    type_: str = "OAuthException",
    subcode: int | None = None,
    details: str | None = None,
    whatsapp: bool = False,
    fbtrace_id: str | None = None,
) -> dict[str, Any]:
    """Graph's error body; `error_data` when there are WhatsApp details, `error_subcode` only
    when there is one (as Graph sends it)."""
    error: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if details is not None or whatsapp:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details or message}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = fbtrace_id or _trace_id()
    return {"error": error}


def _trace_id() -> str:
    return "A" + secrets.token_urlsafe(16)[:22]


def _wa_error(status: int, code: int, details: str, title: str | None = None) -> GraphError:
    return GraphError(
        status,
        code,
        f"(#{code}) {title or TITLES.get(code, 'Error')}",
        details=details,
        whatsapp=True,
    )


def _missing(name: str) -> GraphError:
    return _wa_error(
        400, 131008, f"The parameter {name} is required.", "Required parameter is missing"
    )


def _invalid(details: str) -> GraphError:
    return _wa_error(400, 131009, details, "Parameter value is not valid")


def _param(message: str, *, subcode: int | None = None) -> GraphError:
    return GraphError(400, 100, f"(#100) {message}", subcode=subcode)


def _no_object(method: str, object_id: str) -> GraphError:
    return GraphError(
        400,
        100,
        f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist,"
        " cannot be loaded due to missing permissions, or does not support this operation."
        " Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        type_="GraphMethodException",
        subcode=33,
    )


_INVALID_TOKEN = "Invalid OAuth access token - Cannot parse access token"
_INVALID_TOKEN_HEADER = f'OAuth "Facebook Platform" "invalid_token" "{_INVALID_TOKEN}"'


class FakeMeta(ServedFake):
    """The fake Graph API. Scripting and reading are thread-safe; scripted answers are popped in
    order (those for the call's path first, then those for its kind), and an empty queue gives
    the normal answer."""

    name = "Meta"

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        window_error: Literal["response", "webhook"] = "response",
    ) -> None:
        self.clock = clock  # epoch seconds; `advance` moves the fake's now past it
        self.window_error: Literal["response", "webhook"] = window_error
        self.media_limits = dict(MEDIA_LIMITS)
        self._skew = 0.0
        self._calls: list[Call] = []
        self._script: defaultdict[str, deque[Answer]] = defaultdict(deque)
        self._tokens: dict[str, set[str]] = {}  # token -> the ids it may use
        self._expired: dict[str, float] = {}  # token -> when it expired
        self._phones: dict[str, PhoneNumber] = {}
        self._pages: dict[str, Page] = {}
        self._templates: set[tuple[str, str, str]] = set()
        self._template_params: dict[tuple[str, str, str], int | None] = {}
        self._wrote: dict[tuple[str, str], float] = {}  # (phone or page, user) -> last message
        self._sent: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self._statuses: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self._reads: defaultdict[str, list[str]] = defaultdict(list)
        self._actions: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        self._subscribed: set[str] = set()
        self._media: dict[str, StoredMedia] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._url_secret = secrets.token_bytes(16)
        # Never reset: ids stay unique across the whole session.
        self._seq = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route(DOWNLOAD_PATH, self._download, methods=["GET"]),
                Route("/{path:path}", self._api, methods=["GET", "POST", "DELETE"]),
            ]
        )

    # -- addresses ------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        if not self.port:
            raise RuntimeError("the fake Meta is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/v21.0`: what `STUDIO_WHATSAPP_API_URL` and
        `STUDIO_MESSENGER_API_URL` take (any other `vN.M` is served too)."""
        return f"{self.root_url}/{GRAPH_VERSION}"

    # -- the clock --------------------------------------------------------------------------

    def now(self) -> float:
        """The fake's time (epoch seconds): `clock()` moved by `advance`."""
        return self.clock() + self._skew

    def advance(self, seconds: float) -> float:
        """Move the fake's clock forward (windows close, media URLs expire); returns the new
        now."""
        with self._lock:
            self._skew += seconds
        return self.now()

    # -- accounts ---------------------------------------------------------------------------

    def add_phone_number(
        self,
        phone_number_id: str,
        token: str,
        *,
        display_phone_number: str | None = None,
        verified_name: str = "Test Business",
        waba_id: str | None = None,
    ) -> PhoneNumber:
        """A WhatsApp business phone number that `token` may use (a token may have several)."""
        if display_phone_number is None:
            display_phone_number = "1555" + _digits(phone_number_id)[-7:].rjust(7, "0")
        phone = PhoneNumber(
            phone_number_id, display_phone_number, verified_name, waba_id or f"9{phone_number_id}"
        )
        with self._lock:
            self._phones[phone_number_id] = phone
            self._tokens.setdefault(token, set()).update({phone_number_id, phone.waba_id})
            self._expired.pop(token, None)
        return phone

    def add_page(self, page_id: str, token: str, *, name: str = "Test Page") -> Page:
        """A Facebook Page and its page access token (`/me` is that Page for this token)."""
        page = Page(page_id, name)
        with self._lock:
            self._pages[page_id] = page
            self._tokens.setdefault(token, set()).add(page_id)
            self._expired.pop(token, None)
        return page

    def grant(self, token: str, object_id: str) -> None:
        """Let `token` use another phone number, WABA or Page (a system user's token)."""
        with self._lock:
            self._tokens.setdefault(token, set()).add(object_id)

    def expire_token(self, token: str) -> None:
        """`token` expired: every call with it gets 401 #190 subcode 463."""
        with self._lock:
            if token in self._tokens:
                self._expired[token] = self.now()

    def revoke(self, token: str) -> None:
        """`token` is unknown from now on (401 #190 "Invalid OAuth access token")."""
        with self._lock:
            self._tokens.pop(token, None)
            self._expired.pop(token, None)

    def approve_template(
        self,
        phone_number_id: str,
        name: str,
        language: str = "en_US",
        *,
        body_params: int | None = None,
    ) -> None:
        """`name` in `language` is approved for that phone number (its WABA). With
        `body_params`, a send must give exactly that many body parameters (else #132000)."""
        key = (phone_number_id, name, language)
        with self._lock:
            self._templates.add(key)
            self._template_params[key] = body_params

    # -- what users did -------------------------------------------------------------------

    def user_wrote(self, owner_id: str, user_id: str, *, at: float | datetime | None = None) -> str:
        """The user (`wa_id` or PSID) wrote to the phone number or Page `owner_id` at `at`
        (the fake's now by default): its window opens. Returns an id for that inbound message
        (a wamid, or a Messenger `m_` mid when `owner_id` is a Page)."""
        when = self.now() if at is None else at.timestamp() if isinstance(at, datetime) else at
        key = (owner_id, _user_key(user_id))
        with self._lock:
            self._wrote[key] = max(when, self._wrote.get(key, when))
            is_page = owner_id in self._pages
        return self._mid() if is_page else self._wamid(key[1])

    def inbound(self, payload: Mapping[str, Any]) -> int:
        """Learn from a webhook payload (WhatsApp or Messenger) who wrote when, as Meta learns it
        from the messages themselves; returns how many messages it counted."""
        counted = 0
        for entry in payload.get("entry") or ():
            for change in entry.get("changes") or ():
                value = change.get("value") or {}
                phone = str((value.get("metadata") or {}).get("phone_number_id", ""))
                for message in value.get("messages") or ():
                    self.user_wrote(phone, str(message["from"]), at=float(message["timestamp"]))
                    counted += 1
            for event in entry.get("messaging") or ():
                message = event.get("message") or {}
                if message.get("is_echo") or not ("message" in event or "postback" in event):
                    continue
                page, user = str(event["recipient"]["id"]), str(event["sender"]["id"])
                self.user_wrote(page, user, at=float(event["timestamp"]) / 1000)
                counted += 1
        return counted

    def last_wrote(self, owner_id: str, user_id: str) -> float | None:
        with self._lock:
            return self._wrote.get((owner_id, _user_key(user_id)))

    def add_media(
        self,
        content: bytes,
        mime_type: str,
        *,
        phone_number_id: str | None = None,
        filename: str | None = None,
    ) -> str:
        """Store media a user sent (for `GET /{media-id}` and its download); returns its id.
        With `phone_number_id`, only that number's tokens may fetch it."""
        media_id = self._media_id()
        with self._lock:
            self._media[media_id] = StoredMedia(
                media_id, content, mime_type, phone_number_id, filename
            )
        return media_id

    # -- what happened --------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, kind_or_path: str) -> list[Call]:
        """The calls of one kind ("messages", "media", "messenger"…) or to one path (with or
        without the version), oldest first."""
        path = _unversioned(kind_or_path)
        by_path = path.startswith("/")
        return [
            c
            for c in self.calls
            if (by_path and _unversioned(c.path) == path) or (not by_path and c.kind == path)
        ]

    def sent(self, owner_id: str, user_id: str) -> list[dict[str, Any]]:
        """The message bodies the phone number or Page accepted for that user, oldest first (a
        refused one is not there)."""
        with self._lock:
            return [dict(b) for b in self._sent.get((owner_id, _user_key(user_id)), ())]

    def statuses(self, phone_number_id: str) -> list[dict[str, Any]]:
        """The status objects Meta would post for that phone number's messages (`sent` for each
        accepted message, `failed` with `errors` for a refused one in "webhook" mode), oldest
        first: for `meta_payloads.whatsapp_payload(statuses=...)`."""
        with self._lock:
            return [dict(s) for s in self._statuses.get(phone_number_id, ())]

    def reads(self, phone_number_id: str) -> list[str]:
        """The message ids the phone number marked as read, oldest first."""
        with self._lock:
            return list(self._reads.get(phone_number_id, ()))

    def sender_actions(self, page_id: str, psid: str) -> list[str]:
        """The sender actions (typing_on, mark_seen…) the Page sent that user, oldest first."""
        with self._lock:
            return list(self._actions.get((page_id, psid), ()))

    def subscribed(self, object_id: str) -> bool:
        """Whether the app is subscribed to the Page's or WABA's webhooks."""
        with self._lock:
            return object_id in self._subscribed

    def media(self, media_id: str) -> StoredMedia | None:
        """Uploaded or added media, or None (unknown or deleted)."""
        with self._lock:
            return self._media.get(media_id)

    def media_url(self, media_id: str) -> str:
        """A fresh download URL for the media (what `GET /{media-id}` answers)."""
        expires = int(self.now()) + MEDIA_URL_TTL_S
        query = urlencode(
            {"mid": media_id, "ext": expires, "hash": self._url_hash(media_id, expires)}
        )
        return f"{self.root_url}{DOWNLOAD_PATH}?{query}"

    @property
    def pending(self) -> int:
        """How many scripted answers have not been used yet."""
        with self._lock:
            return sum(len(q) for q in self._script.values())

    async def wait_for(
        self, kind_or_path: str, count: int = 1, timeout_s: float = 3.0
    ) -> list[Call]:
        """The calls of that kind (or to that path) once at least `count` arrived (polling,
        without blocking the caller's loop); AssertionError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            calls = self.calls_to(kind_or_path)
            if len(calls) >= count:
                return calls
            if time.monotonic() > deadline:
                seen = sorted({f"{c.kind} {c.path}" for c in self.calls})
                raise AssertionError(
                    f"expected {count} call(s) to {kind_or_path} on the fake Meta, got"
                    f" {len(calls)} (calls: {seen})"
                )
            await asyncio.sleep(0.01)

    # -- scripting ------------------------------------------------------------------------

    def script(self, kind_or_path: str, *answers: Answer) -> None:
        """Queue answers for a kind (see `KINDS`) or a path, used in order by its next calls."""
        key = kind_or_path if kind_or_path in KINDS else _unversioned(kind_or_path)
        if key not in KINDS and not key.startswith("/"):
            raise ValueError(f"not a kind ({sorted(KINDS)}) nor a path: {kind_or_path!r}")
        with self._lock:
            self._script[key].extend(answers)

    def fail(
        self,
        kind_or_path: str,
        status: int = 400,
        *,
        code: int = 1,
        message: str | None = None,
        subcode: int | None = None,
        type_: str = "OAuthException",
        details: str | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls get HTTP `status` with Graph's error body (`message` defaults
        to "(#code) Title"; WhatsApp kinds carry `error_data.details`)."""
        whatsapp = kind_or_path in WHATSAPP_KINDS or details is not None
        body = error_body(
            code,
            message or f"(#{code}) {TITLES.get(code, 'An unknown error occurred')}",
            type_=type_,
            subcode=subcode,
            details=details,
            whatsapp=whatsapp,
        )
        del body["error"]["fbtrace_id"]  # a fresh one per answer
        self.script(kind_or_path, *[Answer(body=body, status=status)] * times)

    def rate_limit(
        self,
        kind_or_path: str = "messages",
        *,
        code: int | None = None,
        status: int = 400,
        times: int = 1,
    ) -> None:
        """The next `times` calls are throttled: #130429 "Rate limit hit" (Cloud API
        throughput) for WhatsApp, #613 for Messenger, or `code` (4, 80007, 131056…). HTTP 400 by
        default (Meta's tables disagree on 400 and 429; Meta says to read `code`)."""
        parts = _unversioned(kind_or_path).strip("/").split("/")
        with self._lock:
            on_page = parts[0] == "me" or parts[0] in self._pages
        messenger = kind_or_path == "messenger" or (kind_or_path.startswith("/") and on_page)
        chosen = code if code is not None else 613 if messenger else 130429
        details = None if messenger else "Cloud API message throughput has been reached."
        self.fail(kind_or_path, status, code=chosen, details=details, times=times)

    def delay(self, kind_or_path: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` calls get their normal answer after `seconds` (cut short when the
        client hangs up)."""
        self.script(kind_or_path, *[Answer(delay_s=seconds)] * times)

    def respond(
        self,
        kind_or_path: str,
        body: Mapping[str, Any],
        *,
        status: int = 200,
        times: int = 1,
    ) -> None:
        """The next `times` calls get exactly `body` (for odd answers)."""
        self.script(kind_or_path, *[Answer(body=dict(body), status=status)] * times)

    def reset(self) -> None:
        """Forget calls, scripts, tokens, phone numbers, Pages, templates, who wrote when, sent
        messages, statuses, reads, media and subscriptions; the clock, `window_error` and
        `media_limits` are back to their defaults (ids keep increasing)."""
        with self._lock:
            self._calls.clear()
            self._script.clear()
            self._tokens.clear()
            self._expired.clear()
            self._phones.clear()
            self._pages.clear()
            self._templates.clear()
            self._template_params.clear()
            self._wrote.clear()
            self._sent.clear()
            self._statuses.clear()
            self._reads.clear()
            self._actions.clear()
            self._subscribed.clear()
            self._media.clear()
            self._skew = 0.0
        self.clock = time.time
        self.window_error = "response"
        self.media_limits = dict(MEDIA_LIMITS)

    # -- serving --------------------------------------------------------------------------

    async def _read(self, request: Request) -> tuple[dict[str, Any], str | None, str]:
        """The call's body (query merged in), its token and where the token was."""
        body: dict[str, Any] = dict(request.query_params)
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        if raw and "json" in content_type:
            with contextlib.suppress(ValueError):
                parsed = json.loads(raw)
                if isinstance(parsed, dict):
                    body.update(parsed)
        elif raw and "multipart/form-data" in content_type:
            async with request.form(max_part_size=8 * MB) as form:
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        content = await value.read()
                        body[key] = Upload(value.filename, value.content_type, content)
                    else:
                        body[key] = value
        elif raw:
            body.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        for key in _JSON_FIELDS & body.keys():
            if isinstance(body[key], str):
                body[key] = _lax_json(body[key])
        authorization = request.headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() in ("bearer", "oauth") and credentials.strip():
            body.pop("access_token", None)
            return body, credentials.strip(), "bearer"
        if "access_token" in request.query_params:
            body.pop("access_token", None)
            return body, request.query_params["access_token"], "query"
        token = body.pop("access_token", None)
        if isinstance(token, str) and token:
            return body, token, "body"
        return body, None, "none"

    def _kind(self, method: str, parts: list[str], body: Mapping[str, Any]) -> str:
        if len(parts) == 2 and parts[1] == "messages" and method == "POST":
            with self._lock:
                is_phone = parts[0] in self._phones
            if body.get("messaging_product") == "whatsapp" or is_phone:
                return "read" if body.get("status") == "read" else "messages"
            return "messenger"
        if len(parts) == 2 and parts[1] == "media" and method == "POST":
            return "media"
        if len(parts) == 2 and parts[1] == "subscribed_apps":
            return "subscribed_apps"
        if len(parts) == 1 and parts[0]:
            with self._lock:
                is_media = parts[0] in self._media
            if method == "DELETE":
                return "media_delete"
            if method == "GET":
                return "media_url" if is_media else "object"
        return "unknown"

    def _pop(self, path: str, kind: str) -> Answer | None:
        with self._lock:
            for key in (_unversioned(path), kind):
                queue = self._script.get(key)
                if queue:
                    return queue.popleft()
        return None

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def _check_token(self, token: str | None) -> set[str]:
        """The ids `token` may use, or the Graph error for a missing, unknown or expired one."""
        if token is None:
            raise GraphError(400, 104, "An access token is required to request this resource.")
        with self._lock:
            owned = self._tokens.get(token)
            expired = self._expired.get(token)
        if owned is None:
            raise GraphError(
                401,
                190,
                _INVALID_TOKEN,
                headers={"WWW-Authenticate": _INVALID_TOKEN_HEADER},
            )
        if expired is not None:
            stamp = datetime.fromtimestamp(expired, UTC).strftime("%A, %d-%b-%y %H:%M:%S UTC")
            raise GraphError(
                401,
                190,
                f"Error validating access token: Session has expired on {stamp}.",
                subcode=463,
            )
        return set(owned)

    async def _api(self, request: Request) -> Response:
        path = request.url.path
        parts = [p for p in path.split("/") if p]
        if parts and _VERSION.fullmatch(parts[0]):
            parts = parts[1:]
        body, token, auth = await self._read(request)
        kind = self._kind(request.method, parts, body)
        self._record(
            Call(request.method, path, kind, token, body, auth, dict(request.headers), self.now())
        )
        try:
            owned = self._check_token(token)
            answer = self._pop(path, kind)
            if answer is not None:
                if answer.delay_s > 0:
                    await self._pause(request, answer.delay_s)
                if answer.body is not None:
                    return _json(_traced(answer.body), answer.status, answer.headers)
            result = self._answer(request.method, kind, parts, body, owned, token or "")
        except GraphError as error:
            return _json(error.body(), error.status, error.headers)
        return _json(result, 200)

    def _answer(
        self,
        method: str,
        kind: str,
        parts: list[str],
        body: dict[str, Any],
        owned: set[str],
        token: str,
    ) -> dict[str, Any]:
        if kind in ("messages", "read", "media"):
            phone = self._phone(method, parts[0], owned)
            if kind == "media":
                return self._upload(phone, body)
            if kind == "read":
                return self._mark_read(phone, body)
            return self._whatsapp_send(phone, body)
        if kind == "messenger":
            return self._messenger_send(self._page(method, parts[0], owned), body)
        if kind == "media_url":
            return self._media_info(method, parts[0], body, owned)
        if kind == "media_delete":
            stored = self._owned_media(method, parts[0], owned)
            with self._lock:
                self._media.pop(stored.id, None)
            return {"success": True}
        if kind == "object":
            return self._object(method, parts[0], owned)
        if kind == "subscribed_apps":
            return self._subscribe(method, parts[0], owned)
        raise GraphError(400, 2500, f"Unknown path components: /{'/'.join(parts)}")

    def _phone(self, method: str, phone_number_id: str, owned: set[str]) -> PhoneNumber:
        with self._lock:
            phone = self._phones.get(phone_number_id)
        if phone is None or phone_number_id not in owned:
            raise _no_object(method, phone_number_id)
        return phone

    def _page(self, method: str, page_id: str, owned: set[str]) -> Page:
        with self._lock:
            if page_id == "me":
                pages = [self._pages[i] for i in sorted(owned) if i in self._pages]
                if not pages:
                    raise GraphError(403, 200, "(#200) This endpoint requires a Page access token")
                return pages[0]
            page = self._pages.get(page_id)
        if page is None or page_id not in owned:
            raise _no_object(method, page_id)
        return page

    # -- WhatsApp ---------------------------------------------------------------------------

    def _whatsapp_send(self, phone: PhoneNumber, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("messaging_product") != "whatsapp":
            raise GraphError(400, 100, "(#100) The parameter messaging_product is required.")
        to = body.get("to")
        if to in (None, ""):
            raise _missing("to")
        wa_id = _digits(str(to))
        if not wa_id:
            raise _invalid(f"Invalid parameter 'to': {to!r} is not a phone number")
        recipient_type = body.get("recipient_type", "individual")
        if recipient_type != "individual":
            raise _invalid(f"Param recipient_type must be 'individual', not {recipient_type!r}")
        kind = body.get("type", "text")
        if kind not in MESSAGE_TYPES:
            raise GraphError(
                400, 100, f"(#100) Param type must be one of {{{', '.join(sorted(MESSAGE_TYPES))}}}"
            )
        content = body.get(kind)
        if not isinstance(content, dict):
            raise _missing(kind)
        self._check_content(phone, kind, content)
        message_id = self._wamid(wa_id)
        if kind == "template":
            self._check_template(phone, content)
        elif not self._in_window((phone.id, wa_id), WINDOW_S):
            if self.window_error == "response":
                raise _wa_error(400, 131047, RE_ENGAGEMENT_DETAILS)
            self._status(phone.id, message_id, "failed", wa_id, errors=[_status_error(131047)])
            return _sent_answer(to, wa_id, message_id, template=False)
        with self._lock:
            self._sent[(phone.id, wa_id)].append(dict(body))
        self._status(phone.id, message_id, "sent", wa_id)
        return _sent_answer(to, wa_id, message_id, template=kind == "template")

    def _check_content(self, phone: PhoneNumber, kind: str, content: dict[str, Any]) -> None:
        if kind == "text":
            text = content.get("body")
            if text in (None, ""):
                raise _missing("text['body']")
            if len(str(text)) > MAX_TEXT:
                raise _invalid(f"Param text['body'] must be at most {MAX_TEXT} characters long.")
        elif kind in MEDIA_TYPES:
            media_id, link = content.get("id"), content.get("link")
            if bool(media_id) == bool(link):
                raise _invalid(f"Param {kind} must have exactly one of 'id' or 'link'.")
            if media_id:
                with self._lock:
                    stored = self._media.get(str(media_id))
                if stored is None or stored.owner not in (None, phone.id):
                    raise _invalid(f"Invalid media id: {media_id}")
            caption = content.get("caption")
            if caption is not None and len(str(caption)) > MAX_CAPTION:
                raise _invalid(f"Param {kind}['caption'] must be at most {MAX_CAPTION} characters.")
        elif kind == "interactive":
            _check_interactive(content)
        elif kind == "reaction" and not content.get("message_id"):
            raise _missing("reaction['message_id']")

    def _check_template(self, phone: PhoneNumber, content: dict[str, Any]) -> None:
        name = content.get("name")
        if not name:
            raise _missing("template['name']")
        language = content.get("language")
        code = language.get("code") if isinstance(language, dict) else None
        if not code:
            raise _missing("template['language']['code']")
        key = (phone.id, str(name), str(code))
        with self._lock:
            approved = key in self._templates
            expected = self._template_params.get(key)
        if not approved:
            raise _wa_error(404, 132001, f"template name ({name}) does not exist in {code}")
        if expected is not None:
            given = sum(
                len(c.get("parameters") or ())
                for c in content.get("components") or ()
                if isinstance(c, dict) and c.get("type") == "body"
            )
            if given != expected:
                raise _wa_error(
                    400,
                    132000,
                    f"body: number of localizable_params ({given}) does not match the expected"
                    f" number of params ({expected})",
                    "Number of parameters does not match the expected number of params",
                )

    def _mark_read(self, phone: PhoneNumber, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("messaging_product") != "whatsapp":
            raise GraphError(400, 100, "(#100) The parameter messaging_product is required.")
        message_id = body.get("message_id")
        if not message_id:
            raise _missing("message_id")
        with self._lock:
            self._reads[phone.id].append(str(message_id))
        return {"success": True}

    def _upload(self, phone: PhoneNumber, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("messaging_product") != "whatsapp":
            raise GraphError(400, 100, "(#100) The parameter messaging_product is required.")
        file = body.get("file")
        if not isinstance(file, Upload):
            raise GraphError(400, 100, "(#100) The parameter file is required.")
        mime = str(body.get("type") or file.content_type or "application/octet-stream")
        base = mime.split(";")[0].strip().lower()
        category = SUPPORTED_MEDIA.get(base)
        if category is None:
            raise GraphError(
                400,
                100,
                "(#100) Param file must be a file with one of the following types: "
                + ", ".join(sorted(SUPPORTED_MEDIA))
                + f". Received file of type '{base}'.",
            )
        limit = self.media_limits[category]
        if len(file.content) > limit:
            raise _wa_error(
                400,
                131053,
                f"Media file size ({len(file.content)} bytes) is over the {_size(limit)} limit"
                f" for {category} ({base}).",
                "Media upload error",
            )
        media_id = self._media_id()
        with self._lock:
            self._media[media_id] = StoredMedia(
                media_id, file.content, mime, phone.id, file.filename
            )
        return {"id": media_id}

    def _owned_media(self, method: str, media_id: str, owned: set[str]) -> StoredMedia:
        with self._lock:
            stored = self._media.get(media_id)
        if stored is None or (stored.owner is not None and stored.owner not in owned):
            raise _no_object(method, media_id)
        return stored

    def _media_info(
        self, method: str, media_id: str, body: dict[str, Any], owned: set[str]
    ) -> dict[str, Any]:
        stored = self._owned_media(method, media_id, owned)
        asked = body.get("phone_number_id")
        if asked and stored.owner is not None and str(asked) != stored.owner:
            raise _no_object(method, media_id)
        return {
            "messaging_product": "whatsapp",
            "url": self.media_url(media_id),
            "mime_type": stored.mime_type,
            "sha256": stored.sha256,
            "file_size": str(len(stored.content)),
            "id": media_id,
        }

    async def _download(self, request: Request) -> Response:
        media_id = request.query_params.get("mid", "")
        _, token, auth = await self._read(request)
        body = dict(request.query_params)
        path = request.url.path
        self._record(
            Call("GET", path, "download", token, body, auth, dict(request.headers), self.now())
        )
        try:
            owned = self._check_token(token if auth == "bearer" else None)
            answer = self._pop(path, "download")
            if answer is not None:
                if answer.delay_s > 0:
                    await self._pause(request, answer.delay_s)
                if answer.body is not None:
                    return _json(_traced(answer.body), answer.status, answer.headers)
        except GraphError as error:
            status = 401 if error.code in (104, 190) else error.status
            return _json(error.body(), status, error.headers)
        expires = _int(request.query_params.get("ext"))
        signature = request.query_params.get("hash", "")
        with self._lock:
            stored = self._media.get(media_id)
        valid = expires is not None and hmac.compare_digest(
            signature, self._url_hash(media_id, expires)
        )
        if stored is None or not valid or expires is None or self.now() > expires:
            return Response("URL signature expired or media not found", status_code=404)
        if stored.owner is not None and stored.owner not in owned:
            return Response("Access denied", status_code=403)
        return Response(stored.content, media_type=stored.mime_type.split(";")[0])

    # -- Messenger --------------------------------------------------------------------------

    def _messenger_send(self, page: Page, body: dict[str, Any]) -> dict[str, Any]:
        recipient = body.get("recipient")
        psid = recipient.get("id") if isinstance(recipient, dict) else None
        if not psid:
            raise _param("param recipient must be non-empty.")
        psid = _user_key(str(psid))
        message = body.get("message")
        action = body.get("sender_action")
        if message is None and action is None:
            raise _param("Must send either message or state")
        last = self.last_wrote(page.id, psid)
        if last is None:
            raise _param("No matching user found", subcode=2018001)
        if action is not None:
            if action not in SENDER_ACTIONS:
                raise _param(f"param sender_action must be one of {sorted(SENDER_ACTIONS)}")
            if not self._in_window((page.id, psid), WINDOW_S):
                raise GraphError(400, 10, OUTSIDE_WINDOW, subcode=2018278)
            with self._lock:
                self._actions[(page.id, psid)].append(str(action))
            return {"recipient_id": psid}
        if not isinstance(message, dict):
            raise _param("param message must be a JSON object.")
        _check_messenger_message(message)
        messaging_type = body.get("messaging_type")
        if messaging_type not in MESSAGING_TYPES:
            raise _param("param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
        window = WINDOW_S
        if messaging_type == "MESSAGE_TAG":
            tag = body.get("tag")
            if tag not in MESSAGE_TAGS:
                raise _param(f"Param tag must be one of {{{', '.join(sorted(MESSAGE_TAGS))}}}")
            window = HUMAN_AGENT_WINDOW_S if tag == "HUMAN_AGENT" else 0
        if window and not self._in_window((page.id, psid), window):
            raise GraphError(400, 10, OUTSIDE_WINDOW, subcode=2018278)
        with self._lock:
            self._sent[(page.id, psid)].append(dict(body))
        return {"recipient_id": psid, "message_id": self._mid()}

    # -- the rest ---------------------------------------------------------------------------

    def _object(self, method: str, object_id: str, owned: set[str]) -> dict[str, Any]:
        with self._lock:
            phone = self._phones.get(object_id)
        if phone is not None and object_id in owned:
            return {
                "verified_name": phone.verified_name,
                "display_phone_number": _display(phone.display_phone_number),
                "id": phone.id,
                "quality_rating": "GREEN",
                "code_verification_status": "VERIFIED",
            }
        page = self._page(method, object_id, owned)
        return {"name": page.name, "id": page.id}

    def _subscribe(self, method: str, object_id: str, owned: set[str]) -> dict[str, Any]:
        with self._lock:
            known = object_id in self._pages or any(
                p.waba_id == object_id for p in self._phones.values()
            )
        if not known or object_id not in owned:
            raise _no_object(method, object_id)
        with self._lock:
            if method == "POST":
                self._subscribed.add(object_id)
            elif method == "DELETE":
                self._subscribed.discard(object_id)
            else:
                apps = [{"name": "Chat Studio", "id": "1"}] if object_id in self._subscribed else []
                return {"data": apps}
        return {"success": True}

    def _in_window(self, key: tuple[str, str], seconds: float) -> bool:
        with self._lock:
            last = self._wrote.get(key)
        return last is not None and self.now() - last <= seconds

    def _status(
        self,
        phone_number_id: str,
        message_id: str,
        status: str,
        recipient_id: str,
        *,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        item: dict[str, Any] = {
            "id": message_id,
            "status": status,
            "timestamp": str(int(self.now())),
            "recipient_id": recipient_id,
        }
        if errors:
            item["errors"] = errors
        with self._lock:
            self._statuses[phone_number_id].append(item)

    def _wamid(self, wa_id: str) -> str:
        raw = f"{wa_id}:{next(self._seq):012d}:{secrets.token_hex(4)}".encode()
        return "wamid.HBgL" + base64.b64encode(raw).decode().rstrip("=")

    def _mid(self) -> str:
        return f"m_{secrets.token_urlsafe(18)}{next(self._seq)}"

    def _media_id(self) -> str:
        return str(1_000_000_000_000_000 + next(self._seq))

    def _url_hash(self, media_id: str, expires: int) -> str:
        message = f"{media_id}:{expires}".encode()
        return hmac.new(self._url_secret, message, hashlib.sha256).hexdigest()[:32]

    async def _pause(self, request: Request, delay_s: float) -> None:
        """Sleep `delay_s`, ending early when the client hangs up or the fake stops."""
        deadline = time.monotonic() + delay_s
        while (left := deadline - time.monotonic()) > 0 and not self._closing.is_set():
            await asyncio.sleep(min(left, 0.02))
            if await request.is_disconnected():
                return

    def start(self) -> Self:
        self._closing.clear()
        return super().start()

    def stop(self) -> None:
        """Stop serving (delayed answers are cut short)."""
        self._closing.set()
        super().stop()


# -- helpers -------------------------------------------------------------------------------


def _json(
    body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(dict(body), status_code=status, headers=dict(headers or {}))


def _traced(body: dict[str, Any]) -> dict[str, Any]:
    """A scripted body, with a fresh `fbtrace_id` in its error when it has none."""
    error = body.get("error")
    if isinstance(error, dict) and not error.get("fbtrace_id"):
        return {**body, "error": {**error, "fbtrace_id": _trace_id()}}
    return body


def _sent_answer(to: Any, wa_id: str, message_id: str, *, template: bool) -> dict[str, Any]:
    message: dict[str, Any] = {"id": message_id}
    if template:
        message["message_status"] = "accepted"
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": str(to), "wa_id": wa_id}],
        "messages": [message],
    }


def _status_error(code: int) -> dict[str, Any]:
    """An `errors[]` item of a failed status, as the statuses webhook gives it."""
    title = TITLES.get(code, "Error")
    details = RE_ENGAGEMENT_DETAILS if code == 131047 else title
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details},
        "href": ERROR_CODES_URL,
    }


def _check_interactive(content: Mapping[str, Any]) -> None:
    kind = content.get("type")
    body = content.get("body")
    action = content.get("action")
    if kind not in ("button", "list", "cta_url", "product", "product_list", "flow"):
        raise _invalid(f"Param interactive['type'] is not valid: {kind!r}")
    if not isinstance(body, dict) or not body.get("text"):
        raise _missing("interactive['body']['text']")
    if len(str(body["text"])) > MAX_CAPTION:
        raise _invalid(
            f"Param interactive['body']['text'] must be at most {MAX_CAPTION} characters."
        )
    if not isinstance(action, dict):
        raise _missing("interactive['action']")
    if kind == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise _invalid("Param interactive['action']['buttons'] must have 1 to 3 buttons.")
        ids, titles = set(), set()
        for button in buttons:
            reply = button.get("reply") if isinstance(button, dict) else None
            if not isinstance(reply, dict) or button.get("type") != "reply":
                raise _invalid("Each button must be {'type': 'reply', 'reply': {'id', 'title'}}.")
            button_id, title = str(reply.get("id") or ""), str(reply.get("title") or "")
            if not 1 <= len(button_id) <= 256:
                raise _invalid("Button id length invalid. Min length: 1, Max length: 256")
            if not 1 <= len(title) <= 20:
                raise _invalid("Button title length invalid. Min length: 1, Max length: 20")
            if button_id in ids or title in titles:
                raise _invalid("Button title and id must be unique within a message.")
            ids.add(button_id)
            titles.add(title)
    elif kind == "list":
        label = str(action.get("button") or "")
        if not 1 <= len(label) <= 20:
            raise _invalid("Param interactive['action']['button'] must be 1 to 20 characters.")
        sections = action.get("sections")
        if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
            raise _invalid("Param interactive['action']['sections'] must have 1 to 10 sections.")
        rows = [r for s in sections if isinstance(s, dict) for r in s.get("rows") or ()]
        if not 1 <= len(rows) <= 10:
            raise _invalid("Total row count exceed max allowed count: 10")
        for row in rows:
            if not isinstance(row, dict) or not 1 <= len(str(row.get("id") or "")) <= 200:
                raise _invalid("Row id length invalid. Min length: 1, Max length: 200")
            if not 1 <= len(str(row.get("title") or "")) <= 24:
                raise _invalid("Row title length invalid. Min length: 1, Max length: 24")
            if len(str(row.get("description") or "")) > 72:
                raise _invalid("Row description length invalid. Max length: 72")


def _check_messenger_message(message: Mapping[str, Any]) -> None:
    text = message.get("text")
    attachment = message.get("attachment")
    if text is None and attachment is None:
        raise _param("param message must have text or attachment")
    if text is not None and not 1 <= len(str(text)) <= MAX_MESSENGER_TEXT:
        raise _param(
            f"Length of param message[text] must be less than or equal to {MAX_MESSENGER_TEXT}"
        )
    replies = message.get("quick_replies")
    if replies is None:
        return
    if not isinstance(replies, list) or not 1 <= len(replies) <= 13:
        raise _param("param message[quick_replies] must have between 1 and 13 elements")
    for reply in replies:
        if not isinstance(reply, dict):
            raise _param("param message[quick_replies] must contain objects")
        if reply.get("content_type", "text") == "text":
            if not 1 <= len(str(reply.get("title") or "")) <= 20:
                raise _param("param message[quick_replies][title] must be 1 to 20 characters")
            if not 1 <= len(str(reply.get("payload") or "")) <= 1000:
                raise _param("param message[quick_replies][payload] must be 1 to 1000 characters")


def _lax_json(value: str) -> Any:
    """A JSON-string form field, also in the single-quoted form Meta's curl examples use."""
    for candidate in (value, value.replace("'", '"')):
        with contextlib.suppress(ValueError):
            return json.loads(candidate)
    return value


def _unversioned(path: str) -> str:
    """`/v21.0/123/messages` -> `/123/messages`; kinds are returned as they are."""
    if not path.startswith("/"):
        return path
    parts = [p for p in path.split("/") if p]
    if parts and _VERSION.fullmatch(parts[0]):
        parts = parts[1:]
    return "/" + "/".join(parts)


def _user_key(user_id: str) -> str:
    """A wa_id as WhatsApp keeps it (digits only: "+1 631…" is "1631…"); a PSID as it is."""
    return _digits(user_id) or user_id


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _display(number: str) -> str:
    return f"+{number}" if number.isdigit() else number


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _size(limit: int) -> str:
    return f"{limit // MB} MB" if limit >= MB else f"{limit // 1024} KB"
