"""A generated bot whose drafts Telegram refuses shows a slow answer by editing a message: the
text so far is sent as a message and edited as more arrives (paced: at most once an interval per
chat), then the answer replaces that message's text (Telegram HTML) instead of coming as a second
copy. Whatever happens to the preview (deleted by the person, refused, the network, a restart),
the answer arrives exactly once; a quick answer has nothing before it; groups get "typing"
(the real aiogram against the fake Bot API, the model streaming from the fake OpenAI-compatible
server; the timing constants are shortened)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from itertools import pairwise
from pathlib import Path

import pytest

import tests.fakes.telegram as fake_telegram
from adapters.telegram import drafts, pacing
from adapters.telegram.bots import TelegramBots
from runtime.messages import Address, OutgoingMessage
from tests.adapters.telegram.test_telegram_bots import PUBLIC, deploy, secret_of, send_update
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import Call, FakeTelegram
from tests.fakes.telegram_payloads import message_update

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")
MODEL = "openai/fake-model"
CHAT = 42
ANSWER = "Refunds take **five business days** after we receive the returned item, by card or cash."
SHOWN = "Refunds take five business days after we receive the returned item, by card or cash."
HTML = "Refunds take <b>five business days</b> after we receive the returned item, by card or cash."
INTERVAL_S = 0.3  # stands for Telegram's second between two calls to one chat


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """The constants shortened (each is read when it is used), the fake's window with them."""
    monkeypatch.setattr(drafts, "PREVIEW_AFTER_S", 0.2)
    monkeypatch.setattr(drafts, "EDIT_EVERY_S", INTERVAL_S)
    monkeypatch.setattr(drafts, "TYPING_EVERY_S", 0.5)
    monkeypatch.setattr(pacing, "PRIVATE_INTERVAL_S", INTERVAL_S)
    monkeypatch.setattr(fake_telegram, "WINDOW_S", INTERVAL_S * 0.8)  # arrivals jitter


@pytest.fixture
async def studio(tmp_path: Path, telegram: FakeTelegram, llm: FakeLLM) -> AsyncIterator[Service]:
    settings = service_settings(
        tmp_path, public_url=PUBLIC, telegram_api_url=telegram.base_url, llm_api_base=llm.base_url
    )
    async with running_service(settings) as service:
        yield service


def _channel(service: Service) -> TelegramBots:
    return service.app.state.core.adapter("telegram")  # type: ignore[no-any-return]


async def _refusing_drafts(service: Service, telegram: FakeTelegram) -> tuple[str, str]:
    """A deployed bot whose drafts Telegram refused earlier (remembered)."""
    deployment, bot_token = await deploy(service, telegram, model=MODEL)
    _channel(service).drafts.refused.add(deployment)
    return deployment, bot_token


def _to_chat(telegram: FakeTelegram, bot_token: str, chat: int = CHAT) -> list[Call]:
    """The bot's calls to `chat`, oldest first."""
    return [
        c for c in telegram.calls if c.token == bot_token and c.body.get("chat_id") == str(chat)
    ]


