"""A fake WhatsApp Cloud API (Meta's Graph API) for benchmarks, in its own process, that counts
answers.

`python -m bench.whatsapp_server PORT_FILE` binds 127.0.0.1 on a free port (port 0), writes the
port to PORT_FILE and serves, under a version prefix (`/v21.0`, as `STUDIO_WHATSAPP_API_URL`
names it: `http://127.0.0.1:PORT/v21.0`):
- `GET /{phone-number-id}`: the phone number object (`id`, `display_phone_number`,
  `verified_name`, `quality_rating`), what a deploy's set-up reads;
- `POST /{phone-number-id}/messages`: Meta's answer to a send (`messaging_product`, `contacts`
  with the recipient's wa_id, `messages` with a fresh `wamid`). A text message whose body is
  `bench.llm_server.ANSWER` is an *answer*, counted per phone number and per (phone number,
  recipient), with the `time.monotonic()` of its arrival (CLOCK_MONOTONIC, the same clock in
  every process of the machine).
Every call needs an `Authorization: Bearer ...` header (401 with Graph's error body otherwise,
as Meta answers #190); tokens are not checked further.

Read by the load generator:
- `GET /count?phone=P`: `{"sends", "answers", "other", "calls"}` for that phone number;
  `GET /count`: the same summed over every phone number, plus `"phones"`.
- `GET /wait?phone=P&to=W&n=N&timeout=S`: answers once (phone, recipient) has at least N
  answers, 200 `{"count": c, "at": t}` (`t`: arrival time of the N-th answer), or 504 with the
  count after S seconds. The generator keeps a fixed number of messages in flight with it,
  without polling.

A bare ASGI app (no framework, the body parsed only for sends), so its own cost stays small and
equal for both sides: the bench reports its CPU per answer.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qsl

from bench.asgi_server import (
    Arrivals,
    Receive,
    Scope,
    Send,
    counts_of,
    counts_total,
    read_body,
    respond,
    respond_json,
    serve,
)
from bench.llm_server import ANSWER

_KINDS = ("sends", "answers", "other", "calls")
_VERSIONED = re.compile(r"/v\d+(?:\.\d+)?/(\d+)(/messages)?/?")
_by_phone: defaultdict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_KINDS, 0))
_answers = Arrivals()  # per (phone number, recipient)
_wamids = itertools.count(1)
_UNAUTHORIZED = json.dumps(
    {
        "error": {
            "message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException",
            "code": 190,
            "fbtrace_id": "Abench",
        }
    }
).encode()


def _authorized(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bool(value.startswith(b"Bearer ") and len(value) > 7)
    return False


def _phone(phone: str) -> dict[str, Any]:
    _by_phone[phone]["calls"] += 1
    return {
        "verified_name": "Bench",
        "display_phone_number": f"+1 555-{phone[-7:-4]}-{phone[-4:]}",
        "id": phone,
        "quality_rating": "GREEN",
        "code_verification_status": "VERIFIED",
    }


def _send(phone: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    counts = _by_phone[phone]
    counts["calls"] += 1
    try:
        body = json.loads(raw)
        to = str(body["to"])
    except (ValueError, KeyError, TypeError):
        error = {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}
        return 400, {"error": error}
    counts["sends"] += 1
    text = body.get("text")
    if body.get("type") == "text" and isinstance(text, dict) and text.get("body") == ANSWER:
        counts["answers"] += 1
        _answers.add((phone, to))
    else:
        counts["other"] += 1
    return 200, {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": f"wamid.BENCH{next(_wamids):012d}"}],
    }


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    raw = await read_body(receive)
    path: str = scope["path"]
    graph = _VERSIONED.fullmatch(path)
    if graph is not None:
        if not _authorized(scope):
            await respond(send, 401, _UNAUTHORIZED)
            return
        phone, messages = graph.group(1), graph.group(2)
        method = scope["method"]
        if messages and method == "POST":
            status, data = _send(phone, raw)
            await respond_json(send, status, data)
        elif not messages and method == "GET":
            await respond_json(send, 200, _phone(phone))
        else:
            error = {"message": "Unsupported request", "type": "GraphMethodException", "code": 100}
            await respond_json(send, 400, {"error": error})
        return
    query = dict(parse_qsl(scope.get("query_string", b"").decode()))
    if path == "/count":
        if "phone" in query:
            await respond_json(send, 200, counts_of(_by_phone, _KINDS, query["phone"]))
        else:
            total = counts_total(_by_phone, _KINDS)
            await respond_json(send, 200, {**total, "phones": len(_by_phone)})
    elif path == "/wait":
        status, data = await _answers.wait((query.get("phone", ""), query.get("to", "")), query)
        await respond_json(send, status, data)
    else:
        await respond_json(send, 404, {"error": {"message": "Unknown path", "code": 803}})


if __name__ == "__main__":
    serve(app, sys.argv[1])
