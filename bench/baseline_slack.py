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
from typing import Any

from fastapi import FastAPI, Request, Response
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bench.baselines import ask, main

BOT_NAME = "bench-bot"

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
    reply = await ask(event.get("text") or "")
    await client.chat_postMessage(
        channel=event["channel"],
        thread_ts=event.get("thread_ts") or event["ts"],
        text=reply or " ",
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
    main(app)
