"""What the benchmarks' fake servers share (the model, Slack, Telegram, WhatsApp): serving a bare
ASGI app on a free loopback port that is written to a file, reading a request's fields, answering
JSON, counting calls and answers, and the `/wait` that the load generator waits on."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def serve(app: App, port_file: str) -> None:
    """Serve `app` on 127.0.0.1 at a free port, written to `port_file` once it listens."""
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


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, data: dict[str, Any]) -> None:
    await respond(send, status, json.dumps(data).encode())


def fields(scope: Scope, raw: bytes) -> dict[str, Any]:
    """The query string and the body's fields: JSON, form-encoded or multipart (file parts as
    bytes). Malformed JSON raises ValueError."""
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


def _multipart(raw: bytes, content_type: str) -> dict[str, Any]:
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"')
    found: dict[str, Any] = {}
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
                found[name] = data.decode()
            except UnicodeDecodeError:
                found[name] = data
    return found


def counts_of(
    table: Mapping[str, dict[str, int]], kinds: Sequence[str], key: str
) -> dict[str, int]:
    """A `GET /count` answer: what `table` counted for `key` (zeros if nothing)."""
    return dict(table.get(key) or dict.fromkeys(kinds, 0))


def counts_total(table: Mapping[str, dict[str, int]], kinds: Sequence[str]) -> dict[str, int]:
    """A `GET /count` answer over every key of `table`."""
    return {k: sum(c[k] for c in table.values()) for k in kinds}


class Arrivals:
    """Answers per key (e.g. (token, chat)), each with the `time.monotonic()` of its arrival
    (CLOCK_MONOTONIC, the same clock in every process of the machine), and the `/wait` requests
    for a key's N-th answer, so that a load generator keeps messages in flight without polling."""

    def __init__(self) -> None:
        self.times: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
        self._waiters: defaultdict[tuple[str, str], list[tuple[int, asyncio.Future[None]]]] = (
            defaultdict(list)
        )

    def add(self, key: tuple[str, str]) -> float:
        """An answer for `key` arrived now: its time; whoever waited for it is answered."""
        times = self.times[key]
        times.append(time.monotonic())
        waiting = self._waiters.get(key)
        if waiting:
            for n, future in [w for w in waiting if w[0] <= len(times)]:
                waiting.remove((n, future))
                if not future.done():
                    future.set_result(None)
        return times[-1]

    async def wait(
        self, key: tuple[str, str], query: Mapping[str, str], *, at: bool = True
    ) -> tuple[int, dict[str, Any]]:
        """`GET /wait?...&n=N&timeout=S`: once `key` has at least N answers, 200 `{"count": c,
        "at": t}` (`t`: arrival time of the N-th; left out unless `at`), or 504 `{"count": c}`
        after S seconds."""
        n = int(query.get("n", "1"))
        times = self.times[key]
        if len(times) < n:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters[key].append((n, future))
            try:
                await asyncio.wait_for(future, timeout=float(query.get("timeout", "10")))
            except TimeoutError:
                if (n, future) in self._waiters[key]:
                    self._waiters[key].remove((n, future))
                return 504, {"count": len(times)}
        if not at:
            return 200, {"count": len(times)}
        return 200, {"count": len(times), "at": times[n - 1]}
