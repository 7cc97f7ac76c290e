"""Time to the first word: what the platform adds to the model's own time to first token, on
the web chat API's server-sent events (`main.py serve`, a bot with history 10 on the
zero-latency streaming model server), measured at the client, requests alternating between
the platform and the model server asked directly (the same streamed completion), raw and
through litellm's streaming client (the platform's model gateway uses it)."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp

from bench.bench_web import setup_platform, web_platform
from bench.common import (
    HOST,
    TIMEOUT,
    Figure,
    Report,
    free_port,
    model_server,
    percentile,
    wait_http,
)

REQUESTS = 300  # per side, after the warm-up
WARMUP = 30
BUDGET_S = 60.0
# Before each platform request: the previous turn's storing, and litellm's own logging of its
# stream, are done by then (a person's next message is seconds away, not a millisecond).
IDLE_S = 0.02
FIGURES = (
    "ttft_added_ms",
    "ttft_added_p99_ms",
    "ttft_platform_p50_ms",
    "ttft_model_p50_ms",
    "ttft_litellm_p50_ms",
)


async def _first_token(http: aiohttp.ClientSession, url: str, body: dict[str, object]) -> float:
    """Milliseconds from the request to the first piece of the answer's text in its stream."""
    started = time.perf_counter()
    headers = {"Accept": "text/event-stream", "Authorization": "Bearer sk-bench"}
    async with http.post(url, json=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {await response.text()}")
        async for raw in response.content:
            line = raw.decode().strip()
            if line.startswith("event: token") or _has_text(line):
                return (time.perf_counter() - started) * 1000
    raise RuntimeError(f"{url}: the stream ended without text")


def _has_text(line: str) -> bool:
    """A model chunk (`data: {...}`) carrying some of the answer's text."""
    if not line.startswith("data: {"):
        return False
    choices = json.loads(line.removeprefix("data: ")).get("choices") or [{}]
    return bool(choices[0].get("delta", {}).get("content"))


async def _litellm_first_token(litellm: Any, llm_base: str) -> float:
    """The same, through litellm's own streaming client in this process: what the platform's
    model gateway pays before any work of its own."""
    started = time.perf_counter()
    answer = await litellm.acompletion(
        model="openai/fake",
        api_base=llm_base,
        api_key="sk-bench",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    first = None
    async for chunk in answer:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = (time.perf_counter() - started) * 1000
    if first is None:
        raise RuntimeError("litellm's stream ended without text")
    return first


async def run(report: Report) -> None:
    from runtime.llm import import_litellm

    litellm = await asyncio.to_thread(import_litellm)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stream-")))
        _, llm_base = await model_server(stack, tmp)
        port = free_port()
        platform = web_platform(stack, tmp, llm_base, port)
        base = f"http://{HOST}:{port}"
        await wait_http(f"{base}/healthz", platform)
        key = (tmp / "data" / "local.key").read_text().strip()
        deployment = await setup_platform(base, key)
        chat = f"{base}/api/v1/chat/{deployment}"
        direct = f"{llm_base}/chat/completions"
        ask = {"model": "fake", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        platform_ms: list[float] = []
        model_ms: list[float] = []
        litellm_ms: list[float] = []
        report.begin("the first-token requests")
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            for n in range(WARMUP + REQUESTS):  # alternating, one at a time
                await asyncio.sleep(IDLE_S)
                asked = await _first_token(http, chat, {"text": f"question {n}"})
                own = await _first_token(http, direct, ask)
                through = await _litellm_first_token(litellm, llm_base)
                if n >= WARMUP:
                    platform_ms.append(asked)
                    model_ms.append(own)
                    litellm_ms.append(through)
    added = [a - b for a, b in zip(platform_ms, model_ms, strict=True)]
    how = (
        f"{REQUESTS} web chat requests with Accept: text/event-stream (a new conversation each, "
        f"bot history 10, SQLite; {IDLE_S * 1000:.0f} ms idle before each, so the previous turn "
        "is stored), each followed by the same streamed completion asked of the "
        "model server directly (raw HTTP) and through litellm's streaming client; client-side "
        "time to the first text"
    )
    report.add(
        Figure("ttft_added_ms", round(percentile(added, 0.5), 2), "ms", "<= 5", "p50; " + how),
        Figure("ttft_added_p99_ms", round(percentile(added, 0.99), 2), "ms", "", "p99; " + how),
        Figure("ttft_platform_p50_ms", round(percentile(platform_ms, 0.5), 2), "ms", "", how),
        Figure("ttft_model_p50_ms", round(percentile(model_ms, 0.5), 2), "ms", "", how),
        Figure("ttft_litellm_p50_ms", round(percentile(litellm_ms, 0.5), 2), "ms", "", how),
    )
