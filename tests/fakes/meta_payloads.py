"""Builders of Meta's inbound webhooks (WhatsApp Cloud API and Messenger) in Meta's real shapes,
with valid defaults, and their `X-Hub-Signature-256`.

    payload = whatsapp_payload(wa_text("hi"))          # Alice (WA_ID) wrote to PHONE_NUMBER_ID
    body = dumps(payload)                              # the bytes Meta would post (ASCII, "\\/")
    await client.post(url, content=body, headers=signed_headers(body, APP_SECRET))
    fake.inbound(payload)                              # the fake Graph API learns who wrote when

    wa_button_reply("yes", "Yes")                      # a reply button pressed
    wa_list_reply("plan_pro", "Pro", description="…")  # a list row chosen
    wa_audio(media_id)                                 # a voice note (`voice: true`, ogg/opus)
    wa_image(media_id, caption="look")
    whatsapp_payload(statuses=[wa_status(wamid, "delivered")])
    whatsapp_payload(statuses=fake.statuses(PHONE_NUMBER_ID))   # what the fake says Meta posts
    messenger_payload(messenger_message("hi", quick_reply="YES"))
    verification_query("verify-me")                    # GET ?hub.mode=subscribe&hub.verify_token…

WhatsApp timestamps are epoch seconds as strings, Messenger's epoch milliseconds as numbers; both
default to now (pass `timestamp=fake.now()` when the fake's clock was moved). Message ids (wamid,
mid) are unique unless given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

SIGNATURE_HEADER = "X-Hub-Signature-256"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE_NUMBER = "15550783881"
WABA_ID = "102290129340398"
WA_ID = "16315551234"
PROFILE_NAME = "Alice"
PAGE_ID = "104350728714295"
PSID = "6783612345678901"
ERROR_CODES_URL = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

_seq = itertools.count(1)


# -- signatures and bodies -------------------------------------------------------------------


def sign(body: bytes, app_secret: str) -> str:
    """`X-Hub-Signature-256`'s value: `sha256=` and the hex HMAC-SHA256 of the raw body, keyed
    with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def dumps(payload: Mapping[str, Any]) -> bytes:
    """The body as Meta posts it: compact JSON, non-ASCII as `\\uXXXX` and `/` as `\\/` (so a
    handler that verifies a re-serialised body instead of the raw bytes fails, as with Meta)."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    return text.replace("/", "\\/").encode()


def signed_headers(body: bytes, app_secret: str) -> dict[str, str]:
    """The headers of a webhook post: JSON and a valid `X-Hub-Signature-256`."""
    return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, app_secret)}


def verification_query(
    verify_token: str, challenge: str = "1158201444", mode: str = "subscribe"
) -> dict[str, str]:
    """The query of Meta's verification request (`GET` on the webhook URL); the answer must be
    the challenge, as plain text, when the token is right."""
    return {"hub.mode": mode, "hub.challenge": challenge, "hub.verify_token": verify_token}


# -- WhatsApp ---------------------------------------------------------------------------------


def wamid(wa_id: str = WA_ID) -> str:
    """A fresh WhatsApp message id (`wamid.…`)."""
    raw = f"{wa_id}:{next(_seq):08d}:inbound".encode()
    return "wamid.HBgL" + base64.b64encode(raw).decode().rstrip("=")


def _message(
    kind: str,
    content: Mapping[str, Any] | None,
    *,
    wa_id: str,
    message_id: str | None,
    timestamp: float | None,
    context: str | None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "from": wa_id,
        "id": message_id or wamid(wa_id),
        "timestamp": str(int(time.time() if timestamp is None else timestamp)),
        "type": kind,
    }
    if context is not None:
        message["context"] = {"from": DISPLAY_PHONE_NUMBER, "id": context}
    if content is not None:
        message[kind] = dict(content)
    return message


def wa_text(
    body: str,
    *,
    wa_id: str = WA_ID,
    message_id: str | None = None,
    timestamp: float | None = None,
    context: str | None = None,
) -> dict[str, Any]:
    """A text message (`messages[]` item); `context` is the wamid it replies to."""
    return _message(
        "text",
        {"body": body},
        wa_id=wa_id,
        message_id=message_id,
        timestamp=timestamp,
        context=context,
    )


def wa_button_reply(
    button_id: str,
    title: str,
    *,
    wa_id: str = WA_ID,
    message_id: str | None = None,
    timestamp: float | None = None,
    context: str | None = None,
) -> dict[str, Any]:
    """A reply button pressed under the business's interactive message `context`."""
    interactive = {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}
    return _message(
        "interactive",
        interactive,
        wa_id=wa_id,
        message_id=message_id,
        timestamp=timestamp,
        context=context or wamid(DISPLAY_PHONE_NUMBER),
    )


