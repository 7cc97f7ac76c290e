"""What people send a WhatsApp deployment, as the runtime records it: button replies, media (as
file references fetched later with the deployment's token), voice notes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from runtime.channel import SendError
from runtime.messages import FileRef
from storage.tables import InboxItem
from tests.adapters.whatsapp.conftest import Own, channel_of, deploy, post
from tests.factories import Service
from tests.fakes.meta import FakeMeta
from tests.fakes.meta_payloads import (
    WA_ID,
    wa_audio,
    wa_button_reply,
    wa_document,
    wa_image,
    wa_list_reply,
    wa_template_button,
    whatsapp_payload,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def recorded(studio: Service, deployment: str, count: int) -> list[dict[str, Any]]:
    """The inbound messages the deployment recorded, as the runtime keeps them, once `count` are
    answered."""
    runtime = studio.app.state.core.runtime
    await runtime.drain()
    query = select(InboxItem).where(InboxItem.deployment_id == deployment)
    async with runtime.db.read() as session:
        rows = list((await session.exec(query.order_by(col(InboxItem.id)))).all())
    assert len(rows) == count
    return [row.payload for row in rows]


async def test_button_and_list_replies_come_as_actions(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, phone=own.phone))["id"]
    payload = whatsapp_payload(
        wa_button_reply("plan:pro", "Pro"),
        wa_list_reply("size:l", "Large", description="The big one"),
        wa_template_button("Stop promotions", "STOP"),
        phone_number_id=own.phone,
    )
    meta.inbound(payload)

    assert (await post(studio, deployment, payload)).status_code == 200

    messages = await recorded(studio, deployment, 3)
    assert [(m["text"], m["action"]) for m in messages] == [
        ("Pro", "plan:pro"),
        ("Large", "size:l"),
        ("Stop promotions", "STOP"),
    ]
    address = messages[0]["address"]
    assert address == {
        "channel": "whatsapp",
        "deployment_id": deployment,
        "conversation": WA_ID,
        "user": f"whatsapp:{WA_ID}",
        "thread": None,
    }
    await meta.wait_for("messages", 3)  # each answered


async def test_media_come_as_file_references_read_with_the_token(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, phone=own.phone))["id"]
    photo = meta.add_media(b"\xff\xd8 a photo", "image/jpeg", phone_number_id=own.phone)
    voice = meta.add_media(b"OggS voice", "audio/ogg; codecs=opus")
    document = meta.add_media(b"%PDF-1.7", "application/pdf")
    payload = whatsapp_payload(
        wa_image(photo, caption="Is this broken?"),
        wa_audio(voice),
        wa_document(document, filename="invoice.pdf"),
        phone_number_id=own.phone,
    )
    meta.inbound(payload)

    assert (await post(studio, deployment, payload)).status_code == 200

    image, note, pdf = await recorded(studio, deployment, 3)
    assert image["text"] == "Is this broken?"
    assert image["files"] == [
        {
            "name": "image",
            "url": f"media:{photo}",
            "size": None,
            "mime": "image/jpeg",
            "voice": False,
        }
    ]
    assert (note["text"], note["files"][0]["name"]) == ("", "voice note")
    assert note["files"][0]["voice"] and not pdf["files"][0]["voice"]  # heard, not read
    assert note["files"][0]["mime"] == "audio/ogg; codecs=opus"
    assert pdf["files"][0]["name"] == "invoice.pdf"
    channel = channel_of(studio)
    file = FileRef.model_validate(note["files"][0])
    assert await channel.download(deployment, file) == b"OggS voice"
    assert await channel.download(deployment, FileRef(name="x", url=f"media:{photo}")) == (
        b"\xff\xd8 a photo"
    )
    fetched = meta.calls_to("download")[-1]
    assert fetched.auth == "bearer"
    with pytest.raises(SendError, match="at most 4 bytes") as too_big:
        await channel.download(deployment, file, limit=4)
    assert too_big.value.permanent
    with pytest.raises(SendError, match="no media id"):
        await channel.download(deployment, FileRef(name="x", url="https://example.com/x"))
    with pytest.raises(SendError) as unknown:
        await channel.download(deployment, FileRef(name="x", url="media:424242"))
    assert unknown.value.permanent
