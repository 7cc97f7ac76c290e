"""A fake Slack Web API for benchmarks, in its own process, that counts answers.

`python -m bench.slack_server PORT_FILE` binds 127.0.0.1 on a free port (port 0), writes the port
to PORT_FILE and serves, under `/api/`: `auth.test`, `conversations.info` (every channel exists
and the app is a member), `chat.postMessage` and `chat.update`. Posts are counted per bot token
(each side of a comparison gets its own token) and per channel; a post or update whose text is
`bench.llm_server.ANSWER` is an *answer*, counted per (token, thread) too.

Read by the load generator:
- `GET /count?token=T` (or `?channel=C`): `{"posts", "updates", "answers", "thinking", "other"}`.
- `GET /wait?token=T&thread=TS&n=N&timeout=S`: answers once (token, thread) has at least N answers,
  200 `{"count": c}`, or 504 with the same body after S seconds. The generator keeps a fixed number
  of events in flight with it, without polling.

A bare ASGI app (no framework), so its own cost stays small and equal for both sides.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections import defaultdict
from typing import Any

from bench.asgi_server import (
    Arrivals,
    Receive,
    Scope,
    Send,
    counts_of,
    fields,
    read_body,
    respond_json,
    serve,
)
from bench.llm_server import ANSWER

THINKING = "_thinking…_"  # adapters.slack.channel.THINKING: a slow answer's placeholder
TEAM_ID = "T0001"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"


_KINDS = ("posts", "updates", "answers", "thinking", "other")
_by_token: defaultdict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_KINDS, 0))
_by_channel: defaultdict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_KINDS, 0))
_answers = Arrivals()  # per (token, thread)
_thread_of: dict[str, str] = {}  # "thinking" placeholder ts -> the thread it was posted in
_seq = itertools.count(1)


def _ts() -> str:
    return f"{int(time.time())}.{next(_seq):06d}"


def _count(token: str, channel: str, kind: str) -> None:
    _by_token[token][kind] += 1
    _by_channel[channel][kind] += 1


def _record(token: str, body: dict[str, Any], *, thread: str, update: bool) -> None:
    channel = str(body.get("channel", ""))
    text = body.get("text")
    _count(token, channel, "updates" if update else "posts")
    if text == ANSWER:
        _count(token, channel, "answers")
        _answers.add((token, thread))
    elif text == THINKING:
        _count(token, channel, "thinking")
    else:
        _count(token, channel, "other")


def _api(method: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    if method == "auth.test":
        return {
            "ok": True,
            "url": "https://bench.slack.com/",
            "team": "Bench",
            "user": "studio",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }
    if method == "conversations.info":
        channel = str(body.get("channel", ""))
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": channel.lower(),
                "is_channel": True,
                "is_private": False,
                "is_im": False,
                "is_member": True,
            },
        }
    if method == "chat.postMessage":
        ts = _ts()
        thread = str(body.get("thread_ts") or ts)
        if body.get("text") == THINKING:
            _thread_of[ts] = thread  # the answer will replace it: count it in that thread
        _record(token, body, thread=thread, update=False)
        return {"ok": True, "channel": body.get("channel"), "ts": ts, "message": {"ts": ts}}
    if method == "chat.update":
        ts = str(body.get("ts", ""))
        # kept: a slow answer's placeholder is edited with the text so far, then the answer
        _record(token, body, thread=_thread_of.get(ts, ts), update=True)
        return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}
    return {"ok": False, "error": "unknown_method"}


def _token(scope: Scope, body: dict[str, Any]) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return str(value.decode().removeprefix("Bearer ").strip())
    return str(body.get("token", ""))


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    raw = await read_body(receive)
    path: str = scope["path"]
    try:
        body = fields(scope, raw)
    except ValueError:
        await respond_json(send, 400, {"ok": False, "error": "invalid_json"})
        return
    if path.startswith("/api/"):
        await respond_json(send, 200, _api(path.removeprefix("/api/"), _token(scope, body), body))
    elif path == "/count":
        table, key = (_by_token, "token") if "token" in body else (_by_channel, "channel")
        await respond_json(send, 200, counts_of(table, _KINDS, str(body.get(key, ""))))
    elif path == "/wait":
        query = {k: str(v) for k, v in body.items()}
        key_of = (query.get("token", ""), query.get("thread", ""))
        status, data = await _answers.wait(key_of, query, at=False)
        await respond_json(send, status, data)
    else:
        await respond_json(send, 404, {"ok": False, "error": "not_found"})


if __name__ == "__main__":
    serve(app, sys.argv[1])
