"""`/stats BOT`'s chart by REST (`GET /api/v1/bots/{bot}/stats/chart.png`) and in the web
console's answer: a PNG of the bot's real traffic, or of a note when there was none."""

from __future__ import annotations

import base64

from tests.factories import Service
from tests.png import png_size

BUSY, IDLE = (800, 640), (800, 200)


async def _chart(service: Service, bot: str, key: str | None = None, **params: str) -> bytes:
    response = await service.client.get(
        f"/api/v1/bots/{bot}/stats/chart.png", params=params, headers=service.auth(key)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return response.content


async def test_the_chart_of_a_bot_with_traffic_and_of_one_without(service: Service) -> None:
    deployment = await service.live_web_bot()
    for text in ("Hello?", "Still there?"):
        assert (await service.chat(deployment, text)).status_code == 200
    assert png_size(await _chart(service, "faq-bot", period="24h")) == BUSY
    assert png_size(await _chart(service, "faq-bot")) == BUSY  # 7 days by default
    await service.import_bot("quiet-bot")
    assert png_size(await _chart(service, "quiet-bot", period="30d")) == IDLE


async def test_viewers_read_it_and_bad_asks_change_nothing(service: Service) -> None:
    await service.import_bot()
    ops = service.app.state.core.ops
    viewer = (await ops.create_api_key(team="local", role="viewer", name="vera")).key
    assert png_size(await _chart(service, "faq-bot", key=viewer)) == IDLE
    bad = await service.client.get(
        "/api/v1/bots/faq-bot/stats/chart.png", params={"period": "1y"}, headers=service.auth()
    )
    assert bad.status_code == 422 and "period must be one of 24h, 7d, 30d" in bad.json()["error"]
    other = (await ops.create_team("acme")).key
    hidden = await service.client.get(
        "/api/v1/bots/faq-bot/stats/chart.png", headers=service.auth(other)
    )
    assert hidden.status_code == 404


async def test_the_console_shows_the_numbers_with_the_chart(service: Service) -> None:
    deployment = await service.live_web_bot()
    await service.chat(deployment, "Hello?")
    said = await service.say("/stats faq-bot 24h")
    assert "faq-bot" in said["reply"] and "last 24 hours" in said["reply"]
    [message] = said["messages"]
    file = message["file"]
    assert file["name"] == "faq-bot-stats-24h.png" and file["mime"] == "image/png"
    assert png_size(base64.b64decode(file["data"])) == BUSY
    assert {f["label"] for f in message["fields"]} >= {"Turns", "Errors"}  # the numbers stay
    await service.import_bot("quiet-bot")
    [quiet] = (await service.say("/stats quiet-bot"))["messages"]
    assert quiet == {
        "text": "*quiet-bot*: no conversations in the last 7 days.",
        "fields": [],
        "buttons": [],
        "file": None,
    }
    [team] = (await service.say("/stats"))["messages"]  # every bot, a line each: no chart
    assert "faq-bot" in team["text"] and team["file"] is None
