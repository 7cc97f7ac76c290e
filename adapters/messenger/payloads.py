"""Messenger's webhook posts (`object: page`, the `messaging` events) at the boundary, and what
they mean here.

A post is read in steps: its envelope, each entry (one Page's), then each event on its own, so
an entry or event that cannot be read is logged and the rest still count. What an event is:

- a message: its text; a quick reply tapped (its payload as the action, its title as the text);
  attachments (image, audio, video, file, sticker) as `FileRef`s with the URL Meta gives (on its
  CDN, short-lived, no token needed); a shared link or a location as words;
- a postback: a button of the Page pressed (Get Started, the persistent menu, a button
  template): its payload as the action, its title as the text;
- the echo of a message the Page sent (`is_echo`): nothing to answer;
- a delivery (`mids`) or read (`watermark`) report of the Page's messages;
- a reaction to a message (`react`, `unreact`): a rating of the answer it is on, never answered.

Other events (opt-ins, referrals, the handover protocol) say nothing to answer here. Messenger's
ids (a PSID, a Page id) are digits; its timestamps are epoch milliseconds.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from runtime.feedback import Rating
from runtime.messages import Address, FileRef, IncomingMessage

KIND = "messenger"
FILE_TYPES = frozenset({"image", "audio", "video", "file"})  # a sticker is an image
# Messenger's reactions (its names, whatever the emoji): those that rate an answer.
_UP = frozenset({"like", "love", "smile"})
_DOWN = frozenset({"dislike", "angry", "sad"})
# The extensions of the files Meta's CDN serves people's attachments as (no type is given).
_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "pdf": "application/pdf",
    "txt": "text/plain",
}
_ID = r"^\d{1,40}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- the envelope ------------------------------------------------------------------------------


class Entry(_Model):
    """One Page's events; each is read on its own (`Event`)."""

    id: str
    time: int | None = None
    messaging: list[Any] = []
    standby: list[Any] = []  # events another app of the Page has the thread for (handover)


class WebhookPost(_Model):
    """A post's envelope: its entries are read one by one (`Entry`)."""

    object: Literal["page"]
    entry: list[Any] = []


# -- events ------------------------------------------------------------------------------------


class Party(_Model):
    id: str = Field(pattern=_ID)  # a PSID or a Page id


class QuickReply(_Model):
    payload: str = Field(default="", max_length=1000)


class Coordinates(_Model):
    lat: float
    long: float


class AttachmentPayload(_Model):
    url: str | None = Field(default=None, max_length=4096)
    title: str | None = Field(default=None, max_length=1000)
    sticker_id: int | None = None
    coordinates: Coordinates | None = None


class Attachment(_Model):
    type: str
    title: str | None = Field(default=None, max_length=1000)  # a shared link's ("fallback")
    url: str | None = Field(default=None, max_length=4096)
    payload: AttachmentPayload | None = None


class Message(_Model):
    mid: str = Field(min_length=1, max_length=240)
    text: str | None = None
    quick_reply: QuickReply | None = None
    attachments: list[Attachment] = []
    is_echo: bool = False


class Postback(_Model):
    title: str = ""
    payload: str = Field(default="", max_length=1000)
    mid: str | None = Field(default=None, max_length=240)


class Delivery(_Model):
    mids: list[str] = []
    watermark: int | None = None


class Read(_Model):
    watermark: int


class Reaction(_Model):
    action: str  # "react" or "unreact"
    mid: str = Field(min_length=1, max_length=240)  # the message reacted to
    reaction: str | None = None  # "like", "love", "sad"…
    emoji: str | None = None


class Event(_Model):
    """A `messaging[]` item: one thing a person (or the Page, for an echo) did."""

    sender: Party
    recipient: Party
    timestamp: int | None = None  # epoch milliseconds (a delivery has none)
    message: Message | None = None
    postback: Postback | None = None
    delivery: Delivery | None = None
    read: Read | None = None
    reaction: Reaction | None = None

    @property
    def says(self) -> bool:
        """Whether the person wrote or pressed something (what opens the messaging window)."""
        echo = self.message is not None and self.message.is_echo
        return (self.message is not None and not echo) or self.postback is not None


# -- what they mean here -----------------------------------------------------------------------


def address_of(deployment_id: str, psid: str) -> Address:
    """A person's conversation with a Page: one per PSID (Page-scoped: the same person has
    another PSID on another Page)."""
    return Address(
        channel=KIND, deployment_id=deployment_id, conversation=psid, user=f"{KIND}:{psid}"
    )


def incoming(deployment_id: str, event: Event) -> IncomingMessage | None:
    """The message or postback as the runtime takes it; None when the event is neither (an
    echo, a report, a reaction)."""
    address = address_of(deployment_id, event.sender.id)
    message = event.message
    if message is not None and not message.is_echo:
        text = message.text or ""
        files = tuple(_file(a) for a in message.attachments if _is_file(a))
        words = [said for a in message.attachments if (said := _words(a))]
        picked = message.quick_reply.payload if message.quick_reply else ""
        return IncomingMessage(
            address=address,
            text=text or "\n".join(words),
            files=files,
            action=picked or None,
            dedupe_key=f"{KIND}:{deployment_id}:{message.mid}",
        )
    if event.postback is not None:
        pressed = event.postback
        once = pressed.mid or (
            f"postback:{event.sender.id}:{event.timestamp}" if event.timestamp else None
        )
        return IncomingMessage(
            address=address,
            text=pressed.title or pressed.payload,
            action=pressed.payload or None,
            dedupe_key=f"{KIND}:{deployment_id}:{once}" if once else None,
        )
    return None


def rating(reaction: Reaction) -> Rating | None:
    """The rating a reaction gives the message it is on: taken back (0) when it is withdrawn,
    None when it rates nothing (wow, other)."""
    if reaction.action == "unreact":
        return 0
    if reaction.action != "react":
        return None
    name = (reaction.reaction or "").lower()
    return 1 if name in _UP else -1 if name in _DOWN else None


def _is_file(attachment: Attachment) -> bool:
    url = attachment.payload.url if attachment.payload else None
    return attachment.type in FILE_TYPES and bool(url)


def _file(attachment: Attachment) -> FileRef:
    url = attachment.payload.url if attachment.payload else None
    sticker = attachment.payload is not None and attachment.payload.sticker_id is not None
    name = urlsplit(url or "").path.rsplit("/", 1)[-1][:200] or attachment.type
    return FileRef(name="sticker" if sticker else name, url=url, mime=_mime(attachment.type, name))


def _mime(kind: str, name: str) -> str | None:
    """The file's type by its extension; Messenger's voice clips are `.mp4` audio."""
    _, dot, extension = name.rpartition(".")
    found = _TYPES.get(extension.lower()) if dot else None
    if found is not None and kind == "audio" and found.startswith("video/"):
        return "audio/" + found.removeprefix("video/")
    return found


def _words(attachment: Attachment) -> str:
    """A shared link or a location, as words."""
    payload = attachment.payload
    if attachment.type == "location" and payload is not None and payload.coordinates:
        where = payload.coordinates
        named = f"{payload.title}: " if payload.title else ""
        return f"Location: {named}{where.lat:.6f}, {where.long:.6f}"
    if attachment.type == "fallback":
        url = (payload.url if payload else None) or attachment.url or ""
        title = (payload.title if payload else None) or attachment.title or ""
        return " ".join(part for part in (title, url) if part)
    return ""
