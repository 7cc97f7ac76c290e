"""The normalised message types: the only shape of a message past `adapters/`."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)
from pydantic import Field as ModelField

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Address(_Value):
    """Where a message comes from or goes to."""

    channel: str
    deployment_id: str
    conversation: str
    user: str
    thread: str | None = None


class FileRef(_Value):
    name: str
    url: str | None = None
    size: int | None = None
    mime: str | None = None
    # Speech (a voice note, an audio message): heard as words (`runtime.hearing`), not read.
    voice: bool = False


class Button(_Value):
    """A button that sends `action` back as an `IncomingMessage.action` when pressed."""

    label: str
    action: str
    style: str | None = None  # "primary" or "danger"; channels without styles ignore it


class Field(_Value):
    """A labelled value shown as a field (Slack) or a `label: value` line (plain text)."""

    label: str
    value: str


def _from_base64(value: object) -> object:
    """Bytes as they are; text (what JSON carries, in the outbox or over HTTP) as base64."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data must be base64") from None
    return value


def _to_base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


# Bytes in Python; base64 text in JSON (so a message with a picture is stored and served as JSON).
Base64Data = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(_to_base64, return_type=str, when_used="json"),
    ModelField(max_length=MAX_ATTACHMENT_BYTES),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}, mode="serialization"),
]


class Attachment(_Value):
    """A small file sent with a reply: text in `content` (an exported spec), or bytes in `data`
    (a PNG picture of a flow, `mime="image/png"`). A `private` file holds end users' words (an
    export): a channel that can be shared sends it to the member alone."""

    name: str
    content: str = ""
    data: Base64Data | None = None
    mime: str = "text/plain"
    private: bool = False

    @model_validator(mode="after")
    def _one_body(self) -> Attachment:
        if self.data is not None and self.content:
            raise ValueError("an attachment holds text (content) or bytes (data), not both")
        return self

    @property
    def payload(self) -> bytes:
        """The file's bytes, whichever way it holds them."""
        return self.data if self.data is not None else self.content.encode()

    @property
    def is_image(self) -> bool:
        return self.data is not None and self.mime.startswith("image/")


class IncomingMessage(_Value):
    """A message from a person; `dedupe_key` names one platform delivery (None: never repeated)."""

    address: Address
    text: str = ""
    files: tuple[FileRef, ...] = ()
    action: str | None = None
    dedupe_key: str | None = None
    # `text` is what a voice note of this many seconds said (`runtime.hearing`); None: typed,
    # or a length the speech-to-text provider did not report.
    voice_s: float | None = None
    raw: dict[str, Any] = ModelField(default_factory=dict, exclude=True, repr=False)


class OutgoingMessage(_Value):
    """A reply. `text` uses light markup (`*bold*`, `` `code` ``); `fields`, `buttons` and
    `file` are neutral structures each channel renders in its own form."""

    address: Address
    text: str
    fields: tuple[Field, ...] = ()
    buttons: tuple[Button, ...] = ()
    file: Attachment | None = None
    reply_to: str | None = None
    # A bot's stored answer (its message id) end users may rate: Slack shows feedback buttons,
    # Telegram takes reactions, the web page thumbs. None: nothing to rate (the Studio, notices).
    feedback_id: int | None = None


class Reply(_Value):
    """What a turn produced: the messages to send and, for the builder, the real error."""

    messages: tuple[OutgoingMessage, ...] = ()
    error: str | None = None
    version: int | None = None
    conversation_id: int | None = None
    # The stored answer's id when end users may rate it (not a fallback after a failure, nor a
    # guard's refusal).
    message_id: int | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(m.text for m in self.messages)
