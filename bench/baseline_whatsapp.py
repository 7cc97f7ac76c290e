"""The hand-written WhatsApp baseline: a bare FastAPI webhook + litellm + one httpx client.

One FastAPI route `POST /whatsapp/{deployment_id}` reads the raw body, checks its
`X-Hub-Signature-256` (HMAC-SHA256 of the bytes as they came, keyed with the app secret,
compared in constant time: 401 otherwise), parses Meta's JSON with `json.loads`, answers 200 at
once and, in the background (one task per text message), asks the model and posts the answer to
`POST {BENCH_WHATSAPP_API}/{phone_number_id}/messages` with the access token, through one
`httpx.AsyncClient`: the HTTP client the service's Graph calls use (`adapters.meta.graph`), as
`bench.baseline_telegram` uses the service's aiogram, so that the comparison is of what the
platform adds and not of HTTP clients (httpx costs several times aiohttp's CPU a request here:
if the service's Graph client changes, change this one with it). No storage, no inbox, no
history, no deduplication, no 24-hour window, no routing: what a developer would write by hand
for one phone number.

`python -m bench.baseline_whatsapp PORT` serves it with the platform's uvicorn settings (one
process, access log off, log level info). Environment: `BENCH_LLM_BASE` (the model server's `/v1`
URL), `BENCH_WHATSAPP_API` (the Graph API's URL, version included), `BENCH_WHATSAPP_TOKEN`,
`BENCH_WHATSAPP_APP_SECRET`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response

from bench.baselines import ask, background_done, main, spawn

GRAPH = os.environ.get("BENCH_WHATSAPP_API", "http://127.0.0.1:9/v21.0").rstrip("/")
TOKEN = os.environ.get("BENCH_WHATSAPP_TOKEN", "EAAbench" + "0" * 24)
APP_SECRET = os.environ.get("BENCH_WHATSAPP_APP_SECRET", "0" * 32).encode()

logger = logging.getLogger("bench.baseline_whatsapp")
graph = httpx.AsyncClient(
    base_url=GRAPH + "/",
    headers={"Authorization": f"Bearer {TOKEN}"},
    timeout=httpx.Timeout(20.0, connect=5.0),
)


async def answer(phone_number_id: str, wa_id: str, text: str) -> None:
    try:
        reply = await ask(text)
        sent = await graph.post(
            f"{phone_number_id}/messages",
            json={
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": wa_id,
                "type": "text",
                "text": {"body": reply or " "},
            },
        )
        sent.raise_for_status()
    except Exception:
        logger.exception("answering %s failed", wa_id)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await background_done()
    await graph.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/whatsapp/{deployment_id}")
async def webhook(deployment_id: str, request: Request) -> Response:
    body = await request.body()
    given = request.headers.get("x-hub-signature-256", "")
    expected = "sha256=" + hmac.new(APP_SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return Response(status_code=401)
    try:
        post = json.loads(body)
        for entry in post.get("entry", []):
            for change in entry.get("changes", []):
                if change.get("field") != "messages":
                    continue
                value = change.get("value", {})
                phone_number_id = str(value["metadata"]["phone_number_id"])
                for message in value.get("messages", []):
                    if message.get("type") == "text":
                        spawn(
                            answer(phone_number_id, str(message["from"]), message["text"]["body"])
                        )
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.info("ignored a post that is not WhatsApp's")  # Meta retries a non-200
    return Response(status_code=200)


if __name__ == "__main__":
    main(app)
