"""A fake Telegram Bot API for benchmarks, in its own process, that counts answers.

`python -m bench.telegram_server PORT_FILE` binds 127.0.0.1 on a free port (port 0), writes the
port to PORT_FILE and serves `POST|GET /bot{token}/{method}`: `getMe` (any well-formed token is a
bot), `setWebhook` (the `secret_token` is recorded per token), `deleteWebhook`, `setMyCommands`,
`setMyShortDescription`, `sendMessage`, and `sendMessageDraft` and `sendChatAction` (both answer
`true`, as Telegram does). Bodies may be JSON, form-encoded (aiogram without a file) or multipart. A
`sendMessage` whose text is `bench.llm_server.ANSWER` is an *answer*, counted per token and per
(token, chat), with the `time.monotonic()` of its arrival (CLOCK_MONOTONIC, the same clock in every
process of the machine). The first text of an answer a chat is shown (a `sendMessageDraft` carrying
text, or the answer itself if no draft came before it) is recorded the same way.

Read by the load generator:
- `GET /count?token=T`: `{"sends", "answers", "other", "calls", "drafts", "actions"}` (`calls`:
  every method; `drafts`: `sendMessageDraft`, `actions`: `sendChatAction`).
- `GET /count`: the same summed over every token, plus `"tokens"` (how many tokens called).
- `GET /webhook?token=T`: `{"url", "secret_token"}` from that token's last `setWebhook`;
  `GET /webhooks`: every token's, `{token: {"url", "secret_token"}}`.
- `GET /wait?token=T&chat=C&n=N&timeout=S`: answers once (token, chat) has at least N answers,
  200 `{"count": c, "at": t}` (`t`: arrival time of the N-th answer), or 504 with the count after
  S seconds. The generator keeps a fixed number of updates in flight with it, without polling.
- `GET /shown?token=T&chat=C&timeout=S`: answers once (token, chat) has been shown text, 200
  `{"at": t, "via": "sendMessageDraft"|"sendMessage", "text": ..., "drafts": n}` (`t`: arrival time
  of the first draft carrying text, or of the answer if none came before it; `drafts`: the chat's
  `sendMessageDraft` calls so far), or 504 `{}` after S seconds.

A bare ASGI app (no framework), so its own cost stays small and equal for both sides.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections import defaultdict
from typing import Any
from urllib.parse import unquote

from bench.asgi_server import (
    Arrivals,
    Receive,
    Scope,
    Send,
    counts_of,
    counts_total,
    fields,
    read_body,
    respond_json,
    serve,
)
from bench.llm_server import ANSWER

_KINDS = ("sends", "answers", "other", "calls", "drafts", "actions")
_by_token: defaultdict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_KINDS, 0))
_answers = Arrivals()  # per (token, chat)
_webhooks: dict[str, dict[str, str]] = {}
# (token, chat) -> the first text shown there: {"at", "via", "text"}; and who waits for it
_shown: dict[tuple[str, str], dict[str, Any]] = {}
_shown_waiters: defaultdict[tuple[str, str], list[asyncio.Future[None]]] = defaultdict(list)
_drafts: defaultdict[tuple[str, str], int] = defaultdict(int)  # sendMessageDraft calls
_message_ids = itertools.count(1)


def _bot_id(token: str) -> int:
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else 0


def _send_message(token: str, body: dict[str, Any]) -> dict[str, Any]:
    counts = _by_token[token]
    counts["sends"] += 1
    chat = str(body.get("chat_id", ""))
    text = str(body.get("text", ""))
    if text == ANSWER:
        counts["answers"] += 1
        key = (token, chat)
        at = _answers.add(key)
        _show(key, "sendMessage", text, at)
    else:
        counts["other"] += 1
    chat_id = int(chat) if chat.lstrip("-").isdigit() else 0
    return {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private", "first_name": "User"},
        "from": {"id": _bot_id(token), "is_bot": True, "first_name": "Bench"},
        "text": text,
    }


def _show(key: tuple[str, str], via: str, text: str, at: float) -> None:
    """The chat `key` is shown `text` (a draft or the answer): recorded if it is the first."""
    if key in _shown:
        return
    _shown[key] = {"at": at, "via": via, "text": text}
    for future in _shown_waiters.pop(key, []):
        if not future.done():
            future.set_result(None)


def _send_draft(token: str, body: dict[str, Any]) -> bool:
    at = time.monotonic()
    _by_token[token]["drafts"] += 1
    key = (token, str(body.get("chat_id", "")))
    _drafts[key] += 1
    text = str(body.get("text", ""))
    if text:
        _show(key, "sendMessageDraft", text, at)
    return True


def _api(token: str, method: str, body: dict[str, Any]) -> dict[str, Any]:
    _by_token[token]["calls"] += 1
    result: Any
    match method.lower():
        case "getme":
            bot_id = _bot_id(token)
            result = {
                "id": bot_id,
                "is_bot": True,
                "first_name": "Bench",
                "username": f"bench_{bot_id}_bot",
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        case "setwebhook":
            _webhooks[token] = {
                "url": str(body.get("url", "")),
                "secret_token": str(body.get("secret_token", "")),
            }
            result = True
        case "deletewebhook":
            _webhooks.pop(token, None)
            result = True
        case "setmycommands" | "setmyshortdescription" | "setmydescription":
            result = True
        case "sendmessage":
            result = _send_message(token, body)
        case "sendmessagedraft":
            result = _send_draft(token, body)
        case "sendchataction":
            _by_token[token]["actions"] += 1
            result = True
        case _:
            return {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
    return {"ok": True, "result": result}


async def _first_shown(query: dict[str, str]) -> tuple[int, dict[str, Any]]:
    key = (query.get("token", ""), query.get("chat", ""))
    if key not in _shown:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        _shown_waiters[key].append(future)
        try:
            await asyncio.wait_for(future, timeout=float(query.get("timeout", "10")))
        except TimeoutError:
            if future in _shown_waiters.get(key, []):
                _shown_waiters[key].remove(future)
            return 504, {}
    return 200, {**_shown[key], "drafts": _drafts.get(key, 0)}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    raw = await read_body(receive)
    path: str = unquote(scope["path"])
    try:
        body = fields(scope, raw)
    except (ValueError, IndexError):
        await respond_json(send, 400, {"ok": False, "error_code": 400, "description": "bad body"})
        return
    if path.startswith("/bot"):
        token, _, method = path.removeprefix("/bot").partition("/")
        data = _api(token, method, body)
        await respond_json(send, 200 if data["ok"] else 404, data)
    elif path == "/count":
        if "token" in body:
            await respond_json(send, 200, counts_of(_by_token, _KINDS, str(body["token"])))
        else:
            total = counts_total(_by_token, _KINDS)
            await respond_json(send, 200, {**total, "tokens": len(_by_token)})
    elif path == "/webhooks":
        await respond_json(send, 200, _webhooks)
    elif path == "/webhook":
        await respond_json(send, 200, _webhooks.get(str(body.get("token", "")), {}))
    elif path == "/wait":
        query = {k: str(v) for k, v in body.items()}
        status, data = await _answers.wait((query.get("token", ""), query.get("chat", "")), query)
        await respond_json(send, status, data)
    elif path == "/shown":
        status, data = await _first_shown({k: str(v) for k, v in body.items()})
        await respond_json(send, status, data)
    else:
        await respond_json(send, 404, {"ok": False, "error_code": 404, "description": "Not Found"})


if __name__ == "__main__":
    serve(app, sys.argv[1])
