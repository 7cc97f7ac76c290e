"""Files the Studio's Telegram bot sends: a picture (a flow's PNG) as a photo after the text,
anything else as a document."""

from __future__ import annotations

from runtime.messages import Attachment, OutgoingMessage
from studio.address import TELEGRAM_STUDIO, studio_address
from tests.adapters.telegram.test_telegram_studio import (
    ALICE,
    BUILDER,
    connected,
    member_of_local_team,
    studio,
    tell,
)
from tests.factories import Service
from tests.fakes.telegram import FakeTelegram, Upload
from tests.png import png_size

__all__ = ["studio"]  # the fixture, shared with the Studio bot's tests


async def test_a_flow_comes_as_its_outline_then_a_photo(
    studio: Service, telegram: FakeTelegram
) -> None:
    await member_of_local_team(studio, telegram)
    await studio.import_bot("faq-bot")
    answer = await tell(studio, telegram, "/flow faq-bot")
    assert "runs the plain flow" in answer.body["text"]
    [photo] = await telegram.wait_for("sendPhoto", token=BUILDER)
    assert str(photo.body["chat_id"]) == str(ALICE)
    upload = photo.body["photo"]
    assert isinstance(upload, Upload) and upload.filename == "faq-bot-flow.png"
    png_size(upload.content)
    assert telegram.calls_to("sendDocument", token=BUILDER) == []


async def test_stats_come_as_numbers_then_a_chart(studio: Service, telegram: FakeTelegram) -> None:
    await member_of_local_team(studio, telegram)
    deployment = await studio.live_web_bot("faq-bot")
    assert (await studio.chat(deployment, "Hello?")).status_code == 200
    answer = await tell(studio, telegram, "/stats faq-bot 24h")
    assert "faq-bot" in answer.body["text"] and "last 24 hours" in answer.body["text"]
    [photo] = await telegram.wait_for("sendPhoto", token=BUILDER)
    upload = photo.body["photo"]
    assert isinstance(upload, Upload) and upload.filename == "faq-bot-stats-24h.png"
    assert png_size(upload.content) == (800, 640)


async def test_a_text_file_alone_is_one_document(studio: Service, telegram: FakeTelegram) -> None:
    adapter = await connected(studio)
    address = studio_address(TELEGRAM_STUDIO, 1, f"telegram:{ALICE}", thread=str(ALICE))
    file = Attachment(name="faq-bot.yaml", content="name: faq-bot\n", mime="application/yaml")
    receipt = await adapter.send(OutgoingMessage(address=address, text="", file=file))
    [document] = telegram.calls_to("sendDocument", token=BUILDER)
    upload = document.body["document"]
    assert isinstance(upload, Upload) and upload.content == b"name: faq-bot\n"
    assert telegram.calls_to("sendMessage", token=BUILDER) == []  # no empty text before it
    assert receipt.platform_id is not None
