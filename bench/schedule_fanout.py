"""Child process of `bench_schedules`: the platform firing one schedule to every end user of a
bot on Telegram, in-process (`build_services`, SQLite, as `serve` wires it) and driven through
`Scheduler.run_due`.

Set-up: a team, a bot whose version has one schedule without a target (each end user), promoted
to production and deployed on Telegram (the fake Bot API at API_URL: getMe, setWebhook, ...),
then COUNT end users, each a private chat that started the bot: their conversations written into
the database in one transaction (as `storage.conversations` creates them). The Telegram channel's
`broadcast_per_s` (Telegram's 25) is set to RATE for the bench, before the services are built.
Then it fires the schedule's next occurrence and writes DATA_DIR/result.json: the monotonic times
(CLOCK_MONOTONIC, shared by the processes of the machine) around `run_due`, what the run
recorded, and its own RSS before, halfway through (in time: the sends are paced), after and at
most during the fan-out (read every 0.2 s).

Usage: python -m bench.schedule_fanout DATA_DIR API_URL TOKEN RATE COUNT
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CRON = "0 9 * * *"
MESSAGE = "Good morning! Any questions about your order?"
FIRST_CHAT = 500_000_000  # the end users' Telegram ids (private chats: positive)


async def main(data: Path, api_url: str, token: str, rate: float, count: int) -> dict[str, Any]:
    from sqlalchemy import insert
    from sqlmodel import select

    from adapters.telegram.bots import TelegramBots
    from builders.cron import next_fire
    from main import build_services, load_settings
    from storage.tables import Conversation, Deployment, ScheduleRun

    # What Telegram allows a bot (30/s, paced at 25/s), scaled for the bench: see bench_schedules.
    TelegramBots.capabilities = dataclasses.replace(TelegramBots.capabilities, broadcast_per_s=rate)
    settings = load_settings(
        data_dir=data,
        database_url=f"sqlite+aiosqlite:///{data / 'studio.db'}",
        qdrant_url=":memory:",
        telegram_api_url=api_url,
        public_url="https://studio.bench.invalid",  # webhook mode: the fake never calls it
    )
    services = await build_services(settings)
    try:
        ops = services.ops
        caller = await ops.authenticate((await ops.create_team("bench")).key)
        spec = {
            "name": "news-bot",
            "model": "offline",
            "schedules": [{"id": "morning", "cron": CRON, "tz": "UTC", "message": MESSAGE}],
        }
        await ops.import_bot(caller, spec)
        await ops.promote(caller, "news-bot", to="staging")
        await ops.promote(caller, "news-bot", to="production")
        deployment = await ops.deploy(caller, "news-bot", channel="telegram", token=token)
        started = time.perf_counter()
        async with services.db.write_conn() as conn:
            query = select(Deployment.bot_id).where(Deployment.id == deployment.id)
            bot_id = (await conn.execute(query)).scalar_one()
            await conn.execute(
                insert(Conversation),
                [
                    {
                        "bot_id": bot_id,
                        "deployment_id": deployment.id,
                        "channel": "telegram",
                        "key": str(chat),
                        "user": f"telegram:{chat}",
                    }
                    for chat in range(FIRST_CHAT, FIRST_CHAT + count)
                ],
            )
        inserted_s = time.perf_counter() - started
        assert services.adapter("telegram") is not None
        await services.adapter(
            "telegram"
        ).warm()  # aiogram imported, as in a service that has answered
        due = next_fire(CRON, "UTC", datetime.now(UTC))
        assert due is not None
        gc.collect()
        before = rss_mb()
        samples = [(time.monotonic(), before)]
        sampler = asyncio.create_task(_sample(samples))
        fired_at, cpu = time.monotonic(), time.process_time()
        await services.scheduler.run_due(due + timedelta(seconds=1))
        returned_at, cpu_s = time.monotonic(), time.process_time() - cpu
        sampler.cancel()
        middle = (fired_at + returned_at) / 2
        _, halfway = min(samples, key=lambda sample: abs(sample[0] - middle))
        gc.collect()
        after = rss_mb()
        async with services.db.read() as session:
            runs = select(ScheduleRun).where(ScheduleRun.env == "production")
            run = (await session.exec(runs)).one()
        return {
            "inserted_s": inserted_s,
            "fired_at": fired_at,
            "returned_at": returned_at,
            "cpu_s": cpu_s,
            "status": run.status,
            "sent": run.sent,
            "failed": run.failed,
            "error": run.error,
            "rss_before_mb": before,
            "rss_after_mb": after,
            "rss_halfway_mb": halfway,
            "rss_peak_mb": max(rss for _, rss in samples),
        }
    finally:
        await services.close()


def rss_mb() -> float:
    """This process's resident set size (VmRSS), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def _sample(samples: list[tuple[float, float]]) -> None:
    while True:
        await asyncio.sleep(0.2)
        samples.append((time.monotonic(), rss_mb()))


if __name__ == "__main__":
    folder, url, bot_token, per_s, how_many = sys.argv[1:6]
    found = asyncio.run(main(Path(folder), url, bot_token, float(per_s), int(how_many)))
    (Path(folder) / "result.json").write_text(json.dumps(found))
