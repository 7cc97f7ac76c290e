"""A restart after a crash (`kill -9`) that left Telegram updates acknowledged but unanswered:
the service serves at once and answers the backlog in the background, in order per chat."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.telegram import pacing
from runtime.messages import Address, IncomingMessage
from tests.adapters.telegram.test_telegram_bots import PUBLIC, deploy, secret_of, send_update
from tests.conftest import running_service, service_settings
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update, next_update_id

CHATS = (11, 12, 13, 14)
PER_CHAT = 25
IDLE_CHAT = 99


def _accepted(deployment: str, chat: int, text: str) -> IncomingMessage:
    """What the webhook records for a private-chat text message (see adapters.telegram.bots)."""
    address = Address(
        channel="telegram",
        deployment_id=deployment,
        conversation=str(chat),
        user=f"telegram:{chat}",
        thread=str(chat),
    )
    dedupe_key = f"telegram:{deployment}:{next_update_id()}"
    return IncomingMessage(address=address, text=text, dedupe_key=dedupe_key)


def _answers(telegram: FakeTelegram, bot_token: str, chat: int) -> list[str]:
    calls = telegram.calls_to("sendMessage", token=bot_token)
    return [str(c.body["text"]) for c in calls if str(c.body["chat_id"]) == str(chat)]


async def test_a_restart_serves_at_once_and_answers_the_backlog_in_order_per_chat(
    tmp_path: Path, telegram: FakeTelegram, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacing, "PRIVATE_INTERVAL_S", 0.0)  # pacing is tested on its own
    settings = service_settings(
        tmp_path, public_url=PUBLIC, telegram_api_url=telegram.base_url, llm_api_base=llm.base_url
    )
    async with running_service(settings) as before:
        deployment, bot_token = await deploy(before, telegram, model="openai/fake-model")
        first = message_update("first", chat_id=IDLE_CHAT, user_id=IDLE_CHAT)
        await send_update(before, deployment, first, secret_of(telegram, bot_token))
        await telegram.wait_for("sendMessage", token=bot_token, timeout_s=60)  # imports done
        runtime = before.app.state.core.runtime
        for i in range(PER_CHAT):  # acknowledged, then the process dies before answering
            for chat in CHATS:
                assert await runtime.accept(_accepted(deployment, chat, f"{chat}-{i}"))
    backlog = len(CHATS) * PER_CHAT
    telegram.delay("sendMessage", 0.02, times=2 * backlog, token=bot_token)  # a slow Telegram

    async with running_service(settings) as after:
        assert (await after.client.get("/healthz")).status_code == 200
        assert len(telegram.calls_to("sendMessage", token=bot_token)) < backlog
        secret = secret_of(telegram, bot_token)
        busy = message_update("after the restart", chat_id=CHATS[0], user_id=CHATS[0])
        assert (await send_update(after, deployment, busy, secret)).status_code == 200
        idle = message_update("hello?", chat_id=IDLE_CHAT, user_id=IDLE_CHAT)
        assert (await send_update(after, deployment, idle, secret)).status_code == 200
        for _ in range(1500):
            if len(_answers(telegram, bot_token, IDLE_CHAT)) == 2:
                break
            await asyncio.sleep(0.01)
        assert _answers(telegram, bot_token, IDLE_CHAT) == ["echo: first", "echo: hello?"]
        answered = sum(len(_answers(telegram, bot_token, chat)) for chat in CHATS)
        assert answered < backlog  # the new chat did not wait for the backlog

        await after.app.state.core.runtime.backlog.wait()
        await telegram.wait_for("sendMessage", backlog + 3, token=bot_token, timeout_s=15)
        for chat in CHATS:  # each once, in order, and the new message after them
            expected = [f"echo: {chat}-{i}" for i in range(PER_CHAT)]
            if chat == CHATS[0]:
                expected.append("echo: after the restart")
            assert _answers(telegram, bot_token, chat) == expected


async def test_a_start_loads_what_deployed_bots_will_need_before_they_are_asked(
    tmp_path: Path, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    """The first answer after a restart does not wait on imports of seconds: litellm for a
    provider's model and aiogram for Telegram load in the background at start."""
    settings = service_settings(
        tmp_path, public_url=PUBLIC, telegram_api_url=telegram.base_url, llm_api_base=llm.base_url
    )
    async with running_service(settings) as before:
        await deploy(before, telegram, model="openai/fake-model")
    async with running_service(settings) as after:
        core = after.app.state.core
        await asyncio.wait_for(core.warming, 120)  # nobody has said anything yet
        assert core.runtime.llm._litellm is not None and core.adapter("telegram")._lib is not None
        assert llm.calls == [] and telegram.calls_to("sendMessage") == []


async def test_offline_bots_on_the_web_load_nothing_extra(tmp_path: Path) -> None:
    settings = service_settings(tmp_path)
    async with running_service(settings) as before:
        await before.live_web_bot()
    async with running_service(settings) as after:
        core = after.app.state.core
        await asyncio.wait_for(core.warming, 30)
        assert core.runtime.llm._litellm is None and core.adapter("telegram")._lib is None
