"""End users rate one bot's answers where they met it: a colleague in a Slack channel clicks the
answer's feedback buttons (a signed `block_actions` payload to /slack/events, through the real
slack-bolt), a customer on Telegram reacts to it (a `message_reaction` update posted to the
bot's webhook with its secret, parsed by the real aiogram). Each rating lands on the answer it
names, for that person; forged or misdirected ones change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from storage.tables import Feedback
from tests.adapters.slack.test_feedback import THANKS, click, rated, thanked
from tests.adapters.slack.test_slack_flow import post, slack_settings
from tests.adapters.telegram.test_telegram_bots import secret_of, send_update
from tests.conftest import running_service
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import FORM, event_body, message_event, sign
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update, reaction_update, token
from tests.people import bot_id
from tests.scenarios.test_handoff_flow import as_the_workspace, eventually

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")
BOT_TOKEN = token(71)
CUSTOMER = 7101
MODEL = "openai/fake-model"
PUBLIC = "https://studio.example.com"


@pytest.fixture
async def service(
    tmp_path: Path, slack: FakeSlack, telegram: FakeTelegram, llm: FakeLLM
) -> AsyncIterator[Service]:
    slack.add_channel("C0003", "help", member=True)
    telegram.add_bot(BOT_TOKEN, username="help_desk_bot")
    settings = slack_settings(
        tmp_path,
        slack,
        slack_owners="U0001",
        llm_api_base=llm.base_url,
        telegram_api_url=telegram.base_url,
        public_url=PUBLIC,
    )
    async with running_service(settings) as running:
        yield await as_the_workspace(running)


async def test_end_users_rate_answers_on_slack_and_telegram(
    service: Service, slack: FakeSlack, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    # the team builds the bot by chatting with the Studio and puts it live on both platforms
    assert "help-bot" in await service.reply("/newbot help-bot")
    await service.reply(f"/set help-bot model {MODEL}")
    await service.reply("/promote help-bot")
    await service.say("/promote help-bot production")
    await service.reply("yes")
    await service.call(
        "POST", "/api/v1/bots/help-bot/deployments", json={"channel": "slack", "target": "C0003"}
    )
    on_telegram = await service.call(
        "POST",
        "/api/v1/bots/help-bot/deployments",
        json={"channel": "telegram", "token": BOT_TOKEN},
    )
    secret = secret_of(telegram, BOT_TOKEN)

    # a colleague asks in #help; the answer comes in a thread with feedback buttons
    llm.reply("Reset it under *Settings*.")
    question = message_event(
        "How do I reset my password?", user="U0002", channel="C0003", channel_type="channel"
    )
    assert (await post(service, event_body(question))).status_code == 200
    (answer,) = await eventually(lambda: slack.messages("C0003"), "the Slack answer")
    assert answer["thread_ts"] == question["ts"]
    assert [b["type"] for b in answer["blocks"]][-1] == "context_actions"

    # a customer asks on Telegram
    llm.reply("We ship in 2 days.")
    asked = message_update("When do you ship?", chat_id=CUSTOMER, user_id=CUSTOMER)
    assert (await send_update(service, on_telegram["id"], asked, secret)).status_code == 200
    (reply,) = await eventually(lambda: telegram.messages(CUSTOMER), "the Telegram answer")

    # both rate: 👍 on Slack (thanked privately), 👎 as a reaction on Telegram
    up = click("up", answer["ts"], channel="C0003", response_url=slack.response_url("up"))
    assert (await post(service, up, content_type=FORM)).status_code == 200
    assert [t["text"] for t in await thanked(slack, "up")] == [THANKS]
    frown = reaction_update(reply["message_id"], new=["👎"], chat_id=CUSTOMER, user_id=CUSTOMER)
    assert (await send_update(service, on_telegram["id"], frown, secret)).status_code == 200
    assert await rated(service) == [
        ("slack:U0002", "slack", 1, "Reset it under *Settings*."),
        (f"telegram:{CUSTOMER}", "telegram", -1, "We ship in 2 days."),
    ]
    async with service.app.state.core.db.read_conn() as conn:
        bots = set((await conn.execute(select(col(Feedback.bot_id)))).scalars())
    assert bots == {await bot_id(service, "help-bot")}

    # forged, misdirected or stray: nothing changes
    forged = click("down", answer["ts"], channel="C0003", response_url=slack.response_url("f"))
    headers = {**sign(forged, "a-guess"), "Content-Type": FORM}
    assert (
        await service.client.post("/slack/events", content=forged, headers=headers)
    ).status_code == 401
    stray = reaction_update(
        reply["message_id"] + 40, new=["👍"], chat_id=CUSTOMER, user_id=CUSTOMER
    )
    assert (await send_update(service, on_telegram["id"], stray, secret)).status_code == 200
    wrong_secret = reaction_update(reply["message_id"], new=[], chat_id=CUSTOMER, user_id=CUSTOMER)
    assert (await send_update(service, on_telegram["id"], wrong_secret, "nope")).status_code == 401
    assert len(await rated(service)) == 2

    # minds change: the colleague clicks 👎, the customer takes the reaction back
    down = click("down", answer["ts"], channel="C0003", response_url=slack.response_url("down"))
    assert (await post(service, down, content_type=FORM)).status_code == 200
    took_back = reaction_update(reply["message_id"], new=[], chat_id=CUSTOMER, user_id=CUSTOMER)
    assert (await send_update(service, on_telegram["id"], took_back, secret)).status_code == 200
    assert await rated(service) == [("slack:U0002", "slack", -1, "Reset it under *Settings*.")]
    assert len(llm.calls) == 2  # two questions, two answers: no rating was answered