async def _eventually(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def _texts(telegram: FakeTelegram, chat: int = CHAT) -> list[str]:
    return [str(m["text"]) for m in telegram.messages(chat)]


async def _settled(telegram: FakeTelegram, service: Service, texts: list[str]) -> None:
    """The chat holds `texts`, and every turn is done (nothing more will come)."""
    await _eventually(lambda: _texts(telegram) == texts, f"the chat to hold {texts}")
    await service.app.state.core.runtime.drain()


async def test_a_slow_answer_is_an_edited_message_that_becomes_the_answer(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await deploy(studio, telegram, model=MODEL)
    telegram.fail("sendMessageDraft", 404, "Not Found: method not found", token=bot_token)
    telegram.per_chat_per_s = 1  # one call a window per chat, edits counted: beyond, a 429
    llm.reply(ANSWER, chunk_delay_s=0.1)  # ~1.5 s, word by word
    update = message_update("How long do refunds take?", chat_id=CHAT)
    await send_update(studio, deployment, update, secret_of(telegram, bot_token))
    await _settled(telegram, studio, [SHOWN])

    (message,) = telegram.messages(CHAT)  # one message: the answer, formatted
    assert message["entities"] == [{"type": "bold", "offset": 13, "length": 18}]
    calls = [c for c in _to_chat(telegram, bot_token) if c.method != "sendChatAction"]
    kinds = [c.method for c in calls]
    assert kinds[:2] == ["sendMessageDraft", "sendMessage"]  # refused: a message instead
    (preview,) = [c for c in calls if c.method == "sendMessage"]  # no second copy
    edits = [c for c in calls if c.method == "editMessageText"]
    assert kinds[1:] == ["sendMessage"] + ["editMessageText"] * len(edits)
    assert len(edits) >= 3  # the preview grew, then became the answer
    previews = [str(c.body["text"]) for c in [preview, *edits[:-1]]]
    assert all(SHOWN.startswith(text) for text in previews)  # plain text so far
    assert previews == sorted(previews, key=len) and len(set(previews)) == len(previews)
    assert "parse_mode" not in preview.body
    assert edits[-1].body["text"] == HTML
    assert edits[-1].body["parse_mode"] == "HTML"
    assert {str(c.body["message_id"]) for c in edits} == {str(message["message_id"])}
    shown = [c.at for c in [preview, *edits]]  # at most once an interval, the answer's edit too
    assert min(b - a for a, b in pairwise(shown)) >= INTERVAL_S * 0.8
    assert telegram.throttled == []
    assert deployment in _channel(studio).drafts.refused  # remembered for the next answers


async def test_a_long_answer_replaces_the_preview_with_its_first_part_then_goes_on(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await _refusing_drafts(studio, telegram)
    long = " ".join(f"word{i}" for i in range(900))  # ~7,000 characters: two messages
    llm.reply(long, chunk_delay_s=0.001)
    update = message_update("Tell me everything", chat_id=CHAT)
    await send_update(studio, deployment, update, secret_of(telegram, bot_token))
    await _eventually(lambda: len(telegram.messages(CHAT)) == 2, "the answer's two parts")
    await studio.app.state.core.runtime.drain()

    first, second = _texts(telegram)
    assert f"{first} {second}".split() == long.split()  # all of it, once
    assert len(first) <= 4096 and len(second) <= 4096
    kinds = [c.method for c in _to_chat(telegram, bot_token) if c.method != "sendChatAction"]
    assert kinds[0] == "sendMessage" and kinds[-2:] == ["editMessageText", "sendMessage"]
    assert kinds.count("sendMessage") == 2  # the preview (then the first part), the second


async def test_a_quick_answer_sends_nothing_before_it(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await _refusing_drafts(studio, telegram)
    llm.reply("Yes, by card.")
    update = message_update("Card?", chat_id=CHAT)
    await send_update(studio, deployment, update, secret_of(telegram, bot_token))
    await _settled(telegram, studio, ["Yes, by card."])
    await asyncio.sleep(drafts.PREVIEW_AFTER_S + 0.2)
    assert [c.method for c in _to_chat(telegram, bot_token)] == ["sendMessage"]


async def test_a_preview_the_person_deleted_gives_way_to_the_answer_once(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await _refusing_drafts(studio, telegram)
    llm.reply(ANSWER, chunk_delay_s=0.1)
    update = message_update("How long?", chat_id=CHAT)
    await send_update(studio, deployment, update, secret_of(telegram, bot_token))
    await _eventually(lambda: bool(telegram.messages(CHAT)), "the preview")
    message_id = int(telegram.messages(CHAT)[0]["message_id"])
    assert telegram.delete_message(CHAT, message_id)  # the person deletes the preview
    await _settled(telegram, studio, [SHOWN])

    sends = telegram.calls_to("sendMessage", token=bot_token)
    assert [c.body["text"] for c in sends[1:]] == [HTML]
    assert telegram.calls_to("deleteMessage", token=bot_token) == []  # nothing left to delete
    assert _channel(studio).drafts.edits_refused == set()  # that message only: not remembered


async def test_an_edit_telegram_refuses_is_remembered_and_the_answer_arrives_once(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await _refusing_drafts(studio, telegram)
    secret = secret_of(telegram, bot_token)
    telegram.fail("editMessageText", 400, "Bad Request: message can't be edited", token=bot_token)
    llm.reply(ANSWER, chunk_delay_s=0.1)
    await send_update(studio, deployment, message_update("How long?", chat_id=CHAT), secret)
    await _settled(telegram, studio, [SHOWN])  # the stale preview deleted, the answer new

    assert [c.method for c in _to_chat(telegram, bot_token)][-3:] == [
        "editMessageText",  # refused: the preview shows no more
        "sendMessage",  # the answer
        "deleteMessage",  # the preview, once the answer is out
    ]
    assert _channel(studio).drafts.edits_refused == {deployment}

    before = len(telegram.calls)  # remembered: the next slow answer gets "typing" only
    llm.reply(ANSWER, chunk_delay_s=0.1)
    await send_update(studio, deployment, message_update("And cash?", chat_id=CHAT), secret)
    await _settled(telegram, studio, [SHOWN, SHOWN])
    later = [c.method for c in telegram.calls[before:] if c.token == bot_token]
    assert set(later) == {"sendChatAction", "sendMessage"} and later[-1] == "sendMessage"
    assert later.count("sendMessage") == 1


async def test_an_answers_edit_lost_on_the_way_is_made_again_never_twice(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drafts, "EDIT_EVERY_S", 60.0)  # the preview is sent, never edited
    deployment, bot_token = await _refusing_drafts(studio, telegram)
    telegram.fail("editMessageText", 502, "Bad Gateway", token=bot_token)  # the answer's edit
    llm.reply(ANSWER, chunk_delay_s=0.1)
    update = message_update("How long?", chat_id=CHAT)
    await send_update(studio, deployment, update, secret_of(telegram, bot_token))
    await _settled(telegram, studio, [SHOWN])

    kinds = [c.method for c in _to_chat(telegram, bot_token)]
    assert kinds[-3:] == ["sendMessage", "editMessageText", "editMessageText"]  # tried again
    assert kinds.count("sendMessage") == 1


async def test_a_preview_that_shows_the_answer_already_is_the_answer(
    studio: Service, telegram: FakeTelegram
) -> None:
    """Telegram's "message is not modified": the preview holds exactly the answer."""
    deployment, bot_token = await _refusing_drafts(studio, telegram)
    channel = _channel(studio)
    message_id = await channel._post_preview(deployment, CHAT, "Yes, by card.")
    assert message_id is not None
    channel.drafts.keep(deployment, CHAT, message_id)  # what a preview that ended leaves
    address = Address(
        channel="telegram",
        deployment_id=deployment,
        conversation=str(CHAT),
        user=f"telegram:{CHAT}",
        thread=str(CHAT),
    )
    runtime = studio.app.state.core.runtime
    assert await runtime.push(OutgoingMessage(address=address, text="Yes, by card.")) is None
    assert _texts(telegram) == ["Yes, by card."]
    (edit,) = telegram.calls_to("editMessageText", token=bot_token)
    assert [c.method for c in _to_chat(telegram, bot_token)] == ["sendMessage", "editMessageText"]
    assert edit.body["parse_mode"] == "HTML"


async def test_groups_get_typing_then_the_whole_answer(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await _refusing_drafts(studio, telegram)
    llm.reply(ANSWER, chunk_delay_s=0.1)
    group = -1001
    update = message_update("How long?", chat_id=group, chat_type="supergroup")
    await send_update(studio, deployment, update, secret_of(telegram, bot_token))
    await _eventually(lambda: _texts(telegram, group) == [SHOWN], "the group's answer")
    await studio.app.state.core.runtime.drain()
    kinds = [c.method for c in _to_chat(telegram, bot_token, group)]
    assert kinds[-1] == "sendMessage" and set(kinds[:-1]) == {"sendChatAction"}
    assert 1 <= len(kinds) - 1 <= 5  # "typing" refreshed now and then (~1.5 s), not per word


async def test_a_restart_after_the_preview_was_sent_sends_the_answer_once(
    tmp_path: Path, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    settings = service_settings(
        tmp_path, public_url=PUBLIC, telegram_api_url=telegram.base_url, llm_api_base=llm.base_url
    )
    async with running_service(settings) as before:
        deployment, bot_token = await _refusing_drafts(before, telegram)
        llm.reply(ANSWER, chunk_delay_s=0.3)
        update = message_update("How long?", chat_id=CHAT)
        await send_update(before, deployment, update, secret_of(telegram, bot_token))
        await _eventually(lambda: bool(telegram.messages(CHAT)), "the preview")
        runtime = before.app.state.core.runtime
        for turn in list(runtime._tasks):  # the process dies mid-answer: nothing more is done
            turn.cancel()
    (partial,) = _texts(telegram)
    assert SHOWN.startswith(partial) and partial != SHOWN

    llm.reply(ANSWER)
    async with running_service(settings) as after:
        await after.app.state.core.runtime.backlog.wait()
        await _settled(telegram, after, [partial, SHOWN])  # a new message, once
    sends = [c.body["text"] for c in telegram.calls_to("sendMessage", token=bot_token)]
    assert sends[1:] == [HTML]


def test_a_preview_never_shows_a_bold_mark_still_open() -> None:
    """The model writes `**five` before it closes the bold: the preview shows `five`, and each
    preview stays the start of the answer as it will read."""
    so_far = ""
    for word in ANSWER.split(" "):
        so_far = f"{so_far} {word}" if so_far else word
        shown, whole = drafts.preview_text(so_far)
        assert whole and "*" not in shown
        assert SHOWN.startswith(shown), (so_far, shown)
