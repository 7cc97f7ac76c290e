"""The normalised message types: the only shape of a message past `adapters/`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as ModelField


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


class Button(_Value):
    """A button that sends `action` back as an `IncomingMessage.action` when pressed."""

    label: str
    action: str
    style: str | None = None  # "primary" or "danger"; channels without styles ignore it


class Field(_Value):
    """A labelled value shown as a field (Slack) or a `label: value` line (plain text)."""

    label: str
    value: str


class Attachment(_Value):
    """A small text file sent with a reply (an exported spec, say)."""

    name: str
    content: str
    mime: str = "text/plain"


class IncomingMessage(_Value):
    """A message from a person; `dedupe_key` names one platform delivery (None: never repeated)."""

    address: Address
    text: str = ""
    files: tuple[FileRef, ...] = ()
    action: str | None = None
    dedupe_key: str | None = None
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


class Reply(_Value):
    """What a turn produced: the messages to send and, for the builder, the real error."""

    messages: tuple[OutgoingMessage, ...] = ()
    error: str | None = None
    version: int | None = None
    conversation_id: int | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(m.text for m in self.messages)
