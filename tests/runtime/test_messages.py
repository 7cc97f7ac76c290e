"""Attachments: text or bytes; bytes travel as base64 in JSON (the outbox, the HTTP API) and come
back as the same bytes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runtime.messages import MAX_ATTACHMENT_BYTES, Address, Attachment, OutgoingMessage

ADDRESS = Address(channel="studio", deployment_id="studio", conversation="c", user="u")
PNG = b"\x89PNG\r\n\x1a\n\x00\x01\xff"


def test_a_picture_round_trips_through_json_as_base64() -> None:
    message = OutgoingMessage(
        address=ADDRESS, text="x", file=Attachment(name="f.png", mime="image/png", data=PNG)
    )
    stored = message.model_dump(mode="json")
    assert stored["file"] == {
        "name": "f.png",
        "content": "",
        "data": "iVBORw0KGgoAAf8=",
        "mime": "image/png",
        "private": False,
    }
    assert OutgoingMessage.model_validate(stored) == message
    assert OutgoingMessage.model_validate_json(message.model_dump_json()) == message
    assert message.file is not None and message.file.is_image and message.file.payload == PNG


def test_a_text_file_stays_text() -> None:
    file = Attachment(name="faq-bot.yaml", content="name: faq-bot\n")
    assert file.model_dump(mode="json") == {
        "name": "faq-bot.yaml",
        "content": "name: faq-bot\n",
        "data": None,
        "mime": "text/plain",
        "private": False,
    }
    assert file.payload == b"name: faq-bot\n" and not file.is_image


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"content": "x", "data": PNG}, "not both"),
        ({"data": "not base64!"}, "data must be base64"),
        ({"data": b"x" * (MAX_ATTACHMENT_BYTES + 1)}, "at most"),
    ],
)
def test_bad_attachments_are_refused(fields: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Attachment(name="f", **fields)  # type: ignore[arg-type]
