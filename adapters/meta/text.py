"""A model's Markdown as the plain text of a Meta platform, in that platform's own marks.

WhatsApp marks text itself (`*bold*`, `_italic_`, `~struck~`, `` `code` ``, ```` ``` ```` blocks,
`> ` quotes); Messenger shows none (`PLAIN`). Markdown is read by markdown-it-py (never by hand):
headings become bold lines, list items `•` or numbered lines, links `label (url)` (both platforms
make a bare URL a link, neither takes a label), images their description and URL. `split_text`
cuts a long text at the platform's limit, between paragraphs, lines or words where it can, and
closes a code block cut in two before the cut, opening it again after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.markup import MarkdownWriter, markdown_parser
from runtime.messages import Button, OutgoingMessage


@dataclass(frozen=True, slots=True)
class Marks:
    """What a platform puts around bold, italic, struck and code text and a block of code, and
    before a quoted line ("" where it shows nothing: the text plain)."""

    bold: str = ""
    italic: str = ""
    strike: str = ""
    code: str = ""
    fence: str = ""
    quote: str = ""


PLAIN = Marks()
_MARKDOWN = markdown_parser()


def markdown_to_text(text: str, marks: Marks) -> str:
    """A model's Markdown in `marks`."""
    return _Writer(marks).write(_MARKDOWN.parse(text))


def message_markdown(message: OutgoingMessage) -> str:
    """A reply's text and its fields (as bold `label: value` lines) as one Markdown text: the
    Meta platforms show fields no other way."""
    lines = [message.text] if message.text else []
    lines += [f"**{field.label}**: {field.value}" for field in message.fields]
    return "\n\n".join(lines)


def numbered(buttons: Sequence[Button]) -> str:
    """Buttons a platform cannot show as buttons, as numbered lines (the person answers in
    words)."""
    return "\n".join(f"{number}. {button.label}" for number, button in enumerate(buttons, 1))


class _Writer(MarkdownWriter):
    """The shared Markdown walk in a Meta platform's marks. Nothing is escaped: the platforms
    take text as it is. A quote marks each of its lines (from a line of its own); a link is its
    label, then its URL (neither platform takes a label)."""

    def __init__(self, marks: Marks) -> None:
        inline = {"strong": marks.bold, "em": marks.italic, "s": marks.strike}
        super().__init__(
            {name: (mark, mark) for name, mark in inline.items()}, (marks.code, marks.code)
        )
        self.fence = marks.fence
        self.quote = marks.quote
        self.links: list[tuple[str, int]] = []  # per open link: its URL, where its label starts

    def escape(self, text: str) -> str:
        return text

    def pre(self, language: str) -> tuple[str, str]:
        return self.fence, self.fence  # neither platform names the language

    def line_start(self) -> str:
        return self.quote if self.quotes else ""

    def link_open(self, url: str) -> None:
        self.put("")  # the owed breaks (and a quote's mark) before the label starts
        self.links.append((url, len(self.out)))

    def link_close(self) -> None:
        """A link's URL after its label, unless the label is the URL (a bare URL made a link)."""
        url, start = self.links.pop()
        label = "".join(self.out[start:]).strip()
        if url and label not in (url, url.partition(":")[2].lstrip("/")):
            self.out.append(f" ({url})")

    def quote_open(self) -> None:
        self.breaks = max(self.breaks, 1) if self.out else 0  # its first mark starts a line

    def quote_close(self) -> None:
        self.end(breaks=2)


def split_text(text: str, limit: int, *, fence: str = "") -> list[str]:
    """`text` in pieces of at most `limit` characters, cut after a blank line, a line or a word
    where possible (in the second half of a piece), else anywhere; a code block (between two
    `fence`s) cut in two is closed before the cut and opened again after it. Blank pieces are
    left out."""
    if limit <= 2 * len(fence) + 1:
        raise ValueError("the limit leaves no room for text")
    pieces: list[str] = []
    rest, reopen = text.strip(), ""
    while rest:
        if len(reopen) + len(rest) <= limit:
            piece, rest = reopen + rest, ""
        else:
            cut = _cut(rest, limit - len(reopen) - len(fence))
            piece, rest = reopen + rest[:cut].rstrip(), rest[cut:].lstrip("\n")
            reopen = ""
            if fence and piece.count(fence) % 2:
                piece, reopen = piece + fence, fence
        if piece.strip() and piece.strip() != 2 * fence:
            pieces.append(piece)
    return pieces


def _cut(text: str, room: int) -> int:
    """Where a piece of at most `room` characters of `text` ends."""
    for separator in ("\n\n", "\n", " "):
        found = text.rfind(separator, room // 2, room)
        if found != -1:
            return found + len(separator)
    return room
