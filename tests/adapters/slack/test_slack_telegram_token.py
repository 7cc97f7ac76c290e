"""`/deploy BOT telegram` from Slack: the BotFather token goes into a private form (the modal
every secret a deployment needs goes into), never a channel, and is handed to the Studio sealed;
the bot then answers on Telegram (both platforms are fakes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.app import SECRET_FORM
from tests.adapters.slack.test_slack_flow import SECRET, dm, post, posted, text_of
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import FORM, action_body, slash_body, view_submission_body
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import token

PUBLIC = "https://studio.example.com"


@pytest.fixture
async def studio(
    tmp_path: Path, slack: FakeSlack, telegram: FakeTelegram
) -> AsyncIterator[Service]:
    settings = service_settings(
        tmp_path,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        telegram_api_url=telegram.base_url,
        public_url=PUBLIC,
    )
    async with running_service(settings) as service:
        for line in ("newbot faq-bot", "promote faq-bot", "promote faq-bot production", "yes"):
            await dm(service, slack, line)
        yield service


async def deployments(studio: Service) -> list[Any]:
    """Every deployment of every team (the Slack workspace is not the REST key's team)."""
    async with studio.app.state.core.db.read_conn() as conn:
        from sqlalchemy import text

        return list((await conn.execute(text("select id from deployment"))).all())


async def opened_form(slack: FakeSlack, count: int = 1) -> dict[str, Any]:
    for _ in range(300):
        calls = slack.calls_to("views.open")
        if len(calls) >= count:
            return calls[-1].body
        await asyncio.sleep(0.02)
    raise AssertionError("no modal was opened")


async def submit(studio: Service, form: dict[str, Any], typed: str) -> Any:
    view = form["view"] if isinstance(form["view"], dict) else json.loads(form["view"])
    assert view["callback_id"] == SECRET_FORM
    body = view_submission_body(
        SECRET_FORM, {"secret": {"value": typed}}, private_metadata=view["private_metadata"]
    )
    return await post(studio, body, content_type=FORM)


async def test_a_dm_offers_a_button_that_opens_the_form(
    studio: Service, slack: FakeSlack, telegram: FakeTelegram
) -> None:
    asked = await dm(studio, slack, "deploy faq-bot telegram")
    assert "private form" in text_of(asked)
    (button,) = next(b for b in asked.body["blocks"] if b["type"] == "actions")["elements"]
    assert button["text"]["text"] == "Enter the value"
    click = action_body(button["value"], action_id=button["action_id"], trigger_id="T.trig")
    assert (await post(studio, click, content_type=FORM)).status_code == 200
    form = await opened_form(slack)
    assert form["trigger_id"] == "T.trig"

    before = len(slack.calls_to("chat.postMessage"))
    malformed = await submit(studio, form, "not-a-token")
    assert malformed.status_code == 200
    said = (await posted(slack, before + 1))[-1]
    assert "give the bot's token from @BotFather" in text_of(said)
    assert "Nothing was deployed; /deploy faq-bot telegram to retry" in text_of(said)
    assert not await deployments(studio)
    asked = await dm(studio, slack, "deploy faq-bot telegram")
    (button,) = next(b for b in asked.body["blocks"] if b["type"] == "actions")["elements"]
    click = action_body(button["value"], action_id=button["action_id"], trigger_id="T.two")
    await post(studio, click, content_type=FORM)
    form = await opened_form(slack, count=2)

    bot_token = token(601)
    telegram.add_bot(bot_token, username="faq_from_slack_bot")
    before = len(slack.calls_to("chat.postMessage"))
    accepted = await submit(studio, form, f"  {bot_token} ")
    assert accepted.status_code == 200 and not accepted.content
    live = (await posted(slack, before + 1))[-1]
    assert "t.me/faq_from_slack_bot" in text_of(live) and live.body["channel"] == "D0001"
    assert telegram.webhook(bot_token) is not None
    assert all(bot_token not in str(c.body) for c in slack.calls)
    async with studio.app.state.core.db.read_conn() as conn:
        from sqlalchemy import text

        inbox = [str(p) for (p,) in (await conn.execute(text("select payload from inbox"))).all()]
    assert inbox and all(bot_token not in p for p in inbox)


async def test_the_slash_command_opens_the_form_at_once(
    studio: Service, slack: FakeSlack, telegram: FakeTelegram
) -> None:
    command = slash_body(
        "/deploy", "faq-bot telegram", response_url=slack.response_url("tg"), trigger_id="T.trig"
    )
    assert (await post(studio, command, content_type=FORM)).status_code == 200
    form = await opened_form(slack)
    assert form["trigger_id"] == "T.trig"
    assert not slack.calls_to("response_url:tg")  # no button needed: the form is open

    bot_token = token(602)
    telegram.add_bot(bot_token, username="faq_slash_bot")
    before = len(slack.calls_to("chat.postMessage"))
    await submit(studio, form, bot_token)
    live = (await posted(slack, before + 1))[-1]
    assert "t.me/faq_slash_bot" in text_of(live)


async def test_a_refused_token_uses_up_the_request(
    studio: Service, slack: FakeSlack, telegram: FakeTelegram
) -> None:
    await post(
        studio,
        slash_body("/deploy", "faq-bot telegram", response_url=slack.response_url("x")),
        content_type=FORM,
    )
    form = await opened_form(slack)
    refused = token(603)  # getMe answers 401: not a bot Telegram knows
    before = len(slack.calls_to("chat.postMessage"))
    await submit(studio, form, refused)
    said = (await posted(slack, before + 1))[-1]
    assert "refused that token" in text_of(said)
    again = await submit(studio, form, refused)  # the request was used up
    assert again.status_code == 200
    later = (await posted(slack, before + 2))[-1]
    assert "No secret was waiting for a value" in text_of(later)
    assert not await deployments(studio)
