"""Voice notes to a generated Telegram bot: fetched from Telegram (getFile, then the file),
transcribed with `STUDIO_STT_MODEL` through litellm (the fake OpenAI-compatible server's
`/audio/transcriptions`), answered as text, and kept as the turn's text with the audio's
length. Without a model, and when the provider fails, the person is told plainly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runtime.hearing import NOT_HEARD
from runtime.voice import TEXT_ONLY
from tests.adapters.telegram.test_telegram_bots import PUBLIC, deploy, secret_of, send_update, sent
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update

pytestmark = pytest.mark.usefixtures("no_provider_keys")

MODEL = "openai/fake-model"
STT = "openai/whisper-1"
VOICE_NOTE = b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead" + b"\x00" * 400


def voice_update(file_id: str, *, duration: int = 3, size: int = len(VOICE_NOTE)) -> dict[str, Any]:
    """An update with a voice note (Telegram's shape: no text, a `voice` object)."""
    update = message_update("placeholder")
    message = update["message"]
    del message["text"]
    message["voice"] = {
        "file_id": file_id,
        "file_unique_id": f"u-{file_id}",
        "duration": duration,
        "mime_type": "audio/ogg",
        "file_size": size,
    }
    return update


@pytest.fixture
async def hearing(tmp_path: Path, telegram: FakeTelegram, llm: FakeLLM) -> AsyncIterator[Service]:
    """The service with a speech-to-text model."""
    settings = service_settings(
        tmp_path,
        public_url=PUBLIC,
        telegram_api_url=telegram.base_url,
        llm_api_base=llm.base_url,
        stt_model=STT,
    )
    async with running_service(settings) as service:
        yield service


@pytest.fixture
async def speaking(tmp_path: Path, telegram: FakeTelegram, llm: FakeLLM) -> AsyncIterator[Service]:
    """The service with models to hear voice notes and to speak answers."""
    settings = service_settings(
        tmp_path,
        public_url=PUBLIC,
        telegram_api_url=telegram.base_url,
        llm_api_base=llm.base_url,
        stt_model=STT,
        tts_model="openai/tts-1",
    )
    async with running_service(settings) as service:
        yield service


@pytest.fixture
async def deaf(tmp_path: Path, telegram: FakeTelegram, llm: FakeLLM) -> AsyncIterator[Service]:
    """The service without one."""
    settings = service_settings(
        tmp_path, public_url=PUBLIC, telegram_api_url=telegram.base_url, llm_api_base=llm.base_url
    )
    async with running_service(settings) as service:
        yield service


async def test_a_voice_note_is_heard_answered_and_kept_as_words(
    hearing: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await deploy(hearing, telegram, model=MODEL)
    telegram.add_file("voice-1", VOICE_NOTE, file_path="voice/file_1.oga")
    llm.transcript("When do you open on Sundays?", duration=3.2)
    llm.reply("We open at ten on Sundays.")
    await send_update(hearing, deployment, voice_update("voice-1"), secret_of(telegram, bot_token))

    [answer] = await sent(telegram, bot_token)
    assert "We open at ten on Sundays." in answer.body["text"]
    transcription, completion = llm.calls[-2:]
    assert transcription.model == "whisper-1"
    assert transcription.files["file"].data == VOICE_NOTE
    assert completion.body["messages"][-1]["content"] == "When do you open on Sundays?"

    [conversation] = await hearing.call("GET", "/api/v1/bots/faq-bot/conversations")
    kept = await hearing.call("GET", f"/api/v1/bots/faq-bot/conversations/{conversation['id']}")
    said, answered = kept["messages"]
    assert (said["role"], said["text"], said["voice_s"]) == (
        "user",
        "When do you open on Sundays?",
        3.2,
    )
    assert answered["voice_s"] is None


async def test_without_a_speech_model_the_person_hears_the_bot_reads_text_only(
    deaf: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await deploy(deaf, telegram, model=MODEL)
    telegram.add_file("voice-2", VOICE_NOTE)
    await send_update(deaf, deployment, voice_update("voice-2"), secret_of(telegram, bot_token))
    [answer] = await sent(telegram, bot_token)
    assert answer.body["text"] == TEXT_ONLY
    assert not llm.calls  # nothing was asked of any model
    assert not telegram.calls_to("getFile", token=bot_token)  # nor fetched


async def test_a_provider_that_fails_gets_an_apology_and_nothing_loops(
    hearing: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await deploy(hearing, telegram, model=MODEL)
    telegram.add_file("voice-3", VOICE_NOTE)
    for _ in range(5):  # every attempt the gateway makes
        llm.fail(500)
    update = voice_update("voice-3")
    secret = secret_of(telegram, bot_token)
    await send_update(hearing, deployment, update, secret)
    [answer] = await sent(telegram, bot_token)
    assert answer.body["text"] == NOT_HEARD
    await send_update(hearing, deployment, update, secret)  # Telegram delivers it again
    assert len(telegram.calls_to("sendMessage", token=bot_token)) == 1


async def test_a_voice_note_telegram_will_not_hand_over_is_answered_plainly(
    hearing: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await deploy(hearing, telegram, model=MODEL)
    # no such file at Telegram (getFile refuses it)
    await send_update(hearing, deployment, voice_update("gone"), secret_of(telegram, bot_token))
    [answer] = await sent(telegram, bot_token)
    assert answer.body["text"] == NOT_HEARD
    assert not llm.calls


async def test_a_bot_that_speaks_answers_a_voice_note_with_one(
    speaking: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await deploy(speaking, telegram, model=MODEL, voice=True)
    telegram.add_file("voice-4", VOICE_NOTE)
    llm.transcript("Are you open today?", duration=1.5)
    llm.reply("Yes, until six.")
    secret = secret_of(telegram, bot_token)
    await send_update(speaking, deployment, voice_update("voice-4"), secret)

    await telegram.wait_for("sendVoice", 1, token=bot_token, timeout_s=15)
    [spoken] = telegram.calls_to("sendVoice", token=bot_token)
    speech = llm.calls[-1]
    assert (speech.model, speech.body["input"]) == ("tts-1", "Yes, until six.")
    assert speech.body["response_format"] == "opus"  # a Telegram voice note as it is
    assert not telegram.calls_to("sendMessage", token=bot_token)  # answered by voice alone
    assert spoken.body["chat_id"] in (1001, "1001")

    # typed words are answered in words, whatever the bot says to voice notes
    llm.reply("Until six.")
    await send_update(speaking, deployment, message_update("Until when?"), secret)
    [typed] = await sent(telegram, bot_token)
    assert typed.body["text"] == "Until six."

    [conversation] = await speaking.call("GET", "/api/v1/bots/faq-bot/conversations")
    kept = await speaking.call("GET", f"/api/v1/bots/faq-bot/conversations/{conversation['id']}")
    texts = [(m["role"], m["text"]) for m in kept["messages"]]
    assert texts[:2] == [("user", "Are you open today?"), ("assistant", "Yes, until six.")]


async def test_voice_answers_are_refused_where_no_speech_model_is_set(
    hearing: Service, telegram: FakeTelegram
) -> None:
    await hearing.import_bot()
    said = (await hearing.say("/set faq-bot voice on"))["reply"]
    assert "STUDIO_TTS_MODEL" in said
    assert (await hearing.call("GET", "/api/v1/bots/faq-bot"))["draft"].get("voice") in (
        None,
        False,
    )
