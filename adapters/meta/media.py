"""A file as it goes to a Meta platform (to WhatsApp's media, or with a Messenger message), and
the rule both keep: a file over the platform's limit fails for good before anything is uploaded.
Which types each platform takes, and as what, is its own (`adapters.whatsapp.media`,
`adapters.messenger.media`)."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.channel import SendError
from runtime.messages import Attachment
from runtime.net import format_size


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as it goes to a Meta platform: the kind of message (or attachment) that carries it,
    its type, its name and its bytes."""

    kind: str  # image, audio, video; a WhatsApp document, a Messenger file
    mime: str
    name: str
    content: bytes


def media_type(file: Attachment) -> str:
    """`file`'s MIME type, lower case and without its parameters (`; charset=…`)."""
    return file.mime.split(";", 1)[0].strip().lower()


def upload(file: Attachment, *, kind: str, mime: str, limit: int, taken: str) -> Upload:
    """`file` as an `Upload` of `kind`; `SendError` (for good) when it is over `limit` bytes,
    saying what the platform takes (`taken`: "WhatsApp takes image files")."""
    content = file.payload
    if len(content) > limit:
        raise SendError(
            f"{file.name} is {format_size(len(content))}: {taken} of up to {format_size(limit)}",
            permanent=True,
        )
    return Upload(kind=kind, mime=mime, name=file.name, content=content)
