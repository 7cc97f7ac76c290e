"""A generated bot's answer shown on Telegram while it is written: typing while the first words
are awaited, then `sendMessageDraft` with the text so far (at most every half second), then the
whole answer by `sendMessage`, with no draft after it; a quick answer is sent whole with nothing
before it. Groups get no drafts; a Bot API server that refuses them is remembered, and that
bot's answers are shown by editing a message instead (`test_stream_edits`) (the real aiogram
against the fake Bot API, the model streaming from the fake OpenAI-compatible server)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.telegram import drafts, pacing
from adapters.telegram.drafts import PREVIEW_AFTER_S
from tests.adapters.telegram.test_telegram_bots import deploy, secret_of, send_update, sent, studio
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")
__all__ = ["studio"]  # the fixture, shared with the other generated-bot tests
MODEL = "openai/fake-model"
ANSWER = "Refunds take five business days after we receive the returned item."


def _order(telegram: FakeTelegram, bot_token: str) -> list[str]:
    shown = ("sendChatAction", "sendMessageDraft", "sendMessage")
    return [c.method for c in telegram.calls if c.token == bot_token and c.method in shown]


async def test_the_answer_is_drafted_then_sent(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await deploy(studio, telegram, model=MODEL)
    llm.reply(ANSWER, delay_s=1.0, chunk_delay_s=0.2)  # a second to the first word
    update = message_update("How long do refunds take?", chat_id=42)
    await send_update(studio, deployment, update, secret_of(telegram, bot_token))
    (answer,) = await sent(telegram, bot_token)
    assert answer.body["text"] == ANSWER
    drafts = telegram.calls_to("sendMessageDraft", token=bot_token)
    texts = [d.body["text"] for d in drafts]
    assert 2 <= len(texts) < len(ANSWER.split())  # a few previews, not one per word
    assert all(ANSWER.startswith(text) for text in texts) and texts == sorted(texts, key=len)
    assert {str(d.body["chat_id"]) for d in drafts} == {"42"} and len(
        {d.body["draft_id"] for d in drafts}
    ) == 1
    order = _order(telegram, bot_token)
    assert order[0] == "sendChatAction" and order[-1] == "sendMessage"
    await asyncio.sleep(0.7)  # no draft comes after the answer
    assert _order(telegram, bot_token)[-1] == "sendMessage"


async def test_a_quick_answer_is_sent_whole_with_nothing_before_it(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await deploy(studio, telegram, model=MODEL)
    llm.reply("Yes.")
    update = message_update("Card?", chat_id=42)
    await send_update(studio, deployment, update, secret_of(telegram, bot_token))
    (answer,) = await sent(telegram, bot_token)
    assert answer.body["text"] == "Yes."
    await asyncio.sleep(PREVIEW_AFTER_S + 0.2)
    assert _order(telegram, bot_token) == ["sendMessage"]


async def test_a_model_that_answers_before_a_draft_would_show_is_not_streamed(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    """A stream costs litellm far more than a whole answer: once the bot's model is known to
    answer in less than the drafts' wait, its answers are asked for whole; a model that turns
    slow is streamed again."""
    deployment, bot_token = await deploy(studio, telegram, model=MODEL)
    secret = secret_of(telegram, bot_token)
    for n, text in enumerate(("Yes.", "No.")):
        llm.reply(text)
        await send_update(studio, deployment, message_update(f"Q{n}?", chat_id=42), secret)
        assert (await sent(telegram, bot_token, n + 1))[-1].body["text"] == text
    assert [bool(c.body.get("stream")) for c in llm.calls[-2:]] == [True, False]
    gateway = studio.app.state.core.runtime.llm
    gateway._pace[MODEL] = PREVIEW_AFTER_S * 2  # as after slow answers
    llm.reply(ANSWER, chunk_delay_s=0.01)
    await send_update(studio, deployment, message_update("Q2?", chat_id=42), secret)
    assert (await sent(telegram, bot_token, 3))[-1].body["text"] == ANSWER
    assert llm.calls[-1].body.get("stream") is True


async def test_groups_get_no_drafts(studio: Service, telegram: FakeTelegram, llm: FakeLLM) -> None:
    deployment, bot_token = await deploy(studio, telegram, model=MODEL)
    llm.reply(ANSWER, chunk_delay_s=0.05)
    update = message_update("How long?", chat_id=-1001, chat_type="supergroup")
    await send_update(studio, deployment, update, secret_of(telegram, bot_token))
    (answer,) = await sent(telegram, bot_token)
    assert answer.body["text"] == ANSWER
    assert telegram.calls_to("sendMessageDraft", token=bot_token) == []


async def test_a_server_that_refuses_drafts_is_remembered(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drafts, "EDIT_EVERY_S", 0.3)  # paced as on Telegram, only quicker
    monkeypatch.setattr(pacing, "PRIVATE_INTERVAL_S", 0.3)
    deployment, bot_token = await deploy(studio, telegram, model=MODEL)
    secret = secret_of(telegram, bot_token)
    telegram.fail("sendMessageDraft", 404, "Not Found: method not found", token=bot_token)
    for n, text in enumerate(["first question", "second question"], start=1):
        llm.reply(ANSWER, chunk_delay_s=0.15)
        await send_update(studio, deployment, message_update(text, chat_id=42), secret)
        for _ in range(500):  # shown by editing a message of its own instead, then whole
            if [m["text"] for m in telegram.messages(42)] == [ANSWER] * n:
                break
            await asyncio.sleep(0.02)
        assert [m["text"] for m in telegram.messages(42)] == [ANSWER] * n
    assert len(telegram.calls_to("sendMessageDraft", token=bot_token)) == 1  # tried once
