"""A zero-latency OpenAI-compatible server for benchmarks, in its own process.

`python -m bench.llm_server PORT_FILE` binds 127.0.0.1 on a free port (port 0), writes the port
to PORT_FILE and serves `POST /v1/chat/completions` (and `/chat/completions`) with a fixed short
answer and usage. It is a bare ASGI app, so its own cost stays small and identical for every
client of the comparison.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn

ANSWER = "Refunds take 5 business days."
PROMPT_TOKENS = 24
COMPLETION_TOKENS = 7

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_counter = 0


def _completion(model: str) -> bytes:
    global _counter
    _counter += 1
    return json.dumps(
        {
            "id": f"chatcmpl-bench{_counter}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
            },
        }
    ).encode()


async def _respond(send: Send, status: int, body: bytes) -> None:
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
    if scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
        await _respond(send, 404, b'{"error": {"message": "not found"}}')
        return
    try:
        model = str(json.loads(b"".join(chunks)).get("model", "fake"))
    except ValueError:
        await _respond(send, 400, b'{"error": {"message": "body is not JSON"}}')
        return
    await _respond(send, 200, _completion(model))


def main(port_file: str) -> None:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every answer waits ~40 ms for a delayed ACK (headers and body are two writes).
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
