"""The hand-written baseline of `bench_schedules`: a bare aiogram script sending one message to
each of COUNT private chats, paced at RATE a second (send i is due at start + i / RATE, at most
16 under way, as the scheduler's fan-out), to the same fake Bot API. No storage: what a script
that only sends achieves at that pace on this machine. Writes OUT (JSON): when it started
(time.monotonic) and its CPU seconds.

Usage: python -m bench.baseline_fanout API_URL TOKEN RATE COUNT FIRST_CHAT OUT
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

CONCURRENCY = 16


async def main(
    api_url: str, token: str, rate: float, count: int, first_chat: int
) -> dict[str, float]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url))
    bot = Bot(token, session=session)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def send(chat: int) -> None:
        try:
            await bot.send_message(
                chat_id=chat, text="Good morning! Any questions about your order?"
            )
        finally:
            gate.release()

    try:
        await bot.get_me()  # the connection open, as the platform's is
        started, cpu = time.monotonic(), time.process_time()
        sends = []
        for i in range(count):
            await gate.acquire()
            wait = started + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            sends.append(asyncio.create_task(send(first_chat + i)))
        await asyncio.gather(*sends)
        return {"started_at": started, "cpu_s": time.process_time() - cpu}
    finally:
        await session.close()


if __name__ == "__main__":
    url, bot_token, per_s, how_many, first, out = sys.argv[1:7]
    found = asyncio.run(main(url, bot_token, float(per_s), int(how_many), int(first)))
    Path(out).write_text(json.dumps(found))
