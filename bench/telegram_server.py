"""A fake Telegram Bot API for benchmarks, in its own process, that counts answers.

`python -m bench.telegram_server PORT_FILE` binds 127.0.0.1 on a free port (port 0), writes the
port to PORT_FILE and serves `POST|GET /bot{token}/{method}`: `getMe` (any well-formed token is a
bot), `setWebhook` (the `secret_token` is recorded per token), `deleteWebhook`, `setMyCommands`,
`setMyShortDescription` and `sendMessage`. Bodies may be JSON, form-encoded (aiogram without a
file) or multipart. A `sendMessage` whose text is `bench.llm_server.ANSWER` is an *answer*, counted
per token and per (token, chat), with the `time.monotonic()` of its arrival (CLOCK_MONOTONIC, the
same clock in every process of the machine).

Read by the load generator:
- `GET /count?token=T`: `{"sends", "answers", "other", "calls"}` (`calls`: every method).
- `GET /count`: the same summed over every token, plus `"tokens"` (how many tokens called).
- `GET /webhook?token=T`: `{"url", "secret_token"}` from that token's last `setWebhook`;
  `GET /webhooks`: every token's, `{token: {"url", "secret_token"}}`.
- `GET /wait?token=T&chat=C&n=N&timeout=S`: answers once (token, chat) has at least N answers,
  200 `{"count": c, "at": t}` (`t`: arrival time of the N-th answer), or 504 with the count after
  S seconds. The generator keeps a fixed number of updates in flight with it, without polling.

A bare ASGI app (no framework), so its own cost stays small and equal for both sides.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import uvicorn

from bench.llm_server import ANSWER

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_KINDS = ("sends", "answers", "other", "calls")
_by_token: defaultdict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_KINDS, 0))
_answers: defaultdict[tuple[str, str], list[float]] = defaultdict(list)  # arrival times
_waiters: defaultdict[tuple[str, str], list[tuple[int, asyncio.Future[None]]]] = defaultdict(list)
_webhooks: dict[str, dict[str, str]] = {}
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
        times = _answers[key]
        times.append(time.monotonic())
        waiting = _waiters.get(key)
        if waiting:
            for n, future in [w for w in waiting if w[0] <= len(times)]:
                waiting.remove((n, future))
                if not future.done():
                    future.set_result(None)
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
        case _:
            return {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
    return {"ok": True, "result": result}


async def _wait(query: dict[str, str]) -> tuple[int, dict[str, Any]]:
    key = (query.get("token", ""), query.get("chat", ""))
    n = int(query.get("n", "1"))
    times = _answers[key]
    if len(times) < n:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        _waiters[key].append((n, future))
        try:
            await asyncio.wait_for(future, timeout=float(query.get("timeout", "10")))
        except TimeoutError:
            if (n, future) in _waiters[key]:
                _waiters[key].remove((n, future))
            return 504, {"count": len(times)}
    return 200, {"count": len(times), "at": times[n - 1]}


def _multipart(raw: bytes, content_type: str) -> dict[str, Any]:
    """Plain fields of a multipart/form-data body (file parts are kept as bytes)."""
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"')
    fields: dict[str, Any] = {}
    for part in raw.split(b"--" + boundary.encode()):
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        name = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition") and 'name="' in line:
                name = line.split('name="', 1)[1].split('"', 1)[0]
        if name:
            data = value.removesuffix(b"\r\n")
            try:
                fields[name] = data.decode()
            except UnicodeDecodeError:
                fields[name] = data
    return fields


def _body(scope: Scope, raw: bytes) -> dict[str, Any]:
    body: dict[str, Any] = dict(parse_qsl(scope.get("query_string", b"").decode()))
    if raw:
        content_type = ""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode()
        if "json" in content_type:
            parsed = json.loads(raw)
            if isinstance(parsed, dict):
                body.update(parsed)
        elif "multipart" in content_type:
            body.update(_multipart(raw, content_type))
        else:
            body.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    return body


async def _respond(send: Send, status: int, data: dict[str, Any]) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    path: str = unquote(scope["path"])
    try:
        body = _body(scope, b"".join(chunks))
    except (ValueError, IndexError):
        await _respond(send, 400, {"ok": False, "error_code": 400, "description": "bad body"})
        return
    if path.startswith("/bot"):
        token, _, method = path.removeprefix("/bot").partition("/")
        data = _api(token, method, body)
        await _respond(send, 200 if data["ok"] else 404, data)
    elif path == "/count":
        if "token" in body:
            counts = _by_token.get(str(body["token"])) or dict.fromkeys(_KINDS, 0)
            await _respond(send, 200, dict(counts))
        else:
            total = {k: sum(c[k] for c in _by_token.values()) for k in _KINDS}
            await _respond(send, 200, {**total, "tokens": len(_by_token)})
    elif path == "/webhooks":
        await _respond(send, 200, _webhooks)
    elif path == "/webhook":
        await _respond(send, 200, _webhooks.get(str(body.get("token", "")), {}))
    elif path == "/wait":
        status, data = await _wait({k: str(v) for k, v in body.items()})
        await _respond(send, status, data)
    else:
        await _respond(send, 404, {"ok": False, "error_code": 404, "description": "Not Found"})


def main(port_file: str) -> None:
    # IPPROTO_TCP explicitly so asyncio sets TCP_NODELAY (see bench.llm_server).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    port = sock.getsockname()[1]
    partial = Path(f"{port_file}.part")
    partial.write_text(str(port))
    os.replace(partial, port_file)  # the reader never sees half a number
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", backlog=2048
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1])
