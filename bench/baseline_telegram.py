"""The hand-written Telegram baseline: a bare aiogram webhook bot + litellm, nothing else.

One FastAPI route `POST /telegram/webhook` checks the `X-Telegram-Bot-Api-Secret-Token` header,
parses the update with aiogram's `Update.model_validate`, answers 200 at once and, in the
background (like aiogram's own `SimpleRequestHandler(handle_in_background=True)`), asks the model
and replies with `bot.send_message` through one `AiohttpSession`. No storage, no inbox, no
history, no deduplication, no routing.

`python -m bench.baseline_telegram PORT` serves it with the platform's uvicorn settings (one
process, access log off, log level info). Environment: `BENCH_LLM_BASE` (the model server's `/v1`
URL), `BENCH_TELEGRAM_API` (the Bot API server's root URL), `BENCH_TELEGRAM_TOKEN`,
`BENCH_TELEGRAM_SECRET`.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Update
from fastapi import FastAPI, Request, Response

from bench.baselines import ask, background_done, main, spawn

SECRET = os.environ.get("BENCH_TELEGRAM_SECRET", "bench-secret")

logger = logging.getLogger("bench.baseline_telegram")
session = AiohttpSession(
    api=TelegramAPIServer.from_base(os.environ.get("BENCH_TELEGRAM_API", "http://127.0.0.1:9"))
)
bot = Bot(os.environ.get("BENCH_TELEGRAM_TOKEN", "123456:" + "A" * 30), session=session)


async def answer(update: Update) -> None:
    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return
    try:
        reply = await ask(message.text or "")
        await bot.send_message(chat_id=message.chat.id, text=reply or " ")
    except Exception:
        logger.exception("answering update %s failed", update.update_id)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await background_done()
    await session.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/telegram/webhook")
async def webhook(request: Request) -> Response:
    secret = request.headers.get("x-telegram-bot-api-secret-token", "")
    if not hmac.compare_digest(secret, SECRET):
        return Response(status_code=401)
    update = Update.model_validate(await request.json(), context={"bot": bot})
    spawn(answer(update))
    return Response(status_code=200)


if __name__ == "__main__":
    main(app)
