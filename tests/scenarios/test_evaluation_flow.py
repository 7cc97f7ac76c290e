"""A team judges its bot by chatting with the Studio: it builds a dataset from production's real
conversations, compares the version in production with a new one on it, runs a live A/B test
between them on the web, where end users rate answers with the page's thumbs, and promotes the
winner. The offline model answers from the bot's knowledge, so no provider is needed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import running_service, service_settings
from tests.factories import Service

USERS = 80  # end users, one conversation each: about 40 per variant at 50%


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(service_settings(tmp_path)) as running:
        yield running


async def say(service: Service, text: str) -> str:
    reply = await service.reply(text)
    assert "Something went wrong" not in reply, reply
    return reply


async def ask(service: Service, deployment: str, user: int) -> tuple[str, int]:
    """End user `user` asks in a conversation of their own: the answer and its id."""
    response = await service.chat(deployment, f"How long do refunds take? (customer {user})")
    assert response.status_code == 200, response.text
    answer = response.json()
    return answer["reply"], answer["message_id"]


async def rate(service: Service, deployment: str, session: str, answer: int, up: bool) -> None:
    rated = await service.client.post(
        f"/api/v1/chat/{deployment}/feedback",
        json={"session": session, "message_id": answer, "rating": "up" if up else "down"},
    )
    assert rated.status_code == 204, rated.text


async def test_dataset_eval_ab_test_and_winner_by_chatting(service: Service) -> None:
    # v1 in production on the web
    await say(service, "/newbot faq-bot")
    await say(service, "/knowledge faq-bot add Refunds take 10 business days.")
    assert "v1" in await say(service, "/promote faq-bot")
    await say(service, "/promote faq-bot production")
    assert "production now runs v1" in await say(service, "yes")
    deployed = await say(service, "/deploy faq-bot web")
    deployment = deployed.split("/chat/", 1)[1].split()[0].strip("`.)")

    # real conversations, then a dataset from them
    for user in range(3):
        reply, _ = await ask(service, deployment, user)
        assert "10 business days" in reply
    made = await say(service, "/dataset faq-bot from-last 3 as golden")
    assert "golden" in made and "3" in made
    shown = await say(service, "/dataset faq-bot show golden")
    assert "customer 2" in shown
    await say(service, '/dataset faq-bot evaluate golden contains "5 business days"')

    # a better v2 on staging, compared with production on the dataset
    removed = await say(service, "/knowledge faq-bot remove refunds-take-10-business-days.txt")
    assert removed.startswith("Removed"), removed
    await say(service, "/knowledge faq-bot add Refunds take 5 business days.")
    assert "v2" in await say(service, "/promote faq-bot")
    started = await say(service, "/eval faq-bot golden production staging")
    assert "golden" in started
    await service.app.state.core.studio.drain()
    told = (await service.call("GET", "/api/v1/studio/messages"))["messages"]
    report = next(m for m in reversed(told) if "golden: run" in m["text"])
    scores = {f["label"]: f["value"] for f in report["fields"]}
    assert scores["v1 (production)"].startswith("0%"), scores
    assert scores["v2 (staging)"].startswith("100%"), scores
    assert "row 3: fail → pass" in report["text"] and report["file"]["name"].endswith(".png")

    # a live A/B test: half the end users get v2, and rate what they get
    assert "50%" in await say(service, "/abtest faq-bot v1 v2 50")
    seen = {"v1": 0, "v2": 0}
    for user in range(USERS):
        response = await service.chat(deployment, f"How long do refunds take? (customer {user})")
        assert response.status_code == 200, response.text
        answer = response.json()
        v2 = "5 business days" in answer["reply"]
        seen["v2" if v2 else "v1"] += 1
        await rate(service, deployment, answer["session"], answer["message_id"], up=v2)
        again = await service.chat(
            deployment, "How long do refunds take, again?", answer["session"]
        )
        assert ("5 business days" in again.json()["reply"]) == v2  # each user sticks to one
    assert 25 <= seen["v2"] <= 55, seen

    status = await say(service, "/abtest faq-bot status")
    assert "significant" in status and "Winner" in status, status
    asked = await say(service, "/abtest faq-bot promote-winner")
    assert "and run v2 in production?" in asked, asked
    promoted = await say(service, "yes")
    assert "v2" in promoted, promoted
    shown = await say(service, "/show faq-bot")
    assert shown.split("Production:", 1)[1].split()[0] == "v2", shown
    after = await say(service, "/abtest faq-bot status")
    assert "promoted" in after, after

    # everyone gets v2 now
    reply, _ = await ask(service, deployment, USERS + 1)
    assert "5 business days" in reply
