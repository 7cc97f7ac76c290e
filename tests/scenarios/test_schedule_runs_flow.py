"""Schedules and follow-ups in the whole service: a schedule moves with promotion and rollback,
fires once across a restart of the service, and a web end user's page fetches what the bot
said first from the history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from builders.cron import next_fire
from storage.tables import utcnow
from tests.conftest import running_service, service_settings
from tests.factories import Service

NEW_YEAR = {
    "id": "new-year",
    "cron": "0 9 1 1 *",
    "tz": "Europe/Lisbon",
    "message": "Happy new year!",
}


async def history(service: Service, deployment: str, session: str) -> list[str]:
    response = await service.client.get(
        f"/api/v1/chat/{deployment}/history", params={"session": session}
    )
    assert response.status_code == 200, response.text
    return [str(m["text"]) for m in response.json()["messages"]]


def next_new_year() -> datetime:
    fire = next_fire(NEW_YEAR["cron"], NEW_YEAR["tz"], utcnow())
    assert fire is not None
    return fire.astimezone(UTC)


async def run_due(service: Service, now: datetime) -> None:
    await service.app.state.core.scheduler.run_due(now)


async def test_a_schedule_moves_with_promotion_and_rollback_and_fires_once(
    tmp_path: Path,
) -> None:
    settings = service_settings(tmp_path)
    async with running_service(settings) as service:
        deployment = await service.live_web_bot("news-bot")  # version 1: no schedule
        said = (await service.chat(deployment, "hello")).json()
        session = said["session"]
        await service.call("PATCH", "/api/v1/bots/news-bot", json={"schedules": [NEW_YEAR]})
        for env in ("staging", "production"):
            await service.call("POST", "/api/v1/bots/news-bot/promote", json={"to": env})
        due = next_new_year()
        await run_due(service, due + timedelta(seconds=5))
        assert (await history(service, deployment, session))[-1] == "Happy new year!"

    async with running_service(settings) as service:  # a restart at the same instant
        await run_due(service, due + timedelta(seconds=5))
        await run_due(service, due + timedelta(minutes=10))
        texts = await history(service, deployment, session)
        assert texts.count("Happy new year!") == 1
        back = await service.call(
            "POST", "/api/v1/bots/news-bot/rollback", json={"env": "production", "version": 1}
        )
        assert back["version"] == 1
        next_year = next_fire(NEW_YEAR["cron"], NEW_YEAR["tz"], due + timedelta(days=1))
        assert next_year is not None
        await run_due(service, next_year)  # rolled back to a version without it: silent
        assert (await history(service, deployment, session)).count("Happy new year!") == 1


async def test_a_follow_up_reaches_a_web_end_user_through_the_history(tmp_path: Path) -> None:
    nudge: dict[str, Any] = {"id": "nudge", "after_minutes": 30, "message": "Still there?"}
    async with running_service(service_settings(tmp_path)) as service:
        deployment = await service.live_web_bot("nudge-bot", followups=[nudge])
        start = utcnow()
        session = (await service.chat(deployment, "hello")).json()["session"]
        await run_due(service, start + timedelta(minutes=29))
        assert "Still there?" not in await history(service, deployment, session)
        await run_due(service, start + timedelta(minutes=31))
        assert (await history(service, deployment, session))[-1] == "Still there?"
