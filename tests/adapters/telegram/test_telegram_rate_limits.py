"""Telegram's rate limits, counted: a 429 with `retry_after` from the fake Bot API reaches the
real aiogram (generated bots) or python-telegram-bot (the Studio's own bot), the send waits
and goes again, and each 429 is counted once under its channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.adapters.telegram.test_telegram_bots import deploy, secret_of, send_update, sent
from tests.adapters.telegram.test_telegram_studio import (
    ALICE,
    BUILDER,
    PUBLIC,
    member_of_local_team,
    post,
    said,
)
from tests.conftest import running_service, service_settings
from tests.counters import counts, moved
from tests.factories import Service
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update

LIMITED = "studio_platform_rate_limited_total"
CHANNELS = ("slack", "telegram", "telegram-studio")


@pytest.fixture
async def service(tmp_path: Path, telegram: FakeTelegram) -> AsyncIterator[Service]:
    telegram.add_bot(BUILDER, username="chat_studio_bot")
    settings = service_settings(
        tmp_path,
        public_url=PUBLIC,
        telegram_api_url=telegram.base_url,
        telegram_builder_token=BUILDER,
    )
    async with running_service(settings) as running:
        yield running


async def test_a_generated_bots_429_is_counted_once(
    service: Service, telegram: FakeTelegram
) -> None:
    deployment, bot_token = await deploy(service, telegram, greeting="Hello!")
    before = counts(LIMITED, channel=CHANNELS)
    telegram.rate_limit("sendMessage", retry_after=1, token=bot_token)
    start = message_update("/start", chat_id=42)
    await send_update(service, deployment, start, secret_of(telegram, bot_token))
    refused, greeting = await sent(telegram, bot_token, 2)
    assert refused.body["text"] == greeting.body["text"] == "Hello!"
    assert moved(before, counts(LIMITED, channel=CHANNELS)) == {"telegram": 1}


async def test_the_studios_own_bots_429_is_counted_once(
    service: Service, telegram: FakeTelegram
) -> None:
    await member_of_local_team(service, telegram)
    before = counts(LIMITED, channel=CHANNELS)
    told = len(await said(telegram, 0))
    telegram.rate_limit("sendMessage", retry_after=1, token=BUILDER)
    bots = message_update("/bots", chat_id=ALICE, user_id=ALICE)
    assert await post(service, bots) == 200
    refused, answer = (await said(telegram, told + 2))[-2:]
    assert refused.body["text"] == answer.body["text"]
    assert moved(before, counts(LIMITED, channel=CHANNELS)) == {"telegram-studio": 1}


async def test_a_429_to_a_call_made_once_is_counted_too(
    service: Service, telegram: FakeTelegram
) -> None:
    """Strangers get one answer, not retried (nothing of theirs is kept): its 429 counts."""
    before = counts(LIMITED, channel=CHANNELS)
    telegram.rate_limit("sendMessage", retry_after=1, token=BUILDER)
    assert await post(service, message_update("/newbot sneaky", chat_id=9, user_id=9)) == 200
    (refused,) = await said(telegram, 1, chat=9)
    assert "/join CODE" in refused.body["text"]
    assert moved(before, counts(LIMITED, channel=CHANNELS)) == {"telegram-studio": 1}
