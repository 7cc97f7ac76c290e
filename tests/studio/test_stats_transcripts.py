"""`/stats BOT` in the Studio: the numbers beside the chart gain a line per version and per
channel when more than one answered, each with its turns, tokens and cost as stored (an
unknown cost never shown as $0); a bot with one version on one channel keeps the short
answer."""

from __future__ import annotations

import base64
from typing import Any

from tests.factories import Service
from tests.png import png_size
from tests.stats_traffic import mixed_traffic, stored_usage


def _fields(said: dict[str, Any]) -> dict[str, str]:
    [message] = said["messages"]
    return {f["label"]: f["value"] for f in message["fields"]}


def _line(usage: dict[str, Any]) -> str:
    """What `/stats` says of one version's or channel's stored answers."""
    cost = usage["cost_usd"]
    priced = "unknown" if cost is None else f"${cost:.4f}"
    return (
        f"{usage['turns']:,} turn{'s' if usage['turns'] != 1 else ''} · "
        f"{usage['prompt_tokens']:,} + {usage['completion_tokens']:,} tokens · cost {priced}"
    )


async def test_stats_by_version_and_channel(service: Service) -> None:
    await mixed_traffic(service)
    said = await service.say("/stats faq-bot 24h")
    shown, stored = _fields(said), await stored_usage(service)
    assert shown["Turns"] == "6"
    assert shown["v3"].startswith(_line(stored["version"][3]))
    assert shown["v3"].endswith("(1 turn at unknown price)")
    assert shown["v2"] == _line(stored["version"][2]) == "2 turns · 201 + 21 tokens · cost $0.0050"
    assert shown["v1"].startswith(_line(stored["version"][1]))
    assert shown["on telegram"].startswith(_line(stored["channel"]["telegram"]))
    assert shown["on web"].startswith(_line(stored["channel"]["web"]))
    labels = list(shown)
    assert labels.index("v3") < labels.index("v1") < labels.index("on telegram")
    [message] = said["messages"]
    assert png_size(base64.b64decode(message["file"]["data"])) == (800, 640 + 3 * 200)


async def test_one_version_on_one_channel_keeps_the_short_answer(service: Service) -> None:
    deployment = await service.live_web_bot()
    await service.chat(deployment, "Hello?")
    shown = _fields(await service.say("/stats faq-bot"))
    assert shown["Turns"] == "1" and not any(label.startswith(("v", "on ")) for label in shown)
