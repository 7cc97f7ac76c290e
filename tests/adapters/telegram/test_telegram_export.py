"""`/export BOT` to the Studio's Telegram bot: the summary, then the file as a document
(`sendDocument`, never `sendPhoto`), bytes as exported."""

from __future__ import annotations

import json

from tests.adapters.telegram.test_telegram_studio import (
    ALICE,
    BUILDER,
    member_of_local_team,
    studio,
    tell,
)
from tests.factories import Service
from tests.fakes.telegram import FakeTelegram, Upload

__all__ = ["studio"]  # the fixture, shared with the Studio bot's tests


async def test_a_json_export_comes_as_a_document(studio: Service, telegram: FakeTelegram) -> None:
    await member_of_local_team(studio, telegram)
    deployment = await studio.live_web_bot("faq-bot")
    assert (await studio.chat(deployment, "Hello <there> & welcome?")).status_code == 200
    answer = await tell(studio, telegram, "/export faq-bot json 24h")
    assert "1 conversation, 2 messages in the last 24 hours, as JSON" in answer.body["text"]
    [document] = await telegram.wait_for("sendDocument", token=BUILDER)
    assert str(document.body["chat_id"]) == str(ALICE)
    upload = document.body["document"]
    assert isinstance(upload, Upload) and upload.filename == "faq-bot-conversations-24h.json"
    exported = json.loads(upload.content)
    [conversation] = exported["conversations"]
    question, _ = conversation["messages"]
    assert question["text"] == "Hello <there> & welcome?"
    assert telegram.calls_to("sendPhoto", token=BUILDER) == []


async def test_no_traffic_is_a_sentence(studio: Service, telegram: FakeTelegram) -> None:
    await member_of_local_team(studio, telegram)
    await studio.import_bot("faq-bot")
    answer = await tell(studio, telegram, "/export faq-bot")
    assert "no conversations in the last 7 days" in answer.body["text"]
    assert telegram.calls_to("sendDocument", token=BUILDER) == []
