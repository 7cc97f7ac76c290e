"""Replies as Telegram HTML (`parse_mode=HTML`), in messages Telegram accepts.

Two sources: the Studio's light markup (`*bold*`, `` `code` ``, fenced blocks become `<b>`,
`<code>` and `<pre>`; fields become `label: value` lines), and a generated bot's answer, a model's
Markdown, read by markdown-it-py and written with the tags Telegram allows (b, i, s, a, code, pre,
blockquote; headings bold, list items as `•` or numbered lines). Everything else is escaped, so no
text can break the parse mode. `split_html` cuts a long reply at 4,096 characters, between
paragraphs or lines where it can, closing the tags open at a cut and opening them again after it.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right

from adapters.markup import MarkdownWriter, around, markdown_parser
from runtime.messages import OutgoingMessage

MESSAGE_LIMIT = 4096  # characters of one message
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


# -- a model's Markdown ------------------------------------------------------------------------

_MARKDOWN = markdown_parser()
_LINKS = ("https://", "http://", "tg://", "mailto:")  # what Telegram takes in a link


def markdown_to_html(text: str) -> str:
    """A model's Markdown as Telegram HTML."""
    return _HtmlWriter().write(_MARKDOWN.parse(text))


class _HtmlWriter(MarkdownWriter):
    """The shared Markdown walk in the tags Telegram takes, all text escaped. Telegram refuses a
    blockquote inside another, a link inside another and code inside a link: there, only the
    outer one is a tag, and the rest is text."""

    def __init__(self) -> None:
        marks = {"strong": ("<b>", "</b>"), "em": ("<i>", "</i>"), "s": ("<s>", "</s>")}
        super().__init__(marks, ("<code>", "</code>"))
        self.links: list[bool] = []  # per open link: written as <a> (a URL Telegram takes)

    def escape(self, text: str) -> str:
        return html.escape(text, quote=False)

    def pre(self, language: str) -> tuple[str, str]:
        if not language:
            return "<pre>", "</pre>"
        return f'<pre><code class="language-{html.escape(language)}">', "</code></pre>"

    def code_marks(self) -> tuple[str, str]:
        return ("", "") if any(self.links) else self.code

    def link_open(self, url: str) -> None:
        usable = url.startswith(_LINKS) and not any(self.links)
        self.links.append(usable)
        if usable:
            self.put(f'<a href="{html.escape(url)}">')

    def link_close(self) -> None:
        self.end("</a>" if self.links.pop() else "")

    def quote_open(self) -> None:
        if self.quotes == 1:
            self.put("<blockquote>")

    def quote_close(self) -> None:
        if self.quotes == 0:
            self.breaks = 0  # the closing tag straight after the quote's text
            self.end("</blockquote>", breaks=2)
        else:
            self.end(breaks=2)


# -- long replies --------------------------------------------------------------------------------


def split_html(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Telegram HTML in messages of at most `limit` characters: cut after a blank line, a line or
    a word where possible (in the second half of a message), never inside a tag or an entity;
    the tags open at a cut are closed before it and opened again after it."""
    if len(text) <= limit:
        return [text] if text.strip() else []
    tags = _Tags(text)
    messages: list[str] = []
    start, reopen = 0, ""
    while start < len(text):
        end = min(len(text), start + limit - len(reopen))
        while True:
            cut = end if end == len(text) else _cut(text, start, end, tags)
            closing = tags.closing_at(cut)
            if len(reopen) + cut - start + len(closing) <= limit or end <= start + 1:
                break
            end -= len(reopen) + cut - start + len(closing) - limit
        piece = reopen + text[start:cut] + closing
        if plain_text(piece).strip():
            messages.append(piece)
        start, reopen = cut, tags.opening_at(cut)
    return messages


def plain_text(text: str) -> str:
    """What Telegram HTML shows, as plain text (sent when Telegram refuses the HTML)."""
    parts: list[str] = []
    position = 0
    while (tag := text.find("<", position)) != -1 and (close := text.find(">", tag)) != -1:
        parts.append(text[position:tag])
        position = close + 1
    parts.append(text[position:])
    return html.unescape("".join(parts))


class _Tags:
    """Where the tags of a well-formed fragment are, and which are open at any position (text
    is escaped, so every `<` starts a tag)."""

    def __init__(self, text: str) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.open: list[tuple[str, ...]] = []  # the opening tags in force after each tag
        stack: list[str] = []
        position = 0
        while (start := text.find("<", position)) != -1:
            position = text.find(">", start) + 1
            if position == 0:
                break
            tag = text[start:position]
            if tag.startswith("</"):
                stack.pop()
            else:
                stack.append(tag)
            self.starts.append(start)
            self.ends.append(position)
            self.open.append(tuple(stack))

    def _at(self, position: int) -> tuple[str, ...]:
        index = bisect_right(self.ends, position)
        return self.open[index - 1] if index else ()

    def opening_at(self, position: int) -> str:
        return "".join(self._at(position))

    def closing_at(self, position: int) -> str:
        names = (tag[1:-1].split(" ", 1)[0] for tag in reversed(self._at(position)))
        return "".join(f"</{name}>" for name in names)

    def inside(self, position: int) -> int | None:
        """The start of the tag that `position` falls strictly inside, if any."""
        index = bisect_right(self.starts, position - 1) - 1
        if index >= 0 and self.starts[index] < position < self.ends[index]:
            return self.starts[index]
        return None


def _cut(text: str, start: int, end: int, tags: _Tags) -> int:
    """Where a message running from `start` to at most `end` ends."""
    for low in (start + (end - start) // 2, start + 1):
        for separator in ("\n\n", "\n", " "):
            found = text.rfind(separator, low, end)
            while found != -1 and tags.inside(found) is not None:
                found = text.rfind(separator, low, tags.inside(found))
            if found != -1:
                return found + len(separator)
    cut = tags.inside(end) or end  # no break at all: cut before the tag or the entity
    entity = text.rfind("&", max(start, cut - 10), cut)
    if entity > start and ";" not in text[entity:cut]:
        cut = entity
    return cut if cut > start else end
