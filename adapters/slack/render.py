"""Neutral replies as Slack Block Kit, and Slack's message text as plain commands.

The Studio's light markup (`*bold*`, `` `code` ``, fenced blocks) is already Slack mrkdwn, so
text passes through; `&`, `<` and `>` are escaped as Slack requires. Fields become a fields
section (at most 10 per section), buttons an actions block whose values carry the action.
"""

from __future__ import annotations

import re
from typing import Any

from runtime.messages import OutgoingMessage

SECTION_LIMIT = 3000  # characters of one section's text
TEXT_LIMIT = 40000  # characters of a message's `text`
_FIELDS_PER_SECTION = 10
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<(https?://[^|>]+)(?:\|[^>]*)?>")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def plain(text: str, *, bot_user: str | None = None) -> str:
    """What a person typed, as the Studio reads it: the app's own mention dropped, channel
    references as ids (`<#C123|support>` -> `C123`), links as URLs, entities unescaped."""
    if bot_user:
        text = re.sub(rf"<@{re.escape(bot_user)}(?:\|[^>]*)?>", "", text)
    text = _CHANNEL.sub(r"\1", text)
    text = _USER.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    return unescape(text).strip()


def mentions(text: str, bot_user: str | None) -> bool:
    return bool(bot_user) and f"<@{bot_user}" in text


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def blocks(message: OutgoingMessage) -> list[dict[str, Any]]:
    """The message as Block Kit: text sections, a fields section, an actions block."""
    out: list[dict[str, Any]] = []
    if message.text:
        for part in _chunks(escape(message.text), SECTION_LIMIT):
            out.append({"type": "section", "text": {"type": "mrkdwn", "text": part}})
    fields = list(message.fields)
    for start in range(0, len(fields), _FIELDS_PER_SECTION):
        out.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": f"*{escape(f.label)}*\n{escape(f.value)}"[:2000],
                    }
                    for f in fields[start : start + _FIELDS_PER_SECTION]
                ],
            }
        )
    if message.buttons:
        elements = []
        for number, button in enumerate(message.buttons[:25]):
            element: dict[str, Any] = {
                "type": "button",
                "text": {"type": "plain_text", "text": button.label[:75]},
                "action_id": f"studio-{number}",
                "value": button.action[:2000],
            }
            if button.style in ("primary", "danger"):
                element["style"] = button.style
            elements.append(element)
        out.append({"type": "actions", "elements": elements})
    if message.file is not None:
        content = message.file.content[: SECTION_LIMIT - 20]
        out.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{escape(message.file.name)}*\n```{content}```",
                },
            }
        )
    return out


def fallback_text(message: OutgoingMessage) -> str:
    """The notification text (and what screen readers say)."""
    lines = [message.text, *(f"{f.label}: {f.value}" for f in message.fields)]
    return escape("\n".join(line for line in lines if line))[:TEXT_LIMIT] or " "