def wa_list_reply(
    row_id: str,
    title: str,
    *,
    description: str | None = None,
    wa_id: str = WA_ID,
    message_id: str | None = None,
    timestamp: float | None = None,
    context: str | None = None,
) -> dict[str, Any]:
    """A row chosen in the business's list message `context`."""
    reply: dict[str, Any] = {"id": row_id, "title": title}
    if description is not None:
        reply["description"] = description
    return _message(
        "interactive",
        {"type": "list_reply", "list_reply": reply},
        wa_id=wa_id,
        message_id=message_id,
        timestamp=timestamp,
        context=context or wamid(DISPLAY_PHONE_NUMBER),
    )


def wa_template_button(
    text: str,
    payload: str,
    *,
    wa_id: str = WA_ID,
    message_id: str | None = None,
    timestamp: float | None = None,
    context: str | None = None,
) -> dict[str, Any]:
    """A quick-reply button of a template message pressed (type `button`)."""
    return _message(
        "button",
        {"text": text, "payload": payload},
        wa_id=wa_id,
        message_id=message_id,
        timestamp=timestamp,
        context=context or wamid(DISPLAY_PHONE_NUMBER),
    )


def _media(
    kind: str,
    media_id: str,
    mime_type: str,
    extra: Mapping[str, Any],
    *,
    wa_id: str,
    message_id: str | None,
    timestamp: float | None,
    sha256: str | None,
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "mime_type": mime_type,
        "sha256": sha256 or base64.b64encode(hashlib.sha256(media_id.encode()).digest()).decode(),
        "id": media_id,
    }
    content.update({k: v for k, v in extra.items() if v is not None})
    return _message(
        kind, content, wa_id=wa_id, message_id=message_id, timestamp=timestamp, context=None
    )


def wa_audio(
    media_id: str,
    *,
    mime_type: str = "audio/ogg; codecs=opus",
    voice: bool = True,
    wa_id: str = WA_ID,
    message_id: str | None = None,
    timestamp: float | None = None,
    sha256: str | None = None,
) -> dict[str, Any]:
    """An audio message: a voice note (`voice: true`, ogg/opus) by default, else an audio file.
    The media id is what `GET /{media-id}` resolves (`fake.add_media(...)`)."""
    return _media(
        "audio",
        media_id,
        mime_type,
        {"voice": voice},
        wa_id=wa_id,
        message_id=message_id,
        timestamp=timestamp,
        sha256=sha256,
    )


def wa_image(
    media_id: str,
    *,
    caption: str | None = None,
    mime_type: str = "image/jpeg",
    wa_id: str = WA_ID,
    message_id: str | None = None,
    timestamp: float | None = None,
    sha256: str | None = None,
) -> dict[str, Any]:
    """An image message (with its caption, if any)."""
    return _media(
        "image",
        media_id,
        mime_type,
        {"caption": caption},
        wa_id=wa_id,
        message_id=message_id,
        timestamp=timestamp,
        sha256=sha256,
    )


def wa_document(
    media_id: str,
    *,
    filename: str = "notes.pdf",
    caption: str | None = None,
    mime_type: str = "application/pdf",
    wa_id: str = WA_ID,
    message_id: str | None = None,
    timestamp: float | None = None,
    sha256: str | None = None,
) -> dict[str, Any]:
    """A document message."""
    return _media(
        "document",
        media_id,
        mime_type,
        {"filename": filename, "caption": caption},
        wa_id=wa_id,
        message_id=message_id,
        timestamp=timestamp,
        sha256=sha256,
    )


def wa_error(code: int, title: str, details: str | None = None) -> dict[str, Any]:
    """An `errors[]` item of a failed status (or of an unsupported message)."""
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details or title},
        "href": ERROR_CODES_URL,
    }


def wa_status(
    message_id: str,
    status: str = "delivered",
    *,
    recipient_id: str = WA_ID,
    timestamp: float | None = None,
    errors: Iterable[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A `statuses[]` item: what became of the business's message (`sent`, `delivered`,
    `read`, `failed` with `errors`)."""
    item: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(int(time.time() if timestamp is None else timestamp)),
        "recipient_id": recipient_id,
    }
    if errors is not None:
        item["errors"] = [dict(e) for e in errors]
    elif status == "failed":
        item["errors"] = [
            wa_error(
                131047,
                "Re-engagement message",
                "Message failed to send because more than 24 hours have passed since the"
                " customer last replied to this number.",
            )
        ]
    return item


def whatsapp_value(
    *messages: Mapping[str, Any],
    statuses: Iterable[Mapping[str, Any]] = (),
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
    profile_name: str = PROFILE_NAME,
) -> dict[str, Any]:
    """An `entry[].changes[].value`: the messages (with a `contacts[]` item per sender) and the
    statuses, for one business phone number."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    }
    senders = list(dict.fromkeys(str(m["from"]) for m in messages))
    if senders:
        value["contacts"] = [{"profile": {"name": profile_name}, "wa_id": s} for s in senders]
        value["messages"] = [dict(m) for m in messages]
    listed = [dict(s) for s in statuses]
    if listed:
        value["statuses"] = listed
    return value


def whatsapp_payload(
    *messages: Mapping[str, Any],
    statuses: Iterable[Mapping[str, Any]] = (),
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
    profile_name: str = PROFILE_NAME,
    waba_id: str = WABA_ID,
) -> dict[str, Any]:
    """A whole WhatsApp webhook post (`object: whatsapp_business_account`), one change of the
    `messages` field."""
    value = whatsapp_value(
        *messages,
        statuses=statuses,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        profile_name=profile_name,
    )
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"value": value, "field": "messages"}]}],
    }


