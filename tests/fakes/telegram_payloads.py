"""Builders of Telegram updates (what a webhook receives or getUpdates returns) with valid
defaults, the webhook secret header and well-formed bot tokens.

    update = message_update("/start")              # private chat 1001 with alice, a bot_command
    await client.post("/telegram/bots/1", json=update, headers=secret_headers(SECRET))
    fake.push_update(token(1), message_update("hi"))   # for getUpdates (tests.fakes.telegram)

    callback_update("yes", message_id=7)           # a button pressed under the bot's message 7
    reaction_update(7, new=["👍"])                  # alice reacted 👍 to message 7 (new=[]: took
                                                   # hers back; anonymous=True: a group's admin)
    photo_update(caption="look")                   # a message with a `photo` array and no text
    document_update("notes.pdf", mime_type="application/pdf")

`update_id`, `message_id` and file ids are unique and increasing unless given. Groups:
`chat_id=-1001234567890, chat_type="supergroup"` (add `message_thread_id` for a forum topic).
"""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
BOT_ID = 100000001  # the bot of `token(1)`

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_update_ids = itertools.count(10_001)
_message_ids = itertools.count(50_001)
_seq = itertools.count(1)


def token(n: int) -> str:
    """A well-formed bot token, deterministic per `n`: `"{100000000+n}:AA" + 33 letters/digits`
    (its bot id is `100000000 + n`)."""
    digest = hashlib.sha512(f"chat-studio-test-token-{n}".encode()).digest()
    tail = "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:33])
    return f"{100000000 + n}:AA{tail}"


def secret_headers(secret: str) -> dict[str, str]:
    """The header Telegram sends with each webhook post when `setWebhook` had a secret_token."""
    return {SECRET_HEADER: secret}


def next_update_id() -> int:
    return next(_update_ids)


def user(user_id: int = 1001, username: str | None = "alice") -> dict[str, Any]:
    """A human User object."""
    person: dict[str, Any] = {
        "id": user_id,
        "is_bot": False,
        "first_name": (username or "user").capitalize(),
        "language_code": "en",
    }
    if username:
        person["username"] = username
    return person


def chat(
    chat_id: int = 1001, chat_type: str = "private", username: str | None = "alice"
) -> dict[str, Any]:
    """A Chat object: a private chat with the user, or a group / supergroup / channel."""
    if chat_type == "private":
        item: dict[str, Any] = {
            "id": chat_id,
            "type": "private",
            "first_name": (username or "user").capitalize(),
        }
        if username:
            item["username"] = username
        return item
    item = {"id": chat_id, "type": chat_type, "title": "Test group"}
    if chat_type == "supergroup":
        item["is_forum"] = False
    return item


def _message(
    *,
    chat_id: int,
    user_id: int,
    username: str | None,
    chat_type: str,
    message_id: int | None,
    message_thread_id: int | None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id if message_id is not None else next(_message_ids),
        "from": user(user_id, username),
        "chat": chat(chat_id, chat_type, username),
        "date": int(time.time()),
    }
    if message_thread_id is not None:
        message["message_thread_id"] = message_thread_id
        message["is_topic_message"] = True
        if chat_type == "supergroup":
            message["chat"]["is_forum"] = True
    return message


def _update(key: str, value: dict[str, Any], update_id: int | None) -> dict[str, Any]:
    return {"update_id": update_id if update_id is not None else next_update_id(), key: value}


def message_update(
    text: str,
    *,
    update_id: int | None = None,
    chat_id: int = 1001,
    user_id: int = 1001,
    username: str | None = "alice",
    chat_type: str = "private",
    message_id: int | None = None,
    message_thread_id: int | None = None,
) -> dict[str, Any]:
    """An update with a text message; a `bot_command` entity when `text` starts with '/'."""
    message = _message(
        chat_id=chat_id,
        user_id=user_id,
        username=username,
        chat_type=chat_type,
        message_id=message_id,
        message_thread_id=message_thread_id,
    )
    message["text"] = text
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        length = len(command.encode("utf-16-le")) // 2
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return _update("message", message, update_id)


def managed_bot_update(
    bot: dict[str, Any], *, user_id: int = 1001, update_id: int | None = None
) -> dict[str, Any]:
    """A `managed_bot` update (Bot API 9.6): the user `user_id` created `bot` (a User object) to
    be managed by the receiving bot, or its token or owner changed."""
    return _update("managed_bot", {"user": user(user_id), "bot": dict(bot)}, update_id)


