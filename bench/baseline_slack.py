"""The hand-written Slack baseline: bare slack-bolt + litellm, the same flow and nothing else.

A bolt `AsyncApp` acknowledges at once (`process_before_response=False`); its `message` listener
asks the model and posts the answer in the event's thread with `chat.postMessage`. No storage, no
inbox, no history, no routing.

`python -m bench.baseline_slack PORT` serves it with the platform's uvicorn settings (one process,
access log off, log level info) through slack-bolt's `AsyncSlackRequestHandler`. Environment:
`BENCH_LLM_BASE` (the model server's `/v1` URL), `BENCH_SLACK_API` (the Web API base URL, with
its trailing slash), `BENCH_SLACK_TOKEN`, `BENCH_SLACK_SECRET`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import litellm
import uvicorn
from fastapi import FastAPI, Request, Response
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

API_BASE = os.environ.get("BENCH_LLM_BASE", "http://127.0.0.1:9/v1")
SYSTEM = "You are a helpful, concise assistant."
BOT_NAME = "bench-bot"

# The platform's own litellm settings (runtime.llm.import_litellm), so neither side logs per call.
litellm.suppress_debug_info = True
litellm.telemetry = False
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
    logging.getLogger(_name).setLevel(logging.WARNING)

logger = logging.getLogger("bench.baseline_slack")
bolt = AsyncApp(
    client=AsyncWebClient(
        token=os.environ.get("BENCH_SLACK_TOKEN", "xoxb-baseline"),
        base_url=os.environ.get("BENCH_SLACK_API", "http://127.0.0.1:9/api/"),
    ),
    signing_secret=os.environ.get("BENCH_SLACK_SECRET", "secret"),
    process_before_response=False,
    logger=logger,
)


@bolt.event("message")
async def on_message(event: dict[str, Any], client: AsyncWebClient) -> None:
    response = await litellm.acompletion(
        model="openai/fake",
        api_base=API_BASE,
        api_key="sk-bench",
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": event.get("text") or ""},
        ],
        num_retries=0,
        max_retries=0,
        timeout=30,
    )
    await client.chat_postMessage(
        channel=event["channel"],
        thread_ts=event.get("thread_ts") or event["ts"],
        text=response.choices[0].message.content or " ",
        username=BOT_NAME,
    )


handler = AsyncSlackRequestHandler(bolt)
app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/slack/events")
async def slack_events(request: Request) -> Response:
    return await handler.handle(request)


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info", access_log=False
    )
    uvicorn.Server(config).run()
