"""A zero-latency OpenAI-compatible server for benchmarks, in its own process.

`python -m bench.llm_server PORT_FILE` binds 127.0.0.1 on a free port (port 0), writes the port
to PORT_FILE and serves `POST /v1/chat/completions` (and `/chat/completions`) with a fixed short
answer and usage; with `"stream": true`, as OpenAI's server-sent chunks, a word each, then the
usage and `[DONE]`. It is a bare ASGI app, so its own cost stays small and identical for every
client of the comparison.

Options for a model that takes its time (default: none, every chunk at once):
`--first-chunk-after S` sends a stream's headers at once and its first chunk (the role and the
first word) S seconds later, as a model thinking before its first token; `--word-every S` then
spaces the following words by S seconds. A non-streamed answer comes after the time its stream
would take.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Mapping

from bench.asgi_server import Receive, Scope, Send, read_body, respond, serve

ANSWER = "Refunds take 5 business days."
PROMPT_TOKENS = 24
COMPLETION_TOKENS = 7


_counter = 0
# Set by the command line (`--first-chunk-after`, `--word-every`); 0: at once.
FIRST_CHUNK_AFTER_S = 0.0
WORD_EVERY_S = 0.0


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


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    raw = await read_body(receive)
    if scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
        await respond(send, 404, b'{"error": {"message": "not found"}}')
        return
    try:
        body = json.loads(raw)
    except ValueError:
        await respond(send, 400, b'{"error": {"message": "body is not JSON"}}')
        return
    model = str(body.get("model", "fake"))
    if body.get("stream"):
        await _stream(send, model)
        return
    if FIRST_CHUNK_AFTER_S or WORD_EVERY_S:  # as long as its stream would take
        words = len(re.findall(r"\S+\s*", ANSWER))
        await asyncio.sleep(FIRST_CHUNK_AFTER_S + WORD_EVERY_S * max(0, words - 1))
    await respond(send, 200, _completion(model))


async def _stream(send: Send, model: str) -> None:
    """The answer as `chat.completion.chunk` events, one `http.response.body` message each."""
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": model}
    events = [{"role": "assistant", "content": ""}] + [
        {"content": word} for word in re.findall(r"\S+\s*", ANSWER)
    ]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    if FIRST_CHUNK_AFTER_S:
        await asyncio.sleep(FIRST_CHUNK_AFTER_S)
    for n, delta in enumerate(events):
        if n > 1 and WORD_EVERY_S:  # the role and the first word come together
            await asyncio.sleep(WORD_EVERY_S)
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        await send({"type": "http.response.body", "body": _data(chunk), "more_body": True})
    usage = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }
    last = {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    tail = _data(last) + _data({**head, "choices": [], "usage": usage}) + b"data: [DONE]\n\n"
    await send({"type": "http.response.body", "body": tail, "more_body": False})


def _data(chunk: Mapping[str, object]) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _options(argv: list[str]) -> str:
    """Read the command line into the module's settings: the port file."""
    global FIRST_CHUNK_AFTER_S, WORD_EVERY_S
    parser = argparse.ArgumentParser(prog="python -m bench.llm_server")
    parser.add_argument("port_file")
    parser.add_argument("--first-chunk-after", type=float, default=0.0, metavar="S")
    parser.add_argument("--word-every", type=float, default=0.0, metavar="S")
    options = parser.parse_args(argv)
    FIRST_CHUNK_AFTER_S = options.first_chunk_after
    WORD_EVERY_S = options.word_every
    return str(options.port_file)


if __name__ == "__main__":
    serve(app, _options(sys.argv[1:]))
