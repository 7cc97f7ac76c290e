"""Replies in WhatsApp's own forms, within the Cloud API's limits.

Text: a model's Markdown in WhatsApp's markup (`*bold*`, `_italic_`, `~struck~`, `` `code` ``,
```` ``` ```` blocks, `> ` quotes), split at 4,096 characters. Buttons: up to 3 with titles of up
to 20 characters are reply buttons; up to 10 (titles of up to 72 characters) a list, whose rows
show 24 characters and the rest below; more, or labels no form takes, numbered lines of text. A
template's body parameter: the text on one line (Meta refuses a parameter with a line break, a
tab or more than four spaces in a row), in pieces that leave room for the template's own words.
"""

from __future__ import annotations

from typing import Any

from adapters.meta.text import Marks, markdown_to_text, message_markdown, split_text
from adapters.meta.text import numbered as numbered  # buttons no interactive form takes
from runtime.messages import Button, OutgoingMessage

MESSAGE_LIMIT = 4096  # characters of a text message
BODY_LIMIT = 1024  # characters of a caption, or of an interactive message's body
MAX_BUTTONS = 3
BUTTON_TITLE = 20
BUTTON_ID = 256
MAX_ROWS = 10
ROW_TITLE = 24
ROW_DESCRIPTION = 72
ROW_ID = 200
LIST_BUTTON = "Choose"  # the label of the button that opens a list
CHOOSE = "Choose one:"  # a body for buttons whose text went before them
# A template's body is at most 1,024 characters, its own words included: a message goes in
# pieces of this many, each its own template message.
TEMPLATE_TEXT = 700
WHATSAPP = Marks(bold="*", italic="_", strike="~", code="`", fence="```", quote="> ")


def render(message: OutgoingMessage) -> str:
    """The message's text (Markdown) and its fields (`label: value` lines) in WhatsApp's markup."""
    return markdown_to_text(message_markdown(message), WHATSAPP)


def split(text: str) -> list[str]:
    """Text messages of at most 4,096 characters."""
    return split_text(text, MESSAGE_LIMIT, fence=WHATSAPP.fence)


def interactive(buttons: tuple[Button, ...], body: str) -> dict[str, Any] | None:
    """The `interactive` object that shows `buttons` under `body` (at most `BODY_LIMIT`
    characters): reply buttons or a list; None when they fit neither (`numbered` then)."""
    labels = [b.label.strip() for b in buttons]
    actions = [b.action for b in buttons]
    if not buttons or len(set(labels)) < len(labels) or len(set(actions)) < len(actions):
        return None  # WhatsApp refuses two buttons with one title or one id
    if not all(labels) or not all(actions):
        return None
    text = {"text": body}
    if len(buttons) <= MAX_BUTTONS and _fit(labels, BUTTON_TITLE) and _fit(actions, BUTTON_ID):
        replies = [
            {"type": "reply", "reply": {"id": action, "title": label}}
            for label, action in zip(labels, actions, strict=True)
        ]
        return {"type": "button", "body": text, "action": {"buttons": replies}}
    if len(buttons) <= MAX_ROWS and _fit(labels, ROW_DESCRIPTION) and _fit(actions, ROW_ID):
        rows = [_row(label, action) for label, action in zip(labels, actions, strict=True)]
        action = {"button": LIST_BUTTON, "sections": [{"rows": rows}]}
        return {"type": "list", "body": text, "action": action}
    return None


def _fit(values: list[str], limit: int) -> bool:
    return all(len(value) <= limit for value in values)


def _row(label: str, action: str) -> dict[str, str]:
    """A list row: the label as its title, or cut there and shown whole below it."""
    if len(label) <= ROW_TITLE:
        return {"id": action, "title": label}
    return {"id": action, "title": label[: ROW_TITLE - 1] + "…", "description": label}


def template_texts(text: str) -> list[str]:
    """`text` as template body parameters: on one line, in pieces of `TEMPLATE_TEXT`."""
    return split_text(" ".join(text.split()), TEMPLATE_TEXT, fence=WHATSAPP.fence)
