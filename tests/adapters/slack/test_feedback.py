"""End users rate a generated bot's Slack answers with its feedback buttons: signed
`block_actions` posted over real HTTP to `/slack/events` (the real slack-bolt), the answer found by
the clicked message's channel and ts, the rating kept in the `feedback` table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from sqlalchemy import select
from sqlmodel import col

from adapters.slack.render import MAX_BLOCKS, blocks
from runtime.messages import Address, Button, OutgoingMessage
from storage.tables import Feedback, Message
from tests.adapters.slack.test_slack_flow import dm, post, slack_settings
from tests.conftest import running_service
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import (
    FORM,
    action_body,
    event_body,
    message_event,
    new_ts,
    sign,
)
from tests.scenarios.test_handoff_flow import as_the_workspace, eventually

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")
CHANNEL = "C0001"
THANKS = "Thanks for the feedback"


@pytest.fixture
async def service(tmp_path: Path, slack: FakeSlack, llm: FakeLLM) -> AsyncIterator[Service]:
    slack.add_channel(CHANNEL, "support", member=True)
    slack.add_channel("C0002", "random", member=True)
    settings = slack_settings(tmp_path, slack, slack_owners="U0001", llm_api_base=llm.base_url)
    async with running_service(settings) as running:
        yield await as_the_workspace(running)


async def live_on_slack(service: Service, channel: str = CHANNEL, **fields: Any) -> str:
    """faq-bot promoted to production and deployed to `channel`; the deployment id."""
    await service.import_bot("faq-bot", **fields)
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": env})
    deployed = await service.call(
        "POST", "/api/v1/bots/faq-bot/deployments", json={"channel": "slack", "target": channel}
    )
    return str(deployed["id"])


async def ask(service: Service, slack: FakeSlack, text: str, *, user: str = "U0002") -> str:
    """An end user's message in the channel; the ts of the bot's answer (in its thread)."""
    before = len(slack.messages(CHANNEL))
    question = message_event(text, user=user, channel=CHANNEL, channel_type="channel")
    assert (await post(service, event_body(question))).status_code == 200
    answers = await eventually(lambda: slack.messages(CHANNEL)[before:], "the bot's answer")
    return str(answers[-1]["ts"])


def click(
    value: str,
    ts: str,
    *,
    user: str = "U0002",
    channel: str = CHANNEL,
    response_url: str,
    team: str = "T0001",
) -> bytes:
    """A click on a message's feedback buttons, as Slack posts it."""
    return action_body(
        value,
        action_id="feedback",
        action_type="feedback_buttons",
        user=user,
        channel=channel,
        message_ts=ts,
        team=team,
        response_url=response_url,
    )


async def rated(service: Service) -> list[tuple[str, str, int, str]]:
    """Every stored rating: (user, channel, rating, the rated answer's text), in user order."""
    query = (
        select(col(Feedback.user), col(Feedback.channel), col(Feedback.rating), col(Message.text))
        .join(Message, col(Message.id) == col(Feedback.message_id))
        .order_by(col(Feedback.user))
    )
    async with service.app.state.core.db.read_conn() as conn:
        rows = (await conn.execute(query)).all()
    return [(str(u), str(c), int(r), str(t)) for u, c, r, t in rows]


async def thanked(slack: FakeSlack, name: str) -> list[dict[str, Any]]:
    await asyncio.sleep(0.2)  # the thanks go in the background, after Slack's 200
    return [c.body for c in slack.calls_to(f"response_url:{name}")]


def feedback_blocks(call_blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in call_blocks if b["type"] == "context_actions"]


