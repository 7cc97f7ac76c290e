"""The Studio's neutral replies as Telegram HTML.

The light markup (`*bold*`, `` `code` ``, fenced blocks) becomes `<b>`, `<code>` and `<pre>`;
everything else is escaped, so that no text (a bot's prompt, a model's answer) can break
`parse_mode=HTML`. Fields become `label: value` lines. Each piece of a long reply is rendered on
its own, so a split never cuts a tag in two.
"""

from __future__ import annotations

import html
import re

from runtime.messages import OutgoingMessage

CALLBACK_DATA_LIMIT = 64  # bytes of a button's callback_data
_FENCE = re.compile(r"```(?:[a-z]*\n)?(.*?)```", re.DOTALL)
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def to_html(text: str) -> str:
    """Light markup to Telegram HTML, everything else escaped."""
    out: list[str] = []
    last = 0
    for fence in _FENCE.finditer(text):
        out.append(_inline(text[last : fence.start()]))
        out.append(f"<pre>{html.escape(fence.group(1).rstrip(), quote=False)}</pre>")
        last = fence.end()
    out.append(_inline(text[last:]))
    return "".join(out)


def _inline(text: str) -> str:
    out: list[str] = []
    last = 0
    for code in _CODE.finditer(text):
        out.append(_bold(text[last : code.start()]))
        out.append(f"<code>{html.escape(code.group(1), quote=False)}</code>")
        last = code.end()
    out.append(_bold(text[last:]))
    return "".join(out)


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
