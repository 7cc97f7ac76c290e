"""A WhatsApp voice note: its media fetched from the Graph API with the deployment's token,
transcribed with `STUDIO_STT_MODEL` (litellm against the fake OpenAI-compatible server) and
answered as text; kept as the turn's words with the audio's length."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from runtime.hearing import NOT_HEARD
from tests.adapters.meta.steps import one_test
from tests.adapters.whatsapp.conftest import PUBLIC, Own, deploy, post
from tests.adapters.whatsapp.test_webhook import answers
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.meta import FakeMeta
from tests.fakes.meta_payloads import PHONE_NUMBER_ID, wa_audio, whatsapp_payload

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.usefixtures("no_provider_keys"),
]

VOICE_NOTE = b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead" + b"\x00" * 300


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_hearing(
    tmp_path_factory: pytest.TempPathFactory, fake_meta: FakeMeta, fake_llm: FakeLLM
) -> AsyncIterator[Service]:
    settings = service_settings(
        tmp_path_factory.mktemp("hearing"),
        public_url=PUBLIC,
        studio_whatsapp_api_url=fake_meta.base_url,
        llm_api_base=fake_llm.base_url,
        stt_model="openai/whisper-1",
    )
    async with running_service(settings) as service:
        yield service


@pytest_asyncio.fixture(loop_scope="module")
async def hearing(
    module_hearing: Service, meta: FakeMeta, llm: FakeLLM, request: pytest.FixtureRequest
) -> AsyncIterator[Service]:
    """The service that hears, which the tests that only hear share (see `one_test`)."""
    async with one_test(module_hearing, "whatsapp", request) as service:
        yield service


async def test_a_voice_note_is_heard_and_answered_in_words(
    hearing: Service, meta: FakeMeta, llm: FakeLLM, own: Own
) -> None:
    deployment = (await deploy(hearing, meta, name=own.bot, phone=own.phone))["id"]
    media = meta.add_media(VOICE_NOTE, "audio/ogg; codecs=opus", phone_number_id=own.phone)
    llm.transcript("Do you deliver on Saturdays?", duration=2.0)
    payload = whatsapp_payload(wa_audio(media), phone_number_id=own.phone)
    meta.inbound(payload)
    assert (await post(hearing, deployment, payload)).status_code == 200

    (answer,) = await answers(meta, own.phone)
    assert answer["type"] == "text" and answer["text"]["body"]
    transcription = next(c for c in llm.calls if c.files)
    assert transcription.files["file"].data == VOICE_NOTE
    conversations = f"/api/v1/bots/{own.bot}/conversations"
    [conversation] = await hearing.call("GET", conversations)
    kept = await hearing.call("GET", f"{conversations}/{conversation['id']}")
    said = kept["messages"][0]
    assert (said["text"], said["voice_s"]) == ("Do you deliver on Saturdays?", 2.0)


async def test_media_meta_no_longer_has_is_answered_plainly(
    hearing: Service, meta: FakeMeta, llm: FakeLLM, own: Own
) -> None:
    deployment = (await deploy(hearing, meta, name=own.bot, phone=own.phone))["id"]
    # no such media at Meta
    payload = whatsapp_payload(wa_audio("999000111"), phone_number_id=own.phone)
    meta.inbound(payload)
    assert (await post(hearing, deployment, payload)).status_code == 200
    (answer,) = await answers(meta, own.phone)
    assert answer["text"]["body"] == NOT_HEARD
    assert not [c for c in llm.calls if c.files]


@pytest_asyncio.fixture(loop_scope="module")
async def speaking(tmp_path: Path, meta: FakeMeta, llm: FakeLLM) -> AsyncIterator[Service]:
    """A service of its own: one that also speaks (`STUDIO_TTS_MODEL`)."""
    settings = service_settings(
        tmp_path,
        public_url=PUBLIC,
        studio_whatsapp_api_url=meta.base_url,
        llm_api_base=llm.base_url,
        stt_model="openai/whisper-1",
        tts_model="openai/tts-1",
    )
    async with running_service(settings) as service:
        yield service


async def test_a_bot_that_speaks_answers_by_voice(
    speaking: Service, meta: FakeMeta, llm: FakeLLM
) -> None:
    deployment = (await deploy(speaking, meta))["id"]
    said = await speaking.say("/set faq-bot voice on")
    assert "voice" in said["reply"].lower()
    for env in ("staging", "production"):
        await speaking.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": env})
    media = meta.add_media(VOICE_NOTE, "audio/ogg; codecs=opus", phone_number_id=PHONE_NUMBER_ID)
    llm.transcript("Hello?", duration=1.0)
    payload = whatsapp_payload(wa_audio(media))
    meta.inbound(payload)
    assert (await post(speaking, deployment, payload)).status_code == 200

    (answer,) = await answers(meta, PHONE_NUMBER_ID)
    assert answer["type"] == "audio"
    upload = meta.calls_to("media")[-1]
    assert upload.body["type"] == "audio/ogg"
    assert upload.body["file"].content.startswith(b"OggS")
