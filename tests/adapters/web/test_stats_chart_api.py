"""`/stats BOT`'s chart by REST (`GET /api/v1/bots/{bot}/stats/chart.png`) and in the web
console's answer: a PNG of the bot's real traffic, or of a note when there was none; and the
numbers beside it (`GET /api/v1/bots/{bot}/stats`) per version and channel."""

from __future__ import annotations

import base64

import pytest

from tests.factories import Service
from tests.png import png_size
from tests.stats_traffic import mixed_traffic, stored_usage

BUSY, IDLE = (800, 640), (800, 200)
PANEL = 200  # the height of each panel more (a channel's, an A/B test's)


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


async def test_numbers_and_chart_by_version_channel_and_variant(service: Service) -> None:
    """Two channels and an A/B test: the JSON's per-version and per-channel numbers are the
    stored turns' (a /try's count nowhere), and the chart has its three panels more."""
    await mixed_traffic(service)
    stats = await service.call("GET", "/api/v1/bots/faq-bot/stats", params={"period": "24h"})
    stored = await stored_usage(service)
    assert stats["turns"] == 2 + 4
    assert [v["version"] for v in stats["versions"]] == [3, 2, 1]  # newest first
    assert [c["channel"] for c in stats["channels"]] == ["telegram", "web"]  # busiest first
    for part in ("version", "channel"):
        for row in stats[f"{part}s"]:
            found = stored[part][row[part]]
            assert {k: row[k] for k in found} == pytest.approx(found), (part, row)
    [v3] = [v for v in stats["versions"] if v["version"] == 3]
    assert v3["cost_usd"] == pytest.approx(0.001) and v3["unknown_cost_turns"] == 1
    png = await _chart(service, "faq-bot", period="24h")
    assert png_size(png) == (BUSY[0], BUSY[1] + 3 * PANEL)  # by channel; A/B turns and latency
