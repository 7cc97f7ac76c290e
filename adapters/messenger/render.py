"""Replies in Messenger's own forms, within the Send API's limits.

Text: Messenger shows no marks, so a model's Markdown goes as plain text (`PLAIN`: headings and
emphasis as their words, lists as `•` or numbered lines, links as `label (url)`), split at 2,000
characters. Buttons: up to 13 quick replies (shown under the last message until the person taps
one or writes), each title at most 20 characters (a longer label is cut, as long as the titles
stay distinct); otherwise numbered lines of text.
"""

from __future__ import annotations

from typing import Any

from adapters.meta.text import PLAIN, markdown_to_text, message_markdown, split_text
from runtime.messages import Button, OutgoingMessage

MESSAGE_LIMIT = 2000  # characters of a text message
MAX_QUICK_REPLIES = 13
QUICK_REPLY_TITLE = 20
QUICK_REPLY_PAYLOAD = 1000
CHOOSE = "Choose one:"  # the text quick replies go under when the message has none


def render(message: OutgoingMessage) -> str:
    """The message's text (Markdown) and its fields (`label: value` lines) as plain text."""
    return markdown_to_text(message_markdown(message), PLAIN)


def split(text: str) -> list[str]:
    """Text messages of at most 2,000 characters."""
    return split_text(text, MESSAGE_LIMIT)


def quick_replies(buttons: tuple[Button, ...]) -> list[dict[str, Any]] | None:
    """`buttons` as quick replies (each pressed one comes back as its action); None when they
    fit none (too many, an empty label, titles that are one once cut, an action too long)."""
    labels = [button.label.strip() for button in buttons]
    actions = [button.action for button in buttons]
    if not buttons or len(buttons) > MAX_QUICK_REPLIES or not all(labels):
        return None
    if not all(1 <= len(action) <= QUICK_REPLY_PAYLOAD for action in actions):
        return None
    titles = [_title(label) for label in labels]
    if len(set(titles)) < len(titles):
        return None  # the person could not tell them apart
    return [
        {"content_type": "text", "title": title, "payload": action}
        for title, action in zip(titles, actions, strict=True)
    ]


def _title(label: str) -> str:
    if len(label) <= QUICK_REPLY_TITLE:
        return label
    return label[: QUICK_REPLY_TITLE - 1].rstrip() + "…"
