"""Neutral replies as Slack Block Kit, and Slack's message text as plain commands.

The Studio's light markup (`*bold*`, `` `code` ``, fenced blocks) is already Slack mrkdwn, so
it passes through; a bot's answer (a model's Markdown) is converted to mrkdwn first. `&`, `<` and
`>` are escaped as Slack requires. Fields become a fields
section (at most 10 per section), buttons an actions block whose values carry the action. Slack's
limits hold: 3,000 characters a section (cut between lines), 50 blocks a message.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.slack.markdown import escape, to_mrkdwn
from runtime.messages import OutgoingMessage

SECTION_LIMIT = 3000  # characters of one section's text
MAX_BLOCKS = 50
TEXT_LIMIT = 40000  # characters of a message's `text`
_FIELDS_PER_SECTION = 10
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto|tel):[^|>]+)(?:\|([^>]*))?>")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def plain(text: str, *, bot_user: str | None = None) -> str:
    """What a person typed, as the Studio reads it: the app's own mention dropped, channel
    references as ids (`<#C123|support>` -> `C123`), links as URLs, entities unescaped."""
    if bot_user:
        text = re.sub(rf"<@{re.escape(bot_user)}(?:\|[^>]*)?>", "", text)
    text = _CHANNEL.sub(r"\1", text)
    text = _USER.sub(r"\1", text)
    text = _LINK.sub(_link_text, text)
    return unescape(text).strip()


def _link_text(match: re.Match[str]) -> str:
    """A web link as its URL; `mailto:`/`tel:` as what was typed (the label)."""
    target, label = match.group(1), match.group(2)
    return target if target.startswith("http") or not label else label


def mentions(text: str, bot_user: str | None) -> bool:
    return bool(bot_user) and f"<@{bot_user}" in text


def _sections(text: str) -> list[str]:
    """Escaped `text` in pieces of at most SECTION_LIMIT characters, cut between lines where
    possible (never inside an entity such as `&amp;`)."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > SECTION_LIMIT:  # one very long line: cut it, not an entity
            cut = line.rfind("&", 0, SECTION_LIMIT)
            cut = cut if cut > SECTION_LIMIT - 8 else SECTION_LIMIT
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:cut])
            line = line[cut:]
        joined = f"{current}\n{line}" if current else line
        if len(joined) > SECTION_LIMIT:
            pieces.append(current)
            joined = line
        current = joined
    if current:
        pieces.append(current)
    return pieces


def blocks(message: OutgoingMessage, *, markdown: bool = False) -> list[dict[str, Any]]:
    """The message as Block Kit: text sections, fields sections, an actions block. `markdown`:
    the text is a model's Markdown, converted to mrkdwn (the Studio's own text already is)."""
    text = to_mrkdwn(message.text) if markdown else escape(message.text)
    out: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece}} for piece in _sections(text)
    ]
    fields = list(message.fields)
    for start in range(0, len(fields), _FIELDS_PER_SECTION):
        out.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{escape(f.label)}*\n{escape(f.value)}"[:2000]}
                    for f in fields[start : start + _FIELDS_PER_SECTION]
                ],
            }
        )
    actions: list[dict[str, Any]] = []
    for number, button in enumerate(message.buttons[:25]):
        element: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": button.label[:75]},
            "action_id": f"studio-{number}",
            "value": button.action,  # the Studio's actions are short ids (confirm:c_...)
        }
        if button.style in ("primary", "danger"):
            element["style"] = button.style
        actions.append(element)
    if len(out) >= MAX_BLOCKS:  # keep room for the buttons; the full text is in `text`
        cut = {"type": "mrkdwn", "text": "(cut: too long for Slack)"}
        out = [*out[: MAX_BLOCKS - 2], {"type": "context", "elements": [cut]}]
    if actions:
        out.append({"type": "actions", "elements": actions})
    return out


def fallback_text(message: OutgoingMessage, *, markdown: bool = False) -> str:
    """The notification text (and what screen readers say)."""
    fields = escape("\n".join(f"{f.label}: {f.value}" for f in message.fields))
    text = to_mrkdwn(message.text) if markdown else escape(message.text)
    return "\n".join(part for part in (text, fields) if part)[:TEXT_LIMIT] or " "