def callback_update(
    data: str,
    *,
    update_id: int | None = None,
    chat_id: int = 1001,
    user_id: int = 1001,
    username: str | None = "alice",
    chat_type: str = "private",
    message_id: int | None = None,
    message_thread_id: int | None = None,
    message_text: str = "Choose one",
    callback_id: str | None = None,
    bot_id: int = BOT_ID,
) -> dict[str, Any]:
    """An update with a callback query: the user pressed a button carrying `data` under the bot's
    message `message_id` (whose text is `message_text`)."""
    message = _message(
        chat_id=chat_id,
        user_id=user_id,
        username=username,
        chat_type=chat_type,
        message_id=message_id,
        message_thread_id=message_thread_id,
    )
    message["from"] = {
        "id": bot_id,
        "is_bot": True,
        "first_name": "Test bot",
        "username": f"bot{bot_id}_bot",
    }
    message["text"] = message_text
    query = {
        "id": callback_id or f"{user_id}{next(_seq):08d}",
        "from": user(user_id, username),
        "message": message,
        "chat_instance": str(-abs(chat_id) * 7 - 3),
        "data": data,
    }
    return _update("callback_query", query, update_id)


def photo_update(
    *,
    caption: str | None = None,
    file_id: str | None = None,
    update_id: int | None = None,
    chat_id: int = 1001,
    user_id: int = 1001,
    username: str | None = "alice",
    chat_type: str = "private",
    message_id: int | None = None,
    message_thread_id: int | None = None,
) -> dict[str, Any]:
    """An update with a photo (a `photo` array of sizes, the largest last) and no text. The
    largest size's file id is `file_id` (for `FakeTelegram.add_file`)."""
    message = _message(
        chat_id=chat_id,
        user_id=user_id,
        username=username,
        chat_type=chat_type,
        message_id=message_id,
        message_thread_id=message_thread_id,
    )
    n = next(_seq)
    large = file_id or f"photo-{n}"
    message["photo"] = [
        {
            "file_id": f"{large}-small",
            "file_unique_id": f"Ps{n}",
            "width": 90,
            "height": 67,
            "file_size": 1200,
        },
        {
            "file_id": large,
            "file_unique_id": f"Pl{n}",
            "width": 1280,
            "height": 960,
            "file_size": 98_000,
        },
    ]
    if caption is not None:
        message["caption"] = caption
    return _update("message", message, update_id)


def document_update(
    file_name: str,
    *,
    mime_type: str = "text/plain",
    file_size: int = 1024,
    caption: str | None = None,
    file_id: str | None = None,
    update_id: int | None = None,
    chat_id: int = 1001,
    user_id: int = 1001,
    username: str | None = "alice",
    chat_type: str = "private",
    message_id: int | None = None,
    message_thread_id: int | None = None,
) -> dict[str, Any]:
    """An update with a document (no text) whose file id is `file_id` (for
    `FakeTelegram.add_file`)."""
    message = _message(
        chat_id=chat_id,
        user_id=user_id,
        username=username,
        chat_type=chat_type,
        message_id=message_id,
        message_thread_id=message_thread_id,
    )
    n = next(_seq)
    message["document"] = {
        "file_id": file_id or f"document-{n}",
        "file_unique_id": f"D{n}",
        "file_name": file_name,
        "mime_type": mime_type,
        "file_size": file_size,
    }
    if caption is not None:
        message["caption"] = caption
    return _update("message", message, update_id)


def reaction_update(
    message_id: int,
    *,
    new: list[str],
    old: list[str] | None = None,
    update_id: int | None = None,
    chat_id: int = 1001,
    user_id: int = 1001,
    username: str | None = "alice",
    chat_type: str = "private",
    anonymous: bool = False,
) -> dict[str, Any]:
    """A `message_reaction` update: the user's reactions to message `message_id` changed from
    `old` to `new` (emoji; `"custom:ID"` for a custom emoji). `anonymous`: an anonymous group
    admin reacted, on behalf of the chat (`actor_chat`, no `user`)."""

    def reactions(emojis: list[str]) -> list[dict[str, str]]:
        return [
            {"type": "custom_emoji", "custom_emoji_id": e.removeprefix("custom:")}
            if e.startswith("custom:")
            else {"type": "emoji", "emoji": e}
            for e in emojis
        ]

    where = chat(chat_id, chat_type, username)
    change: dict[str, Any] = {
        "chat": where,
        "message_id": message_id,
        "date": int(time.time()),
        "old_reaction": reactions(old or []),
        "new_reaction": reactions(new),
    }
    if anonymous:
        change["actor_chat"] = where
    else:
        change["user"] = user(user_id, username)
    return _update("message_reaction", change, update_id)
