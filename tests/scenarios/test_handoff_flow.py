"""Human handoff end to end: a web end user's conversation handed to a Slack channel's thread
(the real slack-bolt and slack_sdk against the fake Slack Web API, signed events), the team's
answers reaching the web page, the bot silent until `/resume`; stats count it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from storage import handoffs as handoff_store
from tests.adapters.slack.test_slack_flow import post, slack_settings
from tests.conftest import running_service
from tests.factories import Service
from tests.fakes.slack import Call, FakeSlack
from tests.fakes.slack_payloads import event_body, message_event

SUPPORT: dict[str, Any] = {
    "name": "support-bot",
    "model": "offline",
    "pipeline": [
        {
            "id": "triage",
            "kind": "router",
            "params": {"routes": [{"keyword": "human", "to": "human"}], "default": "answer"},
        },
        {"id": "answer", "kind": "template", "params": {"text": "I am a bot."}},
        {"id": "human", "kind": "handoff", "params": {"reason": "they asked for a person"}},
    ],
}
ASKED = "I've asked a person from the team to help; they'll answer here."


@pytest.fixture
async def service(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[Service]:
    slack.add_channel("C0001", "support", member=True)
    slack.add_channel("C0002", "elsewhere", member=False)
    async with running_service(slack_settings(tmp_path, slack)) as running:
        yield running


async def eventually(check: Callable[[], Any], what: str) -> Any:
    """`check()` once it is truthy (polling the service's background work)."""
    for _ in range(250):
        found = await check() if asyncio.iscoroutinefunction(check) else check()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def live_support_bot(service: Service) -> str:
    """The bot with its handoff to #support set through the Studio, live on the web."""
    flow = SUPPORT["pipeline"]
    await service.call("POST", "/api/v1/bots/import", json={**SUPPORT, "pipeline": flow[1:2]})
    refused = await service.client.patch(
        "/api/v1/bots/support-bot", json={"pipeline": flow}, headers=service.auth()
    )
    assert refused.status_code == 422
    assert "step 'human': a handoff step needs somewhere to hand over" in refused.text
    said = await service.reply("/handoff support-bot to #support timeout 30")
    assert "hands conversations over to #support" in said, said
    await service.call("PATCH", "/api/v1/bots/support-bot", json={"pipeline": flow})
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/support-bot/promote", json={"to": env})
    deployed = await service.call(
        "POST", "/api/v1/bots/support-bot/deployments", json={"channel": "web"}
    )
    return str(deployed["id"])


async def history(service: Service, deployment: str, session: str, after: int = 0) -> Any:
    response = await service.client.get(
        f"/api/v1/chat/{deployment}/history", params={"session": session, "after": after}
    )
    assert response.status_code == 200, response.text
    return response.json()


def thread_posts(slack: FakeSlack, thread: str) -> list[Call]:
    return [c for c in slack.calls_to("chat.postMessage") if c.body.get("thread_ts") == thread]


async def the_thread(service: Service) -> str:
    async with service.app.state.core.db.read_conn() as conn:
        (handoff,) = await handoff_store.open_handoffs(conn)
    assert (handoff.room_kind, handoff.room) == ("slack", "C0001")
    return handoff.thread


async def test_web_to_a_slack_thread_and_back(service: Service, slack: FakeSlack) -> None:
    deployment = await live_support_bot(service)
    first = (await service.chat(deployment, "hello")).json()
    assert first["reply"] == "I am a bot." and first["handoff"] is False
    session = first["session"]

    handed = (await service.chat(deployment, "I want a human <!channel>", session)).json()
    assert handed["reply"] == ASKED and handed["handoff"] is True
    (announced,) = slack.calls_to("chat.postMessage")
    text = announced.body["text"]
    assert announced.body["channel"] == "C0001" and "thread_ts" not in announced.body
    assert "support-bot hands a conversation over to you" in text
    assert f"Who: web:{session[:12]}, on the web chat" in text
    assert "Why: they asked for a person" in text
    assert "» web:" in text and ": hello" in text and "I am a bot." in text
    assert "I want a human &lt;!channel&gt;" in text  # escaped: it pings nobody
    thread = await the_thread(service)

    # a person answers in the thread; a redelivery of that event is not passed on again
    answer = message_event(
        "Hi, I'm Sam. What's your order number?",
        user="U0009",
        channel="C0001",
        channel_type="channel",
        thread_ts=thread,
    )
    for _ in range(2):
        assert (await post(service, event_body(answer))).status_code == 200
    shown = (await history(service, deployment, session))["total"]

    async def answered() -> Any:
        data = await history(service, deployment, session, after=shown - 1)
        return data["messages"] if data["messages"][-1]["role"] == "human" else None

    await eventually(answered, "the team's answer on the web page")

    # the end user writes again: relayed to the thread, and the bot says nothing
    again = (await service.chat(deployment, "It is 42", session)).json()
    assert again == {**again, "reply": "", "handoff": True}
    relayed = await eventually(lambda: thread_posts(slack, thread), "the relay in the thread")
    assert relayed[-1].body["text"] == f"web:{session[:12]}: It is 42"

    later = message_event(
        "Found it: it ships today.",
        user="U0009",
        channel="C0001",
        channel_type="channel",
        thread_ts=thread,
    )
    assert (await post(service, event_body(later))).status_code == 200

    async def both_answers() -> Any:
        messages = (await history(service, deployment, session))["messages"]
        humans = [m["text"] for m in messages if m["role"] == "human"]
        return humans if len(humans) >= 2 else None

    humans = await eventually(both_answers, "both answers on the web page")
    assert humans == ["Hi, I'm Sam. What's your order number?", "Found it: it ships today."]

    # /resume in the thread: the thread is told, and the bot answers again
    resume = message_event(
        "/resume", user="U0009", channel="C0001", channel_type="channel", thread_ts=thread
    )
    assert (await post(service, event_body(resume))).status_code == 200

    async def handed_back() -> bool:
        return not (await history(service, deployment, session))["handoff"]

    await eventually(handed_back, "the conversation handed back")
    told = await eventually(
        lambda: [c for c in thread_posts(slack, thread) if "answers again" in c.body["text"]],
        "the thread told",
    )
    assert told[-1].body["text"].startswith("slack:U0009 handed the conversation back")
    after = (await service.chat(deployment, "hello again", session)).json()
    assert after["reply"] == "I am a bot." and after["handoff"] is False

    stats = await service.call("GET", "/api/v1/bots/support-bot/stats")
    assert stats["handoffs"] == 1 and stats["handoff_first_answer_p50_s"] is not None
