"""What the hand-written baselines share (`bench.baseline_*`): the platform's litellm settings,
the model call they make, background answers, and serving with the platform's uvicorn settings.

Imported by a baseline process only (it imports litellm and uvicorn). `BENCH_LLM_BASE` is the
model server's `/v1` URL."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any

import litellm
import uvicorn

API_BASE = os.environ.get("BENCH_LLM_BASE", "http://127.0.0.1:9/v1")
SYSTEM = "You are a helpful, concise assistant."

# The platform's own litellm settings (runtime.llm.import_litellm), so neither side logs per call.
litellm.suppress_debug_info = True
litellm.telemetry = False
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
    logging.getLogger(_name).setLevel(logging.WARNING)

_tasks: set[asyncio.Task[None]] = set()


async def ask(text: str) -> str:
    """The model's answer to `text` after the system prompt (system + user only, no history):
    its content, "" if none."""
    response: Any = await litellm.acompletion(
        model="openai/fake",
        api_base=API_BASE,
        api_key="sk-bench",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
        num_retries=0,
        max_retries=0,
        timeout=30,
    )
    return str(response.choices[0].message.content or "")


def spawn(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` in the background (answered after the webhook's 200), kept until it ends."""
    task = asyncio.create_task(work)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def background_done() -> None:
    """Wait for the background work still running (at shutdown)."""
    await asyncio.gather(*_tasks, return_exceptions=True)


def main(app: Any) -> None:
    """Serve `app` on 127.0.0.1 at the port in argv[1] with the platform's uvicorn settings (one
    process, access log off, log level info)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info", access_log=False
    )
    uvicorn.Server(config).run()