# -- Messenger --------------------------------------------------------------------------------


def mid() -> str:
    """A fresh Messenger message id (`m_…`)."""
    return f"m_inbound{next(_seq):012d}"


def _ms(timestamp: float | None) -> int:
    """Messenger's timestamps: epoch milliseconds (from epoch seconds, or now)."""
    return int((time.time() if timestamp is None else timestamp) * 1000)


def _event(psid: str, page_id: str, timestamp: float | None, **content: Any) -> dict[str, Any]:
    return {
        "sender": {"id": psid},
        "recipient": {"id": page_id},
        "timestamp": _ms(timestamp),
        **content,
    }


def messenger_message(
    text: str | None = None,
    *,
    quick_reply: str | None = None,
    attachments: Iterable[Mapping[str, Any]] | None = None,
    psid: str = PSID,
    page_id: str = PAGE_ID,
    message_id: str | None = None,
    timestamp: float | None = None,
) -> dict[str, Any]:
    """A `messaging[]` event: the person's message (`quick_reply` is the payload of the quick
    reply they tapped; `attachments` e.g. `[{"type": "audio", "payload": {"url": …}}]`)."""
    message: dict[str, Any] = {"mid": message_id or mid()}
    if text is not None:
        message["text"] = text
    if quick_reply is not None:
        message["quick_reply"] = {"payload": quick_reply}
    if attachments is not None:
        message["attachments"] = [dict(a) for a in attachments]
    return _event(psid, page_id, timestamp, message=message)


def messenger_postback(
    payload: str,
    title: str = "Get Started",
    *,
    psid: str = PSID,
    page_id: str = PAGE_ID,
    message_id: str | None = None,
    timestamp: float | None = None,
) -> dict[str, Any]:
    """A button (or Get Started) pressed: a `postback` event."""
    postback = {"title": title, "payload": payload, "mid": message_id or mid()}
    return _event(psid, page_id, timestamp, postback=postback)


def messenger_echo(
    text: str,
    *,
    psid: str = PSID,
    page_id: str = PAGE_ID,
    message_id: str | None = None,
    timestamp: float | None = None,
    app_id: int = 1517776481860111,
) -> dict[str, Any]:
    """The echo of a message the Page sent (sender is the Page): a handler must not answer it."""
    message = {"is_echo": True, "app_id": app_id, "mid": message_id or mid(), "text": text}
    return {
        "sender": {"id": page_id},
        "recipient": {"id": psid},
        "timestamp": _ms(timestamp),
        "message": message,
    }


def messenger_delivery(
    mids: Iterable[str],
    *,
    watermark: float | None = None,
    psid: str = PSID,
    page_id: str = PAGE_ID,
) -> dict[str, Any]:
    """The Page's messages were delivered (`watermark`: all sent before it, epoch seconds)."""
    delivery = {"mids": list(mids), "watermark": _ms(watermark)}
    return {"sender": {"id": psid}, "recipient": {"id": page_id}, "delivery": delivery}


def messenger_read(
    *, watermark: float | None = None, psid: str = PSID, page_id: str = PAGE_ID
) -> dict[str, Any]:
    """The person read the Page's messages sent before `watermark` (epoch seconds)."""
    return _event(psid, page_id, watermark, read={"watermark": _ms(watermark)})


def messenger_payload(*events: Mapping[str, Any], page_id: str = PAGE_ID) -> dict[str, Any]:
    """A whole Messenger webhook post (`object: page`): one `entry` per event, as Meta batches
    them (each `messaging` array holds one event)."""
    entries = []
    for event in events:
        at = event.get("timestamp")
        when = int(at) if isinstance(at, int | float) else _ms(None)
        entries.append({"id": page_id, "time": when, "messaging": [dict(event)]})
    return {"object": "page", "entry": entries}
