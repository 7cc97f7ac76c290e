"""The Studio's neutral replies as Telegram HTML.

The light markup (`*bold*`, `` `code` ``, fenced blocks) becomes `<b>`, `<code>` and `<pre>`;
everything else is escaped, so that no text (a bot's prompt, a model's answer) can break
`parse_mode=HTML`. Fields become `label: value` lines. Each piece of a long reply is rendered on
its own, so a split never cuts a tag in two.
"""

from __future__ import annotations

import html
import re

from adapters.markup import around
from runtime.messages import OutgoingMessage

CALLBACK_DATA_LIMIT = 64  # bytes of a button's callback_data
_FENCE = re.compile(r"```(?:[a-z]*\n)?(.*?)```", re.DOTALL)
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def to_html(text: str) -> str:
    """Light markup to Telegram HTML, everything else escaped."""
    return around(
        _FENCE,
        text,
        outside=_inline,
        inside=lambda m: f"<pre>{html.escape(m.group(1).rstrip(), quote=False)}</pre>",
    )


def _inline(text: str) -> str:
    return around(
        _CODE,
        text,
        outside=_bold,
        inside=lambda m: f"<code>{html.escape(m.group(1), quote=False)}</code>",
    )


def _bold(text: str) -> str:
    escaped = html.escape(text, quote=False)
    return _BOLD.sub(r"<b>\1</b>", escaped)


def full_text(message: OutgoingMessage) -> str:
    """The message's text with its fields as `*label*: value` lines (still light markup)."""
    lines = [message.text] if message.text else []
    lines += [f"*{f.label}*: {f.value}" for f in message.fields]
    return "\n".join(lines)


def fits_button(action: str) -> bool:
    return len(action.encode()) <= CALLBACK_DATA_LIMIT
