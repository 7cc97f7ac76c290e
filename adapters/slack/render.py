"""Neutral replies as Slack Block Kit, and Slack's message text as plain commands.

The Studio's light markup (`*bold*`, `` `code` ``, fenced blocks) is already Slack mrkdwn, so
it passes through; a bot's answer (a model's Markdown) is converted to mrkdwn first. `&`, `<` and
`>` are escaped as Slack requires. Fields become a fields
section (at most 10 per section), buttons an actions block whose values carry the action. A
generated bot's answer that end users may rate ends with Slack's feedback buttons (a
`context_actions` block). Slack's limits hold: 3,000 characters a section (cut between lines), 50
blocks a message.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.slack.markdown import escape, to_mrkdwn
from runtime.feedback import Rating
from runtime.messages import OutgoingMessage

SECTION_LIMIT = 3000  # characters of one section's text
MAX_BLOCKS = 50
TEXT_LIMIT = 40000  # characters of a message's `text`
_FIELDS_PER_SECTION = 10
# The feedback buttons' action id, and what each button's value rates. The value says only up or
# down: which answer is rated comes from the clicked message's channel and ts.
FEEDBACK_ACTION = "feedback"
RATINGS: dict[str, Rating] = {"up": 1, "down": -1}
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


def blocks(
    message: OutgoingMessage, *, markdown: bool = False, rateable: bool = False
) -> list[dict[str, Any]]:
    """The message as Block Kit: text sections, fields sections, an actions block, and feedback
    buttons when it is `rateable` (a generated bot's answer). `markdown`: the text is a model's
    Markdown, converted to mrkdwn (the Studio's own text already is)."""
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
    tail = [{"type": "actions", "elements": actions}] if actions else []
    if rateable:
        tail.append(_feedback_block())
    if len(out) + len(tail) > MAX_BLOCKS:  # keep room for the buttons; the full text is in `text`
        cut = {"type": "mrkdwn", "text": "(cut: too long for Slack)"}
        out = [*out[: MAX_BLOCKS - len(tail) - 1], {"type": "context", "elements": [cut]}]
    return out + tail


def _feedback_block() -> dict[str, Any]:
    """Slack's native feedback buttons (👍 / 👎) under an answer."""

    def button(emoji: str, label: str, value: str) -> dict[str, Any]:
        text = {"type": "plain_text", "text": emoji, "emoji": True}
        return {"text": text, "accessibility_label": label, "value": value}

    element = {
        "type": "feedback_buttons",
        "action_id": FEEDBACK_ACTION,
        "positive_button": button("👍", "A good answer", "up"),
        "negative_button": button("👎", "A bad answer", "down"),
    }
    return {"type": "context_actions", "elements": [element]}


def fallback_text(message: OutgoingMessage, *, markdown: bool = False) -> str:
    """The notification text (and what screen readers say)."""
    fields = escape("\n".join(f"{f.label}: {f.value}" for f in message.fields))
    text = to_mrkdwn(message.text) if markdown else escape(message.text)
    return "\n".join(part for part in (text, fields) if part)[:TEXT_LIMIT] or " "