async def test_a_click_on_an_answers_buttons_rates_it(service: Service, slack: FakeSlack) -> None:
    await live_on_slack(service, fallback="Refunds take 5 days.")
    ts = await ask(service, slack, "How long do refunds take?")
    (answer,) = slack.messages(CHANNEL)
    (buttons,) = feedback_blocks(answer["blocks"])
    element = buttons["elements"][0]
    assert element["type"] == "feedback_buttons" and element["action_id"] == "feedback"
    assert (element["positive_button"]["value"], element["negative_button"]["value"]) == (
        "up",
        "down",
    )

    up = click("up", ts, response_url=slack.response_url("up"))
    assert (await post(service, up, content_type=FORM)).status_code == 200
    assert await rated(service) == [("slack:U0002", "slack", 1, "Refunds take 5 days.")]
    (thanks,) = await thanked(slack, "up")
    assert thanks["text"] == THANKS and thanks["response_type"] == "ephemeral"
    assert thanks["replace_original"] is False  # the answer (and its buttons) stay as they are

    # a later click replaces the rating; a colleague's is their own
    down = click("down", ts, response_url=slack.response_url("down"))
    assert (await post(service, down, content_type=FORM)).status_code == 200
    other = click("up", ts, user="U0003", response_url=slack.response_url("other"))
    assert (await post(service, other, content_type=FORM)).status_code == 200
    assert await rated(service) == [
        ("slack:U0002", "slack", -1, "Refunds take 5 days."),
        ("slack:U0003", "slack", 1, "Refunds take 5 days."),
    ]
    assert [c.method for c in slack.calls if c.method == "chat.update"] == []  # nothing edited


async def test_clicks_that_name_no_answer_change_nothing(
    service: Service, slack: FakeSlack
) -> None:
    await live_on_slack(service, fallback="Refunds take 5 days.")
    ts = await ask(service, slack, "Refunds?")
    studio_reply = await dm(service, slack, "/bots")  # the Studio's own answers: no buttons
    assert feedback_blocks(studio_reply.body["blocks"]) == []

    forged = click("down", ts, response_url=slack.response_url("forged"))
    headers = {**sign(forged, "not-the-secret"), "Content-Type": FORM}
    refused = await service.client.post("/slack/events", content=forged, headers=headers)
    assert refused.status_code == 401

    for name, body in {
        # a message the bot never sent in that channel (the end user's own, say)
        "never-sent": click("up", new_ts(), response_url=slack.response_url("never-sent")),
        # the same ts in a channel where no bot is deployed
        "elsewhere": click("up", ts, channel="C0002", response_url=slack.response_url("elsewhere")),
        # a value that is neither button's
        "odd-value": click("sideways", ts, response_url=slack.response_url("odd-value")),
        # someone from another workspace (a Slack Connect channel)
        "stranger": click("up", ts, team="T0999", response_url=slack.response_url("stranger")),
    }.items():
        assert (await post(service, body, content_type=FORM)).status_code == 200, name
        assert await thanked(slack, name) == [], name
    assert await rated(service) == []


async def test_an_answer_that_replaced_thinking_is_rated_by_its_ts(
    service: Service, slack: FakeSlack, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow answer replaces its "thinking…" message (chat.update): that message is the answer
    a click names, and it carries the buttons."""
    monkeypatch.setattr("adapters.slack.channel.THINKING_AFTER_S", 0.01)
    await live_on_slack(service, model="openai/fake-model")
    llm.reply("It takes **five** days.", delay_s=0.5)
    placeholder = await ask(service, slack, "Refunds?")
    # the final answer (the edits before it, while it was written, carry no buttons)
    updated = await eventually(
        lambda: [c for c in slack.calls_to("chat.update") if c.body.get("blocks")], "the answer"
    )
    assert updated[-1].body["ts"] == placeholder
    assert feedback_blocks(updated[-1].body["blocks"])

    body = click("up", placeholder, response_url=slack.response_url("slow"))
    assert (await post(service, body, content_type=FORM)).status_code == 200
    assert await rated(service) == [("slack:U0002", "slack", 1, "It takes **five** days.")]


def test_only_a_rateable_answer_has_the_buttons_and_they_fit_slacks_limits() -> None:
    address = Address(
        channel="slack", deployment_id="d1", conversation="C1:1", user="slack:U1", thread="C1:1"
    )
    answer = OutgoingMessage(address=address, text="Yes.", feedback_id=7)
    rateable = blocks(answer, markdown=True, rateable=True)
    parsed = Block.parse(rateable[-1])  # slack_sdk's own model of the block kit
    assert parsed is not None and parsed.to_dict() == rateable[-1]  # to_dict validates
    assert feedback_blocks(blocks(answer, markdown=True)) == []

    text = "\n\n".join("x" * 2900 for _ in range(60))
    long = answer.model_copy(update={"text": text, "buttons": (Button(label="Ok", action="a"),)})
    cut = blocks(long, markdown=True, rateable=True)
    assert len(cut) == MAX_BLOCKS
    assert [b["type"] for b in cut[-3:]] == ["context", "actions", "context_actions"]
