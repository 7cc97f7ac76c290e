"""WhatsApp's webhook posts (Cloud API, field `messages`) at the boundary, and what they mean here.

A post is read in two steps: its envelope (entries, changes, each change's metadata), then each
message and each status on its own, so one that cannot be read is logged and the rest still
count. A message becomes an `IncomingMessage`: a text; a reply button or list row pressed (its id
as the action, its title as the text); a template's quick-reply button (its payload as the
action); an image, voice note, audio, video, document or sticker as a `FileRef` whose URL is
`media:{media-id}` (fetched later with the deployment's token) and its caption as the text; a
location or a shared contact as words; "request_welcome" (a person opening the chat for the
first time) as `/start`. A reaction or a system notice (a number changed) says nothing to
answer. Any other kind comes as a message without text, which the runtime answers by saying it
reads text only.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runtime.messages import Address, FileRef, IncomingMessage
from runtime.runtime import START_COMMAND

KIND = "whatsapp"
MEDIA_PREFIX = "media:"  # a FileRef's URL: `media:{media-id}`
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
SILENT_TYPES = frozenset({"reaction", "system"})  # nothing to answer


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- the envelope ------------------------------------------------------------------------------


class Metadata(_Model):
    phone_number_id: str
    display_phone_number: str | None = None


class Problem(_Model):
    """An `errors[]` item (of a status, a message, or a whole change)."""

    code: int | None = None
    title: str | None = None
    message: str | None = None
    error_data: dict[str, Any] | None = None

    def describe(self) -> str:
        """`(#code) title: details`."""
        words = self.title or self.message or "an error"
        details = (self.error_data or {}).get("details")
        said = f"{words}: {details}" if details and details != words else words
        return f"(#{self.code}) {said}" if self.code is not None else said


class Value(_Model):
    """A change's `value`: messages and statuses are read one by one (`Message`, `Status`)."""

    metadata: Metadata
    messages: list[Any] = []
    statuses: list[Any] = []
    errors: list[Problem] = []


class Change(_Model):
    field: str
    value: dict[str, Any]


class Entry(_Model):
    id: str | None = None
    changes: list[Change] = []


class WebhookPost(_Model):
    object: Literal["whatsapp_business_account"]
    entry: list[Entry] = []


# -- messages ----------------------------------------------------------------------------------


class Text(_Model):
    body: str = ""


class Media(_Model):
    id: str = Field(min_length=1, max_length=100)
    mime_type: str | None = Field(default=None, max_length=200)
    caption: str | None = None
    filename: str | None = Field(default=None, max_length=200)
    file_size: int | None = None
    voice: bool = False


class ReplyPicked(_Model):
    id: str
    title: str = ""


class Interactive(_Model):
    type: str
    button_reply: ReplyPicked | None = None
    list_reply: ReplyPicked | None = None


class TemplateButton(_Model):
    text: str = ""
    payload: str | None = None


class Location(_Model):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


class ContactName(_Model):
    formatted_name: str = ""


class ContactPhone(_Model):
    phone: str = ""


class Contact(_Model):
    name: ContactName = ContactName()
    phones: list[ContactPhone] = []


class Message(_Model):
    """A `messages[]` item: a person wrote to the business."""

    # A wa_id is the person's number, digits only; the id names this delivery.
    sender: str = Field(alias="from", pattern=r"^\d{1,20}$")
    id: str = Field(min_length=1, max_length=240)
    timestamp: int
    type: str
    text: Text | None = None
    interactive: Interactive | None = None
    button: TemplateButton | None = None
    image: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: list[Contact] = []

    def media(self) -> Media | None:
        found: Media | None = getattr(self, self.type) if self.type in MEDIA_TYPES else None
        return found


class Status(_Model):
    """A `statuses[]` item: what became of a message the business sent."""

    id: str = Field(min_length=1, max_length=240)
    status: str
    recipient_id: str | None = None
    errors: list[Problem] = []

    def error(self) -> str | None:
        return "; ".join(problem.describe() for problem in self.errors) or None


# -- what they mean here -----------------------------------------------------------------------


def address_of(deployment_id: str, wa_id: str) -> Address:
    """A person's conversation with a deployment: one per WhatsApp user (their wa_id)."""
    return Address(
        channel=KIND, deployment_id=deployment_id, conversation=wa_id, user=f"{KIND}:{wa_id}"
    )


def incoming(deployment_id: str, message: Message) -> IncomingMessage | None:
    """The message as the runtime takes it; None when there is nothing to answer."""
    if message.type in SILENT_TYPES:
        return None
    text, action = "", None
    files: tuple[FileRef, ...] = ()
    media = message.media()
    if message.type == "text" and message.text is not None:
        text = message.text.body
    elif message.type == "interactive" and message.interactive is not None:
        picked = message.interactive.button_reply or message.interactive.list_reply
        if picked is not None:
            text, action = picked.title or picked.id, picked.id
    elif message.type == "button" and message.button is not None:
        text = message.button.text
        action = message.button.payload or message.button.text or None
    elif media is not None:
        files = (_file(message.type, media),)
        text = media.caption or ""
    elif message.type == "location" and message.location is not None:
        text = _location(message.location)
    elif message.type == "contacts":
        text = "\n".join(_contact(contact) for contact in message.contacts)
    elif message.type == "request_welcome":
        text = START_COMMAND
    return IncomingMessage(
        address=address_of(deployment_id, message.sender),
        text=text,
        files=files,
        action=action,
        dedupe_key=f"{KIND}:{deployment_id}:{message.id}",
    )


def _file(kind: str, media: Media) -> FileRef:
    name = media.filename or ("voice note" if media.voice else kind)
    return FileRef(
        name=name,
        url=f"{MEDIA_PREFIX}{media.id}",
        mime=media.mime_type,
        size=media.file_size,
        voice=kind == "audio",  # a voice note or a recording: heard (`runtime.hearing`)
    )


def _location(place: Location) -> str:
    where = ", ".join(part for part in (place.name, place.address) if part)
    at = f"{place.latitude:.6f}, {place.longitude:.6f}"
    return f"Location: {where} ({at})" if where else f"Location: {at}"


def _contact(contact: Contact) -> str:
    phones = ", ".join(phone.phone for phone in contact.phones if phone.phone)
    name = contact.name.formatted_name or "a contact"
    return f"Contact: {name}" + (f" ({phones})" if phones else "")
